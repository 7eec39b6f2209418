//! The one clock every stored time is read from: microseconds since the Unix epoch.
//!
//! Integers rather than SQLite date strings, so times sort, subtract and export to
//! numpy without parsing, and keep the sub-millisecond precision latency needs.

use std::time::{SystemTime, UNIX_EPOCH};

/// Now, in microseconds since the Unix epoch (the unit of every `_us` column).
///
/// A clock set before 1970 reads as 0 rather than failing: a wrong time is
/// better than a lost record.
pub fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
