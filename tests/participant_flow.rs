//! A participant walks the whole flow over real HTTP and a real WebSocket, and the
//! database holds what the issue promises: participant, scene events, answers,
//! game, episodes and every step.

mod common;

use common::{Client, QUICK_EXPERIMENT, TestServer, count};
use serde_json::json;

/// Consent → instructions → a game played with keys → survey → end, then every
/// row is in the database with the right contents.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn participant_plays_start_to_finish_and_everything_is_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = TestServer::start_at(QUICK_EXPERIMENT, &dir.path().join("t.db")).await;
    let mut p = Client::arrive(&server, "?PROLIFIC_PID=pp1&STUDY_ID=st1&SESSION_ID=se1").await;

    let hello = p.expect("hello").await;
    assert_eq!(hello["experiment"]["id"], "quick");
    let scene = p.expect_scene().await;
    assert_eq!(scene["index"], 0);
    assert_eq!(scene["scene"]["kind"], "info");
    assert_eq!(scene["scene"]["checkbox"], "I agree");

    // Consent is required, and scenes cannot be skipped.
    p.advance(0, false).await;
    assert_eq!(p.expect("error").await["code"], "consent_required");
    p.advance(1, false).await;
    assert_eq!(p.expect("error").await["code"], "wrong_scene");
    p.advance(0, true).await;
    assert_eq!(p.expect_scene().await["scene"]["id"], "instructions");
    p.advance(1, false).await;
    let game = p.expect_scene().await;
    assert_eq!(game["scene"]["kind"], "game");
    assert_eq!(game["scene"]["render"], "sprites");

    // Play: hold right, and see frames acknowledge the input.
    let first = p.expect("frame").await;
    assert_eq!(first["full"], true);
    assert!(!first["upsert"].as_array().unwrap().is_empty());
    p.hold(&["ArrowRight"]).await;
    let sent = p.seq;
    let mut acked = false;
    let mut frames = 0;
    let survey = loop {
        let m = p.next().await.expect("socket stays open");
        match m["type"].as_str() {
            Some("frame") => {
                frames += 1;
                if m["ack"].as_u64().is_some_and(|a| a >= sent) {
                    acked = true;
                }
                assert!(m["full"] == true || m["upsert"].is_array());
            }
            Some("scene") => break m,
            _ => {}
        }
    };
    assert!(acked, "a frame acknowledged input {sent}");
    assert!(frames >= 10, "saw {frames} frames");
    assert_eq!(survey["scene"]["kind"], "survey");
    let index = survey["index"].as_u64().unwrap() as usize;

    // The server validates the survey.
    p.submit(index, json!({"difficulty": 9})).await;
    let invalid = p.expect("invalid").await;
    assert!(invalid["errors"]["difficulty"].is_string());
    assert!(invalid["errors"]["hand"].is_string());
    p.submit(
        index,
        json!({"difficulty": 4, "hand": "right", "comments": "fun"}),
    )
    .await;
    let end = p.expect_scene().await;
    assert_eq!(end["scene"]["kind"], "end");
    assert_eq!(end["scene"]["completion_code"], "C0DE42");
    assert_eq!(
        end["scene"]["redirect_url"],
        "https://example.org/done?cc=C0DE42&pid=pp1"
    );
    server.stop().await;

    let db = server.db().await;
    let (pid, study, session, scene_index, code): (String, String, String, i64, Option<String>) =
        sqlx::query_as(
            "SELECT prolific_pid, study_id, session_id, scene_index, completion_code FROM participants",
        )
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(
        (pid.as_str(), study.as_str(), session.as_str()),
        ("pp1", "st1", "se1")
    );
    assert_eq!(scene_index, 4);
    assert_eq!(code.as_deref(), Some("C0DE42"));
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) FROM scene_events WHERE event = 'entered'"
        )
        .await,
        5
    );
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) FROM scene_events WHERE event = 'left'"
        )
        .await,
        4
    );
    assert_eq!(count(&db, "SELECT COUNT(*) FROM responses").await, 3);
    let hand: String =
        sqlx::query_scalar("SELECT answer FROM responses WHERE question_id = 'hand'")
            .fetch_one(&db)
            .await
            .unwrap();
    assert_eq!(hand, "\"right\"");
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM games WHERE ended_us IS NOT NULL").await,
        1
    );
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) FROM episodes WHERE outcome = 'complete' AND env_id = 'CartPole-v1'"
        )
        .await,
        2
    );
    // Every step of every episode is there, numbered 1..=steps.
    let steps_promised = count(&db, "SELECT SUM(steps) FROM episodes").await;
    let steps_stored = count(&db, "SELECT COUNT(*) FROM steps").await;
    assert_eq!(steps_promised, steps_stored);
    assert!(steps_stored > 2);
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM episodes e WHERE (SELECT MAX(t) FROM steps s WHERE s.episode_id = e.id) != e.steps").await,
        0
    );
    // Steps after the key press carry the input that set them.
    let keyed = count(
        &db,
        "SELECT COUNT(*) FROM steps WHERE source = 'keys' AND keys = 'ArrowRight' AND action = '1' \
         AND input_seq IS NOT NULL AND client_frame IS NOT NULL AND client_ts IS NOT NULL",
    )
    .await;
    assert!(keyed > 0, "steps driven by ArrowRight were recorded");
    assert!(
        count(
            &db,
            "SELECT COUNT(*) FROM steps WHERE obs IS NULL OR length(obs) = 0"
        )
        .await
            == 0
    );
    let returns_match = count(
        &db,
        "SELECT COUNT(*) FROM episodes e WHERE abs(e.total_return - (SELECT SUM(reward) FROM steps s WHERE s.episode_id = e.id)) > 1e-9",
    )
    .await;
    assert_eq!(returns_match, 0);
}

/// Pixel frames: deltas to a socket that keeps up, but a page that offers
/// `tandem.whole-pixels` (it cannot inflate deltas) gets whole frames only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_that_cannot_inflate_gets_whole_pixel_frames() {
    use futures::StreamExt;
    use tokio_tungstenite::tungstenite::Message;

    const PIXELS: &str = r#"
id = "pixels"
title = "Pixels"

[[scene]]
kind = "game"
id = "drive"
title = "Drive"
env = "MountainCar-v0"
render = "pixels"
fps = 30
time_limit_s = 60
default_action = 1
[scene.keys]
ArrowLeft = 0

[[scene]]
kind = "end"
id = "end"
title = "Done"
markdown = "Thanks."
"#;
    let dir = tempfile::tempdir().unwrap();
    let mut server = TestServer::start_at(PIXELS, &dir.path().join("t.db")).await;
    // Byte 0 of the first 12 binary messages on a socket offering `protocols`.
    let first_bytes = |protocols: Option<&'static str>| {
        let server = &server;
        async move {
            let cookie = common::visit(server, "", None).await;
            let mut ws = common::open_socket_at(server.addr, "/ws", Some(&cookie), protocols).await;
            let mut seen = Vec::new();
            while seen.len() < 12 {
                match tokio::time::timeout(std::time::Duration::from_secs(10), ws.next()).await {
                    Ok(Some(Ok(Message::Binary(bytes)))) => seen.push(bytes[0]),
                    Ok(Some(Ok(_))) => {}
                    other => panic!("the socket ended: {other:?}"),
                }
            }
            seen
        }
    };
    let plain = first_bytes(None).await;
    assert_eq!(plain[0], 1, "a whole frame first: {plain:?}");
    assert!(plain.contains(&2), "then deltas: {plain:?}");
    let whole = first_bytes(Some("tandem.v1, tandem.whole-pixels")).await;
    assert!(
        whole.iter().all(|&b| b == 1),
        "whole frames only: {whole:?}"
    );
    server.stop().await;
}
