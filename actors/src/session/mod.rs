//! `InterviewSession`: one actor per interview. It alone changes the
//! interview's state; every change is an event appended to its log, made
//! durable, then fanned out. Its messages are the table of contents of the
//! protocol: `Attach` (join and observe), `Command` (everything a client
//! sends after joining), `Detach` (a socket went away) and the reports of its
//! `LlmStream` child.

mod budget;
mod commands;
mod fencing;
mod lifecycle;
mod log;
mod replay;
mod snapshot;
pub mod state;
mod turn;

use std::{collections::HashMap, sync::Arc, time::Instant};

use actix::{Actor, Addr, AsyncContext, Context, Handler, Message};

use crate::connection::{Peer, PeerKind, ToSocket};
use crate::event::{Event, LoggedEvent, PauseReason};
use crate::llm_stream::{LlmStream, StreamReport};
use crate::ports::{InterviewStatus, StoredInterview};
use crate::protocol::{close, error_frame, ClientCommand, ProtocolError};
use crate::supervisor::{SessionEnded, SessionSupervisor};
use crate::Runtime;

pub use self::lifecycle::{Crash, DrainSession, Inspect, SessionInfo};
use self::log::EventLog;
pub use self::log::MAX_BATCH;
pub use self::replay::ReadReplay;
use self::state::{Phase, SessionState};

/// A socket asks to take part: the supervisor forwards `join-interview` and
/// `observe-interview` here.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Attach {
    pub peer: Peer,
    pub kind: PeerKind,
    pub last_seq: Option<u64>,
    pub reference: Option<String>,
}

/// A client command from an attached socket.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Command {
    pub conn_id: String,
    pub reference: Option<String>,
    pub command: ClientCommand,
}

/// A socket is gone (closed, replaced, dropped).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Detach {
    pub conn_id: String,
}

/// The interviewer message being streamed by a child `LlmStream`.
struct ActiveTurn {
    stream: Addr<LlmStream>,
    message_id: String,
    /// The request, kept to hand it to the fallback interviewer.
    request: crate::ports::Turn,
    /// Already speaking through the fallback (scripted) interviewer.
    on_fallback: bool,
}

pub struct InterviewSession {
    session_id: String,
    interview: Arc<crate::ports::InterviewRecord>,
    /// Includes the effects of events not yet committed: what commands see.
    live: SessionState,
    log: EventLog,
    candidate: Option<Peer>,
    observers: HashMap<String, Peer>,
    turn: Option<ActiveTurn>,
    /// An evaluation or summary call is under way.
    waiting_on_interviewer: bool,
    /// `end-interview` or the last answer: no command changes anything now.
    completing: bool,
    /// Paused because the database was away too long.
    paused_for_outage: bool,
    /// The ownership epoch every batch is written at (`None`: this process
    /// owns the whole database).
    epoch: Option<u64>,
    /// A commit came back fenced: another node owns the interview now.
    fenced: bool,
    /// Ownership was let go (drain, stop).
    released: bool,
    /// Set by `stopped`: a session dropped without it died in a handler.
    stopped_cleanly: bool,
    /// Waiting for the log to settle before answering a drain.
    drained: Option<tokio::sync::oneshot::Sender<()>>,
    /// Audio of the current answer.
    audio: Vec<u8>,
    /// Synthesised audio for a question: (question id, URL), when ready.
    question_audio: Option<(String, String)>,
    runtime: Runtime,
    supervisor: Addr<SessionSupervisor>,
    started: Instant,
    /// `interview_id` and `session_id` on every log line of this session.
    span: tracing::Span,
    /// When the last socket left (for passivation).
    idle_since: Option<Instant>,
    message_counter: u64,
    /// Proctor events this interview may still take now.
    proctor_budget: budget::ProctorBudget,
}

impl InterviewSession {
    /// A session for a stored interview, its state folded from its log.
    pub fn rebuild(
        stored: StoredInterview,
        epoch: Option<u64>,
        runtime: Runtime,
        supervisor: Addr<SessionSupervisor>,
    ) -> InterviewSession {
        let interview = Arc::new(stored.record);
        let mut live = SessionState::new(&interview);
        for e in &stored.events {
            live.apply(e);
        }
        // A phase with no event of its own (created) began when the row says;
        // a first session for a pending interview creates it now.
        if live.phase_since.is_none() {
            live.phase_since = match interview.status {
                InterviewStatus::Pending => Some(runtime.clock.now()),
                _ => stored.status_since.or(Some(interview.created_at)),
            };
        }
        let committed = live.clone();
        let events: Vec<Arc<LoggedEvent>> = stored.events.into_iter().map(Arc::new).collect();
        let log = EventLog::new(events, committed);
        let runtime_settings = runtime.settings.clone();
        let session_id = format!("s-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        let span = tracing::info_span!("interview", interview_id = %interview.id, session_id = %session_id);
        InterviewSession {
            span,
            session_id,
            interview,
            live,
            log,
            candidate: None,
            observers: HashMap::new(),
            turn: None,
            waiting_on_interviewer: false,
            completing: false,
            paused_for_outage: false,
            epoch,
            fenced: false,
            released: false,
            drained: None,
            stopped_cleanly: false,
            audio: Vec::new(),
            question_audio: None,
            runtime,
            supervisor,
            started: Instant::now(),
            idle_since: Some(Instant::now()),
            message_counter: 0,
            proctor_budget: budget::ProctorBudget::new(&runtime_settings, Instant::now()),
        }
    }

    pub fn interview_id(&self) -> &str {
        &self.interview.id
    }

    pub fn session_id(&self) -> &str {
        &self.session_id
    }

    /// Nothing is connected and nothing is under way: safe to stop.
    fn is_idle(&self) -> bool {
        !self.has_sockets()
            && self.log.is_settled()
            && self.turn.is_none()
            && !self.waiting_on_interviewer
    }

    fn error_to(&self, conn_id: &str, error: &ProtocolError, reference: Option<&str>) {
        if let Some(peer) = self.peer(conn_id) {
            let frame = error_frame(error, reference, self.runtime.clock.now());
            peer.send(ToSocket::Frame("error", frame.into()));
        }
    }

    fn peer(&self, conn_id: &str) -> Option<&Peer> {
        match &self.candidate {
            Some(c) if c.info.id == conn_id => Some(c),
            _ => self.observers.get(conn_id),
        }
    }

    fn is_candidate(&self, conn_id: &str) -> bool {
        self.candidate
            .as_ref()
            .is_some_and(|c| c.info.id == conn_id)
    }

    fn has_sockets(&self) -> bool {
        self.candidate.is_some() || !self.observers.is_empty()
    }

    /// Appends an event to the log (it is sent once committed).
    fn emit(&mut self, event: Event, ctx: &mut Context<Self>) {
        let logged = self.log.append(event, self.runtime.clock.now());
        let before = self.live.phase;
        self.live.apply(&logged);
        if self.live.phase != before {
            crate::metrics::session_phase(Some(before), Some(self.live.phase));
        }
        self.flush(ctx);
    }

    /// Closes every socket of the interview with `code`, after what was sent.
    fn close_all(&mut self, code: u16, reason: &str) {
        let reason = reason.to_string();
        for peer in self
            .candidate
            .take()
            .into_iter()
            .chain(self.observers.drain().map(|(_, p)| p))
        {
            peer.send(ToSocket::Close {
                code,
                reason: reason.clone(),
            });
        }
        self.idle_since = Some(Instant::now());
    }

    /// Moves an active interview to paused for `reason`, stopping the
    /// interviewer mid-sentence (the message is asked again on resume).
    fn pause(&mut self, reason: PauseReason, ctx: &mut Context<Self>) {
        self.interrupt_turn(ctx);
        self.emit(Event::InterviewPaused { reason }, ctx);
    }

    fn resume(&mut self, ctx: &mut Context<Self>) {
        self.emit(Event::InterviewResumed {}, ctx);
        self.continue_interview(true, ctx);
    }

    fn detach(&mut self, conn_id: &str, ctx: &mut Context<Self>) {
        if self.is_candidate(conn_id) {
            self.candidate = None;
            self.audio.clear();
            // Observers learn of every drop; only an active interview pauses.
            if !self.live.phase.is_terminal() && !self.completing {
                let active = self.live.phase == Phase::Active;
                if active {
                    self.interrupt_turn(ctx);
                }
                self.emit(
                    Event::InterviewInterrupted {
                        reason: "disconnect".into(),
                    },
                    ctx,
                );
                if active {
                    self.emit(
                        Event::InterviewPaused {
                            reason: PauseReason::Disconnect,
                        },
                        ctx,
                    );
                }
            }
        } else {
            self.observers.remove(conn_id);
        }
        if !self.has_sockets() {
            self.idle_since = Some(Instant::now());
        }
    }

    fn next_message_id(&mut self) -> String {
        self.message_counter += 1;
        format!("m-{}-{}", self.log.next_seq(), self.message_counter)
    }
}

impl Actor for InterviewSession {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let _span = self.span.clone().entered();
        crate::metrics::session_phase(None, Some(self.live.phase));
        // A session that died while active (a crash or a panic) comes back
        // paused: the interviewer's open message is closed as interrupted.
        if self.live.phase == Phase::Active {
            if let Some((message_id, text)) = self.live.open_message.clone() {
                self.emit(
                    Event::AiStreamEnd {
                        message_id,
                        text,
                        interrupted: true,
                    },
                    ctx,
                );
            }
            self.emit(
                Event::InterviewPaused {
                    reason: PauseReason::Server,
                },
                ctx,
            );
        }
        self.log.mark_row_dirty();
        self.flush(ctx);
        let every = (self.runtime.settings.heartbeat_interval / 2)
            .min(std::time::Duration::from_secs(5))
            .max(std::time::Duration::from_millis(50));
        ctx.run_interval(every, |act, ctx| act.tick(ctx));
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        let _span = self.span.clone().entered();
        // actix also runs `stopped` while a panicking handler unwinds.
        if std::thread::panicking() {
            return;
        }
        self.stopped_cleanly = true;
        crate::metrics::session_phase(Some(self.live.phase), None);
        if let Some(turn) = self.turn.take() {
            turn.stream.do_send(crate::llm_stream::Cancel);
        }
        self.release_ownership();
        self.supervisor.do_send(SessionEnded {
            interview_id: self.interview.id.clone(),
            session_id: self.session_id.clone(),
            panicked: false,
        });
    }
}

impl Drop for InterviewSession {
    fn drop(&mut self) {
        // A panic in a handler skips `stopped` (the runtime catches it and
        // drops the actor afterwards): close the sockets so clients resume,
        // and have the supervisor rebuild the session from the database.
        if !self.stopped_cleanly {
            crate::metrics::session_phase(Some(self.live.phase), None);
            self.close_all(close::SERVER_ERROR, "session restarted");
            self.supervisor.do_send(SessionEnded {
                interview_id: self.interview.id.clone(),
                session_id: self.session_id.clone(),
                panicked: true,
            });
        }
    }
}

impl Handler<Attach> for InterviewSession {
    type Result = ();

    fn handle(&mut self, msg: Attach, ctx: &mut Self::Context) {
        let _span = self.span.clone().entered();
        match msg.kind {
            PeerKind::Candidate => self.attach_candidate(msg, ctx),
            PeerKind::Observer => self.attach_observer(msg, ctx),
        }
    }
}

impl Handler<Command> for InterviewSession {
    type Result = ();

    fn handle(&mut self, msg: Command, ctx: &mut Self::Context) {
        let _span = self.span.clone().entered();
        if self.peer(&msg.conn_id).is_none() {
            return;
        }
        if let Err(error) = self.command(&msg.conn_id, msg.command, msg.reference.as_deref(), ctx) {
            self.error_to(&msg.conn_id, &error, msg.reference.as_deref());
        }
    }
}

impl Handler<Detach> for InterviewSession {
    type Result = ();

    fn handle(&mut self, msg: Detach, ctx: &mut Self::Context) {
        let _span = self.span.clone().entered();
        self.detach(&msg.conn_id, ctx);
    }
}

impl Handler<StreamReport> for InterviewSession {
    type Result = ();

    fn handle(&mut self, report: StreamReport, ctx: &mut Self::Context) {
        let _span = self.span.clone().entered();
        self.on_stream_report(report, ctx);
    }
}
