//! How fast the recorder makes steps durable, with the database opened exactly as
//! production opens it ([`Store::open`] on a file: WAL, `synchronous = FULL`) and
//! the production [`RecorderConfig`].
//!
//! Each sample sends its steps through [`Recorder::record_step`] and then awaits
//! [`Recorder::flush`], so the time covers every step being committed and synced,
//! not just queued; criterion's per-step figure is the slope over samples of
//! growing size, and its throughput is durable steps per second.
//!
//! - `recorder/cartpole_step`: small steps like CartPole's (one agent, four
//!   floats, a discrete action), the issue's "small steps".
//! - `recorder/atari_step`: one agent with a real 210 × 160 × 3 Atari observation
//!   from the fixture (`testdata/atari`), which the writer compresses.
//!
//! The database lives in cargo's target tmp directory (on disk, unlike a tmpfs
//! `/tmp`, where a sync would cost nothing).
//!
//! ```text
//! cargo bench -p tandem-store --bench recorder
//! ```

#[path = "../../../testdata/atari/fixture.rs"]
mod fixture;

use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::json;
use tandem_env::{Action, Observation};
use tandem_store::{
    ActionSource, AgentStep, EpisodeAgent, EpisodeStart, NewGame, Recorder, RecorderConfig,
    RecorderHandle, Seat, StepRecord, Store,
};
use tokio::runtime::Runtime;

/// An open production-configured store on a fresh file, with one game of one
/// seat, and a recorder writing to it.
struct Bench {
    _dir: tempfile::TempDir,
    store: Store,
    recorder: Recorder,
    handle: RecorderHandle,
    game_id: i64,
    episodes: u32,
}

impl Bench {
    fn open(rt: &Runtime) -> Bench {
        let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("temp dir");
        let path = dir.path().join("bench.db");
        let store = rt
            .block_on(Store::open(path.to_str().expect("UTF-8 path")))
            .expect("open");
        let durability = rt.block_on(store.durability()).expect("durability");
        // WAL, and every commit synced (FULL), as in production.
        assert!(
            durability.write_ahead_log && durability.synced_commits,
            "{durability:?}"
        );
        let game_id = rt
            .block_on(async {
                store.upsert_experiment("bench", "Bench", "").await?;
                let game = NewGame {
                    experiment_id: "bench".into(),
                    scene_index: 0,
                    scene_id: "play".into(),
                    env_id: "bench".into(),
                    env_version: 1,
                    spaces: json!({}),
                    fps: 60,
                    config: json!({}),
                };
                let seat = Seat {
                    agent: 0,
                    agent_name: "agent_0".into(),
                    participant_id: None,
                    policy: Some("random".into()),
                };
                store.create_game(&game, &[seat]).await
            })
            .expect("game");
        let (recorder, handle) = {
            let _runtime = rt.enter();
            store.recorder(RecorderConfig::default())
        };
        Bench {
            _dir: dir,
            store,
            recorder,
            handle,
            game_id,
            episodes: 0,
        }
    }

    /// Starts an episode (one agent) and returns its id.
    fn episode(&mut self, rt: &Runtime, reset_obs: Observation) -> i64 {
        let start = EpisodeStart {
            game_id: self.game_id,
            idx: self.episodes,
            seed: u64::from(self.episodes),
            env_id: "bench".into(),
            env_version: 1,
            started_us: tandem_store::now_us(),
            agents: vec![EpisodeAgent {
                agent_name: "agent_0".into(),
                actor: "participant:1".into(),
                reset_obs,
            }],
        };
        self.episodes += 1;
        rt.block_on(self.recorder.start_episode(start))
            .expect("start episode")
    }

    /// Sends `n` steps made by `obs` for episode `episode_id` from step `*t + 1`
    /// on, waits until they are durable, and returns the time taken.
    fn record(
        &self,
        rt: &Runtime,
        episode_id: i64,
        t: &mut u32,
        n: u64,
        mut obs: impl FnMut(u32) -> Observation,
    ) -> Duration {
        let started = Instant::now();
        for _ in 0..n {
            *t += 1;
            self.recorder.record_step(step(episode_id, *t, obs(*t)));
        }
        rt.block_on(self.recorder.flush()).expect("flush");
        started.elapsed()
    }

    /// Stops the writer, checks nothing was lost, and prints the counters.
    fn finish(self, rt: &Runtime, label: &str) {
        let stats = self.recorder.stats();
        drop(self.recorder);
        rt.block_on(self.handle.shutdown()).expect("shutdown");
        let rows = rt.block_on(self.store.count_steps()).expect("count");
        rt.block_on(self.store.close());
        assert_eq!(stats.steps_dropped, 0, "{label}: steps dropped");
        assert_eq!(stats.write_errors, 0, "{label}: write errors");
        assert_eq!(rows as u64, stats.steps_written, "{label}: rows vs written");
        println!(
            "{label}: {} steps committed in {} batches, none dropped",
            stats.steps_written, stats.batches_written
        );
    }
}

/// A step as a game loop records it for one human-held seat.
fn step(episode_id: i64, t: u32, obs: Observation) -> StepRecord {
    StepRecord {
        episode_id,
        t,
        server_us: tandem_store::now_us(),
        tick: None,
        agents: vec![AgentStep {
            action: Action::Discrete(i64::from(t % 2)),
            actor: "participant:1".into(),
            source: ActionSource::Keys,
            keys: Some("ArrowRight".into()),
            reward: 1.0,
            terminated: false,
            truncated: false,
            obs,
            input_seq: Some(u64::from(t / 4)),
            client_frame: Some(u64::from(t)),
            client_ts: Some(f64::from(t) * 16.7),
            feedback: None,
        }],
    }
}

/// A CartPole-like state: four floats.
fn cartpole_obs(t: u32) -> Observation {
    let x = t as f32 * 1e-3;
    Observation::vector(vec![x, -x, 0.5 * x, 0.01])
}

fn recorder(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut group = c.benchmark_group("recorder");
    group.throughput(Throughput::Elements(1));

    let mut bench = Bench::open(&rt);
    let episode_id = bench.episode(&rt, cartpole_obs(0));
    let mut t = 0;
    group.bench_function("cartpole_step", |b| {
        b.iter_custom(|n| bench.record(&rt, episode_id, &mut t, n, cartpole_obs))
    });
    bench.finish(&rt, "recorder/cartpole_step");

    let atari = fixture::Fixture::load_default();
    let shape = vec![atari.height as usize, atari.width as usize, 3];
    let atari_obs = |t: u32| Observation::U8 {
        shape: shape.clone(),
        data: atari.frame(t as usize % atari.frame_count()).to_vec(),
    };
    let mut bench = Bench::open(&rt);
    let episode_id = bench.episode(&rt, atari_obs(0));
    let mut t = 0;
    group.bench_function("atari_step", |b| {
        b.iter_custom(|n| bench.record(&rt, episode_id, &mut t, n, atari_obs))
    });
    bench.finish(&rt, "recorder/atari_step");
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(20);
    targets = recorder
}
criterion_main!(benches);
