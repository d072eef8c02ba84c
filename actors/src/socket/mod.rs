//! `CandidateSocket` and `ObserverSocket`: thin actix actors around an
//! actix-ws connection. They parse frames, enforce size, rate and heartbeat
//! limits, answer heartbeats, and forward typed commands to their session.
//! They never touch the database or another session.

pub mod frames;
pub mod limits;
mod outbox;
mod rate;

use std::{marker::PhantomData, sync::Arc, time::Instant};

use actix::{
    Actor, ActorContext, ActorFutureExt, Addr, AsyncContext, Context, Handler, Running,
    StreamHandler, WrapFuture,
};
use serde_json::json;

use self::frames::{FrameError, FrameReader, Incoming};
use self::outbox::{Outbox, Outgoing, WriterFinished};
use self::rate::{RateLimiter, Verdict};
use crate::audience::Viewer;
use crate::connection::{ConnectionInfo, Peer, PeerKind, ReplayPage, ToSocket};
use crate::metrics;
use crate::protocol::{
    close, error_frame, parse_client_frame, peek_ref, reply_frame, rfc3339, ClientCommand,
    ErrorCode, ProtocolError,
};
use crate::rooms::{EnterRoom, LeaveRoom, Principal, UserRooms};
use crate::session::{Attach, Command, InterviewSession, ReadReplay};
use crate::supervisor::{Join, Leave, SessionSupervisor};
use crate::Runtime;

/// Which side of an interview a socket is on.
pub trait SocketRole: Unpin + 'static {
    const KIND: PeerKind;
}

pub struct Candidate;
pub struct Observer;

impl SocketRole for Candidate {
    const KIND: PeerKind = PeerKind::Candidate;
}

impl SocketRole for Observer {
    const KIND: PeerKind = PeerKind::Observer;
}

/// The candidate's socket (0..1 per interview).
pub type CandidateSocket = ClientSocket<Candidate>;
/// A recruiter's or admin's socket (0..n per interview).
pub type ObserverSocket = ClientSocket<Observer>;

/// Commands sent right after a join wait for its answer, up to this many.
const MAX_QUEUED_WHILE_JOINING: usize = 32;

enum Binding {
    Unbound,
    /// The join is on its way; commands pipelined behind it wait here.
    Joining(String, Vec<(ClientCommand, Option<String>)>),
    Bound {
        interview_id: String,
        session: Addr<InterviewSession>,
    },
}

pub struct ClientSocket<R: SocketRole> {
    info: Arc<ConnectionInfo>,
    outbox: Outbox,
    binding: Binding,
    supervisor: Addr<SessionSupervisor>,
    rooms: Addr<UserRooms>,
    runtime: Runtime,
    rate: RateLimiter,
    last_heard: Instant,
    /// Replaying: the last `seq` replayed. Live events wait in the log
    /// meanwhile, not in this socket.
    replay: Option<u64>,
    /// `connection_id`, `role` and, once joined, `interview_id` on every
    /// log line of this connection.
    span: tracing::Span,
    _role: PhantomData<R>,
}

impl<R: SocketRole> ClientSocket<R> {
    /// Starts the socket actor on the current arbiter (the actix-ws stream is
    /// not `Send`) and sends `connected`.
    pub fn start(
        info: ConnectionInfo,
        session: actix_ws::Session,
        payload: actix_web::dev::Payload,
        supervisor: Addr<SessionSupervisor>,
        rooms: Addr<UserRooms>,
        runtime: Runtime,
    ) -> Addr<Self> {
        let stream = FrameReader::new(payload, runtime.settings.hard_frame_bytes);
        ClientSocket::create(move |ctx| {
            ctx.add_stream(stream);
            let settings = &runtime.settings;
            let outbox = Outbox::spawn(session, settings.outbox_frames, ctx.address().recipient());
            let span = tracing::info_span!(
                "connection",
                connection_id = %info.id,
                role = info.role.as_str(),
                interview_id = tracing::field::Empty,
            );
            ClientSocket {
                span,
                info: Arc::new(info),
                outbox,
                binding: Binding::Unbound,
                supervisor,
                rooms,
                rate: RateLimiter::new(settings.rate_per_sec, settings.rate_burst, Instant::now()),
                last_heard: Instant::now(),
                replay: None,
                runtime,
                _role: PhantomData,
            }
        })
    }

    fn send_text(&mut self, kind: &'static str, frame: String, ctx: &mut Context<Self>) {
        metrics::frame_out(kind);
        self.push(Outgoing::Text(frame.into()), ctx);
    }

    fn push(&mut self, frame: Outgoing, ctx: &mut Context<Self>) {
        if self.outbox.send(frame).is_err() {
            tracing::warn!(connection_id = %self.info.id, "slow consumer; closing");
            metrics::slow_consumer(self.info.role.as_str());
            self.outbox.abort(close::SLOW_CONSUMER, "slow consumer");
            self.stop_soon(ctx);
        }
    }

    fn error(&mut self, error: &ProtocolError, reference: Option<&str>, ctx: &mut Context<Self>) {
        let frame = error_frame(error, reference, self.runtime.clock.now());
        self.send_text("error", frame, ctx);
    }

    fn close(&mut self, code: u16, reason: &str, ctx: &mut Context<Self>) {
        self.outbox.close(code, reason);
        self.stop_soon(ctx);
    }

    /// Stops once the writer has flushed the Close, or after a grace period.
    fn stop_soon(&mut self, ctx: &mut Context<Self>) {
        ctx.run_later(std::time::Duration::from_secs(3), |_, ctx| ctx.stop());
    }

    fn heartbeat(&mut self, ctx: &mut Context<Self>) {
        let _span = self.span.clone().entered();
        let interval = self.runtime.settings.heartbeat_interval;
        if self.last_heard.elapsed() >= interval * 2 {
            tracing::info!(connection_id = %self.info.id, "heartbeat timeout");
            metrics::heartbeat_timeout(self.info.role.as_str());
            return self.close(close::HEARTBEAT_TIMEOUT, "heartbeat timeout", ctx);
        }
        self.push(Outgoing::Ping, ctx);
    }

    /// The rate check alone, for pings and pongs: a frame over the rate is
    /// dropped (no pong), and a client over it for long is closed.
    fn admit_control(&mut self, ctx: &mut Context<Self>) -> bool {
        match self.rate.check(Instant::now()) {
            Verdict::Allow => true,
            Verdict::Drop { .. } => {
                metrics::frame_rejected("rate");
                false
            }
            Verdict::Close => {
                metrics::frame_rejected("rate");
                self.close(close::POLICY, "rate limit exceeded", ctx);
                false
            }
        }
    }

    /// Size and rate checks shared by text and binary frames.
    fn admit(&mut self, len: usize, ctx: &mut Context<Self>) -> bool {
        match self.rate.check(Instant::now()) {
            Verdict::Allow => {}
            Verdict::Drop { notify } => {
                metrics::frame_rejected("rate");
                if notify {
                    let e =
                        ProtocolError::new(ErrorCode::RateLimited, "too many frames; slow down");
                    self.error(&e, None, ctx);
                }
                return false;
            }
            Verdict::Close => {
                metrics::frame_rejected("rate");
                self.close(close::POLICY, "rate limit exceeded", ctx);
                return false;
            }
        }
        let limit = self.runtime.settings.max_frame_bytes;
        if len > limit {
            metrics::frame_rejected("size");
            let e = ProtocolError::new(
                ErrorCode::PayloadTooLarge,
                format!("frame of {len} bytes is over the limit of {limit}"),
            );
            self.error(&e, None, ctx);
            return false;
        }
        true
    }

    fn on_text(&mut self, text: &str, ctx: &mut Context<Self>) {
        if !self.admit(text.len(), ctx) {
            return;
        }
        match parse_client_frame(text, self.info.role) {
            Ok(frame) => {
                metrics::frame_in(frame.command.type_name());
                self.on_command(frame.command, frame.reference, ctx)
            }
            Err(error) => {
                metrics::frame_in("invalid");
                let reference = peek_ref(text);
                self.error(&error, reference.as_deref(), ctx);
            }
        }
    }

    fn on_binary(&mut self, bytes: &[u8], ctx: &mut Context<Self>) {
        if !self.admit(bytes.len(), ctx) {
            return;
        }
        if R::KIND != PeerKind::Candidate {
            let e = ProtocolError::invalid("binary frames are candidate audio");
            return self.error(&e, None, ctx);
        }
        metrics::frame_in("binary");
        let command = ClientCommand::AudioChunk {
            audio: bytes.to_vec(),
        };
        self.on_command(command, None, ctx);
    }

    fn on_command(
        &mut self,
        command: ClientCommand,
        reference: Option<String>,
        ctx: &mut Context<Self>,
    ) {
        let now = self.runtime.clock.now();
        match command {
            ClientCommand::Heartbeat => {
                let frame = reply_frame(
                    "heartbeat-ack",
                    json!({"timestamp": rfc3339(now)}),
                    reference.as_deref(),
                    now,
                );
                self.send_text("heartbeat-ack", frame, ctx);
            }
            ClientCommand::Ping => {
                let frame = reply_frame(
                    "pong",
                    json!({"timestamp": rfc3339(now)}),
                    reference.as_deref(),
                    now,
                );
                self.send_text("pong", frame, ctx);
            }
            ClientCommand::JoinInterview {
                interview_id,
                last_seq,
            }
            | ClientCommand::ObserveInterview {
                interview_id,
                last_seq,
            } => self.join(interview_id, last_seq, reference, ctx),
            command => match &mut self.binding {
                Binding::Bound { session, .. } => session.do_send(Command {
                    conn_id: self.info.id.clone(),
                    reference,
                    command,
                }),
                Binding::Joining(_, queued) if queued.len() < MAX_QUEUED_WHILE_JOINING => {
                    queued.push((command, reference));
                }
                Binding::Unbound | Binding::Joining(..) => {
                    let e = ProtocolError::state("join an interview first");
                    self.error(&e, reference.as_deref(), ctx);
                }
            },
        }
    }

    /// Frames of one replay page: a quarter of the outbox, so that live
    /// replies and pings always have room beside it.
    fn page_size(&self) -> usize {
        (self.outbox.capacity() / 4).clamp(1, 256)
    }

    /// Asks the session for the page after the cursor.
    fn request_page(&mut self, ctx: &mut Context<Self>) {
        let (Some(after), Binding::Bound { session, .. }) = (self.replay, &self.binding) else {
            return;
        };
        let ask = session.send(ReadReplay {
            peer: Peer {
                info: self.info.clone(),
                socket: ctx.address().recipient(),
            },
            viewer: if R::KIND == PeerKind::Candidate {
                Viewer::Candidate
            } else {
                Viewer::Observer
            },
            after,
            limit: self.page_size(),
        });
        ctx.spawn(ask.into_actor(self).map(|sent, act, ctx| {
            // The session is gone (restarted or stopped): the client resumes.
            if sent.is_err() {
                act.close(close::RESTARTING, "session restarted; resume", ctx);
            }
        }));
    }

    fn on_replay_page(&mut self, page: ReplayPage, ctx: &mut Context<Self>) {
        if self.replay.is_none() {
            return;
        }
        for e in page.events {
            metrics::frame_out(e.event.type_name());
            self.push(Outgoing::Text(e.frame.clone()), ctx);
        }
        if page.caught_up {
            self.replay = None;
            return;
        }
        self.replay = Some(page.through);
        // Room for the next page and a whole committed batch behind it: the
        // last page goes live at once, and a batch landing in the same
        // mailbox pass must not overflow a client that is reading.
        let room = self
            .outbox
            .room_for(self.page_size() + crate::session::MAX_BATCH);
        ctx.spawn(room.into_actor(self).map(|open, act, ctx| {
            if open {
                act.request_page(ctx);
            }
        }));
    }

    fn join(
        &mut self,
        interview_id: String,
        last_seq: Option<u64>,
        reference: Option<String>,
        ctx: &mut Context<Self>,
    ) {
        if !matches!(self.binding, Binding::Unbound) {
            let e = ProtocolError::new(
                ErrorCode::AlreadyJoined,
                "this socket already joined an interview",
            );
            return self.error(&e, reference.as_deref(), ctx);
        }
        // A join token opens one interview only.
        if R::KIND == PeerKind::Candidate
            && self.info.interview_id.as_deref() != Some(interview_id.as_str())
        {
            let e = ProtocolError::new(
                ErrorCode::AccessDenied,
                "this token is for another interview",
            );
            self.error(&e, reference.as_deref(), ctx);
            return self.close(close::ACCESS_DENIED, "access denied", ctx);
        }
        self.span.record("interview_id", interview_id.as_str());
        self.binding = Binding::Joining(interview_id.clone(), Vec::new());
        self.supervisor.do_send(Join {
            interview_id,
            attach: Attach {
                peer: Peer {
                    info: self.info.clone(),
                    socket: ctx.address().recipient(),
                },
                kind: R::KIND,
                last_seq,
                reference,
            },
        });
    }
}

impl<R: SocketRole> Actor for ClientSocket<R> {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let _span = self.span.clone().entered();
        let now = self.runtime.clock.now();
        let interval = self.runtime.settings.heartbeat_interval;
        let frame = reply_frame(
            "connected",
            json!({
                "connectionId": self.info.id,
                "userId": self.info.user_id,
                "userType": self.info.role.as_str(),
                "heartbeatIntervalMs": interval.as_millis() as u64,
                "timestamp": rfc3339(now),
            }),
            None,
            now,
        );
        self.send_text("connected", frame, ctx);
        metrics::socket_opened(self.info.role.as_str());
        self.rooms.do_send(EnterRoom {
            principal: Principal::of(&self.info),
            token_key: self.info.token_key,
            conn_id: self.info.id.clone(),
            socket: ctx.address().recipient(),
        });
        ctx.run_interval(interval, |act, ctx| act.heartbeat(ctx));
    }

    fn stopping(&mut self, _: &mut Self::Context) -> Running {
        let _span = self.span.clone().entered();
        metrics::socket_closed(self.info.role.as_str());
        self.rooms.do_send(LeaveRoom {
            principal: Principal::of(&self.info),
            token_key: self.info.token_key,
            conn_id: self.info.id.clone(),
        });
        let interview_id = match std::mem::replace(&mut self.binding, Binding::Unbound) {
            Binding::Joining(id, _)
            | Binding::Bound {
                interview_id: id, ..
            } => Some(id),
            Binding::Unbound => None,
        };
        if let Some(interview_id) = interview_id {
            self.supervisor.do_send(Leave {
                interview_id,
                conn_id: self.info.id.clone(),
            });
        }
        Running::Stop
    }
}

impl<R: SocketRole> StreamHandler<Result<Incoming, FrameError>> for ClientSocket<R> {
    fn handle(&mut self, item: Result<Incoming, FrameError>, ctx: &mut Self::Context) {
        let _span = self.span.clone().entered();
        if self.outbox.is_closed() {
            return;
        }
        self.last_heard = Instant::now();
        match item {
            Ok(Incoming::Text(text)) => self.on_text(&text, ctx),
            Ok(Incoming::Binary(bytes)) => self.on_binary(&bytes, ctx),
            // Pings cost the server a write: they count against the
            // connection's budget like any other frame.
            Ok(Incoming::Ping(bytes)) => {
                if self.admit_control(ctx) {
                    self.push(Outgoing::Pong(bytes), ctx)
                }
            }
            Ok(Incoming::Pong(_)) => {
                self.admit_control(ctx);
            }
            // Echo the client's code (RFC 6455 5.5.1), so a client that reads
            // the code it gets back sees its own.
            Ok(Incoming::Close(reason)) => {
                let code = reason.map_or(close::NORMAL, |r| u16::from(r.code));
                self.close(code, "goodbye", ctx)
            }
            Err(error) => {
                tracing::debug!(connection_id = %self.info.id, %error, "websocket frame refused");
                if matches!(error, FrameError::TooBig { .. }) {
                    metrics::frame_rejected("size");
                }
                let reason = match &error {
                    FrameError::TooBig { cap, .. } => format!("message over {cap} bytes"),
                    FrameError::InvalidUtf8 => "text is not UTF-8".into(),
                    FrameError::Protocol(_) => "protocol error".into(),
                };
                self.close(error.close_code(), &reason, ctx);
            }
        }
    }

    fn finished(&mut self, ctx: &mut Self::Context) {
        let _span = self.span.clone().entered();
        // The client's side of the connection is gone.
        ctx.stop();
    }
}

impl<R: SocketRole> Handler<ToSocket> for ClientSocket<R> {
    type Result = ();

    fn handle(&mut self, msg: ToSocket, ctx: &mut Self::Context) {
        let _span = self.span.clone().entered();
        match msg {
            ToSocket::Bound(session) => {
                if let Binding::Joining(interview_id, queued) =
                    std::mem::replace(&mut self.binding, Binding::Unbound)
                {
                    for (command, reference) in queued {
                        session.do_send(Command {
                            conn_id: self.info.id.clone(),
                            reference,
                            command,
                        });
                    }
                    self.binding = Binding::Bound {
                        interview_id,
                        session,
                    };
                }
            }
            ToSocket::Unbound => {
                self.replay = None;
                if let Binding::Joining(_, queued) =
                    std::mem::replace(&mut self.binding, Binding::Unbound)
                {
                    let e = ProtocolError::state("the join failed; join an interview first");
                    for (_, reference) in queued {
                        self.error(&e, reference.as_deref(), ctx);
                    }
                }
            }
            ToSocket::Frame(kind, frame) => {
                metrics::frame_out(kind);
                self.push(Outgoing::Text(frame), ctx)
            }
            // While replaying, a live event is dropped here: it is
            // committed, so a later page carries it, in order.
            ToSocket::Event(e) if self.replay.is_none() => {
                metrics::frame_out(e.event.type_name());
                self.push(Outgoing::Text(e.frame.clone()), ctx)
            }
            ToSocket::Event(_) => {}
            ToSocket::ReplayFrom(after) => {
                self.replay = Some(after);
                self.request_page(ctx);
            }
            ToSocket::Replay(page) => self.on_replay_page(page, ctx),
            ToSocket::Close { code, reason } => {
                // The session has let go of this socket already.
                self.binding = Binding::Unbound;
                self.close(code, &reason, ctx)
            }
        }
    }
}

impl<R: SocketRole> Handler<WriterFinished> for ClientSocket<R> {
    type Result = ();

    fn handle(&mut self, _: WriterFinished, ctx: &mut Self::Context) {
        let _span = self.span.clone().entered();
        ctx.stop();
    }
}
