//! A token bucket: so many actions a second, with a burst. Used to bound what
//! one client can make the server do (new participants per address, timing
//! reports per socket).
//!
//! The rate and the capacity are the caller's, passed to each call, so a map
//! of buckets per address holds two numbers per entry.

use tokio::time::Instant;

#[derive(Clone, Copy, Debug)]
pub(crate) struct TokenBucket {
    tokens: f64,
    at: Instant,
}

impl TokenBucket {
    /// A bucket holding `capacity` tokens at `now`.
    pub(crate) fn full(capacity: f64, now: Instant) -> TokenBucket {
        TokenBucket {
            tokens: capacity,
            at: now,
        }
    }

    /// Its tokens at `now`, refilled at `per_second` up to `capacity`.
    pub(crate) fn level(self, now: Instant, per_second: f64, capacity: f64) -> f64 {
        let elapsed = now.saturating_duration_since(self.at);
        (self.tokens + elapsed.as_secs_f64() * per_second).min(capacity)
    }

    /// Takes a token if there is one at `now`.
    pub(crate) fn take(&mut self, now: Instant, per_second: f64, capacity: f64) -> bool {
        let tokens = self.level(now, per_second, capacity);
        let taken = tokens >= 1.0;
        *self = TokenBucket {
            tokens: if taken { tokens - 1.0 } else { tokens },
            at: now,
        };
        taken
    }
}
