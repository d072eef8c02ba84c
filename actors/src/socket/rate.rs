//! A token bucket per connection (PROTOCOL section 2): frames over the rate
//! are dropped with at most one `RATE_LIMITED` a second, and a client still
//! over the rate after ten seconds is closed with 1008.

use std::time::{Duration, Instant};

const ERROR_EVERY: Duration = Duration::from_secs(1);
const CLOSE_AFTER: Duration = Duration::from_secs(10);

#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    /// Drop the frame; `notify` when an error frame is due.
    Drop {
        notify: bool,
    },
    /// Over the rate for too long.
    Close,
}

pub struct RateLimiter {
    per_sec: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
    /// First drop of the current stretch over the rate.
    over_since: Option<Instant>,
    last_drop: Option<Instant>,
    last_error: Option<Instant>,
}

impl RateLimiter {
    pub fn new(per_sec: u32, burst: u32, now: Instant) -> RateLimiter {
        let burst = burst.max(1) as f64;
        RateLimiter {
            per_sec: per_sec.max(1) as f64,
            burst,
            tokens: burst,
            last: now,
            over_since: None,
            last_drop: None,
            last_error: None,
        }
    }

    pub fn check(&mut self, now: Instant) -> Verdict {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.per_sec).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            // A stretch over the rate ends after a second without drops.
            if self
                .last_drop
                .is_some_and(|t| now.saturating_duration_since(t) >= ERROR_EVERY)
            {
                self.over_since = None;
            }
            return Verdict::Allow;
        }
        self.last_drop = Some(now);
        let since = *self.over_since.get_or_insert(now);
        if now.saturating_duration_since(since) >= CLOSE_AFTER {
            return Verdict::Close;
        }
        let notify = self
            .last_error
            .is_none_or(|t| now.saturating_duration_since(t) >= ERROR_EVERY);
        if notify {
            self.last_error = Some(now);
        }
        Verdict::Drop { notify }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_drop_then_close() {
        let t0 = Instant::now();
        let mut r = RateLimiter::new(10, 3, t0);
        assert_eq!(r.check(t0), Verdict::Allow);
        assert_eq!(r.check(t0), Verdict::Allow);
        assert_eq!(r.check(t0), Verdict::Allow);
        assert_eq!(r.check(t0), Verdict::Drop { notify: true });
        assert_eq!(r.check(t0), Verdict::Drop { notify: false });
        // A tenth of a second refills one token.
        assert_eq!(r.check(t0 + Duration::from_millis(100)), Verdict::Allow);
        let mut t = t0 + Duration::from_millis(100);
        let mut closed = false;
        for _ in 0..2000 {
            t += Duration::from_millis(5);
            for _ in 0..3 {
                if r.check(t) == Verdict::Close {
                    closed = true;
                }
            }
        }
        assert!(closed, "a client flooding for 10 s must be closed");
    }
}
