//! A hostile client's attacks, over real sockets against a real server, each
//! printing the figure that shows it no longer works: floods of bad messages,
//! oversized and broken frames.

mod common;

use common::{Client, TestServer, WAIT};
use futures::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};

/// A game that runs long enough for every attack.
const GAME: &str = r#"
id = "hostile"
title = "Hostile clients"

[[scene]]
kind = "game"
id = "play"
title = "Play"
env = "MountainCar-v0"
fps = 30
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

/// This process's resident memory, in kB.
fn rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

/// Reads until the server closes the socket; returns the close code (0 when
/// the connection dropped without one).
async fn close_code(client: &mut Client) -> u16 {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the server never closed the socket"
        );
        match tokio::time::timeout(WAIT, client.ws.next()).await {
            Ok(Some(Ok(Message::Close(frame)))) => {
                return frame.map(|f| u16::from(f.code)).unwrap_or(0);
            }
            Ok(Some(Ok(_))) => continue,
            Ok(Some(Err(_)) | None) | Err(_) => return 0,
        }
    }
}

/// 1,500 pings of 200 KB from a client that never reads once took the server
/// from 27 MB to 321 MB. Now such a ping is refused (its payload would be
/// echoed), the socket is closed after 50 refusals, and memory stays put.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_big_pings_does_not_grow_memory() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = TestServer::start_at(GAME, &dir.path().join("t.db")).await;
    let mut attacker = Client::arrive(&server, "").await;
    let before = rss_kb();
    let payload = format!(r#"{{"type":"ping","t":"{}"}}"#, "x".repeat(200 * 1024));
    let mut sent = 0;
    for _ in 0..1_500 {
        if attacker
            .ws
            .send(Message::Text(payload.clone().into()))
            .await
            .is_err()
        {
            break;
        }
        sent += 1;
    }
    let after = rss_kb();
    println!(
        "{sent} pings of 200 KB sent before the server closed the socket; \
         RSS {before} kB -> {after} kB ({:+} kB, client included)",
        after as i64 - before as i64
    );
    assert!(sent < 1_500, "the server closed the socket");
    assert!(
        after < before + 64 * 1024,
        "memory grew by {} kB",
        after - before
    );
    server.stop().await;
}

/// A message over the 256 KiB limit closes the socket with 1009.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_message_closes_with_1009() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = TestServer::start_at(GAME, &dir.path().join("t.db")).await;
    let mut attacker = Client::arrive(&server, "").await;
    let big = format!(r#"{{"type":"ping","t":"{}"}}"#, "x".repeat(300 * 1024));
    let _ = attacker.ws.send(Message::Text(big.into())).await;
    let code = close_code(&mut attacker).await;
    println!("a 300 KB message: close code {code}");
    assert_eq!(code, tandem_wire::CLOSE_TOO_BIG);
    server.stop().await;
}

/// A text frame that is not UTF-8 closes the socket with 1007; a frame that
/// breaks the protocol (a continuation with nothing to continue) with 1002.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_frames_close_with_their_codes() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = TestServer::start_at(GAME, &dir.path().join("t.db")).await;

    let mut bad_text = Client::arrive(&server, "").await;
    let frame = Frame::message(vec![0xff, 0xfe, 0xfd], OpCode::Data(Data::Text), true);
    let _ = bad_text.ws.send(Message::Frame(frame)).await;
    let utf8 = close_code(&mut bad_text).await;

    let mut bad_frame = Client::arrive(&server, "").await;
    let frame = Frame::message(b"half".to_vec(), OpCode::Data(Data::Continue), true);
    let _ = bad_frame.ws.send(Message::Frame(frame)).await;
    let protocol = close_code(&mut bad_frame).await;

    println!("invalid UTF-8: close {utf8}; a stray continuation frame: close {protocol}");
    assert_eq!(utf8, tandem_wire::CLOSE_INVALID_DATA);
    assert_eq!(protocol, tandem_wire::CLOSE_PROTOCOL);
    server.stop().await;
}
