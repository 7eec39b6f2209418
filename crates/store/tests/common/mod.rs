//! Shared fixtures for the store's integration tests: a fresh database file per
//! test, an experiment with one game, CartPole-like steps, and a connection of
//! the test's own for checking what is stored beyond what the store reads back
//! (the store keeps its connections to itself).

#![allow(dead_code)] // each test file uses a different subset

use std::path::{Path, PathBuf};

use serde_json::json;
use sqlx::{Connection, SqliteConnection};
use tandem_env::{Action, Observation};
use tandem_store::{
    ActionSource, AgentStep, EpisodeAgent, EpisodeStart, NewGame, Seat, StepRecord, Store,
};
use tempfile::TempDir;

pub const EXPERIMENT: &str = "exp";

/// A store on a new file in its own temporary directory (kept alive by the
/// returned `TempDir`; the file is [`db_path`]).
pub async fn temp_store() -> (TempDir, Store) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = db_path(&dir);
    let store = Store::open(path.to_str().expect("utf-8 path"))
        .await
        .expect("open store");
    store
        .upsert_experiment(EXPERIMENT, "Test experiment", "title = 'Test experiment'")
        .await
        .expect("experiment");
    (dir, store)
}

/// The database file [`temp_store`] opened in `dir`.
pub fn db_path(dir: &TempDir) -> PathBuf {
    dir.path().join("tandem.db")
}

/// A connection of the test's own to the database file at `path`.
pub async fn raw(path: &Path) -> SqliteConnection {
    SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .expect("raw connection")
}

/// A game with `agents` AI seats; returns its id.
pub async fn game(store: &Store, agents: u32) -> i64 {
    let seats: Vec<Seat> = (0..agents)
        .map(|agent| Seat {
            agent,
            agent_name: format!("agent_{agent}"),
            participant_id: None,
            policy: Some("random".into()),
        })
        .collect();
    store
        .create_game(&new_game(), &seats)
        .await
        .expect("create game")
}

pub fn new_game() -> NewGame {
    NewGame {
        experiment_id: EXPERIMENT.into(),
        scene_index: 1,
        scene_id: "play".into(),
        env_id: "CartPole-v1".into(),
        env_version: 1,
        spaces: json!({"agent_0": {"observation": {"type": "Discrete", "n": 2}}}),
        fps: 30,
        config: json!({"episodes": 3}),
    }
}

pub fn episode_start(game_id: i64, idx: u32, agents: usize) -> EpisodeStart {
    EpisodeStart {
        game_id,
        idx,
        seed: u64::MAX - u64::from(idx),
        env_id: "CartPole-v1".into(),
        env_version: 1,
        started_us: tandem_store::now_us(),
        agents: (0..agents)
            .map(|a| EpisodeAgent {
                agent_name: format!("agent_{a}"),
                actor: "policy:random".into(),
                reset_obs: cartpole_obs(0, a),
            })
            .collect(),
    }
}

/// A deterministic four-float observation for step `t` of agent `agent`.
pub fn cartpole_obs(t: u32, agent: usize) -> Observation {
    let x = t as f32 * 0.01 + agent as f32;
    Observation::vector(vec![x, -x, x * 0.5, 1.0 / (1.0 + x)])
}

/// Step `t` of a CartPole-like episode with `agents` agents.
pub fn cartpole_step(episode_id: i64, t: u32, agents: usize) -> StepRecord {
    StepRecord {
        episode_id,
        t,
        server_us: tandem_store::now_us(),
        tick: None,
        agents: (0..agents)
            .map(|a| AgentStep {
                action: Action::Discrete(i64::from(t % 2)),
                actor: "policy:random".into(),
                source: ActionSource::Policy,
                keys: None,
                reward: 1.0,
                terminated: false,
                truncated: false,
                obs: cartpole_obs(t, a),
                input_seq: Some(u64::from(t)),
                client_frame: None,
                client_ts: Some(f64::from(t) * 33.3),
                feedback: None,
            })
            .collect(),
    }
}

/// Polls `count_steps` until it reaches `want`, for at most five seconds; returns
/// the last count. For tests of the writer's own timing, where calling `flush`
/// would defeat the point.
pub async fn wait_for_steps(store: &Store, want: i64) -> i64 {
    let give_up = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let n = store.count_steps().await.expect("count steps");
        if n >= want || std::time::Instant::now() > give_up {
            return n;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}
