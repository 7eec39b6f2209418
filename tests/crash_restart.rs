//! A server killed with SIGKILL and started again on the same database: the
//! participant resumes with their cookie, and no episode index of the game is
//! played twice, even one whose start the crash kept from the disk; and a
//! clean stop skips none.

mod common;

use common::{Client, ServeProcess, visit_addr};
use sqlx::sqlite::SqlitePool;

/// A long game with a fixed seed: were an index reused, its episode would
/// replay with the same seed as the one the crash cut off.
const GAME: &str = r#"
id = "crash"
title = "Crash and restart"

[[scene]]
kind = "game"
id = "play"
title = "Play"
env = "MountainCar-v0"
fps = 30
seed = 7
time_limit_s = 600
default_action = 1
[scene.keys]
ArrowLeft = 0
ArrowRight = 2

[[scene]]
kind = "end"
id = "end"
title = "Done"
markdown = "Thanks."
"#;

/// Plays until the first frame of a game and returns its episode index.
async fn first_episode(p: &mut Client) -> u64 {
    assert_eq!(p.expect_scene().await["scene"]["kind"], "game");
    p.expect("frame").await["episode"]
        .as_u64()
        .expect("frames carry their episode")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_episode_cut_off_by_a_crash_keeps_its_index() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("crash.db");
    let experiment = dir.path().join("crash.toml");
    std::fs::write(&experiment, GAME).expect("experiment written");
    let experiment = experiment.to_str().expect("UTF-8 path");

    let server = ServeProcess::start(&db, &[experiment]).await;
    let cookie = visit_addr(server.addr, "?PROLIFIC_PID=crash", None).await;
    let mut p = Client::connect_addr(server.addr, &cookie).await;
    let lost = first_episode(&mut p).await;
    // Well inside the recorder's one-second batch: the episode's start has
    // most likely not reached the disk.
    for _ in 0..5 {
        p.expect("frame").await;
    }
    let killed = server.signal("KILL").await;
    assert!(!killed.success(), "SIGKILL ends the server: {killed:?}");

    let pool = SqlitePool::connect(&format!("sqlite://{}", db.display()))
        .await
        .expect("database opens");
    let stored_before: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM episodes")
        .fetch_one(&pool)
        .await
        .expect("count");
    pool.close().await;

    let server = ServeProcess::start(&db, &[experiment]).await;
    let mut p = Client::connect_addr(server.addr, &cookie).await;
    let resumed = first_episode(&mut p).await;
    for _ in 0..5 {
        p.expect("frame").await;
    }
    let stopped = server.signal("TERM").await;
    assert!(stopped.success(), "serve exits 0 on SIGTERM: {stopped:?}");

    // A clean stop gives the unused indices back: nothing is skipped.
    let server = ServeProcess::start(&db, &[experiment]).await;
    let mut p = Client::connect_addr(server.addr, &cookie).await;
    let after_clean_stop = first_episode(&mut p).await;
    let stopped = server.signal("TERM").await;
    assert!(stopped.success(), "serve exits 0 on SIGTERM: {stopped:?}");
    assert_eq!(
        after_clean_stop,
        resumed + 1,
        "a clean stop skipped indices"
    );

    let pool = SqlitePool::connect(&format!("sqlite://{}", db.display()))
        .await
        .expect("database opens");
    let indices: Vec<i64> = sqlx::query_scalar("SELECT idx FROM episodes ORDER BY id")
        .fetch_all(&pool)
        .await
        .expect("episodes");
    let skipped: Vec<String> = sqlx::query_scalar(
        "SELECT detail FROM events WHERE kind = 'episode_indices_skipped' ORDER BY id",
    )
    .fetch_all(&pool)
    .await
    .expect("events");
    eprintln!(
        "episode {lost} cut off by SIGKILL ({stored_before} episode rows on disk then); \
         after the restart the game played episode {resumed}, after a clean stop \
         {after_clean_stop}; stored indices {indices:?}; \
         skipped {skipped:?}"
    );
    assert!(
        resumed > lost,
        "episode index {lost} was played again after the crash"
    );
    let mut unique = indices.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(
        unique.len(),
        indices.len(),
        "an episode index was stored twice"
    );
    assert_eq!(skipped.len(), 1, "the skipped indices are recorded once");
    let skipped: serde_json::Value = serde_json::from_str(&skipped[0]).expect("JSON detail");
    let (from, to) = (skipped["from"].as_u64(), skipped["to"].as_u64());
    assert!(
        from.is_some_and(|f| f <= lost + 1) && to == Some(resumed),
        "skipped {skipped} should run from the lost episode (or after it) to {resumed}"
    );
}
