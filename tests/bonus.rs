//! `tandem export --format bonus`: a study's `[bonus]` rule applied to what
//! was recorded, written as Prolific's bulk bonus takes it (`id,amount`):
//! each completer's own returns, the base, the cap, rounded to the cent;
//! nobody who did not complete, and nobody without a platform id. And the
//! per-scene game figures the dashboard shows, from the same recording.

mod common;

use common::{Client, TestServer};

const STUDY: &str = r#"
id = "paid"
title = "Paid study"

[bonus]
per_point = 0.1
base = 0.5
max = 5

[[scene]]
kind = "game"
id = "pole"
title = "Pole"
env = "CartPole-v1"
fps = 60
episodes = 1
max_steps = 20
default_action = 0
[scene.keys]
ArrowLeft = 0
ArrowRight = 1

[[scene]]
kind = "end"
id = "end"
title = "Thanks"
markdown = "Done."
completion_code = "PAID"
"#;

async fn play_to_the_end(client: &mut Client) {
    loop {
        let scene = client.expect_scene().await;
        if scene["scene"]["kind"] == "end" {
            return;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bonuses_follow_the_rule_and_only_completers_are_paid() {
    let dir = tempfile::tempdir().unwrap();
    let db_path = dir.path().join("paid.db");
    let mut server = TestServer::start_at(STUDY, &db_path).await;
    let mut b1 = Client::arrive(&server, "?PROLIFIC_PID=B1&STUDY_ID=S&SESSION_ID=X").await;
    play_to_the_end(&mut b1).await;
    let mut anonymous = Client::arrive(&server, "").await;
    play_to_the_end(&mut anonymous).await;
    // Arrives, never plays to the end.
    let _gone = common::visit(&server, "?PROLIFIC_PID=B2&STUDY_ID=S&SESSION_ID=Y", None).await;
    server.stop().await;

    let db = server.db().await;
    let steps: f64 = sqlx::query_scalar(
        "SELECT ea.episode_return FROM episode_agents ea JOIN participants p
         ON ea.actor = 'participant:' || p.id WHERE p.prolific_pid = 'B1'",
    )
    .fetch_one(&db)
    .await
    .expect("B1's return");
    let out = dir.path().join("out");
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args(["export", "--format", "bonus"])
        .arg(&db_path)
        .arg(&out)
        .output()
        .expect("tandem runs");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let csv = std::fs::read_to_string(out.join("bonus-paid.csv")).expect("the bonus file");
    let expected = (0.5 + 0.1 * steps).min(5.0);
    assert_eq!(csv, format!("id,amount\nB1,{expected:.2}\n"), "{stdout}");
    assert!(
        stdout.contains("1 did not complete, 1 without a Prolific or MTurk id"),
        "{stdout}"
    );
}

const SCORED: &str = r#"
id = "scored"
title = "Scored study"

[[scene]]
kind = "game"
id = "pole"
title = "Pole"
env = "CartPole-v1"
fps = 60
episodes = 1
max_steps = 20
default_action = 0
[scene.keys]
ArrowLeft = 0
ArrowRight = 1

[[scene]]
kind = "score"
id = "how"
title = "How you did"
game = "pole"

[[scene]]
kind = "end"
id = "end"
title = "Thanks"
markdown = "Done."
"#;

/// A score scene shows each participant their own score against everyone's
/// so far, from what was recorded, and `advance` leaves it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_score_scene_places_the_participant_among_everyone() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = TestServer::start_at(SCORED, &dir.path().join("scored.db")).await;
    let mut first = Client::arrive(&server, "?PROLIFIC_PID=F").await;
    let shown = loop {
        let scene = first.expect_scene().await;
        if scene["scene"]["kind"] == "score" {
            break scene;
        }
    };
    assert_eq!(shown["scene"]["players"], 1, "{shown}");
    assert!(
        shown["scene"]["score"].as_f64().is_some_and(|s| s > 0.0),
        "{shown}"
    );
    assert!(
        shown["scene"]["better_than"].is_null(),
        "nobody else yet: {shown}"
    );
    // The recorder writes within its flush interval; the second participant
    // plays meanwhile, and sees both scores.
    let mut second = Client::arrive(&server, "?PROLIFIC_PID=S").await;
    let shown = loop {
        let scene = second.expect_scene().await;
        if scene["scene"]["kind"] == "score" {
            break scene;
        }
    };
    assert_eq!(shown["scene"]["players"], 2, "{shown}");
    let counts = shown["scene"]["histogram"]["counts"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        counts.iter().filter_map(|c| c.as_u64()).sum::<u64>(),
        2,
        "{shown}"
    );
    second.advance(1, false).await;
    assert_eq!(second.expect_scene().await["scene"]["kind"], "end");
    server.stop().await;
}

const ACTIVE: &str = r#"
id = "active"
title = "Active study"

[[scene]]
kind = "game"
id = "drive"
title = "Drive"
env = "MountainCar-v0"
fps = 30
time_limit_s = 2
default_action = 1
min_active_s = 1
not_passed_code = "N0T-PASSED"
[scene.keys]
ArrowLeft = 0
ArrowRight = 2

[[scene]]
kind = "end"
id = "end"
title = "Thanks"
markdown = "Done."
completion_code = "D0NE"
"#;

/// A game scene's minimum of active play: who holds keys passes on; who
/// never touches the keyboard sees the scene's not-passed page and code,
/// also after a reconnect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_minimum_of_active_play_to_pass() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = TestServer::start_at(ACTIVE, &dir.path().join("active.db")).await;
    let mut active = Client::arrive(&server, "?PROLIFIC_PID=busy").await;
    let mut idle = Client::arrive(&server, "?PROLIFIC_PID=idle").await;
    assert_eq!(active.expect_scene().await["scene"]["kind"], "game");
    assert_eq!(idle.expect_scene().await["scene"]["kind"], "game");
    active.expect("frame").await;
    active.hold(&["ArrowRight"]).await;
    let passed = active.expect_scene().await;
    assert_eq!(passed["scene"]["id"], "end", "{passed}");
    assert_eq!(passed["scene"]["completion_code"], "D0NE");
    let failed = idle.expect_scene().await;
    assert_eq!(failed["scene"]["id"], "drive-not-passed", "{failed}");
    assert_eq!(failed["scene"]["completion_code"], "N0T-PASSED");
    let cookie = idle.cookie.clone();
    drop(idle);
    let mut back = Client::connect(&server, &cookie).await;
    assert_eq!(back.expect_scene().await["scene"]["id"], "drive-not-passed");
    server.stop().await;
    let db = server.db().await;
    assert_eq!(
        common::count(&db, "SELECT COUNT(*) FROM events WHERE kind = 'not_passed'").await,
        1
    );
}
