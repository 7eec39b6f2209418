//! Episode ids come from blocks the database hands out: unique across recorders
//! sharing one file (as several servers would), increasing across a reopen, and
//! above every episode already stored, including in files from before the
//! `id_blocks` table existed.

mod common;

use std::collections::HashSet;
use std::path::Path;

use common::{db_path, episode_start, game, raw, temp_store};
use sqlx::migrate::Migrator;
use tandem_store::{Recorder, RecorderConfig, Store};

/// Another store on the same file, as a second server process would open it.
async fn open(path: &Path) -> Store {
    Store::open(path.to_str().expect("utf-8 path"))
        .await
        .expect("open store")
}

/// Starts `n` episodes of game `g` from index `*idx` on; returns their ids.
async fn start(recorder: &Recorder, g: i64, idx: &mut u32, n: usize) -> Vec<i64> {
    let mut ids = Vec::with_capacity(n);
    for _ in 0..n {
        let id = recorder
            .start_episode(episode_start(g, *idx, 1))
            .await
            .expect("start episode");
        *idx += 1;
        ids.push(id);
    }
    ids
}

fn assert_increasing(ids: &[i64]) {
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
}

/// Two recorders on one file, each from its own `Store` as two processes would
/// have, never hand out the same id, each hands out increasing ids (one of them
/// well past a block), and every episode is written.
#[tokio::test]
async fn two_recorders_on_one_file_never_share_an_id() {
    let (dir, first) = temp_store().await;
    let second = open(&db_path(&dir)).await;
    let (g1, g2) = (game(&first, 1).await, game(&second, 1).await);
    let (a, a_handle) = first.recorder(RecorderConfig::default());
    let (b, b_handle) = second.recorder(RecorderConfig::default());

    let (mut a_idx, mut b_idx) = (0, 0);
    let (mut a_ids, mut b_ids) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        a_ids.extend(start(&a, g1, &mut a_idx, 250).await);
        b_ids.extend(start(&b, g2, &mut b_idx, 3).await);
    }
    assert_increasing(&a_ids);
    assert_increasing(&b_ids);
    let all: HashSet<i64> = a_ids.iter().chain(&b_ids).copied().collect();
    assert_eq!(
        all.len(),
        a_ids.len() + b_ids.len(),
        "an id was handed out twice"
    );

    a.flush().await.expect("flush a");
    b.flush().await.expect("flush b");
    assert_eq!(first.count_episodes().await.expect("count"), 1265);
    for id in a_ids.iter().chain(&b_ids) {
        assert!(
            first.episode(*id).await.expect("read").is_some(),
            "episode {id}"
        );
    }
    drop((a, b));
    a_handle.shutdown().await.expect("shutdown a");
    b_handle.shutdown().await.expect("shutdown b");
}

/// After a clean shutdown and a reopen of the file, the next recorder continues
/// right after the last id handed out: the unused rest of the block went back.
#[tokio::test]
async fn ids_continue_after_a_reopen() {
    let (dir, store) = temp_store().await;
    let g = game(&store, 1).await;
    let (recorder, handle) = store.recorder(RecorderConfig::default());
    let mut idx = 0;
    let before = start(&recorder, g, &mut idx, 3).await;
    drop(recorder);
    handle.shutdown().await.expect("shutdown");
    store.close().await;

    let store = open(&db_path(&dir)).await;
    let (recorder, handle) = store.recorder(RecorderConfig::default());
    let after = start(&recorder, g, &mut idx, 3).await;
    assert_eq!(after[0], before[2] + 1, "{before:?} then {after:?}");
    assert_increasing(&after);
    drop(recorder);
    handle.shutdown().await.expect("shutdown");
    assert_eq!(store.count_episodes().await.expect("count"), 6);
}

/// A file written before migration 0003 (episodes numbered from `MAX(id)`) gets
/// ids above the episodes it holds once it is opened and migrated.
#[tokio::test]
async fn ids_start_above_episodes_stored_before_id_blocks_existed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = db_path(&dir);
    let old_schema = tempfile::tempdir().expect("temp dir");
    let migrations = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    for file in ["0001_schema.sql", "0002_multiplayer.sql"] {
        std::fs::copy(migrations.join(file), old_schema.path().join(file)).expect("copy");
    }
    let mut conn = raw_create(&path).await;
    Migrator::new(old_schema.path())
        .await
        .expect("old migrations")
        .run(&mut conn)
        .await
        .expect("old schema");
    for sql in [
        "INSERT INTO experiments (id, title, config, first_seen_us, updated_us)
         VALUES ('exp', 'Old', '', 0, 0)",
        "INSERT INTO games (id, experiment_id, scene_index, scene_id, env_id, env_version,
             spaces, fps, config, started_us)
         VALUES (7, 'exp', 1, 'play', 'CartPole-v1', 1, '{}', 30, '{}', 0)",
        "INSERT INTO episodes (id, game_id, idx, seed, env_id, env_version, started_us)
         VALUES (41, 7, 0, 0, 'CartPole-v1', 1, 0), (40, 7, 1, 0, 'CartPole-v1', 1, 0)",
    ] {
        sqlx::query(sql).execute(&mut conn).await.expect(sql);
    }
    drop(conn);

    let store = open(&path).await;
    let (recorder, handle) = store.recorder(RecorderConfig::default());
    let mut idx = 2;
    let ids = start(&recorder, 7, &mut idx, 2).await;
    assert_eq!(ids, [42, 43]);
    drop(recorder);
    handle.shutdown().await.expect("shutdown");
    assert_eq!(store.count_episodes().await.expect("count"), 4);
}

/// An episode stored behind the recorder's back (a file restored or edited by
/// hand) is skipped over when the next block is reserved.
#[tokio::test]
async fn ids_skip_episodes_stored_behind_the_recorders_back() {
    let (dir, store) = temp_store().await;
    let g = game(&store, 1).await;
    sqlx::query(
        "INSERT INTO episodes (id, game_id, idx, seed, env_id, env_version, started_us)
         VALUES (500, ?, 0, 0, 'CartPole-v1', 1, 0)",
    )
    .bind(g)
    .execute(&mut raw(&db_path(&dir)).await)
    .await
    .expect("episode 500");
    let (recorder, handle) = store.recorder(RecorderConfig::default());
    let mut idx = 1;
    assert_eq!(start(&recorder, g, &mut idx, 1).await, [501]);
    drop(recorder);
    handle.shutdown().await.expect("shutdown");
    assert_eq!(store.episodes_for_game(g).await.expect("episodes").len(), 2);
}

/// A connection that creates the file, as an older Tandem would have.
async fn raw_create(path: &Path) -> sqlx::SqliteConnection {
    use sqlx::Connection;
    sqlx::SqliteConnection::connect(&format!("sqlite://{}?mode=rwc", path.display()))
        .await
        .expect("create file")
}

/// Episode indices within a game: a new game holds its first block; a task
/// coming back after a crash reserves above it and learns which indices were
/// lost; a clean stop gives the unused rest back, so indices stay dense.
#[tokio::test]
async fn episode_indices_are_never_used_twice() {
    let (_dir, store) = temp_store().await;
    let g = game(&store, 1).await;
    let (recorder, writer) = store.recorder(RecorderConfig::default());
    let mut idx = 0;
    start(&recorder, g, &mut idx, 3).await;
    recorder.flush().await.expect("flush");
    // A crash: the task held 0..100 and never gave the rest back.
    let after_crash = store
        .reserve_episode_indices(g, tandem_store::EPISODE_INDEX_BLOCK)
        .await
        .expect("reserve");
    assert_eq!(after_crash.block.start, tandem_store::EPISODE_INDEX_BLOCK);
    assert_eq!(
        after_crash.skipped,
        Some(3..tandem_store::EPISODE_INDEX_BLOCK)
    );
    // A clean stop after two more episodes gives back the rest of the block.
    let (next, end) = (after_crash.block.start + 2, after_crash.block.end);
    assert!(
        store
            .release_episode_indices(g, next, end)
            .await
            .expect("release")
    );
    let again = store.reserve_episode_indices(g, 10).await.expect("reserve");
    assert_eq!(again.block, next..next + 10);
    // Nothing was recorded at 100 and 101 in this test, so they count as skipped.
    assert_eq!(again.skipped, Some(3..next));
    // A release after someone else reserved changes nothing.
    assert!(
        !store
            .release_episode_indices(g, next, end)
            .await
            .expect("release")
    );
    drop(recorder);
    writer.shutdown().await.expect("shutdown");
}
