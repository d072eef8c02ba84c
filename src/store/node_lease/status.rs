//! Whether this process holds its node lease, as readers (`/readyz`, the
//! metrics) see it: judged locally and conservatively, until the instant
//! the last successful renewal was *sent* plus the TTL, which is never
//! later than the expiry PostgreSQL wrote.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Whether this process holds its lease right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseState {
    Held,
    /// Renewals have failed for a whole TTL (or the lease was released).
    Expired,
    /// Another process took this `NODE_ID` after our lease expired.
    Lost,
}

impl LeaseState {
    pub fn as_str(self) -> &'static str {
        match self {
            LeaseState::Held => "held",
            LeaseState::Expired => "expired",
            LeaseState::Lost => "lost",
        }
    }
}

/// The lease's state, shared by the heartbeat thread and readers such as
/// `/readyz`. Computed on every read from the last renewal, so a stuck
/// heartbeat shows as an expired lease without the heartbeat saying so.
#[derive(Debug, Clone)]
pub struct LeaseStatus(Arc<StatusCell>);

#[derive(Debug)]
struct StatusCell {
    origin: Instant,
    /// Nanoseconds after `origin` until which the lease is held; 0: not held.
    valid_until: AtomicU64,
    lost: AtomicBool,
}

impl LeaseStatus {
    pub(super) fn new() -> LeaseStatus {
        LeaseStatus(Arc::new(StatusCell {
            origin: Instant::now(),
            valid_until: AtomicU64::new(0),
            lost: AtomicBool::new(false),
        }))
    }

    pub fn state(&self) -> LeaseState {
        if self.0.lost.load(Ordering::Acquire) {
            return LeaseState::Lost;
        }
        let now = duration_nanos(self.0.origin.elapsed());
        if now < self.0.valid_until.load(Ordering::Acquire) {
            LeaseState::Held
        } else {
            LeaseState::Expired
        }
    }

    /// A renewal sent at `sent` succeeded.
    pub(super) fn renewed(&self, sent: Instant, ttl: Duration) {
        let until = sent.saturating_duration_since(self.0.origin) + ttl;
        self.0
            .valid_until
            .store(duration_nanos(until).max(1), Ordering::Release);
    }

    pub(super) fn lose(&self) {
        self.0.lost.store(true, Ordering::Release);
    }

    pub(super) fn released(&self) {
        self.0.valid_until.store(0, Ordering::Release);
    }
}

fn duration_nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_only_within_a_ttl_of_the_last_renewal_sent() {
        let status = LeaseStatus::new();
        assert_eq!(status.state(), LeaseState::Expired, "nothing taken yet");
        status.renewed(Instant::now(), Duration::from_secs(60));
        assert_eq!(status.state(), LeaseState::Held);
        // A renewal sent longer ago than the TTL holds nothing any more.
        status.renewed(status.0.origin, Duration::ZERO);
        assert_eq!(status.state(), LeaseState::Expired);
        status.renewed(Instant::now(), Duration::from_secs(60));
        status.released();
        assert_eq!(status.state(), LeaseState::Expired, "released");
        status.renewed(Instant::now(), Duration::from_secs(60));
        status.lose();
        assert_eq!(status.state(), LeaseState::Lost, "lost wins over a renewal");
        assert_eq!(LeaseState::Lost.as_str(), "lost");
    }
}
