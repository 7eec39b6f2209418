//! Entry screening over a real socket: the server measures the round trip
//! itself (a page that answers its probes late is slow, whatever it says),
//! checks the window and the key press the page reports, moves a passing
//! participant on, and shows one who fails the scene's own screened-out page
//! with its code, finished there, also after a reconnect. What was measured
//! is recorded either way.

mod common;

use std::time::Duration;

use common::{Client, TestServer, count};

const STUDY: &str = r#"
id = "screened"
title = "Screened study"

[[scene]]
kind = "screening"
id = "check"
title = "Checking your setup"
max_rtt_ms = 150
pings = 3
min_width = 800
min_height = 600
keyboard = true
screened_out_code = "SCREENED-0UT"
screened_out_redirect = "https://app.prolific.com/submissions/complete?cc={completion_code}"

[[scene]]
kind = "info"
id = "welcome"
title = "Welcome"
markdown = "You passed."

[[scene]]
kind = "end"
id = "end"
title = "Thanks"
markdown = "Done."
completion_code = "D0NE"
"#;

async fn report(client: &mut Client, width: u32, height: u32, key: bool) -> serde_json::Value {
    client
        .send(&tandem_wire::ClientMessage::Screen {
            scene: 0,
            width,
            height,
            key,
        })
        .await;
    client.expect_scene().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn screening_measures_decides_and_records() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = TestServer::start_at(STUDY, &dir.path().join("screen.db")).await;

    // A quick connection, a big window, a key: on to the study.
    let mut quick = Client::arrive(&server, "?PROLIFIC_PID=quick").await;
    let scene = quick.expect_scene().await;
    assert_eq!(scene["scene"]["kind"], "screening");
    assert_eq!(scene["scene"]["keyboard"], true);
    let next = report(&mut quick, 1280, 800, true).await;
    assert_eq!(next["scene"]["id"], "welcome", "{next}");

    // A page that answers the server's probes 300 ms late is slow, whatever
    // else it reports.
    let mut slow = Client::arrive(&server, "?PROLIFIC_PID=slow").await;
    slow.expect_scene().await;
    slow.clock_delay = Duration::from_millis(300);
    let out = report(&mut slow, 1280, 800, true).await;
    assert_eq!(out["scene"]["kind"], "end", "{out}");
    assert_eq!(out["scene"]["id"], "check-screened-out");
    assert_eq!(out["scene"]["completion_code"], "SCREENED-0UT");
    assert_eq!(
        out["scene"]["redirect_url"],
        "https://app.prolific.com/submissions/complete?cc=SCREENED-0UT"
    );

    // Answers slower than the probes are sent still count (none is
    // forgotten), and another report while measuring does not restart it.
    let mut slower = Client::arrive(&server, "?PROLIFIC_PID=slower").await;
    slower.expect_scene().await;
    slower.clock_delay = Duration::from_millis(900);
    slower
        .send(&tandem_wire::ClientMessage::Screen {
            scene: 0,
            width: 1280,
            height: 800,
            key: true,
        })
        .await;
    let out = report(&mut slower, 1280, 800, true).await;
    assert_eq!(out["scene"]["id"], "check-screened-out", "{out}");

    // A small window without a key press.
    let mut small = Client::arrive(&server, "?PROLIFIC_PID=small").await;
    small.expect_scene().await;
    let out = report(&mut small, 640, 480, false).await;
    assert_eq!(out["scene"]["id"], "check-screened-out", "{out}");

    // Screened out stays screened out: a reconnect shows the same page, and
    // another report is not taken.
    let cookie = small.cookie.clone();
    drop(small);
    let mut again = Client::connect(&server, &cookie).await;
    let shown = again.expect_scene().await;
    assert_eq!(shown["scene"]["id"], "check-screened-out", "{shown}");
    server.stop().await;

    let db = server.db().await;
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM participants WHERE completion_code = 'SCREENED-0UT' AND finished_us IS NOT NULL").await,
        3
    );
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM participants WHERE prolific_pid = 'quick' AND finished_us IS NULL AND scene_index = 1").await,
        1
    );
    let (median, passed, failures): (String, String, String) = sqlx::query_as(
        "SELECT
            (SELECT answer FROM responses r WHERE r.participant_id = p.id AND question_id = 'rtt_median_ms'),
            (SELECT answer FROM responses r WHERE r.participant_id = p.id AND question_id = 'passed'),
            (SELECT answer FROM responses r WHERE r.participant_id = p.id AND question_id = 'failures')
         FROM participants p WHERE prolific_pid = 'slow'",
    )
    .fetch_one(&db)
    .await
    .expect("the slow participant's measurements");
    let median: f64 = median.parse().expect("a number");
    assert!(median >= 300.0, "the server measured {median} ms");
    let slower_median: String = sqlx::query_scalar(
        "SELECT answer FROM responses r JOIN participants p ON p.id = r.participant_id
         WHERE p.prolific_pid = 'slower' AND question_id = 'rtt_median_ms'",
    )
    .fetch_one(&db)
    .await
    .expect("the slower participant's median");
    assert!(
        slower_median.parse::<f64>().expect("a number") >= 900.0,
        "{slower_median}"
    );
    assert_eq!(passed, "false");
    assert!(failures.contains("round trip"), "{failures}");
    let quick_median: String = sqlx::query_scalar(
        "SELECT answer FROM responses r JOIN participants p ON p.id = r.participant_id
         WHERE p.prolific_pid = 'quick' AND question_id = 'rtt_median_ms'",
    )
    .fetch_one(&db)
    .await
    .expect("the quick participant's median");
    assert!(
        quick_median.parse::<f64>().expect("a number") < 150.0,
        "{quick_median}"
    );
    let small_failures: String = sqlx::query_scalar(
        "SELECT answer FROM responses r JOIN participants p ON p.id = r.participant_id
         WHERE p.prolific_pid = 'small' AND question_id = 'failures'",
    )
    .fetch_one(&db)
    .await
    .expect("the small window's failures");
    assert!(
        small_failures.contains("window 640×480"),
        "{small_failures}"
    );
    assert!(small_failures.contains("no key"), "{small_failures}");
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) FROM events WHERE kind = 'screened_out'"
        )
        .await,
        3
    );
}
