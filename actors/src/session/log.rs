//! The session's event log and its group commit: events are appended with
//! the next `seq`, written in batches (one transaction each, one batch in
//! flight at a time, so a burst of tokens costs one commit), and fanned out
//! only after their batch is committed. A failed commit keeps its events and
//! is retried with backoff; nothing uncommitted is ever sent.

use std::{
    collections::VecDeque,
    sync::Arc,
    time::{Duration, Instant},
};

use actix::{ActorFutureExt, AsyncContext, Context, WrapFuture};
use chrono::{DateTime, Utc};

use super::{state::SessionState, InterviewSession};
use crate::audience::Viewer;
use crate::connection::ToSocket;
use crate::event::{Event, LoggedEvent};
use crate::ports::{AnswerAudio, Batch, InterviewRow, StoreError, TranscriptLine};
use crate::projection::transcript_entry;
use crate::protocol::close;

/// Events in one commit at most; the rest wait for the next. A batch is
/// fanned out in one burst, so a socket's outbox must hold more than this
/// (`OUTBOX_FRAMES` is at least twice it) or a reader that keeps up would be
/// taken for a slow one.
pub const MAX_BATCH: usize = 128;
/// The committed events a session keeps in memory, newest last: replays
/// within it are served from memory, older ones are read from the store.
/// Bounded by count and by frame bytes, so a long interview costs the same
/// memory as a short one.
pub const TAIL_EVENTS: usize = 1024;
pub const TAIL_BYTES: usize = 512 * 1024;
const RETRY_FIRST: Duration = Duration::from_millis(50);
const RETRY_MAX: Duration = Duration::from_secs(2);

pub(super) struct EventLog {
    /// The newest committed events, in `seq` order (see `TAIL_EVENTS`).
    tail: VecDeque<Arc<LoggedEvent>>,
    tail_bytes: usize,
    /// The highest committed `seq`.
    head: u64,
    /// The committed conversation: what snapshots and prompts show. One
    /// line per message or answer, so it grows with the interview's turns,
    /// which the per-interview limits bound.
    transcript: Vec<TranscriptLine>,
    /// Bytes of every event's frame and audio, committed or not, since the
    /// interview began: what the per-interview byte limit counts.
    pub(super) total_bytes: u64,
    /// The state as of the last committed event: what snapshots show.
    committed_state: SessionState,
    pending: Vec<Arc<LoggedEvent>>,
    pending_audio: Vec<AnswerAudio>,
    next_seq: u64,
    in_flight: bool,
    row_dirty: bool,
    retry_delay: Duration,
    /// No commit before this (backoff after a failure).
    retry_at: Option<Instant>,
    /// When commits started failing.
    pub(super) outage_since: Option<Instant>,
}

impl EventLog {
    pub(super) fn new(committed: Vec<Arc<LoggedEvent>>, state: SessionState) -> EventLog {
        let next_seq = committed.last().map_or(1, |e| e.seq + 1);
        let mut log = EventLog {
            tail: VecDeque::new(),
            tail_bytes: 0,
            head: 0,
            transcript: Vec::new(),
            total_bytes: 0,
            committed_state: state,
            pending: Vec::new(),
            pending_audio: Vec::new(),
            next_seq,
            in_flight: false,
            row_dirty: false,
            retry_delay: RETRY_FIRST,
            retry_at: None,
            outage_since: None,
        };
        for e in committed {
            log.total_bytes += e.frame.len() as u64;
            log.keep(e);
        }
        log
    }

    /// A committed event joins the tail and the transcript; the oldest
    /// events leave the tail past its bounds.
    fn keep(&mut self, e: Arc<LoggedEvent>) {
        if let Some(t) = transcript_entry(&e) {
            self.transcript.push(TranscriptLine {
                speaker: t.speaker,
                text: t.text,
                seq: t.seq,
            });
        }
        self.head = e.seq;
        self.tail_bytes += e.frame.len();
        self.tail.push_back(e);
        while self.tail.len() > TAIL_EVENTS || (self.tail_bytes > TAIL_BYTES && self.tail.len() > 1)
        {
            if let Some(old) = self.tail.pop_front() {
                self.tail_bytes -= old.frame.len();
            }
        }
    }

    pub(super) fn append(&mut self, event: Event, now: DateTime<Utc>) -> Arc<LoggedEvent> {
        let logged = Arc::new(LoggedEvent::new(self.next_seq, now, event));
        self.next_seq += 1;
        self.total_bytes += logged.frame.len() as u64;
        self.pending.push(logged.clone());
        logged
    }

    pub(super) fn attach_audio(&mut self, audio: AnswerAudio) {
        self.total_bytes += audio.bytes.len() as u64;
        self.pending_audio.push(audio);
    }

    /// Events appended since the interview began, committed or not.
    pub(super) fn total_events(&self) -> u64 {
        self.next_seq - 1
    }

    /// Drops every event and audio not committed (the session was fenced:
    /// none of it may be sent or written).
    pub(super) fn discard_uncommitted(&mut self) {
        self.pending.clear();
        self.pending_audio.clear();
        self.row_dirty = false;
    }

    /// The row must be written even without new events.
    pub(super) fn mark_row_dirty(&mut self) {
        self.row_dirty = true;
    }

    /// The highest committed `seq` (0 when the log is empty).
    pub(super) fn head(&self) -> u64 {
        self.head
    }

    pub(super) fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Nothing waits to be written.
    pub(super) fn is_settled(&self) -> bool {
        !self.in_flight && self.pending.is_empty() && !self.row_dirty
    }

    /// The committed conversation, oldest first.
    pub(super) fn transcript(&self) -> &[TranscriptLine] {
        &self.transcript
    }

    pub(super) fn committed_state(&self) -> &SessionState {
        &self.committed_state
    }

    /// Committed events with `seq > after`, when the tail still holds
    /// them all; `None` when the oldest of them must come from the store.
    pub(super) fn after(&self, after: u64) -> Option<impl Iterator<Item = &Arc<LoggedEvent>> + '_> {
        if after < self.head && self.tail.front().is_none_or(|e| e.seq > after + 1) {
            return None;
        }
        let start = self.tail.partition_point(|e| e.seq <= after);
        Some(self.tail.range(start..))
    }

    /// The `seq` of the oldest event in memory (`head + 1` when none is).
    pub(super) fn tail_start(&self) -> u64 {
        self.tail.front().map_or(self.head + 1, |e| e.seq)
    }
}

impl InterviewSession {
    /// Starts a commit if none is in flight and something waits.
    pub(super) fn flush(&mut self, ctx: &mut Context<Self>) {
        let log = &mut self.log;
        if self.fenced || log.in_flight || (log.pending.is_empty() && !log.row_dirty) {
            return;
        }
        if log.retry_at.is_some_and(|t| Instant::now() < t) {
            return;
        }
        let take = log.pending.len().min(MAX_BATCH);
        let everything = take == log.pending.len();
        let events: Vec<Arc<LoggedEvent>> = log.pending.drain(..take).collect();
        // The row after this batch. `live` is the fold of every appended
        // event, so when the batch takes them all it is that row; only a
        // split batch folds a copy.
        let row = if everything {
            self.live.row()
        } else {
            let mut next = log.committed_state.clone();
            for e in &events {
                next.apply(e);
            }
            next.row()
        };
        // Most batches (tokens, audio, proctoring) leave the row as it was
        // but for the log's head, which readers take from the log itself:
        // such a batch writes no row.
        let before = log.committed_state.row();
        let row_changed = log.row_dirty
            || InterviewRow {
                last_seq: row.last_seq,
                ..before
            } != row;
        let batch = Batch {
            interview_id: self.interview.id.clone(),
            events: events.clone(),
            row: row_changed.then_some(row),
            audio: std::mem::take(&mut log.pending_audio),
            epoch: self.epoch,
        };
        log.in_flight = true;
        log.row_dirty = false;
        let audio_backup = batch.audio.clone();
        let commit = self.runtime.store.commit(batch);
        let started = Instant::now();
        ctx.spawn(commit.into_actor(self).map(move |result, act, ctx| {
            crate::metrics::db_commit(started.elapsed(), events.len(), result.is_ok());
            act.on_committed(result, events, audio_backup, ctx)
        }));
    }

    fn on_committed(
        &mut self,
        result: Result<(), StoreError>,
        events: Vec<Arc<LoggedEvent>>,
        audio: Vec<AnswerAudio>,
        ctx: &mut Context<Self>,
    ) {
        self.log.in_flight = false;
        if let Err(crate::ports::StoreError::Fenced { .. }) = result {
            return self.on_fenced(ctx);
        }
        if let Err(error) = result {
            tracing::warn!(interview_id = %self.interview.id, %error, "commit failed; retrying");
            // Put the batch back in front, unchanged: same seqs, nothing sent.
            let log = &mut self.log;
            let mut pending = events;
            pending.append(&mut log.pending);
            log.pending = pending;
            let mut audio = audio;
            audio.append(&mut log.pending_audio);
            log.pending_audio = audio;
            log.row_dirty = true;
            let delay = log.retry_delay;
            log.retry_delay = (delay * 2).min(RETRY_MAX);
            log.retry_at = Some(Instant::now() + delay);
            let since = *log.outage_since.get_or_insert_with(Instant::now);
            ctx.run_later(delay, |act, ctx| act.flush(ctx));
            if since.elapsed() >= self.runtime.settings.db_outage_pause {
                self.pause_for_outage(ctx);
            }
            return;
        }
        self.log.retry_delay = RETRY_FIRST;
        self.log.retry_at = None;
        let recovered = self.log.outage_since.take().is_some();
        let mut terminal = false;
        for e in events {
            self.log.committed_state.apply(&e);
            self.fan_out(&e);
            terminal |= matches!(
                e.event,
                Event::InterviewCompleted { .. } | Event::InterviewExpired {}
            );
            self.log.keep(e);
        }
        if terminal {
            self.after_terminal();
        }
        if recovered && self.paused_for_outage {
            self.end_outage_pause(ctx);
        }
        self.flush(ctx);
        self.finish_drain_if_settled();
    }

    /// The database has been away too long: pause (the events wait in
    /// memory) and tell everyone it is our fault and worth retrying.
    fn pause_for_outage(&mut self, ctx: &mut Context<Self>) {
        if self.paused_for_outage {
            return;
        }
        self.paused_for_outage = true;
        tracing::error!(interview_id = %self.interview.id, "database unavailable; pausing the interview");
        let error = crate::protocol::ProtocolError::new(
            crate::protocol::ErrorCode::InternalError,
            "the database is unavailable; the interview is paused and will resume by itself",
        );
        let frame = crate::protocol::error_frame(&error, None, self.runtime.clock.now());
        for peer in self.candidate.iter().chain(self.observers.values()) {
            peer.send(ToSocket::Frame("error", frame.clone().into()));
        }
        if self.live.phase == super::state::Phase::Active && !self.completing {
            self.pause(crate::event::PauseReason::Server, ctx);
        }
    }

    /// The database is back: an interview paused for it resumes if its
    /// candidate is here (otherwise their next join resumes it).
    fn end_outage_pause(&mut self, ctx: &mut Context<Self>) {
        self.paused_for_outage = false;
        tracing::info!(interview_id = %self.interview.id, "database back");
        if self.live.phase == super::state::Phase::Paused(crate::event::PauseReason::Server)
            && self.candidate.is_some()
        {
            self.resume(ctx);
        }
    }

    /// Sends one committed event to every socket that may see it.
    fn fan_out(&self, e: &Arc<LoggedEvent>) {
        let frame = ToSocket::Event(e.clone());
        for peer in self.observers.values() {
            peer.send(frame.clone());
        }
        if Viewer::Candidate.sees(e.audience()) {
            if let Some(candidate) = &self.candidate {
                candidate.send(frame);
            }
        }
    }

    /// The interview is over: everyone has been sent the last event; close.
    fn after_terminal(&mut self) {
        match self.live.phase {
            super::state::Phase::Expired => {
                let now = self.runtime.clock.now();
                let err = crate::protocol::ProtocolError::new(
                    crate::protocol::ErrorCode::SessionExpired,
                    "the interview expired",
                );
                let frame = crate::protocol::error_frame(&err, None, now);
                for peer in self.candidate.iter().chain(self.observers.values()) {
                    peer.send(ToSocket::Frame("error", frame.clone().into()));
                }
                self.close_all(close::INVALID_STATE, "interview expired");
            }
            _ => self.close_all(close::NORMAL, "interview completed"),
        }
    }
}
