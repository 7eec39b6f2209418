//! The recorder: batching, flushing by size and by time, ordering of episode ends
//! after steps, shutdown, and what happens when the database refuses or fails.

mod common;

use std::time::Duration;

use common::{
    cartpole_obs, cartpole_step, db_path, episode_start, game, raw, temp_store, wait_for_steps,
};
use serde_json::json;
use tandem_env::{Action, Observation};
use tandem_store::{
    ActionSource, AgentStep, EpisodeEnd, Outcome, RecorderConfig, StepRecord, StoreError,
};

fn config(flush_interval: Duration) -> RecorderConfig {
    RecorderConfig {
        flush_interval,
        ..RecorderConfig::default()
    }
}

/// 5,000 steps arrive in more than one batch, all of them are in the database
/// after `flush`, and every observation decodes to what was recorded.
#[tokio::test]
async fn recorder_batches_and_flush_writes_everything() {
    let (_dir, store) = temp_store().await;
    let g = game(&store, 1).await;
    let (recorder, handle) = store.recorder(config(Duration::from_secs(3600)));
    let ep = recorder
        .start_episode(episode_start(g, 0, 1))
        .await
        .unwrap();
    for t in 1..=5000 {
        recorder.record_step(cartpole_step(ep, t, 1));
    }
    recorder.flush().await.unwrap();

    let stats = recorder.stats();
    assert_eq!(stats.steps_received, 5000);
    assert_eq!(stats.steps_written, 5000);
    assert!(stats.batches_written > 1, "{stats:?}");
    assert_eq!(stats.write_errors, 0);
    let steps = store.steps_for_episode(ep).await.unwrap();
    assert_eq!(steps.len(), 5000);
    for (i, s) in steps.iter().enumerate() {
        let t = i as u32 + 1;
        assert_eq!(s.t, t);
        assert_eq!(s.obs, cartpole_obs(t, 0));
        assert_eq!(s.action, Action::Discrete(i64::from(t % 2)));
        assert_eq!(s.input_seq, Some(u64::from(t)));
    }
    let agents = store.episode_agents(ep).await.unwrap();
    assert_eq!(agents[0].reset_obs, cartpole_obs(0, 0));
    let episode = store.episode(ep).await.unwrap().unwrap();
    assert_eq!(
        episode.seed,
        u64::MAX,
        "u64 seeds survive SQLite's signed integers"
    );
    handle.shutdown().await.unwrap();
}

/// With a short flush interval, a handful of steps reach the database without
/// anyone calling `flush`. (Real time: sqlx's pool does not run on paused time.)
#[tokio::test]
async fn recorder_flushes_by_time() {
    let (_dir, store) = temp_store().await;
    let g = game(&store, 1).await;
    let (recorder, _handle) = store.recorder(config(Duration::from_millis(50)));
    let ep = recorder
        .start_episode(episode_start(g, 0, 1))
        .await
        .unwrap();
    for t in 1..=3 {
        recorder.record_step(cartpole_step(ep, t, 1));
    }
    assert_eq!(wait_for_steps(&store, 3).await, 3);
    assert_eq!(recorder.stats().batches_written, 1);
}

/// `end_episode` returns only once every step sent before it is stored, and
/// stores the outcome and the per-agent and total returns.
#[tokio::test]
async fn end_episode_after_steps_means_steps_are_present() {
    let (_dir, store) = temp_store().await;
    let g = game(&store, 2).await;
    let (recorder, _handle) = store.recorder(config(Duration::from_secs(3600)));
    let ep = recorder
        .start_episode(episode_start(g, 0, 2))
        .await
        .unwrap();
    for t in 1..=100 {
        recorder.record_step(cartpole_step(ep, t, 2));
    }
    let end = EpisodeEnd {
        ended_us: tandem_store::now_us(),
        steps: 100,
        outcome: Outcome::Complete,
        returns: vec![100.0, 50.0],
        final_info: None,
    };
    recorder.end_episode(ep, end).await.unwrap();

    assert_eq!(store.count_steps().await.unwrap(), 200);
    let episode = store.episode(ep).await.unwrap().unwrap();
    assert_eq!(episode.outcome, Some(Outcome::Complete));
    assert_eq!(episode.steps, Some(100));
    assert_eq!(episode.total_return, Some(150.0));
    let returns: Vec<_> = store
        .episode_agents(ep)
        .await
        .unwrap()
        .iter()
        .map(|a| a.episode_return)
        .collect();
    assert_eq!(returns, [Some(100.0), Some(50.0)]);
    assert_eq!(store.episodes_completed(g).await.unwrap(), 1);
    assert_eq!(store.next_episode_index(g).await.unwrap(), 1);
}

/// `interrupt_unfinished` marks exactly the open episodes, with the steps and
/// returns that reached the database; completed ones are left alone.
#[tokio::test]
async fn interrupt_unfinished_marks_open_episodes() {
    let (_dir, store) = temp_store().await;
    let g = game(&store, 1).await;
    let (recorder, handle) = store.recorder(RecorderConfig::default());
    let done = recorder
        .start_episode(episode_start(g, 0, 1))
        .await
        .unwrap();
    let end = EpisodeEnd {
        ended_us: tandem_store::now_us(),
        steps: 0,
        outcome: Outcome::Complete,
        returns: vec![0.0],
        final_info: None,
    };
    recorder.end_episode(done, end).await.unwrap();
    let open = recorder
        .start_episode(episode_start(g, 1, 1))
        .await
        .unwrap();
    for t in 1..=7 {
        recorder.record_step(cartpole_step(open, t, 1));
    }
    handle.shutdown().await.unwrap();

    assert_eq!(
        store.interrupt_unfinished("server restart").await.unwrap(),
        1
    );
    assert_eq!(store.interrupt_unfinished("again").await.unwrap(), 0);
    let episodes = store.episodes_for_game(g).await.unwrap();
    assert_eq!(episodes[0].outcome, Some(Outcome::Complete));
    assert_eq!(
        episodes[1].outcome,
        Some(Outcome::Interrupted {
            reason: "server restart".into()
        })
    );
    assert_eq!(episodes[1].steps, Some(7));
    assert_eq!(episodes[1].total_return, Some(7.0));
    assert!(episodes[1].ended_us.is_some());
    assert_eq!(store.episodes_completed(g).await.unwrap(), 1);
    assert_eq!(store.next_episode_index(g).await.unwrap(), 2);
}

/// Dropping every `Recorder` makes the writer commit what it holds and stop,
/// even with a flush interval far in the future.
#[tokio::test]
async fn dropping_the_recorder_flushes_pending_steps() {
    let (_dir, store) = temp_store().await;
    let g = game(&store, 1).await;
    let (recorder, handle) = store.recorder(config(Duration::from_secs(3600)));
    let ep = recorder
        .start_episode(episode_start(g, 0, 1))
        .await
        .unwrap();
    for t in 1..=10 {
        recorder.record_step(cartpole_step(ep, t, 1));
    }
    recorder.record_event(None, Some(g), "last_words", json!({"t": 10}));
    let clone = recorder.clone();
    drop(recorder);
    drop(clone);
    handle.shutdown().await.unwrap();
    assert_eq!(store.count_steps().await.unwrap(), 10);
    assert_eq!(store.events_for_game(g).await.unwrap().len(), 1);
}

/// `shutdown` commits everything sent before it even while recorders are still
/// held; afterwards the recorder refuses work without panicking.
#[tokio::test]
async fn shutdown_commits_then_refuses() {
    let (_dir, store) = temp_store().await;
    let g = game(&store, 1).await;
    let (recorder, handle) = store.recorder(config(Duration::from_secs(3600)));
    let ep = recorder
        .start_episode(episode_start(g, 0, 1))
        .await
        .unwrap();
    for t in 1..=20 {
        recorder.record_step(cartpole_step(ep, t, 1));
    }
    handle.shutdown().await.unwrap();
    assert_eq!(store.count_steps().await.unwrap(), 20);

    recorder.record_step(cartpole_step(ep, 21, 1));
    assert_eq!(recorder.stats().steps_dropped, 1);
    let err = recorder.start_episode(episode_start(g, 1, 1)).await;
    assert!(matches!(err, Err(StoreError::RecorderClosed)), "{err:?}");
    assert!(matches!(
        recorder.flush().await,
        Err(StoreError::RecorderClosed)
    ));
}

/// A step the database rejects (recorded twice) is dropped and counted alone;
/// the rest of its batch and later batches are still written.
#[tokio::test]
async fn a_rejected_step_does_not_poison_the_batch() {
    let (_dir, store) = temp_store().await;
    let g = game(&store, 1).await;
    let (recorder, _handle) = store.recorder(config(Duration::from_secs(3600)));
    let ep = recorder
        .start_episode(episode_start(g, 0, 1))
        .await
        .unwrap();
    recorder.record_step(cartpole_step(ep, 1, 1));
    recorder.record_step(cartpole_step(ep, 2, 1));
    recorder.record_step(cartpole_step(ep, 2, 1));
    recorder.record_step(cartpole_step(ep, 3, 1));
    recorder.record_step(cartpole_step(ep + 1000, 1, 1)); // no such episode
    recorder.flush().await.unwrap();
    assert_eq!(store.count_steps().await.unwrap(), 3);
    let stats = recorder.stats();
    assert_eq!(
        (stats.steps_written, stats.steps_dropped),
        (3, 2),
        "{stats:?}"
    );

    recorder.record_step(cartpole_step(ep, 4, 1));
    recorder.flush().await.unwrap();
    assert_eq!(store.count_steps().await.unwrap(), 4);
    // Ending an unknown episode is a no-op, not an error.
    let end = EpisodeEnd {
        ended_us: 0,
        steps: 0,
        outcome: Outcome::Complete,
        returns: vec![],
        final_info: None,
    };
    recorder.end_episode(ep + 1000, end).await.unwrap();
}

/// Every kind of action and observation survives the database: pixels
/// (compressed), integer grids, multi-discrete and continuous actions, keys.
#[tokio::test]
async fn actions_and_observations_of_every_kind_round_trip() {
    let (dir, store) = temp_store().await;
    let g = game(&store, 3).await;
    let (recorder, _handle) = store.recorder(RecorderConfig::default());
    let ep = recorder
        .start_episode(episode_start(g, 0, 3))
        .await
        .unwrap();
    let pixels = Observation::U8 {
        shape: vec![64, 48, 3],
        data: (0..64 * 48 * 3).map(|i| (i / 50 % 5) as u8 * 40).collect(),
    };
    let grid = Observation::I64 {
        shape: vec![5, 7],
        data: (0..35).map(|i| i - 17).collect(),
    };
    let agent = |action: Action, obs: Observation, source: ActionSource| AgentStep {
        action,
        actor: "participant:1".into(),
        source,
        keys: Some("ArrowLeft+Space".into()),
        reward: -0.5,
        terminated: true,
        truncated: false,
        obs,
        input_seq: Some(9),
        client_frame: Some(u64::MAX), // does not fit SQLite: stored as NULL
        client_ts: Some(1234.5),
        feedback: None,
    };
    let step = StepRecord {
        episode_id: ep,
        t: 1,
        server_us: 42,
        tick: None,
        agents: vec![
            agent(Action::Discrete(3), pixels.clone(), ActionSource::Keys),
            agent(
                Action::MultiDiscrete(vec![1, 0]),
                grid.clone(),
                ActionSource::Fallback,
            ),
            agent(
                Action::Continuous(vec![0.25, -1.0]),
                cartpole_obs(1, 2),
                ActionSource::Correction,
            ),
        ],
    };
    recorder.record_step(step.clone());
    recorder.flush().await.unwrap();

    let stored = store.steps_for_episode(ep).await.unwrap();
    assert_eq!(stored.len(), 3);
    for (s, sent) in stored.iter().zip(&step.agents) {
        assert_eq!(s.action, sent.action);
        assert_eq!(s.obs, sent.obs);
        assert_eq!(s.source, sent.source.as_str());
        assert_eq!(s.keys.as_deref(), Some("ArrowLeft+Space"));
        assert!(s.terminated && !s.truncated);
        assert_eq!((s.input_seq, s.client_frame), (Some(9), None));
        assert_eq!(
            (s.client_ts, s.server_us, s.reward),
            (Some(1234.5), 42, -0.5)
        );
    }
    let blob_len: i64 = sqlx::query_scalar("SELECT length(obs) FROM steps WHERE agent = 0")
        .fetch_one(&mut raw(&db_path(&dir)).await)
        .await
        .unwrap();
    assert!(
        blob_len < 64 * 48 * 3 / 4,
        "pixels are compressed: {blob_len} bytes"
    );
}

/// Events sent through the recorder are stored with the next commit, in order.
#[tokio::test]
async fn recorder_events_are_committed_with_steps() {
    let (_dir, store) = temp_store().await;
    let g = game(&store, 1).await;
    let (recorder, _handle) = store.recorder(config(Duration::from_secs(3600)));
    recorder.record_event(None, Some(g), "fallback", json!({"agent": 0}));
    recorder.record_event(None, Some(g), "resumed", json!({"agent": 0}));
    assert!(store.events_for_game(g).await.unwrap().is_empty());
    recorder.flush().await.unwrap();
    let kinds: Vec<String> = store
        .events_for_game(g)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(kinds, ["fallback", "resumed"]);
}

/// A commit that fails (here: another connection holds the write lock past the
/// 5 s busy timeout) is counted, keeps its steps, and is retried on its own once
/// the database accepts writes again. Takes about five seconds.
#[tokio::test]
async fn a_failed_commit_keeps_the_batch_and_retries() {
    let (dir, store) = temp_store().await;
    let g = game(&store, 1).await;
    let (recorder, _handle) = store.recorder(config(Duration::from_millis(20)));
    let ep = recorder
        .start_episode(episode_start(g, 0, 1))
        .await
        .unwrap();

    let mut blocker = raw(&db_path(&dir)).await;
    sqlx::query("BEGIN EXCLUSIVE")
        .execute(&mut blocker)
        .await
        .unwrap();
    for t in 1..=10 {
        recorder.record_step(cartpole_step(ep, t, 1));
    }
    let give_up = std::time::Instant::now() + Duration::from_secs(20);
    while recorder.stats().write_errors == 0 && std::time::Instant::now() < give_up {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(recorder.stats().write_errors, 1);
    assert_eq!(recorder.stats().steps_written, 0);
    sqlx::query("ROLLBACK").execute(&mut blocker).await.unwrap();

    assert_eq!(wait_for_steps(&store, 10).await, 10);
    // The writer counts a batch once its commit has returned, which can be a
    // moment after the rows are visible to another connection.
    let give_up = std::time::Instant::now() + Duration::from_secs(5);
    while recorder.stats().steps_written < 10 && std::time::Instant::now() < give_up {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let stats = recorder.stats();
    assert_eq!(
        (stats.steps_written, stats.steps_dropped),
        (10, 0),
        "{stats:?}"
    );
}

/// Pixel observations are stored as deltas against the previous step (whole at
/// every keyframe), and read back exactly, step after step.
#[tokio::test]
async fn pixel_observations_are_stored_as_deltas_and_read_back_exactly() {
    let (dir, store) = temp_store().await;
    let g = game(&store, 1).await;
    let (recorder, _handle) = store.recorder(config(Duration::from_secs(3600)));
    let pixels = |t: u32| {
        let mut data = vec![40u8; 64 * 48 * 3];
        // A small moving square, as in a game frame.
        for y in 0..4 {
            for x in 0..4 {
                let i = ((y + 10) * 64 + (x + t as usize % 60)) * 3;
                data[i] = 255;
            }
        }
        Observation::U8 {
            shape: vec![48, 64, 3],
            data,
        }
    };
    let mut start = episode_start(g, 0, 1);
    start.agents[0].reset_obs = pixels(0);
    let ep = recorder.start_episode(start).await.unwrap();
    for t in 1..=130 {
        let mut step = cartpole_step(ep, t, 1);
        step.agents[0].obs = pixels(t);
        recorder.record_step(step);
    }
    recorder.flush().await.unwrap();

    let steps = store.steps_for_episode(ep).await.unwrap();
    assert_eq!(steps.len(), 130);
    for step in &steps {
        assert_eq!(step.obs, pixels(step.t), "step {}", step.t);
    }
    let blobs: Vec<(i64, Vec<u8>)> =
        sqlx::query_as("SELECT t, obs FROM steps WHERE episode_id = ? ORDER BY t")
            .bind(ep)
            .fetch_all(&mut raw(&db_path(&dir)).await)
            .await
            .unwrap();
    for (t, blob) in &blobs {
        let keyframe = (*t as u32).is_multiple_of(tandem_store::obs_codec::KEYFRAME_INTERVAL);
        assert_eq!(
            tandem_store::obs_codec::is_delta(blob),
            !keyframe,
            "step {t}"
        );
    }
}

/// Episode boundaries cost no commit: a start, its steps and its end queue up
/// and land together, in order, with the next batch; ids continue from what the
/// database holds when a new recorder starts.
#[tokio::test]
async fn episode_boundaries_are_batched_with_their_steps() {
    let (_dir, store) = temp_store().await;
    let g = game(&store, 1).await;
    let (recorder, handle) = store.recorder(config(Duration::from_secs(3600)));
    let first = recorder
        .start_episode(episode_start(g, 0, 1))
        .await
        .unwrap();
    for t in 1..=10 {
        recorder.record_step(cartpole_step(first, t, 1));
    }
    let end = |steps| EpisodeEnd {
        ended_us: tandem_store::now_us(),
        steps,
        outcome: Outcome::Complete,
        returns: vec![f64::from(steps)],
        final_info: None,
    };
    recorder.record_episode_end(first, end(10)).unwrap();
    let second = recorder
        .start_episode(episode_start(g, 1, 1))
        .await
        .unwrap();
    assert_eq!(second, first + 1);
    recorder.record_step(cartpole_step(second, 1, 1));
    // Nothing was committed at the boundaries.
    assert_eq!(store.count_episodes().await.unwrap(), 0);
    recorder.flush().await.unwrap();
    assert_eq!(store.count_episodes().await.unwrap(), 2);
    assert_eq!(store.count_steps().await.unwrap(), 11);
    let done = store.episode(first).await.unwrap().unwrap();
    assert_eq!(
        (done.outcome, done.steps),
        (Some(Outcome::Complete), Some(10))
    );
    drop(recorder);
    handle.shutdown().await.unwrap();

    let (recorder, _handle) = store.recorder(config(Duration::from_secs(3600)));
    let third = recorder
        .start_episode(episode_start(g, 2, 1))
        .await
        .unwrap();
    assert_eq!(third, second + 1);
    recorder.flush().await.unwrap();
    assert_eq!(store.count_episodes().await.unwrap(), 3);
}

/// Hundreds of timing reports of every kind in one batch (so in statements of
/// many sizes) come back row for row, values intact, interleaved with events.
#[tokio::test]
async fn timing_reports_in_bulk_are_written_row_for_row() {
    use sqlx::Row;
    use tandem_store::{
        ClockSample, DisplayRecord, InputRecord, NewParticipant, RecruitIds, TimingRecord,
    };

    let (dir, store) = temp_store().await;
    let g = game(&store, 1).await;
    let participant = store
        .create_participant(&NewParticipant {
            token: "timing-token".into(),
            public_id: "T1".into(),
            experiment_id: common::EXPERIMENT.into(),
            recruit: RecruitIds::default(),
            user_agent: None,
        })
        .await
        .unwrap()
        .id;
    let (recorder, handle) = store.recorder(config(Duration::from_secs(3600)));
    let inputs = 301u64;
    for seq in 1..=inputs {
        recorder.record_timing(TimingRecord::Input(InputRecord {
            participant_id: participant,
            game_id: Some(g),
            episode_id: None,
            seq,
            keys: vec![format!("Key{seq}")],
            client_ts: Some(seq as f64 / 4.0),
            client_frame: Some(seq * 2),
            tick: (seq % 3 != 0).then_some(seq + 7),
            server_us: seq as i64 * 1000,
        }));
        if seq % 100 == 0 {
            recorder.record_event(Some(participant), Some(g), "marker", json!({"seq": seq}));
        }
    }
    for report in 0..13u64 {
        recorder.record_timing(TimingRecord::Displays(DisplayRecord {
            participant_id: participant,
            game_id: Some(g),
            frames: (0..report).map(|i| (report * 100 + i, i as f64)).collect(),
            server_us: 5,
        }));
    }
    for n in 0..3 {
        recorder.record_timing(TimingRecord::Clock(ClockSample {
            participant_id: participant,
            server_us: n,
            rtt_us: 900 + n,
            offset_us: -n,
        }));
    }
    recorder.flush().await.unwrap();

    let mut conn = raw(&db_path(&dir)).await;
    let rows = sqlx::query(
        "SELECT seq, keys, client_ts, client_frame, tick, server_us FROM inputs ORDER BY seq",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert_eq!(rows.len() as u64, inputs);
    for (row, seq) in rows.iter().zip(1i64..) {
        assert_eq!(row.get::<i64, _>("seq"), seq);
        assert_eq!(row.get::<String, _>("keys"), format!("[\"Key{seq}\"]"));
        assert_eq!(row.get::<f64, _>("client_ts"), seq as f64 / 4.0);
        assert_eq!(row.get::<i64, _>("client_frame"), seq * 2);
        let tick = row.get::<Option<i64>, _>("tick");
        assert_eq!(tick, (seq % 3 != 0).then_some(seq + 7));
        assert_eq!(row.get::<i64, _>("server_us"), seq * 1000);
    }
    let displays: Vec<(i64, f64)> =
        sqlx::query_as("SELECT tick, client_ts FROM frame_displays ORDER BY tick")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    let expected: Vec<(i64, f64)> = (0..13i64)
        .flat_map(|r| (0..r).map(move |i| (r * 100 + i, i as f64)))
        .collect();
    assert_eq!(displays, expected);
    let clocks: Vec<(i64, i64, i64)> =
        sqlx::query_as("SELECT server_us, rtt_us, offset_us FROM clock_samples ORDER BY server_us")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    assert_eq!(clocks, [(0, 900, 0), (1, 901, -1), (2, 902, -2)]);
    let markers = store.events_for_game(g).await.unwrap().len();
    assert_eq!(markers, 3);
    handle.shutdown().await.unwrap();
}
