//! Bad input and faults: each is refused or survived, affects one participant at
//! most, and loses nothing already recorded.

mod common;

use common::{Client, TestServer, count, open_socket, visit};
use futures::SinkExt;
use serde_json::json;
use tandem_wire::{ClientMessage, Input};
use tokio_tungstenite::tungstenite::Message;

/// A game that runs long enough to be interrupted: one episode of up to 100 s.
const LONG_GAME: &str = r#"
id = "long"
title = "Long game"

[[scene]]
kind = "game"
id = "play"
title = "Play"
env = "MountainCar-v0"
fps = 30
episodes = 1
max_steps = 3000
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

/// A socket without a participant cookie is closed with 4001 and nothing breaks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_without_cookie_is_closed() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = TestServer::start_at(LONG_GAME, &dir.path().join("t.db")).await;
    for cookie in [None, Some("tandem_participant=forged")] {
        let mut client = Client::from_socket(open_socket(server.addr, cookie).await);
        let closed = client.expect("closed").await;
        assert_eq!(closed["code"], 4001);
    }
    // The server still serves real participants.
    let mut p = Client::arrive(&server, "").await;
    assert_eq!(p.expect_scene().await["scene"]["kind"], "game");
    server.stop().await;
}

/// Malformed, unknown, oversized, binary and forged messages get an error reply,
/// and the participant carries on where they were.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_messages_are_refused_and_the_participant_carries_on() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = TestServer::start_at(common::QUICK_EXPERIMENT, &dir.path().join("t.db")).await;
    let mut p = Client::arrive(&server, "").await;
    p.expect_scene().await;
    for bad in [
        "not json".to_string(),
        r#"{"type":"teleport"}"#.to_string(),
        r#"{"type":"advance"}"#.to_string(),
        r#"{"type":"submit","scene":3,"answers":{}}"#.to_string(),
        r#"{"type":"advance","scene":4}"#.to_string(),
    ] {
        p.send_raw(Message::Text(bad.clone().into())).await;
        let error = p.expect("error").await;
        assert!(error["code"].is_string(), "{bad}: {error}");
    }
    p.send_raw(Message::Binary(vec![1, 2, 3].into())).await;
    assert_eq!(p.expect("error").await["code"], "invalid_message");
    // Still on the consent scene, and it still works.
    p.advance(0, true).await;
    assert_eq!(p.expect_scene().await["scene"]["id"], "instructions");

    // An oversized message closes only this socket; a new one resumes the scene.
    let huge = json!({"type": "ping", "t": "x".repeat(300 * 1024)}).to_string();
    let _ = p.ws.send(Message::Text(huge.into())).await;
    // `next` fails the test if the socket stays open and silent past the wait.
    while let Some(m) = p.next().await {
        if m["type"] == "closed" {
            break;
        }
    }
    let mut again = Client::connect(&server, &p.cookie).await;
    assert_eq!(again.expect_scene().await["scene"]["id"], "instructions");
    server.stop().await;
}

/// Inputs that arrive out of order are ignored: no step is ever driven by an
/// older input than one already applied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_order_inputs_are_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = TestServer::start_at(LONG_GAME, &dir.path().join("t.db")).await;
    let mut p = Client::arrive(&server, "").await;
    p.expect("frame").await;
    // Well-formed inputs, sent out of order on purpose.
    let input = |seq, frame, ts, key: &str| {
        ClientMessage::Input(Input {
            seq,
            frame: Some(frame),
            ts: Some(ts),
            tick: None,
            keys: vec![key.to_string()],
        })
    };
    p.send(&input(10, 100, 1.0, "ArrowRight")).await;
    p.send(&input(4, 40, 0.5, "ArrowLeft")).await;
    // Wait until a frame acknowledges seq 10, then a few more ticks.
    loop {
        let f = p.expect("frame").await;
        if f["ack"] == 10 {
            break;
        }
    }
    for _ in 0..5 {
        p.expect("frame").await;
    }
    server.stop().await;
    let db = server.db().await;
    assert!(
        count(
            &db,
            "SELECT COUNT(*) FROM steps WHERE input_seq = 10 AND action = '2'"
        )
        .await
            > 0
    );
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM steps WHERE input_seq = 4").await,
        0
    );
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM steps WHERE keys = 'ArrowLeft'").await,
        0
    );
}

/// A second tab replaces the first: the first is told and closed, the second
/// keeps the same participant, game and seat.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_tab_replaces_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = TestServer::start_at(LONG_GAME, &dir.path().join("t.db")).await;
    let mut first = Client::arrive(&server, "?workerId=W1&assignmentId=A1&hitId=H1").await;
    first.expect("frame").await;
    let mut second = Client::connect(&server, &first.cookie).await;
    first.expect("replaced").await;
    assert_eq!(first.expect("closed").await["code"], 4002);
    assert_eq!(second.expect_scene().await["scene"]["kind"], "game");
    let frame = second.expect("frame").await;
    assert_eq!(frame["full"], true);
    // A fresh visit with the same MTurk link (another browser, or someone
    // who found the link) is nobody new, and gets no cookie: MTurk's ids are
    // the link itself, and only the worker's own page keeps their key.
    let again = reqwest::get(server.url("/?workerId=W1&assignmentId=A1&hitId=H1"))
        .await
        .expect("answers");
    assert_eq!(again.status().as_u16(), 200);
    assert!(again.headers().get("set-cookie").is_none());
    server.stop().await;
    let db = server.db().await;
    assert_eq!(count(&db, "SELECT COUNT(*) FROM participants").await, 1);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM games").await, 1);
    assert_eq!(
        count(&db, "SELECT COUNT(DISTINCT participant_id) FROM game_seats").await,
        1
    );
    // Every episode is closed: complete, or interrupted by the shutdown.
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM episodes WHERE outcome IS NULL").await,
        0
    );
}

/// Closing the tab mid-episode stores the episode as interrupted with all its
/// steps; coming back resumes the same game with a new episode.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_the_tab_interrupts_the_episode_and_refresh_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = TestServer::start_at(LONG_GAME, &dir.path().join("t.db")).await;
    let mut p = Client::arrive(&server, "").await;
    for _ in 0..20 {
        p.expect("frame").await;
    }
    let cookie = p.cookie.clone();
    drop(p);
    {
        // The interruption is written with the recorder's next batch, within its
        // one-second flush interval: poll for it.
        let db = server.db().await;
        let mut row: (Option<String>, Option<String>, Option<i64>) = (None, None, None);
        for _ in 0..100 {
            row = sqlx::query_as("SELECT outcome, reason, steps FROM episodes WHERE idx = 0")
                .fetch_optional(&db)
                .await
                .unwrap()
                .unwrap_or((None, None, None));
            if row.0.is_some() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let (outcome, reason, steps) = row;
        assert_eq!(outcome.as_deref(), Some("interrupted"));
        assert_eq!(reason.as_deref(), Some("disconnected"));
        let steps = steps.unwrap();
        assert!(steps >= 19, "{steps} steps");
        assert_eq!(count(&db, "SELECT COUNT(*) FROM steps").await, steps);
    }
    // A refresh: same cookie, same participant, same game, a new episode.
    assert_eq!(visit(&server, "", Some(&cookie)).await, cookie);
    let mut back = Client::connect(&server, &cookie).await;
    assert_eq!(back.expect_scene().await["scene"]["kind"], "game");
    let frame = back.expect("frame").await;
    assert_eq!(frame["episode"], 1);
    server.stop().await;
    let db = server.db().await;
    assert_eq!(count(&db, "SELECT COUNT(*) FROM participants").await, 1);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM games").await, 1);
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) FROM events WHERE kind = 'disconnected'"
        )
        .await,
        1
    );
}

/// A server restart mid-game: shutdown records the running episode as interrupted
/// with every step flushed, and after the restart the participant resumes at
/// the same game with a new episode.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_resumes_every_participant_at_their_scene() {
    let dir = tempfile::tempdir().unwrap();
    let db_path = dir.path().join("t.db");
    let mut server = TestServer::start_at(LONG_GAME, &db_path).await;
    let mut p = Client::arrive(&server, "?PROLIFIC_PID=restart").await;
    for _ in 0..15 {
        p.expect("frame").await;
    }
    server.stop().await;
    assert_eq!(p.expect("closed").await["code"], 1012);
    {
        let db = server.db().await;
        let (outcome, reason, steps): (String, String, i64) =
            sqlx::query_as("SELECT outcome, reason, steps FROM episodes")
                .fetch_one(&db)
                .await
                .unwrap();
        assert_eq!(
            (outcome.as_str(), reason.as_str()),
            ("interrupted", "server_shutdown")
        );
        assert_eq!(count(&db, "SELECT COUNT(*) FROM steps").await, steps);
        db.close().await;
    }
    let mut server = TestServer::start_at(LONG_GAME, &db_path).await;
    let mut back = Client::connect(&server, &p.cookie).await;
    assert_eq!(back.expect_scene().await["scene"]["kind"], "game");
    assert_eq!(back.expect("frame").await["episode"], 1);
    server.stop().await;
    let db = server.db().await;
    assert_eq!(count(&db, "SELECT COUNT(*) FROM games").await, 1);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM episodes").await, 2);
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM episodes WHERE outcome IS NULL").await,
        0
    );
}

/// Sockets over the server's cap are closed with 1013 ("try again later")
/// before they cost a session; once a socket closes, the next one is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sockets_over_the_cap_are_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let options = tandem_server::Options {
        max_sockets: 1,
        ..tandem_server::Options::default()
    };
    let mut server =
        TestServer::start_with_options(LONG_GAME, &dir.path().join("t.db"), options).await;
    let mut first = Client::arrive(&server, "").await;
    first.expect("scene").await;

    let cookie = visit(&server, "", None).await;
    let mut refused = Client::connect(&server, &cookie).await;
    let closed = refused.next().await.expect("a close frame");
    assert_eq!(closed["type"], "closed");
    assert_eq!(closed["code"], 1013);

    first.ws.close(None).await.expect("close");
    // The permit returns once the first socket's session has ended.
    let deadline = tokio::time::Instant::now() + common::WAIT;
    loop {
        let mut next = Client::connect(&server, &cookie).await;
        match next.next().await {
            Some(m) if m["type"] == "hello" => break,
            other => {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "never served after the first socket closed: {other:?}"
                );
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
    server.stop().await;
}
