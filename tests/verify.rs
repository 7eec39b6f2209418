//! `tandem verify` on a real recording: a study played through the real
//! binary (built-in CartPole driven by a policy, Gymnasium's CartPole through
//! a Python worker, and a MountainCar episode cut off when the server stops)
//! re-simulates bit for bit; a changed reward, a changed action and a
//! missing step are each found at their step, and the command exits 1.

mod common;

use std::process::Command;

use common::{Client, ServeProcess, visit_addr};

const STUDY: &str = r#"
id = "verify"
title = "Verify"

[[scene]]
kind = "game"
id = "balance"
title = "Balance"
env = "CartPole-v1"
fps = 60
episodes = 2
max_steps = 40
seed = 3

[[scene.seat]]
human = true
input = "feedback"
policy = "scripted"

[[scene]]
kind = "game"
id = "worker"
title = "Through a worker"
env = "gymnasium:CartPole-v1"
fps = 60
episodes = 1
max_steps = 30
default_action = 0
[scene.keys]
ArrowLeft = 0
ArrowRight = 1

[[scene]]
kind = "game"
id = "long"
title = "Cut off"
env = "MountainCar-v0"
fps = 60
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

fn verify(db: &std::path::Path) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tandem"))
        .arg("verify")
        .arg(db)
        .output()
        .expect("tandem verify runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    eprintln!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    (out.status.code(), stdout)
}

async fn sql(db: &std::path::Path, statement: &str) {
    let pool = sqlx::sqlite::SqlitePool::connect(&format!("sqlite://{}", db.display()))
        .await
        .expect("database opens");
    sqlx::query(sqlx::AssertSqlSafe(statement.to_string()))
        .execute(&pool)
        .await
        .expect("statement runs");
    pool.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recording_re_simulates_and_tampering_is_found() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (server, db) = ServeProcess::with_study(dir.path(), STUDY, "verify.db").await;
    let cookie = visit_addr(server.addr, "?PROLIFIC_PID=v", None).await;
    let mut p = Client::connect_addr(server.addr, &cookie).await;
    assert_eq!(p.expect_scene().await["scene"]["id"], "balance");
    assert_eq!(p.expect_scene().await["scene"]["id"], "worker");
    p.hold(&["ArrowRight"]).await;
    assert_eq!(p.expect_scene().await["scene"]["id"], "long");
    p.hold(&["ArrowLeft"]).await;
    for _ in 0..20 {
        p.expect("frame").await;
    }
    assert!(server.signal("TERM").await.success());

    let (code, out) = verify(&db);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("4 episodes: 4 match, 0 differ, 0 skipped"),
        "{out}"
    );
    assert_eq!(out.matches("complete, 40 steps match").count(), 2, "{out}");
    // Holding right topples Gymnasium's pole within the 30-step cap.
    assert!(
        out.lines().any(|l| l.contains("gymnasium:CartPole-v1")
            && l.contains("complete")
            && l.ends_with("steps match")),
        "{out}"
    );
    assert!(out.contains("interrupted (server_shutdown)"), "{out}");

    // The first episode: built-in CartPole, played by the scripted policy.
    sql(
        &db,
        "UPDATE steps SET reward = 0.5 WHERE episode_id = (SELECT MIN(id) FROM episodes) AND t = 5",
    )
    .await;
    let (code, out) = verify(&db);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("DIFFERS at step 5: agent 0's reward: recorded 0.5, re-simulated 1"),
        "{out}"
    );
    assert!(out.contains("3 match, 1 differ"), "{out}");
    sql(
        &db,
        "UPDATE steps SET reward = 1.0 WHERE episode_id = (SELECT MIN(id) FROM episodes) AND t = 5",
    )
    .await;

    sql(
        &db,
        "UPDATE steps SET action = CASE action WHEN '0' THEN '1' ELSE '0' END
              WHERE episode_id = (SELECT MIN(id) FROM episodes) AND t = 3",
    )
    .await;
    let (code, out) = verify(&db);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("DIFFERS at step 3: agent 0's observation: element"),
        "{out}"
    );
    sql(
        &db,
        "UPDATE steps SET action = CASE action WHEN '0' THEN '1' ELSE '0' END
              WHERE episode_id = (SELECT MIN(id) FROM episodes) AND t = 3",
    )
    .await;

    // Steps are stored as deltas against the previous one only for large
    // observations, so CartPole's seventh step can go without breaking the rest.
    sql(
        &db,
        "DELETE FROM steps WHERE episode_id = (SELECT MIN(id) FROM episodes) AND t = 7",
    )
    .await;
    let (code, out) = verify(&db);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("DIFFERS at step 7: step 7 is missing (the next recorded is 8)"),
        "{out}"
    );

    let (code, _) = verify(&dir.path().join("nothing.db"));
    assert_eq!(code, Some(2), "a missing database is an error");
}
