//! The server under test: a `tandem serve` child process, or a running server;
//! readings of its CPU time and memory from `/proc`; and its `/metrics`.
//!
//! The child is the same binary (`current_exe()`) in another process, so the
//! bots and the server share the machine but not a runtime, as they would in a
//! real deployment on one host. Its first stdout line carries the URL; everything
//! it prints afterwards goes to a log file in the run's folder (a pipe nobody
//! reads would fill and stall the server). It is stopped with SIGTERM, the same
//! signal an operator would use, so its shutdown path (interrupted episodes, final
//! flush) is part of what the step count checks; if it does not exit in time it
//! is killed, and dropping a [`ChildServer`] kills it too, so a failed run never
//! leaves a server behind.

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};

use crate::http;

/// How long the child may take to print its URL (it migrates a new database first).
const START_LIMIT: Duration = Duration::from_secs(60);
/// How long the child may take to stop after SIGTERM: its own limit for games
/// to finish is 10 s, then the final flush.
const STOP_LIMIT: Duration = Duration::from_secs(60);

/// A `tandem serve` started by the bench.
pub struct ChildServer {
    child: Option<Child>,
    pub pid: u32,
    pub addr: SocketAddr,
    pub url: String,
    pub db: PathBuf,
    pub log: PathBuf,
}

impl ChildServer {
    /// Starts `tandem serve experiment --db dir/bench.db --addr 127.0.0.1:0`
    /// (under `taskset -c CPUS` when `cpus` is given) and waits for its URL.
    pub async fn start(
        experiment: &Path,
        dir: &Path,
        cpus: Option<&str>,
    ) -> anyhow::Result<ChildServer> {
        let exe = std::env::current_exe().context("cannot find the tandem binary")?;
        let db = dir.join("bench.db");
        let log = dir.join("server.log");
        let log_file = std::fs::File::create(&log)
            .with_context(|| format!("cannot create {}", log.display()))?;
        let mut command = match cpus {
            Some(cpus) => {
                let mut command = Command::new("taskset");
                command.args(["-c", cpus]).arg(exe);
                command
            }
            None => Command::new(exe),
        };
        let mut child = command
            .arg("serve")
            .arg(experiment)
            .arg("--db")
            .arg(&db)
            .args(["--addr", "127.0.0.1:0"])
            // The `slow` scenario's environment; harmless to the others.
            .arg("--diagnostic-envs")
            // Every bot arrives from 127.0.0.1: no per-address limit on new
            // participants.
            .args(["--new-per-minute", "0"])
            // What opens its /metrics to the bench.
            .env("TANDEM_METRICS_TOKEN", metrics_token())
            // Plain log lines, so the log file reads well and can be scanned.
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log_file.try_clone()?))
            .spawn()
            .context("cannot start `tandem serve`")?;
        let pid = child.id();
        let Some(stdout) = child.stdout.take() else {
            let _ = child.kill();
            bail!("the server's stdout is not piped");
        };
        // Guard from here on: any early return kills the child.
        let mut server = ChildServer {
            child: Some(child),
            pid,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            url: String::new(),
            db,
            log: log.clone(),
        };
        let (line_tx, line_rx) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || copy_output(stdout, log_file, line_tx));
        let line = tokio::time::timeout(START_LIMIT, line_rx)
            .await
            .map_err(|_| anyhow!("the server printed no URL within {START_LIMIT:?}"))?
            .map_err(|_| {
                anyhow!(
                    "the server exited before printing its URL; see {}",
                    log.display()
                )
            })?;
        let url = line
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .ok_or_else(|| anyhow!("no URL in the server's first line {line:?}"))?;
        server.addr = url
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .with_context(|| format!("the server's URL {url:?} has no address"))?;
        server.url = url.to_string();
        Ok(server)
    }

    /// Sends SIGTERM and waits for the exit (killing the child if it takes longer
    /// than [`STOP_LIMIT`]).
    pub async fn stop(mut self) -> anyhow::Result<ExitStatus> {
        let Some(mut child) = self.child.take() else {
            bail!("the server was already stopped");
        };
        let sent = Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status();
        if !sent.is_ok_and(|s| s.success()) {
            let _ = child.kill();
        }
        tokio::task::spawn_blocking(move || {
            let deadline = std::time::Instant::now() + STOP_LIMIT;
            loop {
                match child.try_wait() {
                    Ok(Some(status)) => return Ok(status),
                    Ok(None) if std::time::Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    Ok(None) => {
                        let _ = child.kill();
                        let _ = child.wait();
                        return Err(anyhow!(
                            "the server did not stop within {STOP_LIMIT:?} of SIGTERM; killed"
                        ));
                    }
                    Err(e) => return Err(anyhow!("waiting for the server: {e}")),
                }
            }
        })
        .await
        .context("the wait for the server panicked")?
    }
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Warning and error lines in a server log (tracing's format, no colours), or
/// `None` if it cannot be read.
pub fn log_problems(log: &Path) -> Option<(u64, u64)> {
    let text = std::fs::read_to_string(log).ok()?;
    let has = |line: &str, level: &str| line.split_whitespace().take(3).any(|w| w == level);
    Some(text.lines().fold((0, 0), |(w, e), line| {
        (
            w + u64::from(has(line, "WARN")),
            e + u64::from(has(line, "ERROR")),
        )
    }))
}

/// Hands the child's first stdout line over, then copies the rest to the log.
fn copy_output(
    stdout: std::process::ChildStdout,
    mut log: std::fs::File,
    first: tokio::sync::oneshot::Sender<String>,
) {
    let mut reader = BufReader::new(stdout);
    let mut line = String::new();
    match reader.read_line(&mut line) {
        Ok(n) if n > 0 => {
            let _ = log.write_all(line.as_bytes());
            let _ = first.send(line);
        }
        _ => return, // dropping `first` says the server exited
    }
    let _ = std::io::copy(&mut reader, &mut log);
}

/// A process's CPU time and resident memory at one moment.
#[derive(Clone, Copy, Debug)]
pub struct ProcSample {
    pub at: std::time::Instant,
    /// User plus system CPU seconds since the process started.
    pub cpu_s: f64,
    /// CPU seconds of its child processes (Python environment workers): of
    /// those it has reaped, and of those still running.
    pub children_cpu_s: f64,
    pub rss_kb: u64,
}

impl ProcSample {
    /// Reads `/proc/<pid>/stat` and `/proc/<pid>/status`; `None` if either is
    /// unreadable (not Linux, or the process is gone).
    pub fn read(pid: u32, ticks_per_second: f64) -> Option<ProcSample> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        Some(ProcSample {
            at: std::time::Instant::now(),
            cpu_s: cpu_ticks(&stat)? as f64 / ticks_per_second,
            children_cpu_s: children_ticks(pid, &stat) as f64 / ticks_per_second,
            rss_kb: rss_kb(&status)?,
        })
    }
}

/// CPU ticks of `pid`'s children: the reaped ones' (cutime + cstime, fields
/// 16 and 17 of its stat) and the running ones' (every process whose parent
/// is `pid`).
fn children_ticks(pid: u32, stat: &str) -> u64 {
    let fields = |stat: &str| -> Vec<String> {
        stat.rfind(')')
            .map(|i| {
                stat[i + 1..]
                    .split_whitespace()
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    let field = |fields: &[String], i: usize| -> u64 {
        fields.get(i).and_then(|v| v.parse().ok()).unwrap_or(0)
    };
    let own = fields(stat);
    let reaped = field(&own, 13) + field(&own, 14);
    let running: u64 = std::fs::read_dir("/proc")
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()))
                .filter_map(|child| std::fs::read_to_string(format!("/proc/{child}/stat")).ok())
                .map(|child| fields(&child))
                .filter(|child| field(child, 1) == u64::from(pid))
                .map(|child| field(&child, 11) + field(&child, 12))
                .sum()
        })
        .unwrap_or(0);
    reaped + running
}

/// utime + stime from a `/proc/<pid>/stat` line. The command name (field 2) may
/// hold spaces and parentheses, so fields are counted after its last `)`:
/// state is field 3, utime 14 and stime 15.
fn cpu_ticks(stat: &str) -> Option<u64> {
    let after = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

fn rss_kb(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// Pins every thread of process `pid` (and those it makes later) to `cpus`,
/// with `taskset -a -p -c`.
pub fn pin(pid: u32, cpus: &str) -> anyhow::Result<()> {
    let out = Command::new("taskset")
        .args(["-a", "-p", "-c", cpus, &pid.to_string()])
        .output()
        .context("cannot run taskset (util-linux) to pin CPUs")?;
    if !out.status.success() {
        bail!(
            "taskset could not pin process {pid} to CPUs {cpus}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Clock ticks per second for `/proc` CPU times (`getconf CLK_TCK`; 100 on
/// every Linux this runs on, used if `getconf` is missing).
pub fn ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|t| *t > 0.0)
        .unwrap_or(100.0)
}

/// The 1-minute load average, from `/proc/loadavg`.
pub fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The token the bench reads `/metrics` with: `TANDEM_METRICS_TOKEN` when set
/// (for `--url`, the token that server was started with), else one made for
/// the server the bench starts.
pub fn metrics_token() -> &'static str {
    static TOKEN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TOKEN.get_or_init(|| {
        std::env::var("TANDEM_METRICS_TOKEN").unwrap_or_else(|_| {
            let bytes: [u8; 16] = rand::random();
            bytes.iter().map(|b| format!("{b:02x}")).collect()
        })
    })
}

/// What the bench reads from the server's `GET /metrics`.
#[derive(Clone, Debug, Default)]
pub struct Metrics {
    pub sessions: u64,
    pub games_running: u64,
    pub steps_played: u64,
    pub recorder: RecorderMetrics,
}

#[derive(Clone, Debug, Default)]
pub struct RecorderMetrics {
    pub steps_written: u64,
    pub batches_written: u64,
    pub write_errors: u64,
    pub steps_dropped: u64,
}

impl Metrics {
    /// Reads the unlabelled samples the bench needs from Prometheus text.
    pub fn parse(text: &str) -> anyhow::Result<Metrics> {
        let samples: std::collections::HashMap<&str, f64> = text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split_once(' '))
            .filter_map(|(name, value)| Some((name, value.trim().parse().ok()?)))
            .collect();
        let get = |name: &str| {
            samples
                .get(name)
                .map(|v| *v as u64)
                .with_context(|| format!("/metrics has no {name}"))
        };
        Ok(Metrics {
            sessions: get("tandem_sockets")?,
            games_running: get("tandem_games_running")?,
            steps_played: get("tandem_steps_played_total")?,
            recorder: RecorderMetrics {
                steps_written: get("tandem_recorder_steps_written_total")?,
                batches_written: get("tandem_recorder_batches_written_total")?,
                write_errors: get("tandem_recorder_write_errors_total")?,
                steps_dropped: get("tandem_recorder_steps_dropped_total")?,
            },
        })
    }
}

/// Reads `/metrics` from the server at `addr`.
pub async fn metrics(addr: SocketAddr, host: &str) -> anyhow::Result<Metrics> {
    let bearer = format!("Bearer {}", metrics_token());
    let headers = [("Authorization", bearer.as_str())];
    let response =
        http::get_with(addr, host, "/metrics", &headers, Duration::from_secs(10)).await?;
    if response.status == 401 {
        bail!(
            "GET /metrics refused the bench: set TANDEM_METRICS_TOKEN to the server's --metrics-token"
        );
    }
    if response.status != 200 {
        bail!("GET /metrics answered {}", response.status);
    }
    let text = std::str::from_utf8(&response.body).context("GET /metrics is not UTF-8")?;
    Metrics::parse(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// CPU ticks are read after the command name, however odd the name is.
    #[test]
    fn reads_proc_stat_and_status() {
        let stat = "4242 (tan dem) (x)) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 9 0 1 2 3";
        assert_eq!(cpu_ticks(stat), Some(300));
        assert_eq!(cpu_ticks("garbage"), None);
        let status = "Name:\ttandem\nVmPeak:\t  9 kB\nVmRSS:\t   12345 kB\n";
        assert_eq!(rss_kb(status), Some(12345));
        assert_eq!(rss_kb("Name: x\n"), None);
    }

    /// This process can read its own figures (Linux only).
    #[test]
    fn samples_own_process() {
        let own =
            ProcSample::read(std::process::id(), ticks_per_second()).expect("/proc is readable");
        assert!(own.rss_kb > 0);
    }
}
