//! Stored bytes per Atari observation: the 3,000 real Breakout frames in
//! `testdata/atari` (`U8 [210, 160, 3]`) recorded through the real recorder into
//! a temporary SQLite file, one step per frame and one episode per fixture
//! episode, then `AVG(length(steps.obs))` read back. The recorder stores each
//! frame as a zstd-compressed XOR delta against the previous one, whole at
//! episode starts and every `KEYFRAME_INTERVAL` steps; the first line shows what
//! a frame costs on its own, for comparison. Every frame is decoded back and
//! compared, so the figure is for a lossless codec.
//!
//! ```text
//! cargo run --release -p tandem-store --example obs_bytes [-- --keep PATH]
//! ```
//!
//! With `--keep PATH` the database is written to PATH and kept (the Python tests
//! read it back with the documented decoder).

#[path = "../../../testdata/atari/fixture.rs"]
mod fixture;

use sqlx::{Connection, SqliteConnection};
use tandem_env::{Action, Observation};
use tandem_store::obs_codec::{KEYFRAME_INTERVAL, encode_obs};
use tandem_store::{
    ActionSource, AgentStep, EpisodeAgent, EpisodeEnd, EpisodeStart, NewGame, Outcome,
    RecorderConfig, Seat, StepRecord, Store,
};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let atari = fixture::Fixture::load_default();
    println!("fixture: {}", atari.meta);
    let n = atari.frame_count();
    let shape = vec![atari.height as usize, atari.width as usize, 3];
    let obs = |i: usize| Observation::U8 {
        shape: shape.clone(),
        data: atari.frame(i).to_vec(),
    };
    let whole: usize = (0..n).map(|i| encode_obs(&obs(i)).len()).sum();
    println!(
        "  {:<60} {:>6.0} bytes/frame",
        "each frame on its own (zstd-3)",
        whole as f64 / n as f64
    );

    let dir = tempfile::tempdir()?;
    let args: Vec<String> = std::env::args().collect();
    let db_path = match args.iter().position(|a| a == "--keep") {
        Some(i) => std::path::PathBuf::from(args.get(i + 1).ok_or("--keep needs a path")?),
        None => dir.path().join("atari.db"),
    };
    let store = Store::open(db_path.to_str().ok_or("path is not UTF-8")?).await?;
    store.upsert_experiment("atari", "Atari", "").await?;
    let game = NewGame {
        experiment_id: "atari".into(),
        scene_index: 0,
        scene_id: "play".into(),
        env_id: "ALE/Breakout-v5".into(),
        env_version: 5,
        spaces: serde_json::json!({}),
        fps: 60,
        config: serde_json::json!({}),
    };
    let seat = Seat {
        agent: 0,
        agent_name: "agent_0".into(),
        participant_id: None,
        policy: Some("random".into()),
    };
    let game_id = store.create_game(&game, &[seat]).await?;
    let (recorder, handle) = store.recorder(RecorderConfig::default());

    let starts: Vec<usize> = (0..n).filter(|i| atari.episode_starts[*i]).collect();
    let mut episodes = Vec::new();
    for (idx, start) in starts.iter().enumerate() {
        let end = starts.get(idx + 1).copied().unwrap_or(n);
        let episode_id = recorder
            .start_episode(EpisodeStart {
                game_id,
                idx: idx as u32,
                seed: idx as u64,
                env_id: "ALE/Breakout-v5".into(),
                env_version: 5,
                started_us: 0,
                agents: vec![EpisodeAgent {
                    agent_name: "agent_0".into(),
                    actor: "policy:random".into(),
                    reset_obs: obs(*start),
                }],
            })
            .await?;
        for (t, frame) in (start + 1..end).enumerate() {
            recorder.record_step(StepRecord {
                episode_id,
                t: t as u32 + 1,
                server_us: 0,
                tick: None,
                agents: vec![AgentStep {
                    action: Action::Discrete(0),
                    actor: "policy:random".into(),
                    source: ActionSource::Policy,
                    keys: None,
                    reward: 0.0,
                    terminated: false,
                    truncated: false,
                    obs: obs(frame),
                    input_seq: None,
                    client_frame: None,
                    client_ts: None,
                    feedback: None,
                }],
            });
        }
        let end_episode = EpisodeEnd {
            ended_us: 0,
            steps: (end - start - 1) as u32,
            outcome: Outcome::Complete,
            returns: vec![0.0],
            final_info: None,
        };
        recorder.end_episode(episode_id, end_episode).await?;
        episodes.push((episode_id, *start));
    }
    drop(recorder);
    handle.shutdown().await?;

    // The store reads steps back decoded; the stored size needs SQL of our own.
    let mut raw = SqliteConnection::connect(&format!("sqlite://{}", db_path.display())).await?;
    let (rows, avg): (i64, f64) = sqlx::query_as("SELECT COUNT(*), AVG(length(obs)) FROM steps")
        .fetch_one(&mut raw)
        .await?;
    println!(
        "  {:<60} {:>6.0} bytes/frame ({rows} steps)",
        format!("as recorded (delta, whole every {KEYFRAME_INTERVAL} steps)"),
        avg
    );
    for (episode_id, start) in episodes {
        for step in store.steps_for_episode(episode_id).await? {
            assert_eq!(step.obs, obs(start + step.t as usize), "lossless");
        }
    }
    println!("  every stored frame decodes back to the original");
    Ok(())
}
