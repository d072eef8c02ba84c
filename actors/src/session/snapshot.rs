//! Joining and observing: the reply with its snapshot, the replay of missed
//! events (PROTOCOL section 6) and the side effects of a (re)join.
//!
//! The snapshot and `lastSeq` describe the committed log only, and the replay
//! is sent from the same actor turn, so every later event reaches the socket
//! live, after the replay, exactly once.

use std::time::Instant;

use actix::Context;
use serde_json::{json, Value};

use super::{state::Phase, Attach, InterviewSession};
use crate::connection::{Peer, ToSocket};
use crate::event::{Event, PauseReason};
use crate::protocol::{close, reply_frame, ErrorCode, ProtocolError, Role};

impl InterviewSession {
    pub(super) fn attach_candidate(&mut self, msg: Attach, ctx: &mut Context<Self>) {
        let info = msg.peer.info.clone();
        let reference = msg.reference.as_deref();
        if info.interview_id.as_deref() != Some(self.interview.id.as_str()) {
            return self.refuse(
                &msg.peer,
                ErrorCode::AccessDenied,
                "this token is for another interview",
                reference,
            );
        }
        if self.live.phase.is_terminal() || self.completing {
            return self.refuse(
                &msg.peer,
                ErrorCode::InvalidState,
                &format!("the interview is {}", self.live.phase.as_str()),
                reference,
            );
        }
        if let Some(old) = self.candidate.take() {
            old.send(ToSocket::Close {
                code: close::REPLACED,
                reason: "replaced by a newer connection".into(),
            });
        }
        msg.peer.send(ToSocket::Bound(ctx_address(ctx)));
        let (recovered, head) = self.send_snapshot(&msg.peer, msg.last_seq, reference, true);
        tracing::debug!(interview_id = %self.interview.id, head, recovered, "candidate joined");
        self.candidate = Some(msg.peer);
        self.idle_since = None;
        self.emit(
            Event::CandidateJoined {
                candidate_name: self.interview.candidate_name.clone(),
            },
            ctx,
        );
        if matches!(
            self.live.phase,
            Phase::Paused(PauseReason::Disconnect | PauseReason::Server)
        ) {
            self.resume(ctx);
        }
    }

    pub(super) fn attach_observer(&mut self, msg: Attach, ctx: &mut Context<Self>) {
        let info = msg.peer.info.clone();
        let reference = msg.reference.as_deref();
        let allowed = match info.role {
            Role::Admin => true,
            Role::Recruiter => info.org_id.as_deref() == Some(self.interview.org_id.as_str()),
            _ => false,
        };
        if !allowed {
            return self.refuse(
                &msg.peer,
                ErrorCode::AccessDenied,
                "this interview belongs to another organisation",
                reference,
            );
        }
        msg.peer.send(ToSocket::Bound(ctx_address(ctx)));
        self.send_snapshot(&msg.peer, msg.last_seq, reference, false);
        // Kept even when the interview is over: no live events follow, but
        // the observer's replay pages, `stop-observing` and the errors of its
        // commands all go through this list.
        self.observers.insert(info.id.clone(), msg.peer);
        self.idle_since = None;
    }

    /// `stop-observing`: the socket leaves and may observe again.
    pub(super) fn stop_observing(&mut self, conn_id: &str, reference: Option<&str>) {
        if let Some(peer) = self.observers.remove(conn_id) {
            let frame = reply_frame(
                "observation-stopped",
                json!({}),
                reference,
                self.runtime.clock.now(),
            );
            peer.send(ToSocket::Frame("observation-stopped", frame.into()));
            peer.send(ToSocket::Unbound);
        }
        if !self.has_sockets() {
            self.idle_since = Some(Instant::now());
        }
    }

    fn refuse(&self, peer: &Peer, code: ErrorCode, message: &str, reference: Option<&str>) {
        let error = ProtocolError::new(code, message);
        peer.send(ToSocket::Frame(
            "error",
            crate::protocol::error_frame(&error, reference, self.runtime.clock.now()).into(),
        ));
        match code.join_close_code() {
            Some(code) => peer.send(ToSocket::Close {
                code,
                reason: message.into(),
            }),
            None => peer.send(ToSocket::Unbound),
        }
    }

    /// Sends the reply with its snapshot, then the replay. Returns whether
    /// the replay was complete, and the head it was made at.
    fn send_snapshot(
        &self,
        peer: &Peer,
        last_seq: Option<u64>,
        reference: Option<&str>,
        candidate: bool,
    ) -> (bool, u64) {
        let head = self.log.head();
        // Every event is kept, so a replay is possible unless the client
        // claims a seq this log never reached.
        let recovered = matches!(last_seq, Some(n) if n <= head);
        let state = self.log.committed_state();
        let transcript: Vec<Value> = self
            .log
            .transcript()
            .iter()
            .map(|t| json!({"speaker": t.speaker, "text": t.text, "seq": t.seq}))
            .collect();
        let now = self.runtime.clock.now();
        let frame = if candidate {
            reply_frame(
                "interview-ready",
                json!({
                    "sessionId": self.session_id,
                    "interview": {
                        "id": self.interview.id,
                        "title": self.interview.title,
                        "candidateName": self.interview.candidate_name,
                    },
                    "template": {
                        "id": self.interview.id,
                        "title": self.interview.title,
                        "totalDuration": self.interview.duration_minutes,
                    },
                    "estimatedDuration": self.interview.duration_minutes,
                    "status": state.phase.status(),
                    "progress": state.progress(),
                    "currentQuestion": state.current_question,
                    "transcript": transcript,
                    "lastSeq": head,
                    "recovered": recovered,
                }),
                reference,
                now,
            )
        } else {
            reply_frame(
                "observation-started",
                json!({
                    "interview": {
                        "id": self.interview.id,
                        "candidateName": self.interview.candidate_name,
                        "status": state.phase.status(),
                    },
                    "session": {
                        "id": self.session_id,
                        "state": state.phase.as_str(),
                        "isActive": state.phase == Phase::Active,
                        "progress": state.progress(),
                        "trustScore": state.trust_score,
                        "candidateConnected": self.candidate.is_some(),
                        "observers": self.observers.len() + 1,
                    },
                    "transcript": transcript,
                    "isLive": !self.live.phase.is_terminal(),
                    "lastSeq": head,
                    "recovered": recovered,
                }),
                reference,
                now,
            )
        };
        let kind = if candidate {
            "interview-ready"
        } else {
            "observation-started"
        };
        peer.send(ToSocket::Frame(kind, frame.into()));
        if let Some(after) = last_seq {
            let replayed = if recovered { head - after } else { 0 };
            crate::metrics::resume(recovered, replayed as usize);
            // The socket pulls the replay page by page as it drains.
            if recovered && after < head {
                peer.send(ToSocket::ReplayFrom(after));
            }
        }
        (recovered, head)
    }
}

fn ctx_address(ctx: &mut Context<InterviewSession>) -> actix::Addr<InterviewSession> {
    use actix::AsyncContext;
    ctx.address()
}
