//! The run's figures: one struct, printed as a table for people and as one JSON
//! line for machines.
//!
//! Keys are snake_case with their unit in the name (`latency_p99_ms`,
//! `server_rss_per_session_kb`); a figure that could not be measured (no server
//! pid for CPU, no pixel frames in a sprite run) is `null`, never a made-up zero.
//! The table puts each figure beside the goal it answers to from issue 3, with a
//! verdict, so a run can be read without the issue at hand.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

/// Everything a run measured.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Figures {
    pub scenario: String,
    pub experiment_id: String,
    /// `child` (started by the bench) or `url` (a running server).
    pub server: &'static str,
    pub url: String,
    pub machine_cores: usize,
    pub load_avg_1m_start: Option<f64>,
    pub load_avg_1m_end: Option<f64>,
    pub open_files_limit: Option<u64>,

    pub sessions_requested: usize,
    pub sessions_connected: u64,
    pub sessions_reached_game: u64,
    pub sessions_in_game_at_end: u64,
    pub sessions_finished: u64,
    /// The server's own counts at the window's end (`/metrics`).
    pub server_sessions_at_end: Option<u64>,
    pub server_games_running_at_end: Option<u64>,
    pub connect_errors: u64,
    pub disconnects: u64,
    /// `error` and `invalid` messages the server sent the bots.
    pub server_error_messages: u64,
    pub ramp_up_s: f64,
    pub duration_s: f64,

    pub target_fps: Option<u32>,
    /// Seconds bots spent in a game inside the window, summed.
    pub session_seconds: f64,
    /// All frames received in the window, and how many of them were published
    /// at an episode's reset (step 0) rather than by a tick's step.
    pub frames_received: u64,
    pub reset_frames_received: u64,
    /// Frames the target fps promises for the time bots spent in a game.
    pub frames_expected: f64,
    /// Frames received as a share of `frames_expected`. A game also publishes a
    /// frame at each reset, so this can pass 100 % when every frame arrives.
    pub frames_delivered_pct: Option<f64>,
    /// Frames the games published that the bots never received (gaps in each
    /// game's `tick`: the socket only gets the newest frame), and their share of
    /// all frames published to them.
    pub frames_skipped: u64,
    pub frames_skipped_pct: Option<f64>,
    /// Episodes begun per session per second (reset frames / session time):
    /// each episode boundary costs the server two commits.
    pub episodes_per_session_s: Option<f64>,
    pub frames_per_session_s_mean: Option<f64>,
    pub frames_per_session_s_min: Option<f64>,
    /// Sessions that got under 99 % of the target fps, of `sessions_rated`.
    pub sessions_under_99pct_frames: Option<u64>,
    pub sessions_rated: u64,
    pub frame_interval_samples: u64,
    pub frame_interval_p50_ms: Option<f64>,
    pub frame_interval_p99_ms: Option<f64>,
    pub frame_interval_max_ms: Option<f64>,

    /// Every input counts (bots send one when their keys change, and re-send
    /// held keys every 500 ms as the browser does).
    pub latency_samples: u64,
    pub latency_p50_ms: Option<f64>,
    pub latency_p99_ms: Option<f64>,
    pub latency_max_ms: Option<f64>,
    /// Inputs that waited over an episode's end (applied at the next
    /// episode's first step), counted apart from the latencies above.
    pub latency_boundary_samples: u64,
    pub latency_boundary_p99_ms: Option<f64>,
    pub inputs_sent: u64,
    pub inputs_unacked: u64,

    /// Bots that reached a multiplayer scene (one with a lobby); of them, those
    /// seated in a game and those still in the lobby when told to stop.
    pub sessions_multiplayer: u64,
    pub sessions_seated: u64,
    pub sessions_waiting_at_end: u64,
    /// Seated with an AI in another seat (the lobby timed out and filled it).
    pub sessions_seated_with_ai: u64,
    /// `seat` messages after a game's first (a game resumed for a bot).
    pub reseats: u64,
    /// Each seated bot's wait from the `scene` message to its `seat`, over the
    /// whole run (most bots are paired during the ramp-up).
    pub lobby_wait_samples: u64,
    pub lobby_wait_p50_ms: Option<f64>,
    pub lobby_wait_p99_ms: Option<f64>,
    pub lobby_wait_max_ms: Option<f64>,
    pub lobby_messages: u64,
    /// `notice` messages the bots received before the window's end, by code
    /// (from then on closing bots send their partners `partner_left`).
    pub notices: BTreeMap<String, u64>,

    pub sprite_frames: u64,
    pub sprite_frame_bytes_mean: Option<f64>,
    pub pixel_frames: u64,
    pub pixel_frame_bytes_mean: Option<f64>,
    pub wire_bytes_per_session_s: Option<f64>,

    pub server_cpu_s_per_session_s: Option<f64>,
    /// Server CPU seconds per wall second in the window (2.0 = two cores busy).
    pub server_cpu_cores: Option<f64>,
    /// The server's child processes (Python environment workers), the same way.
    pub worker_cpu_cores: Option<f64>,
    pub server_rss_idle_kb: Option<u64>,
    pub server_rss_end_kb: Option<u64>,
    pub server_rss_per_session_kb: Option<f64>,
    /// This process (the bots) in the window, for judging how much of the
    /// machine the load generator itself took.
    pub bench_cpu_cores: Option<f64>,
    /// The CPUs the server and the bots were pinned to (`taskset` lists).
    pub server_cpus: Option<String>,
    pub bot_cpus: Option<String>,
    /// Server CPU time per frame a bot received, in µs (recording included).
    pub server_cpu_us_per_frame: Option<f64>,
    pub recorder_commits_per_s: Option<f64>,

    pub steps_played: u64,
    pub steps_recorded: u64,
    /// `steps_played - steps_recorded`: must be 0. Steps are ticks: a
    /// two-agent tick is one step (and two rows).
    pub steps_lost: i64,
    /// Rows in `steps` (one per agent per tick), and the rows the recorded ticks
    /// lack (each should have one per agent of its episode): must be 0. `null`
    /// with --url (the database is not read).
    pub step_rows_recorded: Option<u64>,
    pub step_rows_missing: Option<i64>,
    /// `database` (rows counted after the server stopped) or `recorder_counters`
    /// (with --url: the recorder's own count of steps written).
    pub steps_checked_in: &'static str,
    pub episodes_recorded: Option<u64>,
    /// Games the lobby formed, by reason (`full`, `human_timeout`); `null` with
    /// --url.
    pub matches: Option<BTreeMap<String, u64>>,
    pub recorder_write_errors: u64,
    pub recorder_steps_dropped: u64,
    pub server_log_warnings: Option<u64>,
    pub server_log_errors: Option<u64>,
    pub server_exit_ok: Option<bool>,
    /// A few distinct causes of connect errors and disconnects.
    pub trouble_samples: Vec<String>,
}

impl Figures {
    /// The JSON line.
    pub fn json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    /// The readable table, with the goals of issue 3 beside the figures.
    pub fn table(&self) -> String {
        let mut t = Table::default();
        let nominal_ms = self.target_fps.map(|f| 1000.0 / f64::from(f.max(1)));
        t.head(&format!(
            "tandem bench: {} sessions, scenario {}, {} server at {}",
            self.sessions_requested, self.scenario, self.server, self.url
        ));
        t.line(&format!(
            "ramp-up {} s, measured {} s; {} cores, load average {} → {}",
            self.ramp_up_s,
            self.duration_s,
            self.machine_cores,
            opt(self.load_avg_1m_start, 2),
            opt(self.load_avg_1m_end, 2)
        ));
        t.section("sessions");
        t.row(
            "connected / reached game",
            format!(
                "{} / {} of {}",
                self.sessions_connected, self.sessions_reached_game, self.sessions_requested
            ),
            "",
            None,
        );
        t.row(
            "in game at end / finished",
            format!(
                "{} / {}",
                self.sessions_in_game_at_end, self.sessions_finished
            ),
            "",
            None,
        );
        t.row(
            "server: sockets / games running at end",
            format!(
                "{} / {}",
                self.server_sessions_at_end
                    .map_or("-".into(), |v| v.to_string()),
                self.server_games_running_at_end
                    .map_or("-".into(), |v| v.to_string())
            ),
            "",
            None,
        );
        t.row(
            "connect errors / disconnects / server errors",
            format!(
                "{} / {} / {}",
                self.connect_errors, self.disconnects, self.server_error_messages
            ),
            "",
            None,
        );
        t.section("frames");
        t.row(
            "target",
            self.target_fps.map_or("-".into(), |f| {
                format!("{f} fps ({} ms)", opt(nominal_ms, 1))
            }),
            "",
            None,
        );
        t.row(
            "received: all / at episode resets",
            format!("{} / {}", self.frames_received, self.reset_frames_received),
            "",
            None,
        );
        t.row(
            "episodes per session per second",
            opt(self.episodes_per_session_s, 2),
            "",
            None,
        );
        t.row(
            "frames per session per second (mean, min)",
            format!(
                "{}, {}",
                opt(self.frames_per_session_s_mean, 2),
                opt(self.frames_per_session_s_min, 2)
            ),
            "",
            None,
        );
        t.row(
            "sessions under 99 % of target fps",
            format!(
                "{} of {}",
                self.sessions_under_99pct_frames
                    .map_or("-".to_string(), |n| n.to_string()),
                self.sessions_rated
            ),
            "",
            None,
        );
        t.row(
            "frames delivered of target",
            format!("{} %", opt(self.frames_delivered_pct, 2)),
            "≥ 99 % (at ≥ 2,000 sessions)",
            self.frames_delivered_pct.map(|p| p >= 99.0),
        );
        t.row(
            "published but skipped",
            format!(
                "{} ({} %)",
                self.frames_skipped,
                opt(self.frames_skipped_pct, 2)
            ),
            "",
            None,
        );
        t.row(
            "interval p50 / p99 / max",
            format!(
                "{} / {} / {} ms",
                opt(self.frame_interval_p50_ms, 1),
                opt(self.frame_interval_p99_ms, 1),
                opt(self.frame_interval_max_ms, 1)
            ),
            &format!(
                "p99 ≤ 1.5 × nominal = {} ms",
                opt(nominal_ms.map(|n| n * 1.5), 1)
            ),
            self.frame_interval_p99_ms
                .zip(nominal_ms)
                .map(|(p, n)| p <= 1.5 * n),
        );
        t.section("input to frame");
        t.row(
            "latency p50 / p99 / max (within an episode)",
            format!(
                "{} / {} / {} ms",
                opt(self.latency_p50_ms, 1),
                opt(self.latency_p99_ms, 1),
                opt(self.latency_max_ms, 1)
            ),
            &format!(
                "p99 ≤ tick + 2 ms = {} ms (at 500 sessions)",
                opt(nominal_ms.map(|n| n + 2.0), 1)
            ),
            self.latency_p99_ms
                .zip(nominal_ms)
                .map(|(p, n)| p <= n + 2.0),
        );
        t.row(
            "over an episode's end: samples / p99",
            format!(
                "{} / {} ms",
                self.latency_boundary_samples,
                opt(self.latency_boundary_p99_ms, 1)
            ),
            "",
            None,
        );
        t.row(
            "samples / inputs sent / unacked",
            format!(
                "{} / {} / {}",
                self.latency_samples, self.inputs_sent, self.inputs_unacked
            ),
            "",
            None,
        );
        if self.sessions_multiplayer > 0 {
            self.lobby_rows(&mut t);
        }
        t.section("wire");
        t.row(
            "sprite frames: count, mean bytes",
            format!(
                "{}, {}",
                self.sprite_frames,
                opt(self.sprite_frame_bytes_mean, 0)
            ),
            "",
            None,
        );
        t.row(
            "pixel frames: count, mean bytes",
            format!(
                "{}, {}",
                self.pixel_frames,
                opt(self.pixel_frame_bytes_mean, 0)
            ),
            "≤ 1,500 B (Atari frames)",
            self.pixel_frame_bytes_mean.map(|b| b <= 1500.0),
        );
        t.row(
            "bytes per session per second",
            opt(self.wire_bytes_per_session_s, 0),
            "",
            None,
        );
        t.section("server");
        t.row(
            "CPU s per session-second",
            opt(self.server_cpu_s_per_session_s, 5),
            "",
            None,
        );
        t.row(
            "CPU µs per frame delivered",
            opt(self.server_cpu_us_per_frame, 1),
            "≤ 15 µs",
            self.server_cpu_us_per_frame.map(|us| us <= 15.0),
        );
        t.row(
            "CPUs pinned (server / bots)",
            format!(
                "{} / {}",
                self.server_cpus.as_deref().unwrap_or("any"),
                self.bot_cpus.as_deref().unwrap_or("any")
            ),
            "",
            None,
        );
        t.row(
            "CPU cores busy (server / its workers / bots)",
            format!(
                "{} / {} / {}",
                opt(self.server_cpu_cores, 2),
                opt(self.worker_cpu_cores, 2),
                opt(self.bench_cpu_cores, 2)
            ),
            "",
            None,
        );
        t.row(
            "RSS idle → end",
            format!(
                "{} → {} kB",
                self.server_rss_idle_kb
                    .map_or("-".into(), |v| v.to_string()),
                self.server_rss_end_kb.map_or("-".into(), |v| v.to_string())
            ),
            "",
            None,
        );
        t.row(
            "RSS per session (playing)",
            format!("{} kB", opt(self.server_rss_per_session_kb, 1)),
            "≤ 256 kB per idle-game session",
            self.server_rss_per_session_kb.map(|kb| kb <= 256.0),
        );
        t.row(
            "recorder commits per second",
            opt(self.recorder_commits_per_s, 1),
            "",
            None,
        );
        t.section("recording");
        t.row(
            "steps played / recorded",
            format!("{} / {}", self.steps_played, self.steps_recorded),
            "",
            None,
        );
        t.row(
            "steps lost",
            format!(
                "{} (checked in the {})",
                self.steps_lost,
                match self.steps_checked_in {
                    "database" => "database after the server stopped",
                    _ => "recorder's counters; database not checked",
                }
            ),
            "0",
            Some(self.steps_lost == 0),
        );
        if let (Some(rows), Some(missing)) = (self.step_rows_recorded, self.step_rows_missing) {
            t.row(
                "step rows (one per agent) recorded / missing",
                format!("{rows} / {missing}"),
                "0 missing",
                Some(missing == 0),
            );
        }
        if let Some(matches) = self.matches.as_ref().filter(|m| !m.is_empty()) {
            t.row("lobby matches by reason", counts(matches), "", None);
        }
        t.row(
            "recorder write errors / steps dropped",
            format!(
                "{} / {}",
                self.recorder_write_errors, self.recorder_steps_dropped
            ),
            "",
            None,
        );
        if let (Some(w), Some(e)) = (self.server_log_warnings, self.server_log_errors) {
            t.row(
                "server log warnings / errors",
                format!("{w} / {e}"),
                "",
                None,
            );
        }
        for trouble in &self.trouble_samples {
            t.line(&format!("  e.g. {trouble}"));
        }
        t.line(&format!("steps lost: {}", self.steps_lost));
        t.out
    }
}

impl Figures {
    /// The lobby's section of the table (multiplayer scenes only).
    fn lobby_rows(&self, t: &mut Table) {
        t.section("lobby");
        t.row(
            "seated / still waiting at end, of reaching it",
            format!(
                "{} / {} of {}",
                self.sessions_seated, self.sessions_waiting_at_end, self.sessions_multiplayer
            ),
            "",
            None,
        );
        t.row(
            "seated with an AI partner / re-seated",
            format!("{} / {}", self.sessions_seated_with_ai, self.reseats),
            "",
            None,
        );
        t.row(
            "wait p50 / p99 / max",
            format!(
                "{} / {} / {} ms",
                opt(self.lobby_wait_p50_ms, 1),
                opt(self.lobby_wait_p99_ms, 1),
                opt(self.lobby_wait_max_ms, 1)
            ),
            "",
            None,
        );
        t.row(
            "lobby messages / notices",
            format!(
                "{} / {}",
                self.lobby_messages,
                if self.notices.is_empty() {
                    "none".to_string()
                } else {
                    counts(&self.notices)
                }
            ),
            "",
            None,
        );
    }
}

/// `a 2, b 1`: counts by name.
fn counts(map: &BTreeMap<String, u64>) -> String {
    map.iter()
        .map(|(name, n)| format!("{name} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[derive(Default)]
struct Table {
    out: String,
}

impl Table {
    fn head(&mut self, text: &str) {
        let _ = writeln!(self.out, "{text}");
    }

    fn line(&mut self, text: &str) {
        let _ = writeln!(self.out, "{text}");
    }

    fn section(&mut self, name: &str) {
        let _ = writeln!(
            self.out,
            "── {name} {}",
            "─".repeat(60usize.saturating_sub(name.len()))
        );
    }

    fn row(&mut self, name: &str, value: impl AsRef<str>, goal: &str, met: Option<bool>) {
        let verdict = match met {
            Some(true) => "met",
            Some(false) => "MISSED",
            None => "",
        };
        let _ = writeln!(
            self.out,
            "  {name:<46} {:<26} {goal} {verdict}",
            value.as_ref()
        );
    }
}

/// A figure with `decimals` decimals, or `-` when it was not measured.
fn opt(value: Option<f64>, decimals: usize) -> String {
    value.map_or_else(|| "-".to_string(), |v| format!("{v:.decimals$}"))
}
