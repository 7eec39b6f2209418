//! Who may become a new participant: at most so many per minute from one
//! address, and at most so many in all.
//!
//! A participant is a row, a cookie and, soon, a game; a script that asks for
//! a thousand a second must not get them. The per-address limit is a token
//! bucket per IP address (a burst of one minute's allowance, refilled
//! steadily), kept in a map that forgets addresses whose bucket is full again,
//! so it stays small. The study cap counts participants the database holds at
//! start-up plus those admitted since; a researcher may change the cap from
//! the console while the study runs.
//!
//! Behind a reverse proxy every request comes from the proxy's address: raise
//! the per-address limit or set it to 0 (no limit) there.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use crate::sync::lock;
use crate::token_bucket::TokenBucket;

/// The limits on new participants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AdmissionLimits {
    /// New participants per minute from one address; 0: no limit.
    pub per_address_per_minute: u32,
    /// Participants in the study in all; `None`: no cap.
    pub max_participants: Option<u64>,
}

impl Default for AdmissionLimits {
    fn default() -> Self {
        AdmissionLimits {
            per_address_per_minute: 30,
            max_participants: None,
        }
    }
}

/// Why a new participant was not admitted.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// Too many new participants from this address lately.
    TooFast,
    /// The study has all the participants it may have.
    Full,
}

/// Past this many addresses the map is swept of those at full allowance.
const SWEEP_AT: usize = 10_000;

/// Admits new participants within [`AdmissionLimits`].
pub struct Admission {
    limits: AdmissionLimits,
    /// Participants in the study: those stored at start-up, plus admitted.
    participants: AtomicU64,
    /// The cap in force (`u64::MAX`: none): `max_participants`, unless a
    /// researcher set another from the console.
    cap: AtomicU64,
    buckets: Mutex<HashMap<IpAddr, TokenBucket>>,
}

impl Admission {
    /// Admission for a study that holds `participants` already.
    pub fn new(limits: AdmissionLimits, participants: u64) -> Self {
        Admission {
            limits,
            participants: AtomicU64::new(participants),
            cap: AtomicU64::new(limits.max_participants.unwrap_or(u64::MAX)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes a place for a new participant from `address`; give it back with
    /// [`Admission::cancel`] if the participant is not created after all.
    pub fn admit(&self, address: IpAddr) -> Result<(), Refused> {
        self.take_token(address)?;
        let cap = self.cap.load(Ordering::SeqCst);
        self.participants
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < cap).then_some(n + 1)
            })
            .map(|_| ())
            .map_err(|_| Refused::Full)
    }

    /// Sets the cap from the console; `None` goes back to the one the server
    /// was started with (if any).
    pub fn set_cap(&self, cap: Option<u64>) {
        let cap = cap.or(self.limits.max_participants).unwrap_or(u64::MAX);
        self.cap.store(cap, Ordering::SeqCst);
    }

    /// The cap in force, if any.
    pub fn cap(&self) -> Option<u64> {
        Some(self.cap.load(Ordering::SeqCst)).filter(|&c| c != u64::MAX)
    }

    /// Participants in the study (those stored at start-up, plus admitted).
    pub fn participants(&self) -> u64 {
        self.participants.load(Ordering::SeqCst)
    }

    /// Gives back a place taken by [`Admission::admit`].
    pub fn cancel(&self) {
        let _ = self
            .participants
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
    }

    fn take_token(&self, address: IpAddr) -> Result<(), Refused> {
        let per_minute = self.limits.per_address_per_minute;
        if per_minute == 0 {
            return Ok(());
        }
        let capacity = f64::from(per_minute);
        let per_second = capacity / 60.0;
        let now = Instant::now();
        let mut buckets = lock(&self.buckets);
        if buckets.len() >= SWEEP_AT {
            buckets.retain(|_, b| b.level(now, per_second, capacity) < capacity);
        }
        let bucket = buckets
            .entry(address)
            .or_insert(TokenBucket::full(capacity, now));
        if bucket.take(now, per_second, capacity) {
            Ok(())
        } else {
            Err(Refused::TooFast)
        }
    }
}

/// How long a refused address should wait, for `Retry-After`.
pub fn retry_after(limits: &AdmissionLimits) -> Duration {
    match limits.per_address_per_minute {
        0 => Duration::from_secs(60),
        n => Duration::from_secs(60_u64.div_ceil(u64::from(n))),
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    fn limits(per_minute: u32, cap: Option<u64>) -> AdmissionLimits {
        AdmissionLimits {
            per_address_per_minute: per_minute,
            max_participants: cap,
        }
    }

    const A: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));

    /// A minute's allowance at once, then one more each `60 / n` seconds; other
    /// addresses are not affected.
    #[tokio::test(start_paused = true)]
    async fn each_address_gets_its_allowance() {
        let admission = Admission::new(limits(6, None), 0);
        for _ in 0..6 {
            assert_eq!(admission.admit(A), Ok(()));
        }
        assert_eq!(admission.admit(A), Err(Refused::TooFast));
        assert_eq!(admission.admit(B), Ok(()));
        tokio::time::advance(Duration::from_secs(10)).await;
        assert_eq!(admission.admit(A), Ok(()));
        assert_eq!(admission.admit(A), Err(Refused::TooFast));
    }

    /// The cap counts the participants stored before, and a cancelled place
    /// is free again.
    #[tokio::test(start_paused = true)]
    async fn the_study_cap_counts_everyone() {
        let admission = Admission::new(limits(0, Some(3)), 2);
        assert_eq!(admission.admit(A), Ok(()));
        assert_eq!(admission.admit(B), Err(Refused::Full));
        admission.cancel();
        assert_eq!(admission.admit(B), Ok(()));
    }

    /// Refusals cost nothing: a refused address does not use up the cap.
    #[tokio::test(start_paused = true)]
    async fn refusals_do_not_count_toward_the_cap() {
        let admission = Admission::new(limits(1, Some(2)), 0);
        assert_eq!(admission.admit(A), Ok(()));
        assert_eq!(admission.admit(A), Err(Refused::TooFast));
        assert_eq!(admission.admit(B), Ok(()));
    }
}
