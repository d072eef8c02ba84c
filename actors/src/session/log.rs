//! The session's event log and its group commit: events are appended with
//! the next `seq`, written in batches (one transaction each, one batch in
//! flight at a time, so a burst of tokens costs one commit), and fanned out
//! only after their batch is committed. A failed commit keeps its events and
//! is retried with backoff; nothing uncommitted is ever sent.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use actix::{ActorFutureExt, AsyncContext, Context, WrapFuture};
use chrono::{DateTime, Utc};

use super::{state::SessionState, InterviewSession};
use crate::connection::ToSocket;
use crate::event::{Audience, Event, LoggedEvent};
use crate::ports::{AnswerAudio, Batch, InterviewRow, StoreError};
use crate::protocol::close;

/// Events in one commit at most; the rest wait for the next. A batch is
/// fanned out in one burst, so a socket's outbox must hold more than this
/// (`OUTBOX_FRAMES` is at least twice it) or a reader that keeps up would be
/// taken for a slow one.
pub const MAX_BATCH: usize = 128;
const RETRY_FIRST: Duration = Duration::from_millis(50);
const RETRY_MAX: Duration = Duration::from_secs(2);

pub(super) struct EventLog {
    /// Committed events, in `seq` order: what replays are served from.
    committed: Vec<Arc<LoggedEvent>>,
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
        EventLog {
            committed,
            committed_state: state,
            pending: Vec::new(),
            pending_audio: Vec::new(),
            next_seq,
            in_flight: false,
            row_dirty: false,
            retry_delay: RETRY_FIRST,
            retry_at: None,
            outage_since: None,
        }
    }

    pub(super) fn append(&mut self, event: Event, now: DateTime<Utc>) -> Arc<LoggedEvent> {
        let logged = Arc::new(LoggedEvent::new(self.next_seq, now, event));
        self.next_seq += 1;
        self.pending.push(logged.clone());
        logged
    }

    pub(super) fn attach_audio(&mut self, audio: AnswerAudio) {
        self.pending_audio.push(audio);
    }

    /// The row must be written even without new events.
    pub(super) fn mark_row_dirty(&mut self) {
        self.row_dirty = true;
    }

    /// The highest committed `seq` (0 when the log is empty).
    pub(super) fn head(&self) -> u64 {
        self.committed.last().map_or(0, |e| e.seq)
    }

    pub(super) fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Nothing waits to be written.
    pub(super) fn is_settled(&self) -> bool {
        !self.in_flight && self.pending.is_empty() && !self.row_dirty
    }

    pub(super) fn committed(&self) -> &[Arc<LoggedEvent>] {
        &self.committed
    }

    pub(super) fn committed_state(&self) -> &SessionState {
        &self.committed_state
    }

    /// Committed events with `seq > after`, for a replay.
    pub(super) fn after(&self, after: u64) -> &[Arc<LoggedEvent>] {
        let start = self.committed.partition_point(|e| e.seq <= after);
        &self.committed[start..]
    }
}

impl InterviewSession {
    /// Starts a commit if none is in flight and something waits.
    pub(super) fn flush(&mut self, ctx: &mut Context<Self>) {
        let log = &mut self.log;
        if log.in_flight || (log.pending.is_empty() && !log.row_dirty) {
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
            self.log.committed.push(e);
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
    fn fan_out(&self, e: &LoggedEvent) {
        let frame = ToSocket::Frame(e.event.type_name(), e.frame.clone());
        for peer in self.observers.values() {
            peer.send(frame.clone());
        }
        if e.audience() == Audience::All {
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
