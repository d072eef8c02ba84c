//! The session's side of ownership (DESIGN.md, "Several nodes"): a commit
//! that comes back fenced means another node owns the interview now, so
//! this session sends nothing it had not committed, closes its sockets with
//! 1012 (clients reconnect and reach the owner) and stops; a session that
//! stops or drains with everything committed lets ownership go.

use actix::{ActorContext, Context};

use super::InterviewSession;
use crate::protocol::close;

impl InterviewSession {
    /// Another node took the interview over: everything not committed is
    /// dropped unsent, and the session ends.
    pub(super) fn on_fenced(&mut self, ctx: &mut Context<Self>) {
        if self.fenced {
            return;
        }
        self.fenced = true;
        crate::metrics::commit_fenced();
        tracing::warn!(
            interview_id = %self.interview.id,
            epoch = ?self.epoch,
            "another node owns this interview now; stopping without sending what was not committed"
        );
        self.log.discard_uncommitted();
        if let Some(turn) = self.turn.take() {
            turn.stream.do_send(crate::llm_stream::Cancel);
        }
        self.close_all(close::RESTARTING, "the interview moved to another node");
        if let Some(done) = self.drained.take() {
            let _ = done.send(());
        }
        ctx.stop();
    }

    /// Releases this session's epoch once everything it wrote is committed
    /// (a release before a commit in flight would fence that commit). Runs
    /// on its own: the session may be gone before the answer.
    pub(super) fn release_ownership(&mut self) {
        if self.fenced || self.released || !self.log.is_settled() {
            return;
        }
        // The epoch stays on later batches, which the store now fences.
        let Some(epoch) = self.epoch else {
            return;
        };
        self.released = true;
        let release = self.runtime.ownership.release(&self.interview.id, epoch);
        let id = self.interview.id.clone();
        actix::spawn(async move {
            if let Err(error) = release.await {
                // The node lease still ends it: at drain, or by expiring.
                tracing::warn!(interview_id = %id, %error, "could not release the interview");
            }
        });
    }
}
