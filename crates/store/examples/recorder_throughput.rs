//! How many steps per second the recorder commits: writes CartPole-like steps
//! (one agent, four floats, a discrete action) through a `Recorder` to a fresh
//! SQLite file, as fast as it will take them, and prints the rate.
//!
//! A measurement, not a test: no assertion depends on timing.
//!
//! ```text
//! cargo run --release -p tandem-store --example recorder_throughput [steps] [agents]
//! ```

use std::time::Instant;

use serde_json::json;
use tandem_env::{Action, Observation};
use tandem_store::{
    ActionSource, AgentStep, EpisodeAgent, EpisodeEnd, EpisodeStart, NewGame, Outcome,
    RecorderConfig, Seat, StepRecord, Store,
};

/// Steps per episode, as in CartPole-v1's time limit.
const EPISODE_LEN: u32 = 500;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let total: u32 = args
        .next()
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(500_000);
    let agents: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(1);

    // One endless episode: the writer's raw rate, batches of `batch_rows`.
    run("one long episode", total, agents, total).await?;
    // CartPole-length episodes, each end awaited: every end forces a commit (and
    // an fsync), as it does in a game loop.
    run("500-step episodes", total, agents, EPISODE_LEN).await?;
    Ok(())
}

async fn run(
    label: &str,
    total: u32,
    agents: usize,
    episode_len: u32,
) -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("throughput.db");
    let store = Store::open(path.to_str().ok_or("temp path is not UTF-8")?).await?;
    store.upsert_experiment("bench", "Bench", "").await?;
    let seats: Vec<Seat> = (0..agents)
        .map(|a| Seat {
            agent: a as u32,
            agent_name: format!("agent_{a}"),
            participant_id: None,
            policy: Some("random".into()),
        })
        .collect();
    let game = NewGame {
        experiment_id: "bench".into(),
        scene_index: 0,
        scene_id: "play".into(),
        env_id: "CartPole-v1".into(),
        env_version: 1,
        spaces: json!({}),
        fps: 60,
        config: json!({}),
    };
    let game_id = store.create_game(&game, &seats).await?;

    let (recorder, handle) = store.recorder(RecorderConfig::default());
    let obs = |t: u32| {
        let x = t as f32 * 1e-3;
        Observation::vector(vec![x, -x, 0.5 * x, 0.01])
    };
    let started = Instant::now();
    let mut written = 0;
    let mut idx = 0;
    while written < total {
        let start = EpisodeStart {
            game_id,
            idx,
            seed: u64::from(idx),
            env_id: "CartPole-v1".into(),
            env_version: 1,
            started_us: tandem_store::now_us(),
            agents: (0..agents)
                .map(|a| EpisodeAgent {
                    agent_name: format!("agent_{a}"),
                    actor: "policy:random".into(),
                    reset_obs: obs(0),
                })
                .collect(),
        };
        let episode_id = recorder.start_episode(start).await?;
        let len = episode_len.min(total - written);
        for t in 1..=len {
            recorder.record_step(StepRecord {
                episode_id,
                t,
                server_us: tandem_store::now_us(),
                tick: None,
                agents: (0..agents)
                    .map(|_| AgentStep {
                        action: Action::Discrete(i64::from(t % 2)),
                        actor: "policy:random".into(),
                        source: ActionSource::Policy,
                        keys: None,
                        reward: 1.0,
                        terminated: t == len,
                        truncated: false,
                        obs: obs(t),
                        input_seq: None,
                        client_frame: None,
                        client_ts: None,
                        feedback: None,
                    })
                    .collect(),
            });
        }
        recorder
            .end_episode(
                episode_id,
                EpisodeEnd {
                    ended_us: tandem_store::now_us(),
                    steps: len,
                    outcome: Outcome::Complete,
                    returns: vec![f64::from(len); agents],
                    final_info: None,
                },
            )
            .await?;
        written += len;
        idx += 1;
    }
    recorder.flush().await?;
    let elapsed = started.elapsed();
    let stats = recorder.stats();
    drop(recorder);
    handle.shutdown().await?;

    let rows = store.count_steps().await?;
    store.close().await;
    let bytes = std::fs::metadata(&path)?.len();
    let secs = elapsed.as_secs_f64();
    println!(
        "{label}: {total} steps x {agents} agent(s) in {idx} episodes: {secs:.2} s, \
         {:.0} steps/s, {:.0} rows/s",
        f64::from(total) / secs,
        rows as f64 / secs
    );
    println!(
        "  {rows} rows, {} batches, {} write errors, {} dropped; file {:.1} MB ({:.0} B/row)",
        stats.batches_written,
        stats.write_errors,
        stats.steps_dropped,
        bytes as f64 / 1e6,
        bytes as f64 / rows.max(1) as f64
    );
    Ok(())
}
