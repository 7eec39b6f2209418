//! Python environments end to end, with the real `tandem` binary and workers
//! on the project's `.venv`: `check` makes each environment a file names and
//! reports what cannot be made at its line; `serve` plays a Gymnasium game
//! through a worker, and a worker whose environment raises ends only its game,
//! with the reason recorded, while the participant moves on.

mod common;

use std::process::Command;

use common::{Client, ServeProcess, count, visit_addr};

/// The fault environments the worker crate's tests use.
const FAULT_ENVS: &str = include_str!("../crates/workers/tests/envs/fault_envs.py");
/// A two-agent PettingZoo environment.
const DUO_ENV: &str = include_str!("../crates/workers/tests/envs/duo_env.py");

const STUDY: &str = r#"
id = "python-envs"
title = "Python environments"

[[scene]]
kind = "game"
id = "breaks"
title = "A game whose environment raises"
env = "python:fault_envs:raising"
episodes = 1
default_action = 0
[scene.keys]
ArrowLeft = 0
ArrowRight = 1

[[scene]]
kind = "game"
id = "cartpole"
title = "CartPole from Gymnasium"
env = "gymnasium:CartPole-v1"
fps = 30
time_limit_s = 600
default_action = 0
[scene.keys]
ArrowLeft = 0
ArrowRight = 1

[[scene]]
kind = "end"
id = "end"
title = "Done"
markdown = "Thanks."
"#;

/// Writes the study and the fault environments beside it; returns the
/// folder and the study's path.
fn study(text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("fault_envs.py"), FAULT_ENVS).expect("envs written");
    std::fs::write(dir.path().join("duo_env.py"), DUO_ENV).expect("envs written");
    let path = dir.path().join("study.toml");
    std::fs::write(&path, text).expect("study written");
    (dir, path)
}

/// Worker processes started for the study in `dir`: their `PYTHONPATH` names
/// it (the experiment's folder is on it, for `python:` factories).
fn workers_of(dir: &std::path::Path) -> Vec<u32> {
    let needle = dir.to_string_lossy().into_owned();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()))
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ")).is_ok_and(|environ| {
                environ.split(|&b| b == 0).any(|var| {
                    var.starts_with(b"PYTHONPATH=")
                        && String::from_utf8_lossy(var).contains(&needle)
                })
            })
        })
        .collect()
}

/// Waits up to 5 s for every worker of the study in `dir` to be gone.
async fn workers_gone(dir: &std::path::Path) -> Vec<u32> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let left = workers_of(dir);
        if left.is_empty() || std::time::Instant::now() >= deadline {
            return left;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

fn check(path: &std::path::Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_tandem"))
        .arg("check")
        .arg(path)
        .output()
        .expect("tandem check runs")
}

#[test]
fn check_makes_each_python_environment() {
    let (_dir, path) = study(STUDY);
    let out = check(&path);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("env gymnasium:CartPole-v1: gymnasium:CartPole-v1 (in a Python worker"),
        "{stdout}"
    );

    let broken = STUDY.replace("gymnasium:CartPole-v1", "gymnasium:NoSuchEnv-v0");
    let (_dir, path) = study(&broken);
    let out = check(&path);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let line = broken
        .lines()
        .position(|l| l.contains("NoSuchEnv"))
        .map(|i| i + 1)
        .unwrap_or_default();
    assert!(
        stderr.contains(&format!("study.toml:{line}:")) && stderr.contains("NoSuchEnv"),
        "reported at line {line}: {stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_raising_environment_ends_its_game_and_the_next_plays() {
    let (dir, path) = study(STUDY);
    let db = dir.path().join("study.db");
    let server = ServeProcess::start(&db, &[path.to_str().expect("UTF-8 path")]).await;
    let cookie = visit_addr(server.addr, "?PROLIFIC_PID=py", None).await;
    let mut p = Client::connect_addr(server.addr, &cookie).await;
    assert_eq!(p.expect_scene().await["scene"]["id"], "breaks");
    let error = p.expect("error").await;
    assert_eq!(error["code"], "game_failed", "{error}");
    assert_eq!(p.expect_scene().await["scene"]["id"], "cartpole");
    p.hold(&["ArrowRight"]).await;
    // Gymnasium's CartPole draws pixels: they come as binary frames.
    let mut bytes = 0;
    for _ in 0..40 {
        bytes += p.expect("binary").await["len"].as_u64().unwrap_or(0);
    }
    let running = workers_of(dir.path()).len();
    let stopped = server.signal("TERM").await;
    assert!(stopped.success(), "serve exits 0 on SIGTERM: {stopped:?}");
    let left = workers_gone(dir.path()).await;
    eprintln!(
        "{running} worker processes while playing, {} left after serve stopped",
        left.len()
    );
    assert!(running > 0, "the study's workers were found while it ran");
    assert!(left.is_empty(), "workers outlived serve: {left:?}");

    let pool = sqlx::sqlite::SqlitePool::connect(&format!("sqlite://{}", db.display()))
        .await
        .expect("database opens");
    let (reason,): (String,) =
        sqlx::query_as("SELECT end_reason FROM games WHERE env_id = 'python:fault_envs:raising'")
            .fetch_one(&pool)
            .await
            .expect("the failed game is stored");
    assert!(
        reason.contains("ValueError: the pole broke on purpose"),
        "{reason}"
    );
    let cartpole_steps = count(
        &pool,
        "SELECT COUNT(*) FROM steps JOIN episodes ON steps.episode_id = episodes.id
         JOIN games ON episodes.game_id = games.id WHERE games.env_id = 'gymnasium:CartPole-v1'",
    )
    .await;
    eprintln!(
        "failed game: {reason}; CartPole through a worker: {cartpole_steps} steps recorded, \
         {} bytes per pixel frame on the wire",
        bytes / 40
    );
    assert!(cartpole_steps >= 20, "{cartpole_steps} steps");
}

const DUO: &str = r#"
id = "duo"
title = "PettingZoo"

[[scene]]
kind = "game"
id = "duo"
title = "Run from the chaser"
env = "pettingzoo:duo_env"
fps = 30
time_limit_s = 600
default_action = 1
[scene.env_kwargs]
length = 30
[scene.keys]
ArrowLeft = 0
ArrowRight = 2

[[scene.seat]]
agent = "runner"
human = true

[[scene.seat]]
agent = "chaser"
ai = "random"

[[scene]]
kind = "end"
id = "end"
title = "Done"
markdown = "Thanks."
"#;

/// A PettingZoo parallel environment with one human seat and one policy
/// seat: both agents' steps are recorded, each with who chose it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pettingzoo_game_seats_a_human_and_a_policy() {
    let (dir, path) = study(DUO);
    let db = dir.path().join("duo.db");
    let server = ServeProcess::start(&db, &[path.to_str().expect("UTF-8 path")]).await;
    let cookie = visit_addr(server.addr, "?PROLIFIC_PID=duo", None).await;
    let mut p = Client::connect_addr(server.addr, &cookie).await;
    let scene = p.expect_scene().await;
    assert_eq!(scene["scene"]["id"], "duo", "{scene}");
    p.hold(&["ArrowRight"]).await;
    for _ in 0..40 {
        p.expect("binary").await;
    }
    let stopped = server.signal("TERM").await;
    assert!(stopped.success(), "serve exits 0 on SIGTERM: {stopped:?}");

    let pool = sqlx::sqlite::SqlitePool::connect(&format!("sqlite://{}", db.display()))
        .await
        .expect("database opens");
    let runner_keys = count(
        &pool,
        "SELECT COUNT(*) FROM steps WHERE agent = 0 AND keys = 'ArrowRight'",
    )
    .await;
    let chaser_policy = count(
        &pool,
        "SELECT COUNT(*) FROM steps WHERE agent = 1 AND actor LIKE 'policy:random%'",
    )
    .await;
    let env_id: String = sqlx::query_scalar("SELECT env_id FROM games")
        .fetch_one(&pool)
        .await
        .expect("the game is stored");
    eprintln!(
        "{env_id}: runner steps by keys {runner_keys}, chaser steps by policy {chaser_policy}"
    );
    assert_eq!(env_id, r#"pettingzoo:duo_env {"length":30}"#);
    assert!(
        runner_keys > 10 && chaser_policy > 10,
        "{runner_keys} / {chaser_policy}"
    );
}
