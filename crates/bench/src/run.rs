//! One run, in order: plan, start (or find) the server, ramp the bots up, measure
//! for the window, close every bot, check that every step played was recorded,
//! and report.
//!
//! The order carries the step check: bots close first, so every game pauses
//! (its running episode is recorded as interrupted) and `steps_played` stops
//! moving; a second later it is read; only then is the child server stopped, so
//! its final flush is part of what the database count checks (ticks against
//! `steps_played`, and each tick's rows against its agents; see `storage`). The
//! server's CPU
//! and memory are read at three instants: before the first bot (idle baseline),
//! at the window's start and at its end.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::bot::{self, BotConfig, BotReport, Trouble, Window};
use crate::live::{Live, Progress};
use crate::options::{Options, Plan, Target};
use crate::report::Figures;
use crate::scenario::Source;
use crate::server::{self, ChildServer, Metrics, ProcSample};
use crate::stats::Pooled;
use crate::storage;

/// Before the first bot starts, so that the bots' start times are in the future.
const LEAD_IN: Duration = Duration::from_millis(200);
/// How often the progress display is redrawn.
const REDRAW: Duration = Duration::from_millis(250);
/// Between closing the bots and reading `steps_played`: long enough for every
/// game to notice its socket closed and pause.
const SETTLE: Duration = Duration::from_secs(1);
/// With --url, how long to wait for the recorder to catch up with the games
/// (its flush interval is 1 s).
const CATCH_UP: Duration = Duration::from_secs(10);
/// How long closing bots may take in all before the stragglers are abandoned.
const CLOSE_ALL_LIMIT: Duration = Duration::from_secs(60);

/// The result of a run.
pub struct Outcome {
    pub figures: Figures,
}

impl Outcome {
    /// Whether every step played was recorded, with a row for each of its
    /// agents (the bench's correctness check).
    pub fn is_clean(&self) -> bool {
        self.figures.steps_lost == 0 && self.figures.step_rows_missing.unwrap_or(0) == 0
    }
}

/// The server under test, as the run sees it.
struct Server {
    child: Option<ChildServer>,
    url: String,
    host: String,
    addr: std::net::SocketAddr,
    pid: Option<u32>,
}

/// Runs `tandem bench` with `options`: prints the progress, the table (unless
/// `--json-only`) and the JSON line, and returns the figures.
pub async fn run(options: Options) -> anyhow::Result<Outcome> {
    let plan = options.plan().await?;
    if let Some(cpus) = &plan.bot_cpus {
        server::pin(std::process::id(), cpus)?;
    }
    if let (Some(cpus), Target::Url { pid: Some(pid), .. }) = (&plan.server_cpus, &plan.target) {
        server::pin(*pid, cpus)?;
    }
    let open_files = raise_open_files(plan.sessions, plan.json_only);
    let run_seconds = (plan.ramp_up + plan.duration).as_secs_f64();
    let warnings = [
        plan.scenario.early_end(run_seconds),
        plan.scenario.lobby_warning(plan.sessions, run_seconds),
    ];
    for warning in warnings.into_iter().flatten() {
        eprintln!("bench: warning: {warning}");
    }
    let dir = tempfile::Builder::new()
        .prefix("tandem-bench-")
        .tempdir()
        .context("cannot create a folder for the run")?;
    let server = start_server(&plan, dir.path()).await?;
    let ticks = server::ticks_per_second();
    let before = server::metrics(server.addr, &server.host)
        .await
        .with_context(|| format!("the server at {} does not answer /metrics", server.url))?;
    let load_start = server::load_average();
    let idle = server.pid.and_then(|pid| ProcSample::read(pid, ticks));

    let live = Arc::new(Live::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    let epoch = Instant::now();
    let t0 = epoch + LEAD_IN;
    let window = Window {
        start: t0 + plan.ramp_up,
        end: t0 + plan.ramp_up + plan.duration,
    };
    let mut bots = JoinSet::new();
    for index in 0..plan.sessions {
        let start = t0 + plan.ramp_up.mul_f64(index as f64 / plan.sessions as f64);
        let config = BotConfig {
            index,
            addr: server.addr,
            host: server.host.clone(),
            window,
            epoch,
            stop: stop_rx.clone(),
            live: Arc::clone(&live),
        };
        bots.spawn(async move {
            tokio::time::sleep_until(start).await;
            bot::run(config).await
        });
    }

    let mut progress = Progress::new(plan.sessions, plan.ramp_up, plan.duration, plan.json_only);
    wait_until(window.start, &mut progress, &live).await;
    let (server_start, own_start) = (
        server.pid.and_then(|pid| ProcSample::read(pid, ticks)),
        ProcSample::read(std::process::id(), ticks),
    );
    let metrics_start = server::metrics(server.addr, &server.host).await.ok();
    wait_until(window.end, &mut progress, &live).await;
    let (server_end, own_end) = (
        server.pid.and_then(|pid| ProcSample::read(pid, ticks)),
        ProcSample::read(std::process::id(), ticks),
    );
    let in_game_at_end = Live::get(&live.in_game);
    let metrics_end = server::metrics(server.addr, &server.host).await.ok();
    progress.finish();

    let _ = stop_tx.send(true);
    let reports = collect(bots).await;
    tokio::time::sleep(SETTLE).await;
    let check = check_steps(server, &before).await?;

    let min_seconds = (plan.duration.as_secs_f64() / 2.0).min(1.0);
    let pooled = Pooled::from_reports(reports, min_seconds);
    let window_s = plan.duration.as_secs_f64();
    let figures = Figures {
        scenario: plan.scenario.name.clone(),
        experiment_id: plan.scenario.experiment_id.clone(),
        server: match plan.target {
            Target::Child => "child",
            Target::Url { .. } => "url",
        },
        url: check.url.clone(),
        machine_cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        server_cpus: plan.server_cpus.clone(),
        bot_cpus: plan.bot_cpus.clone(),
        load_avg_1m_start: load_start,
        load_avg_1m_end: server::load_average(),
        open_files_limit: open_files,
        sessions_requested: plan.sessions,
        sessions_connected: pooled.connected,
        sessions_reached_game: pooled.reached_game,
        sessions_in_game_at_end: in_game_at_end,
        sessions_finished: pooled.finished,
        server_sessions_at_end: metrics_end.as_ref().map(|m| m.sessions),
        server_games_running_at_end: metrics_end.as_ref().map(|m| m.games_running),
        connect_errors: pooled.connect_errors,
        disconnects: pooled.disconnects,
        server_error_messages: pooled.server_errors,
        ramp_up_s: plan.ramp_up.as_secs_f64(),
        duration_s: window_s,
        target_fps: pooled.target_fps,
        session_seconds: round(pooled.session_seconds, 3),
        frames_received: pooled.frames,
        reset_frames_received: pooled.reset_frames,
        frames_expected: round(pooled.expected_frames, 1),
        frames_delivered_pct: ratio(pooled.frames as f64, pooled.expected_frames)
            .map(|r| round(r * 100.0, 3)),
        frames_skipped: pooled.skipped_frames,
        frames_skipped_pct: ratio(
            pooled.skipped_frames as f64,
            (pooled.frames + pooled.skipped_frames) as f64,
        )
        .map(|r| round(r * 100.0, 3)),
        episodes_per_session_s: ratio(pooled.reset_frames as f64, pooled.session_seconds)
            .map(|r| round(r, 3)),
        frames_per_session_s_mean: pooled.rate_mean.map(|r| round(r, 3)),
        frames_per_session_s_min: pooled.rate_min.map(|r| round(r, 3)),
        sessions_under_99pct_frames: pooled.sessions_under_99pct,
        sessions_rated: pooled.rated_sessions,
        frame_interval_samples: pooled.intervals.count,
        frame_interval_p50_ms: pooled.intervals.p50_ms,
        frame_interval_p99_ms: pooled.intervals.p99_ms,
        frame_interval_max_ms: pooled.intervals.max_ms,
        latency_samples: pooled.latencies.count,
        latency_p50_ms: pooled.latencies.p50_ms,
        latency_p99_ms: pooled.latencies.p99_ms,
        latency_max_ms: pooled.latencies.max_ms,
        latency_boundary_samples: pooled.boundary_latencies.count,
        latency_boundary_p99_ms: pooled.boundary_latencies.p99_ms,
        inputs_sent: pooled.inputs_sent,
        inputs_unacked: pooled.inputs_unacked,
        sessions_multiplayer: pooled.multiplayer,
        sessions_seated: pooled.seated,
        sessions_waiting_at_end: pooled.waiting_at_end,
        sessions_seated_with_ai: pooled.seated_with_ai,
        reseats: pooled.reseats,
        lobby_wait_samples: pooled.lobby_waits.count,
        lobby_wait_p50_ms: pooled.lobby_waits.p50_ms,
        lobby_wait_p99_ms: pooled.lobby_waits.p99_ms,
        lobby_wait_max_ms: pooled.lobby_waits.max_ms,
        lobby_messages: pooled.lobby_messages,
        notices: pooled.notices.clone(),
        sprite_frames: pooled.sprite_frames,
        sprite_frame_bytes_mean: ratio(pooled.sprite_bytes as f64, pooled.sprite_frames as f64)
            .map(|b| round(b, 1)),
        pixel_frames: pooled.pixel_frames,
        pixel_frame_bytes_mean: ratio(pooled.pixel_bytes as f64, pooled.pixel_frames as f64)
            .map(|b| round(b, 1)),
        wire_bytes_per_session_s: ratio(
            (pooled.sprite_bytes + pooled.pixel_bytes) as f64,
            pooled.session_seconds,
        )
        .map(|b| round(b, 1)),
        server_cpu_s_per_session_s: server_start
            .zip(server_end)
            .and_then(|(a, b)| ratio(b.cpu_s - a.cpu_s, pooled.session_seconds))
            .map(|c| round(c, 6)),
        server_cpu_us_per_frame: server_start
            .zip(server_end)
            .and_then(|(a, b)| ratio((b.cpu_s - a.cpu_s) * 1e6, pooled.frames as f64))
            .map(|c| round(c, 2)),
        server_cpu_cores: server_start
            .zip(server_end)
            .and_then(|(a, b)| cores(&a, &b)),
        worker_cpu_cores: server_start.zip(server_end).and_then(|(a, b)| {
            let wall = b.at.duration_since(a.at).as_secs_f64();
            ratio(b.children_cpu_s - a.children_cpu_s, wall).map(|c| round(c, 3))
        }),
        server_rss_idle_kb: idle.map(|s| s.rss_kb),
        server_rss_end_kb: server_end.map(|s| s.rss_kb),
        server_rss_per_session_kb: idle
            .zip(server_end)
            .and_then(|(a, b)| ratio(b.rss_kb as f64 - a.rss_kb as f64, in_game_at_end as f64))
            .map(|kb| round(kb, 1)),
        bench_cpu_cores: own_start.zip(own_end).and_then(|(a, b)| cores(&a, &b)),
        recorder_commits_per_s: metrics_start.zip(metrics_end.clone()).and_then(|(a, b)| {
            ratio(
                b.recorder.batches_written as f64 - a.recorder.batches_written as f64,
                window_s,
            )
            .map(|c| round(c, 1))
        }),
        steps_played: check.played,
        steps_recorded: check.recorded,
        steps_lost: check.played as i64 - check.recorded as i64,
        step_rows_recorded: check.rows.map(|(rows, _)| rows),
        step_rows_missing: check
            .rows
            .map(|(rows, expected)| expected as i64 - rows as i64),
        steps_checked_in: check.checked_in,
        matches: check.matches.clone(),
        episodes_recorded: check.episodes,
        recorder_write_errors: check.metrics.recorder.write_errors,
        recorder_steps_dropped: check.metrics.recorder.steps_dropped,
        server_log_warnings: check.log_problems.map(|p| p.0),
        server_log_errors: check.log_problems.map(|p| p.1),
        server_exit_ok: check.exit_ok,
        trouble_samples: pooled.trouble_samples,
    };
    if plan.json_only {
        if let Some(note) = &check.note {
            eprintln!("bench: {note}");
        }
    } else {
        print!("{}", figures.table());
        if let Some(note) = &check.note {
            println!("{note}");
        }
    }
    println!("{}", figures.json());
    Ok(Outcome { figures })
}

async fn start_server(plan: &Plan, dir: &std::path::Path) -> anyhow::Result<Server> {
    match &plan.target {
        Target::Url {
            url,
            host,
            addr,
            pid,
        } => Ok(Server {
            child: None,
            url: url.clone(),
            host: host.clone(),
            addr: *addr,
            pid: *pid,
        }),
        Target::Child => {
            let file: PathBuf = match &plan.scenario.source {
                Source::File(path) => path.clone(),
                Source::Builtin(text) => {
                    let path = dir.join(format!("{}.toml", plan.scenario.name));
                    std::fs::write(&path, text)
                        .with_context(|| format!("cannot write {}", path.display()))?;
                    path
                }
            };
            let child = ChildServer::start(&file, dir, plan.server_cpus.as_deref()).await?;
            Ok(Server {
                url: child.url.clone(),
                host: child.addr.to_string(),
                addr: child.addr,
                pid: Some(child.pid),
                child: Some(child),
            })
        }
    }
}

/// Redraws the progress display until `deadline`.
async fn wait_until(deadline: Instant, progress: &mut Progress, live: &Live) {
    loop {
        let now = Instant::now();
        if now >= deadline {
            progress.update(live);
            return;
        }
        tokio::time::sleep_until((now + REDRAW).min(deadline)).await;
        progress.update(live);
    }
}

/// Waits for every bot to close and return its report; a bot that does not
/// within [`CLOSE_ALL_LIMIT`] is abandoned and counted as a disconnect.
async fn collect(mut bots: JoinSet<BotReport>) -> Vec<BotReport> {
    let mut reports = Vec::with_capacity(bots.len());
    let deadline = Instant::now() + CLOSE_ALL_LIMIT;
    loop {
        match tokio::time::timeout_at(deadline, bots.join_next()).await {
            Ok(Some(Ok(report))) => reports.push(report),
            Ok(Some(Err(e))) => reports.push(lost_bot(format!("bot task failed: {e}"))),
            Ok(None) => break,
            Err(_) => {
                for _ in 0..bots.len() {
                    reports.push(lost_bot("did not close in time".to_string()));
                }
                bots.abort_all();
                break;
            }
        }
    }
    reports
}

fn lost_bot(cause: String) -> BotReport {
    BotReport {
        trouble: Some(Trouble::Disconnect(cause)),
        ..BotReport::default()
    }
}

/// The step check's result.
struct StepCheck {
    url: String,
    played: u64,
    recorded: u64,
    /// `steps` rows in the database, and the rows its ticks should have.
    rows: Option<(u64, u64)>,
    checked_in: &'static str,
    /// Games the lobby formed, by reason (database only).
    matches: Option<std::collections::BTreeMap<String, u64>>,
    episodes: Option<u64>,
    metrics: Metrics,
    log_problems: Option<(u64, u64)>,
    exit_ok: Option<bool>,
    note: Option<String>,
}

/// Steps played against steps recorded. With a child server: `steps_played`
/// from `/metrics` once the games paused, then SIGTERM, then rows in the
/// database. With --url: `steps_played` against the recorder's `steps_written`
/// once the recorder has caught up (the database is the operator's, not read).
async fn check_steps(server: Server, before: &Metrics) -> anyhow::Result<StepCheck> {
    let Server {
        child,
        url,
        host,
        addr,
        ..
    } = server;
    let Some(child) = child else {
        let deadline = Instant::now() + CATCH_UP;
        let mut metrics = server::metrics(addr, &host).await?;
        while metrics.recorder.steps_written + metrics.recorder.steps_dropped < metrics.steps_played
            && Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(200)).await;
            metrics = server::metrics(addr, &host).await?;
        }
        let note = Some(format!(
            "With --url the database was not checked: steps compare /metrics steps_played \
             with the recorder's steps_written (since the server started; {} were played \
             before this run).",
            before.steps_played
        ));
        return Ok(StepCheck {
            url,
            played: metrics.steps_played,
            recorded: metrics.recorder.steps_written,
            rows: None,
            checked_in: "recorder_counters",
            matches: None,
            episodes: None,
            metrics,
            log_problems: None,
            exit_ok: None,
            note,
        });
    };
    let metrics = server::metrics(addr, &host).await?;
    let db = child.db.clone();
    let log = child.log.clone();
    let exit = child.stop().await?;
    // The recorder's final counters, after shutdown, are in no response any more;
    // the database is the authority from here.
    let recorded = storage::count(&db).await?;
    if recorded.steps_claimed != recorded.steps {
        eprintln!(
            "bench: warning: episodes claim {} steps but {} are stored",
            recorded.steps_claimed, recorded.steps
        );
    }
    let log_problems = server::log_problems(&log);
    let note = if !exit.success() {
        Some(format!(
            "The server exited with {exit}; its log is kept at {}.",
            keep(&log)
        ))
    } else if log_problems.is_some_and(|(w, e)| w + e > 0) {
        Some(format!(
            "The server logged warnings or errors; its log is kept at {}.",
            keep(&log)
        ))
    } else {
        None
    };
    Ok(StepCheck {
        url,
        played: metrics.steps_played,
        recorded: recorded.steps,
        rows: Some((recorded.agent_rows, recorded.agent_rows_expected)),
        checked_in: "database",
        matches: Some(recorded.matches),
        episodes: Some(recorded.episodes),
        metrics,
        log_problems,
        exit_ok: Some(exit.success()),
        note,
    })
}

/// Copies the server log out of the run's temporary folder so it survives it.
fn keep(log: &std::path::Path) -> String {
    let kept = std::env::temp_dir().join(format!("tandem-bench-server-{}.log", std::process::id()));
    match std::fs::copy(log, &kept) {
        Ok(_) => kept.display().to_string(),
        Err(_) => log.display().to_string(),
    }
}

/// Raises the soft open-files limit to the hard one (each bot holds a socket).
fn raise_open_files(sessions: usize, quiet: bool) -> Option<u64> {
    let limit = rlimit::increase_nofile_limit(u64::MAX).ok();
    let needed = sessions as u64 + 64;
    if let Some(limit) = limit
        && limit < needed
        && !quiet
    {
        eprintln!(
            "bench: warning: {sessions} sessions need about {needed} open files; the limit is \
             {limit} (raise the hard limit: ulimit -Hn)"
        );
    }
    limit
}

fn ratio(a: f64, b: f64) -> Option<f64> {
    (b > 0.0 && a.is_finite()).then(|| a / b)
}

fn cores(a: &ProcSample, b: &ProcSample) -> Option<f64> {
    let wall = b.at.duration_since(a.at).as_secs_f64();
    ratio(b.cpu_s - a.cpu_s, wall).map(|c| round(c, 3))
}

fn round(v: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (v * scale).round() / scale
}
