//! Python environments and policies end to end, with the real `tandem`
//! binary and workers on the project's `.venv`: `check` makes each
//! environment and policy a file names and reports what cannot be made at its
//! line; `serve` plays a Gymnasium game through a worker, a worker whose
//! environment raises ends only its game, with the reason recorded, while the
//! participant moves on; a Python policy plays a seat and learns from the
//! participant's feedback, and one that raises is replaced by its fallback;
//! a worker hung in a step ends when its server is killed.

mod common;

use std::process::Command;

use common::{Client, ServeProcess, count, visit_addr};

/// The fault environments the worker crate's tests use.
const FAULT_ENVS: &str = include_str!("../crates/workers/tests/envs/fault_envs.py");
/// A two-agent PettingZoo environment.
const DUO_ENV: &str = include_str!("../crates/workers/tests/envs/duo_env.py");
/// Python policies.
const AGENTS: &str = include_str!("../crates/workers/tests/envs/agents.py");

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
    std::fs::write(dir.path().join("agents.py"), AGENTS).expect("agents written");
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

/// The numbers of an environment's info at each complete episode's end are
/// recorded with the episode and averaged per game scene (the dashboard's
/// statistics); anything else in the info is left out of the means.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_environment_s_info_becomes_its_scene_s_statistics() {
    let counting = STUDY
        .replace("python:fault_envs:raising", "python:fault_envs:counting")
        .replace("episodes = 1", "episodes = 2\nfps = 30");
    let (dir, path) = study(&counting);
    let db = dir.path().join("counting.db");
    let server = ServeProcess::start(&db, &[path.to_str().expect("UTF-8 path")]).await;
    let cookie = visit_addr(server.addr, "?PROLIFIC_PID=info", None).await;
    let mut p = Client::connect_addr(server.addr, &cookie).await;
    assert_eq!(p.expect_scene().await["scene"]["id"], "breaks");
    // Two five-step episodes, then the next scene.
    assert_eq!(p.expect_scene().await["scene"]["id"], "cartpole");
    let stopped = server.signal("TERM").await;
    assert!(stopped.success(), "{stopped:?}");

    let store = tandem_store::Store::open_to_read(db.to_str().expect("UTF-8 path"))
        .await
        .expect("database opens");
    let pool = sqlx::sqlite::SqlitePool::connect(&format!("sqlite://{}", db.display()))
        .await
        .expect("database opens");
    let infos: Vec<String> = sqlx::query_scalar(
        "SELECT e.final_info FROM episodes e JOIN games g ON g.id = e.game_id
         WHERE g.scene_id = 'breaks' AND e.outcome = 'complete' ORDER BY e.id",
    )
    .fetch_all(&pool)
    .await
    .expect("episodes read");
    assert_eq!(infos.len(), 2, "{infos:?}");
    let first: serde_json::Value = serde_json::from_str(&infos[0]).expect("JSON");
    assert_eq!(first["bricks"], 5, "{first}");
    let stats = store.game_scene_stats("python-envs").await.expect("stats");
    let scene = stats
        .iter()
        .find(|s| s.scene_index == 0)
        .expect("the scene's stats");
    assert_eq!(
        scene.info_means,
        vec![("bricks".to_string(), 5.0), ("lives".to_string(), 3.0)],
        "numbers only, in the order first seen"
    );
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

/// Two CartPole scenes (the built-in environment): first a Python policy
/// plays while the participant gives feedback; then a Python policy that
/// gives up is replaced by a Python fallback. `{log}` is where the learner
/// writes what it is shown.
const AGENT_STUDY: &str = r#"
id = "python-agents"
title = "Python agents"

[policy.learner]
kind = "python"
entry = "agents:Learner"
[policy.learner.kwargs]
log = "{log}"

[policy.quitter]
kind = "python"
entry = "agents:Quitter"

[[scene]]
kind = "game"
id = "teach"
title = "Teach the agent"
env = "CartPole-v1"
fps = 30
episodes = 1
max_steps = 60
seed = 5

[[scene.seat]]
human = true
input = "feedback"
policy = "learner"
[scene.seat.feedback]
ArrowUp = 1
ArrowDown = -1

[[scene]]
kind = "game"
id = "takeover"
title = "The agent gives up"
env = "CartPole-v1"
fps = 30
episodes = 1
max_steps = 40

[[scene.seat]]
human = true
input = "feedback"
policy = "quitter"
fallback = "learner"

[[scene]]
kind = "end"
id = "end"
title = "Done"
markdown = "Thanks."
"#;

#[test]
fn check_makes_each_python_policy() {
    let logs = tempfile::tempdir().expect("temp dir");
    let log = logs.path().join("learned.jsonl");
    let good = AGENT_STUDY.replace("{log}", &log.display().to_string());
    let (_dir, path) = study(&good);
    let out = check(&path);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("policy learner: python agents:Learner (in a Python worker)"),
        "{stdout}"
    );

    for (broken, says) in [
        (
            good.replace("agents:Quitter", "agents:Nothing"),
            "agents has no Nothing",
        ),
        (
            good.replace("agents:Quitter", "no_agents:Quitter"),
            "No module named 'no_agents'",
        ),
        (
            good.replace(
                "[policy.learner.kwargs]\n",
                "[policy.learner.kwargs]\nunknown = 1\n",
            ),
            "unexpected keyword argument 'unknown'",
        ),
    ] {
        let (_dir, path) = study(&broken);
        let out = check(&path);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(says), "{says}: {stderr}");
        // Reported at the seat that names the policy.
        assert!(
            stderr.contains("study.toml:") && stderr.contains("cannot play"),
            "{stderr}"
        );
    }
}

/// A Python policy plays a seat while the participant gives feedback, and its
/// `observe` is shown every step with the feedback the participant gave; in
/// the next scene a Python policy that raises is replaced by its (Python)
/// fallback, with the failure recorded, and the participant's flow goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_policy_plays_and_learns_from_feedback() {
    let logs = tempfile::tempdir().expect("temp dir");
    let log = logs.path().join("learned.jsonl");
    let (dir, path) = study(&AGENT_STUDY.replace("{log}", &log.display().to_string()));
    let db = dir.path().join("agents.db");
    let server = ServeProcess::start(&db, &[path.to_str().expect("UTF-8 path")]).await;
    let cookie = visit_addr(server.addr, "?PROLIFIC_PID=teacher", None).await;
    let mut p = Client::connect_addr(server.addr, &cookie).await;
    assert_eq!(p.expect_scene().await["scene"]["id"], "teach");
    p.expect("frame").await;
    for keys in [&["ArrowUp"][..], &[], &["ArrowDown"], &[]] {
        p.hold(keys).await;
        for _ in 0..3 {
            p.expect("frame").await;
        }
    }
    assert_eq!(p.expect_scene().await["scene"]["id"], "takeover");
    assert_eq!(p.expect_scene().await["scene"]["id"], "end");
    let stopped = server.signal("TERM").await;
    assert!(stopped.success(), "serve exits 0 on SIGTERM: {stopped:?}");

    let pool = sqlx::sqlite::SqlitePool::connect(&format!("sqlite://{}", db.display()))
        .await
        .expect("database opens");
    let teach = "SELECT COUNT(*) FROM steps JOIN episodes ON steps.episode_id = episodes.id
         JOIN games ON episodes.game_id = games.id WHERE games.scene_id = 'teach'";
    let by_learner = count(
        &pool,
        "SELECT COUNT(*) FROM steps JOIN episodes ON steps.episode_id = episodes.id
         JOIN games ON episodes.game_id = games.id
         WHERE games.scene_id = 'teach' AND actor = 'policy:learner' AND source = 'policy'",
    )
    .await;
    let steps = count(&pool, teach).await;
    assert_eq!(steps, 60, "the teach scene ran its 60 steps");
    assert_eq!(by_learner, steps, "the Python policy chose every step");
    let feedback: Vec<f64> = sqlx::query_scalar(
        "SELECT feedback FROM steps WHERE feedback IS NOT NULL ORDER BY episode_id, t",
    )
    .fetch_all(&pool)
    .await
    .expect("feedback read");

    let lines = std::fs::read_to_string(&log).expect("the learner wrote its log");
    let records: Vec<serde_json::Value> = lines
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    let observed: Vec<&serde_json::Value> = records
        .iter()
        .filter(|r| r.get("action").is_some())
        .collect();
    let shown_feedback: Vec<f64> = observed
        .iter()
        .filter_map(|r| r["feedback"].as_f64())
        .collect();
    eprintln!(
        "teach scene: {steps} steps by the Python policy; it observed {} transitions, \
         feedback recorded {feedback:?}, feedback it was shown {shown_feedback:?}",
        observed.len()
    );
    assert_eq!(feedback, vec![1.0, -1.0], "each press recorded once");
    assert_eq!(shown_feedback, vec![1.0, -1.0], "observe saw the feedback");
    assert!(
        records.iter().any(|r| r.get("reset").is_some()),
        "reset was called"
    );
    assert!(
        observed
            .iter()
            .all(|r| r["observation"].as_array().map(Vec::len) == Some(4)
                && r["reward"].as_f64() == Some(1.0)),
        "each transition holds CartPole's observation and reward"
    );
    // The teach scene's 60 transitions, then the fallback's in the takeover scene.
    assert!(observed.len() >= 60, "{} transitions", observed.len());
    assert_eq!(observed[59]["done"], true, "the step cap ends the episode");

    let failed = count(
        &pool,
        "SELECT COUNT(*) FROM events WHERE kind = 'policy_failed'
         AND detail LIKE '%this agent gives up%'",
    )
    .await;
    let by_fallback = count(
        &pool,
        "SELECT COUNT(*) FROM steps WHERE actor = 'policy:learner' AND source = 'fallback'",
    )
    .await;
    eprintln!(
        "takeover scene: the quitter's failure recorded {failed} time(s); {by_fallback} steps by the fallback"
    );
    assert_eq!(failed, 1, "the failure is recorded once");
    assert!(by_fallback >= 30, "{by_fallback} steps by the fallback");
}

/// A worker whose environment hangs in a step never reads its input again,
/// so it cannot see the server go; it still ends soon after the server is
/// killed with SIGKILL (it watches for its parent to change).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_worker_ends_when_the_server_is_killed() {
    let study_text = STUDY.replace("python:fault_envs:raising", "python:fault_envs:hanging");
    let (dir, path) = study(&study_text);
    let db = dir.path().join("hung.db");
    // A deadline longer than the test: only the server's death can end the step.
    let server = ServeProcess::start(
        &db,
        &[path.to_str().expect("UTF-8 path"), "--step-deadline", "60"],
    )
    .await;
    let cookie = visit_addr(server.addr, "?PROLIFIC_PID=hung", None).await;
    let mut p = Client::connect_addr(server.addr, &cookie).await;
    assert_eq!(p.expect_scene().await["scene"]["id"], "breaks");
    // The third step hangs; give the game time to get there.
    for _ in 0..3 {
        p.expect("binary").await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let running = workers_of(dir.path());
    assert!(!running.is_empty(), "the hanging worker runs");
    let killed = server.signal("KILL").await;
    assert!(!killed.success());
    let left = workers_gone(dir.path()).await;
    eprintln!(
        "{} worker processes before SIGKILL, {} left 5 s after",
        running.len(),
        left.len()
    );
    let describe = |pid: &u32| {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let ppid = status
            .lines()
            .find(|l| l.starts_with("PPid"))
            .unwrap_or_default()
            .to_string();
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        format!(
            "{pid} {ppid} {}",
            String::from_utf8_lossy(&cmd).replace('\0', " ")
        )
    };
    assert!(
        left.is_empty(),
        "workers outlived a killed server: {:?}",
        left.iter().map(describe).collect::<Vec<_>>()
    );
}
