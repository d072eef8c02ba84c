//! The session's life as operators see it: the periodic tick (dead sockets,
//! idle passivation, TTL expiry), graceful drain, inspection, and the chaos
//! hook that proves a panicked session is rebuilt.

use std::time::Instant;

use actix::{ActorContext, Context, Handler, Message, MessageResult};

use super::{state::Phase, InterviewSession};
use crate::event::{Event, PauseReason};
use crate::protocol::close;

/// Graceful shutdown of this session: pause if active, let the log commit,
/// close every socket with 1012. Answers once that is done.
#[derive(Message)]
#[rtype(result = "()")]
pub struct DrainSession;

/// Fault injection for tests and game days: the session panics in its
/// handler. Only reachable when the operator enabled chaos hooks.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Crash;

/// What operators see of a live session (`GET /v1/admin/sessions`).
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionInfo {
    pub interview_id: String,
    pub session_id: String,
    pub state: &'static str,
    pub age_ms: u64,
    pub candidate_connected: bool,
    pub observers: usize,
    pub last_seq: u64,
    pub llm_stream_active: bool,
    pub node: String,
}

#[derive(Message)]
#[rtype(result = "SessionInfo")]
pub struct Inspect;

impl InterviewSession {
    /// Drops sockets that are gone, passivates an idle session, expires an
    /// interview left created or paused past its TTL.
    pub(super) fn tick(&mut self, ctx: &mut Context<Self>) {
        let _span = self.span.clone().entered();
        if let Some(candidate) = &self.candidate {
            if !candidate.socket.connected() {
                let id = candidate.info.id.clone();
                self.detach(&id, ctx);
            }
        }
        self.observers.retain(|_, p| p.socket.connected());
        if self.has_sockets() {
            self.idle_since = None;
        } else if self.idle_since.is_none() {
            self.idle_since = Some(Instant::now());
        }
        let ttl = chrono::Duration::from_std(self.runtime.settings.session_ttl)
            .unwrap_or(chrono::Duration::MAX);
        let since = self.live.phase_since.unwrap_or(self.interview.created_at);
        if matches!(self.live.phase, Phase::Created | Phase::Paused(_))
            && !self.completing
            && self.runtime.clock.now() - since >= ttl
        {
            self.expire(ctx);
            return;
        }
        let idle_long_enough = self
            .idle_since
            .is_some_and(|t| t.elapsed() >= self.runtime.settings.idle_passivate);
        if idle_long_enough && self.is_idle() {
            self.supervisor.do_send(crate::supervisor::SessionIdle {
                interview_id: self.interview.id.clone(),
                session_id: self.session_id.clone(),
            });
        }
    }

    fn expire(&mut self, ctx: &mut Context<Self>) {
        self.interrupt_turn(ctx);
        self.completing = true;
        self.emit(Event::InterviewExpired {}, ctx);
    }

    /// During a drain: once everything is committed (and so sent), close.
    pub(super) fn finish_drain_if_settled(&mut self) {
        if self.drained.is_some() && self.log.is_settled() {
            self.close_all(close::RESTARTING, "server restarting");
            self.release_ownership();
            if let Some(done) = self.drained.take() {
                let _ = done.send(());
            }
        }
    }
}

impl Handler<DrainSession> for InterviewSession {
    type Result = actix::ResponseFuture<()>;

    fn handle(&mut self, _: DrainSession, ctx: &mut Self::Context) -> Self::Result {
        let _span = self.span.clone().entered();
        if self.live.phase == Phase::Active && !self.completing {
            self.pause(PauseReason::Server, ctx);
        } else {
            self.interrupt_turn(ctx);
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.drained = Some(tx);
        self.finish_drain_if_settled();
        Box::pin(async move {
            // A session that stops first answers by dropping the sender.
            let _ = rx.await;
        })
    }
}

impl Handler<crate::supervisor::Passivate> for InterviewSession {
    type Result = bool;

    fn handle(&mut self, _: crate::supervisor::Passivate, ctx: &mut Self::Context) -> bool {
        let _span = self.span.clone().entered();
        if !self.is_idle() {
            return false;
        }
        tracing::info!(interview_id = %self.interview.id, "passivating idle session");
        ctx.stop();
        true
    }
}

impl Handler<Crash> for InterviewSession {
    type Result = ();

    #[allow(clippy::panic)]
    fn handle(&mut self, _: Crash, _: &mut Self::Context) {
        let _span = self.span.clone().entered();
        panic!("chaos: session {} asked to crash", self.session_id);
    }
}

impl Handler<Inspect> for InterviewSession {
    type Result = MessageResult<Inspect>;

    fn handle(&mut self, _: Inspect, _: &mut Self::Context) -> Self::Result {
        let _span = self.span.clone().entered();
        MessageResult(SessionInfo {
            interview_id: self.interview.id.clone(),
            session_id: self.session_id.clone(),
            state: self.live.phase.as_str(),
            age_ms: self.started.elapsed().as_millis() as u64,
            candidate_connected: self.candidate.is_some(),
            observers: self.observers.len(),
            last_seq: self.log.head(),
            llm_stream_active: self.turn.is_some(),
            node: self.runtime.settings.node_id.clone(),
        })
    }
}
