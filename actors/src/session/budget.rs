//! What one interview takes from its clients, whatever the connection:
//! proctor events at a bounded rate, and a log of bounded size. The socket's
//! own rate limit bounds one connection; these bound the interview, which
//! outlives connections and keeps everything it is sent.

use std::time::Instant;

use crate::protocol::{ErrorCode, ProtocolError};
use crate::settings::RuntimeSettings;

/// A token bucket for proctor events, per interview.
pub(super) struct ProctorBudget {
    per_sec: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl ProctorBudget {
    pub(super) fn new(settings: &RuntimeSettings, now: Instant) -> ProctorBudget {
        let burst = f64::from(settings.proctor_burst.max(1));
        ProctorBudget {
            per_sec: f64::from(settings.proctor_per_min.max(1)) / 60.0,
            burst,
            tokens: burst,
            last: now,
        }
    }

    /// Takes one event's worth, or says how to slow down.
    pub(super) fn take(&mut self, now: Instant) -> Result<(), ProtocolError> {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.per_sec).min(self.burst);
        if self.tokens < 1.0 {
            return Err(ProtocolError::new(
                ErrorCode::RateLimited,
                format!(
                    "proctor events are limited to {:.0} a minute for an interview",
                    self.per_sec * 60.0
                ),
            ));
        }
        self.tokens -= 1.0;
        Ok(())
    }
}

/// Refuses a command that would grow a log already at its limit.
pub(super) fn check_log_size(
    events: u64,
    bytes: u64,
    settings: &RuntimeSettings,
) -> Result<(), ProtocolError> {
    if events >= settings.max_interview_events {
        return Err(ProtocolError::new(
            ErrorCode::LimitReached,
            format!(
                "the interview reached its limit of {} events; it can only be ended",
                settings.max_interview_events
            ),
        ));
    }
    if bytes >= settings.max_interview_bytes {
        return Err(ProtocolError::new(
            ErrorCode::LimitReached,
            format!(
                "the interview reached its limit of {} bytes; it can only be ended",
                settings.max_interview_bytes
            ),
        ));
    }
    Ok(())
}
