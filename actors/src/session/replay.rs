//! Replays (PROTOCOL section 6), flow-controlled: the socket asks for one
//! page at a time, when its outbox has room for it, so a replay of any
//! length never overflows an outbox and a reader that keeps up is never
//! taken for a slow one. Pages come from the log's tail in memory, or from
//! the store for events older than the tail.
//!
//! A page that reaches the head is sent in the same actor turn as the
//! head was read, so every later event reaches the socket live, after it.

use actix::{ActorFutureExt, AsyncContext, Context, Handler, Message, WrapFuture};

use super::InterviewSession;
use crate::audience::Viewer;
use crate::connection::{Peer, ReplayPage, ToSocket};
use crate::protocol::close;

/// A socket asks for the next page of its replay.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ReadReplay {
    pub peer: Peer,
    /// Who the replay is for: candidates see only what every participant
    /// may see.
    pub viewer: Viewer,
    pub after: u64,
    pub limit: usize,
}

impl Handler<ReadReplay> for InterviewSession {
    type Result = ();

    fn handle(&mut self, msg: ReadReplay, ctx: &mut Self::Context) {
        let _span = self.span.clone().entered();
        // A replaying socket keeps a finished interview's session alive.
        if self.idle_since.is_some() {
            self.idle_since = Some(std::time::Instant::now());
        }
        self.serve_page(msg, ctx);
    }
}

impl InterviewSession {
    fn serve_page(&mut self, msg: ReadReplay, ctx: &mut Context<Self>) {
        let head = self.log.head();
        let viewer = msg.viewer;
        if let Some(events) = self.log.after(msg.after) {
            let mut page = Vec::new();
            let mut through = msg.after;
            for e in events.take(msg.limit.max(1)) {
                through = e.seq;
                if viewer.sees(e.audience()) {
                    page.push(e.clone());
                }
            }
            let through = through.max(msg.after.min(head));
            msg.peer.send(ToSocket::Replay(ReplayPage {
                events: page,
                through,
                caught_up: through >= head,
            }));
            return;
        }
        // Older than the tail: from the store, every event, filtered here,
        // so the cursor moves even through events the socket may not see.
        let tail_start = self.log.tail_start();
        let limit = u32::try_from(msg.limit.max(1)).unwrap_or(u32::MAX);
        let read = self
            .runtime
            .store
            .read_after(&self.interview.id, msg.after, limit);
        ctx.spawn(read.into_actor(self).map(move |result, act, _| {
            let events = match result {
                Ok(events) => events,
                Err(error) => {
                    tracing::warn!(interview_id = %act.interview.id, %error, "replay read failed");
                    // Retryable: the client resumes from what it has.
                    msg.peer.send(ToSocket::Close {
                        code: close::SERVER_ERROR,
                        reason: "replay unavailable; resume later".into(),
                    });
                    return;
                }
            };
            // Never stall: with nothing stored before the tail, skip to it.
            let through = events
                .last()
                .map_or(tail_start.saturating_sub(1), |e| e.seq)
                .max(msg.after);
            let page = events
                .into_iter()
                .filter(|e| viewer.sees(e.audience()))
                .map(std::sync::Arc::new)
                .collect();
            msg.peer.send(ToSocket::Replay(ReplayPage {
                events: page,
                through,
                caught_up: false,
            }));
        }));
    }
}
