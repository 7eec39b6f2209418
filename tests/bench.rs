//! `tandem bench` end to end: it starts a server (or uses a running one), plays
//! bots through the flow into the game, and reports its figures as one JSON line.
//! Only structural facts are asserted, never timings: the machine running the
//! tests may be busy. That no step is lost is a correctness property, so it is
//! asserted.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use serde_json::Value;

/// The scrape token the served server is started with and the bench reads
/// its `/metrics` with (from the environment, as an operator would give it).
const METRICS_TOKEN: &str = "bench-test-scrape-token";

fn tandem() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tandem"));
    command.env("TANDEM_METRICS_TOKEN", METRICS_TOKEN);
    command
}

/// Runs `tandem bench` with `args` and returns its exit code, stderr and the
/// JSON of its last stdout line.
fn bench(args: &[&str]) -> (Option<i32>, String, Vec<String>) {
    let out = tandem()
        .arg("bench")
        .args(args)
        .output()
        .expect("tandem runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines = stdout.lines().map(str::to_string).collect();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into(),
        lines,
    )
}

fn last_json(lines: &[String]) -> Value {
    let last = lines.last().expect("bench prints something");
    serde_json::from_str(last).unwrap_or_else(|e| panic!("last line is not JSON ({e}): {last}"))
}

fn count(v: &Value, key: &str) -> u64 {
    v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} is a count: {v}"))
}

/// With its own child server, every bot connects and plays, frames and input
/// acknowledgements arrive, and every step the games played is in the database.
#[test]
fn bench_with_its_own_server_loses_no_steps() {
    let (code, stderr, lines) = bench(&["--sessions", "5", "--ramp-up", "1", "--duration", "3"]);
    assert_eq!(
        code,
        Some(0),
        "bench failed:\n{stderr}\n{}",
        lines.join("\n")
    );
    let v = last_json(&lines);
    assert_eq!(count(&v, "sessions_connected"), 5, "{v}");
    assert_eq!(count(&v, "sessions_reached_game"), 5, "{v}");
    assert_eq!(count(&v, "connect_errors"), 0, "{v}");
    assert!(count(&v, "frames_received") > 0, "{v}");
    assert!(count(&v, "latency_samples") > 0, "{v}");
    assert!(count(&v, "sprite_frames") > 0, "{v}");
    assert_eq!(v["target_fps"], 30);
    assert!(count(&v, "steps_played") > 0, "{v}");
    assert_eq!(v["steps_lost"], 0, "{v}");
    assert_eq!(v["steps_checked_in"], "database");
    assert_eq!(v["server_exit_ok"], true);
    assert!(v["server_cpu_s_per_session_s"].is_number(), "{v}");
    // The readable table comes first and says so in words.
    assert!(
        lines.iter().any(|l| l == "steps lost: 0"),
        "{}",
        lines.join("\n")
    );
}

/// The pairs scenario: four bots pair up in the lobby into two kitchen games,
/// play, and every tick is recorded with a row for each of its two agents.
#[test]
fn bench_pairs_seats_every_bot_and_loses_no_steps() {
    let (code, stderr, lines) = bench(&[
        "--scenario",
        "pairs",
        "--sessions",
        "4",
        "--ramp-up",
        "1",
        "--duration",
        "3",
    ]);
    assert_eq!(
        code,
        Some(0),
        "bench failed:\n{stderr}\n{}",
        lines.join("\n")
    );
    let v = last_json(&lines);
    assert_eq!(v["scenario"], "pairs");
    assert_eq!(v["target_fps"], 15);
    assert_eq!(count(&v, "sessions_multiplayer"), 4, "{v}");
    assert_eq!(count(&v, "sessions_seated"), 4, "{v}");
    assert_eq!(count(&v, "sessions_waiting_at_end"), 0, "{v}");
    assert_eq!(count(&v, "lobby_wait_samples"), 4, "{v}");
    assert!(v["lobby_wait_p99_ms"].is_number(), "{v}");
    assert!(count(&v, "frames_received") > 0, "{v}");
    assert!(count(&v, "latency_samples") > 0, "{v}");
    // Four bots ramped over a second make two full pairs, long before the
    // lobby's 20 s timeout would give anyone the AI.
    assert_eq!(v["matches"], serde_json::json!({"full": 2}), "{v}");
    assert!(count(&v, "steps_played") > 0, "{v}");
    assert_eq!(v["steps_lost"], 0, "{v}");
    // Two chefs: two rows per tick, none missing.
    assert_eq!(
        count(&v, "step_rows_recorded"),
        2 * count(&v, "steps_recorded"),
        "{v}"
    );
    assert_eq!(v["step_rows_missing"], 0, "{v}");
    assert_eq!(v["server_exit_ok"], true);
    assert!(
        lines.iter().any(|l| l.starts_with("── lobby")),
        "{}",
        lines.join("\n")
    );
}

/// Against a running server (`--url`, `--server-pid`), `--json-only` prints one
/// line, and steps are checked against the recorder's counters.
#[test]
fn bench_against_a_running_server() {
    let scenario = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/crates/bench/scenarios/sprites.toml"
    );
    let dir = tempfile::tempdir().unwrap();
    let mut server = tandem()
        .args(["serve", scenario, "--addr", "127.0.0.1:0", "--db"])
        .arg(dir.path().join("served.db"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("tandem serve starts");
    let mut line = String::new();
    BufReader::new(server.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("serve prints its URL");
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no URL in {line:?}"))
        .to_string();
    let pid = server.id().to_string();
    let (code, stderr, lines) = bench(&[
        "--url",
        &url,
        "--server-pid",
        &pid,
        "--sessions",
        "3",
        "--ramp-up",
        "0",
        "--duration",
        "2",
        "--json-only",
    ]);
    let _ = Command::new("kill").args(["-TERM", &pid]).status();
    let _ = server.wait();
    assert_eq!(
        code,
        Some(0),
        "bench failed:\n{stderr}\n{}",
        lines.join("\n")
    );
    assert_eq!(lines.len(), 1, "--json-only prints one line: {lines:?}");
    let v = last_json(&lines);
    assert_eq!(v["server"], "url");
    assert_eq!(count(&v, "sessions_connected"), 3, "{v}");
    assert!(count(&v, "frames_received") > 0, "{v}");
    assert_eq!(v["steps_lost"], 0, "{v}");
    assert_eq!(v["steps_checked_in"], "recorder_counters");
    assert!(v["server_rss_end_kb"].is_number(), "{v}");
}

/// Options that cannot work are refused with exit code 2, naming the flag.
#[test]
fn bench_refuses_bad_options() {
    for (args, flag) in [
        (&["--sessions", "0"][..], "--sessions"),
        (&["--duration", "0"][..], "--duration"),
        (&["--url", "https://example.org:443"][..], "--url"),
        (&["--experiment", "no/such/file.toml"][..], "--experiment"),
    ] {
        let (code, stderr, _) = bench(args);
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(flag), "{args:?}: {stderr}");
    }
}
