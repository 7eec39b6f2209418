//! Latency histograms the hot paths feed and `/metrics` reads: how late each
//! game tick fires, and how long a frame takes to hand to its socket.
//!
//! Fixed buckets of relaxed atomic counters, so an observation is a handful
//! of atomic adds with no lock and no allocation, cheap enough for every tick
//! of every game and every frame sent.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

/// Bucket upper bounds, in microseconds (Prometheus' `le`), from 50 µs to 1 s.
const BOUNDS_US: [u64; 14] = [
    50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 16_667, 33_333, 66_667, 100_000, 250_000,
    1_000_000,
];

/// One histogram of durations.
#[derive(Default)]
pub struct Histogram {
    /// Per bucket (not cumulative); the last counts what is above every bound.
    buckets: [AtomicU64; BOUNDS_US.len() + 1],
    sum_us: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    pub fn observe_us(&self, us: u64) {
        let index = BOUNDS_US.partition_point(|&bound| bound < us);
        self.buckets[index].fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(us, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// Writes the histogram in Prometheus' text format, in seconds.
    pub fn write(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} histogram");
        let mut cumulative = 0;
        for (bound, bucket) in BOUNDS_US.iter().zip(&self.buckets) {
            cumulative += bucket.load(Ordering::Relaxed);
            let le = *bound as f64 / 1e6;
            let _ = writeln!(out, "{name}_bucket{{le=\"{le}\"}} {cumulative}");
        }
        cumulative += self.buckets[BOUNDS_US.len()].load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {cumulative}");
        let sum = self.sum_us.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum {sum}");
        let _ = writeln!(out, "{name}_count {cumulative}");
    }
}

/// The server's histograms.
#[derive(Default)]
pub struct Telemetry {
    /// How long after its scheduled time each game tick ran.
    pub tick_lag: Histogram,
    /// How long writing one frame to a participant's socket took.
    pub frame_send: Histogram,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_cumulative_buckets() {
        let h = Histogram::default();
        for us in [10, 50, 51, 2_000, 5_000_000] {
            h.observe_us(us);
        }
        let mut out = String::new();
        h.write(&mut out, "x_seconds", "test");
        assert!(
            out.contains("x_seconds_bucket{le=\"0.00005\"} 2\n"),
            "{out}"
        );
        assert!(out.contains("x_seconds_bucket{le=\"0.0001\"} 3\n"), "{out}");
        assert!(out.contains("x_seconds_bucket{le=\"0.0025\"} 4\n"), "{out}");
        assert!(out.contains("x_seconds_bucket{le=\"1\"} 4\n"), "{out}");
        assert!(out.contains("x_seconds_bucket{le=\"+Inf\"} 5\n"), "{out}");
        assert!(out.contains("x_seconds_count 5\n"), "{out}");
        assert_eq!(h.count(), 5);
    }
}
