//! Counters the bots update as they go, and the progress display that reads them.
//!
//! Only running totals live here, as relaxed atomics: they feed the progress bar
//! and the "sessions in game at the end" figure, never the measurements, which
//! each bot keeps privately and hands back when it ends (no shared lock on the
//! hot path of 60,000 frames a second).
//!
//! The bar is indicatif's, on stderr; when stderr is not a terminal (CI, a log
//! file) it is hidden by indicatif and a plain line is printed every few seconds
//! instead, so a long run still shows that it is alive.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// Running totals across bots.
#[derive(Default)]
pub struct Live {
    /// Sockets open now.
    pub connected: AtomicU64,
    /// Bots in a game scene now (in a multiplayer scene: seated).
    pub in_game: AtomicU64,
    /// Bots in a multiplayer scene's lobby now, not yet seated.
    pub in_lobby: AtomicU64,
    /// Frames received so far, all bots.
    pub frames: AtomicU64,
    pub connect_errors: AtomicU64,
    pub disconnects: AtomicU64,
}

impl Live {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn sub(counter: &AtomicU64, n: u64) {
        counter.fetch_sub(n, Ordering::Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// The progress display for one run.
pub struct Progress {
    bar: ProgressBar,
    plain: bool,
    sessions: usize,
    started: Instant,
    ramp_up: Duration,
    total: Duration,
    last: (Instant, u64),
    last_plain: Instant,
}

/// How often the plain (non-terminal) progress line is printed.
const PLAIN_EVERY: Duration = Duration::from_secs(5);

impl Progress {
    pub fn new(sessions: usize, ramp_up: Duration, duration: Duration, quiet: bool) -> Progress {
        let total = ramp_up + duration;
        let bar = if quiet {
            ProgressBar::hidden()
        } else {
            ProgressBar::new(total.as_millis() as u64)
        };
        if let Ok(style) =
            ProgressStyle::with_template("{prefix:>9} [{bar:30.cyan/blue}] {elapsed_precise} {msg}")
        {
            bar.set_style(style.progress_chars("=> "));
        }
        let now = Instant::now();
        Progress {
            plain: !quiet && !std::io::stderr().is_terminal(),
            bar,
            sessions,
            started: now,
            ramp_up,
            total,
            last: (now, 0),
            last_plain: now,
        }
    }

    /// Redraws from the live counters.
    pub fn update(&mut self, live: &Live) {
        let now = Instant::now();
        let elapsed = now.duration_since(self.started);
        let frames = Live::get(&live.frames);
        let dt = now.duration_since(self.last.0).as_secs_f64();
        let rate = if dt > 0.0 {
            (frames - self.last.1) as f64 / dt
        } else {
            0.0
        };
        self.last = (now, frames);
        let phase = if elapsed < self.ramp_up {
            "ramp-up"
        } else {
            "measuring"
        };
        // The lobby shows only in scenarios that have one.
        let lobby = match Live::get(&live.in_lobby) {
            0 => String::new(),
            n => format!(" · in lobby {n}"),
        };
        let message = format!(
            "connected {}/{} · in game {}{lobby} · {:.0} frames/s · errors {} · disconnects {}",
            Live::get(&live.connected),
            self.sessions,
            Live::get(&live.in_game),
            rate,
            Live::get(&live.connect_errors),
            Live::get(&live.disconnects),
        );
        self.bar.set_prefix(phase);
        self.bar
            .set_position(elapsed.min(self.total).as_millis() as u64);
        if self.plain && now.duration_since(self.last_plain) >= PLAIN_EVERY {
            self.last_plain = now;
            eprintln!("bench: {:>5.1} s {phase}: {message}", elapsed.as_secs_f64());
        }
        self.bar.set_message(message);
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
