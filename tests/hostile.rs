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

/// The `Set-Cookie` participant cookie of a `GET` with `query` (and `cookie`),
/// and the status.
async fn get_page(server: &TestServer, query: &str, cookie: Option<&str>) -> (u16, Option<String>) {
    let client = reqwest::Client::new();
    let mut request = client.get(server.url(&format!("/{query}")));
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    let response = request.send().await.expect("GET / answers");
    let cookie = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("tandem_participant="))
        .and_then(|v| v.split(';').next())
        .map(str::to_string);
    (response.status().as_u16(), cookie)
}

/// Knowing a participant's Prolific id is not being them: a link with the id
/// alone gets no cookie (in a fresh browser, or in one with a cookie of its
/// own), while the participant's own full link resumes them in another browser.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recruiting_id_alone_is_not_a_password() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = TestServer::start_at(GAME, &dir.path().join("t.db")).await;
    let full = "?PROLIFIC_PID=victim&STUDY_ID=study&SESSION_ID=s3cr3t";
    let (status, victim) = get_page(&server, full, None).await;
    assert_eq!(status, 200);
    let victim = victim.expect("the victim gets a cookie");

    let (alone, stolen) = get_page(&server, "?PROLIFIC_PID=victim", None).await;
    let (_, own) = get_page(&server, "", None).await;
    let own = own.expect("the attacker's own cookie");
    let (with_own, stolen_too) =
        get_page(&server, "?PROLIFIC_PID=victim&STUDY_ID=study", Some(&own)).await;
    let (guess, stolen_guess) = get_page(
        &server,
        "?PROLIFIC_PID=victim&STUDY_ID=study&SESSION_ID=guess",
        None,
    )
    .await;
    println!(
        "the victim's id alone: {alone}; with the attacker's cookie: {with_own}; \
         with a guessed session id: {guess}; cookies handed out: {}",
        [&stolen, &stolen_too, &stolen_guess]
            .iter()
            .filter(|c| c.is_some())
            .count()
    );
    assert_eq!((alone, with_own, guess), (409, 409, 409));
    assert!(stolen.is_none() && stolen_too.is_none() && stolen_guess.is_none());

    let (status, again) = get_page(&server, full, None).await;
    assert_eq!(status, 200);
    assert_eq!(
        again.as_deref(),
        Some(victim.as_str()),
        "the real participant resumes"
    );
    server.stop().await;
    let db = server.db().await;
    assert_eq!(
        common::count(&db, "SELECT COUNT(*) FROM participants").await,
        2
    );
}

/// Connections that open and say nothing are closed once the header deadline
/// passes, instead of being held forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_connections_are_closed_after_the_header_deadline() {
    use tokio::io::AsyncReadExt;
    let dir = tempfile::tempdir().unwrap();
    let options = tandem_server::Options {
        header_timeout: std::time::Duration::from_secs(1),
        ..tandem_server::Options::default()
    };
    let mut server = TestServer::start_with_options(GAME, &dir.path().join("t.db"), options).await;
    let mut silent = Vec::new();
    for _ in 0..150 {
        silent.push(
            tokio::net::TcpStream::connect(server.addr)
                .await
                .expect("connect"),
        );
    }
    let started = tokio::time::Instant::now();
    let mut closed = 0;
    for stream in &mut silent {
        let mut byte = [0u8; 1];
        // A closed connection reads 0 bytes (or fails); an open one would wait.
        if let Ok(Ok(0) | Err(_)) = tokio::time::timeout(WAIT, stream.read(&mut byte)).await {
            closed += 1;
        }
    }
    println!(
        "150 silent connections, header deadline 1 s: {closed} closed by the server within {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(closed, 150);
    let (status, _) = get_page(&server, "", None).await;
    assert_eq!(status, 200, "the server still serves");
    server.stop().await;
}

/// Connections over the cap are answered 503 and closed; the server goes on
/// serving once others close.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_cap_are_refused_clearly() {
    use tokio::io::AsyncReadExt;
    let dir = tempfile::tempdir().unwrap();
    let options = tandem_server::Options {
        max_connections: 20,
        ..tandem_server::Options::default()
    };
    let mut server = TestServer::start_with_options(GAME, &dir.path().join("t.db"), options).await;
    let mut held = Vec::new();
    for _ in 0..20 {
        held.push(
            tokio::net::TcpStream::connect(server.addr)
                .await
                .expect("connect"),
        );
    }
    // Give the server a moment to have accepted them all (it accepts in order).
    let mut extra = tokio::net::TcpStream::connect(server.addr)
        .await
        .expect("connect");
    let mut answer = String::new();
    let _ = tokio::time::timeout(WAIT, extra.read_to_string(&mut answer)).await;
    println!(
        "the 21st connection with a cap of 20: {:?}",
        answer.lines().next().unwrap_or("")
    );
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    drop(held);
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Ok(response) = reqwest::get(server.url("/healthz")).await
            && response.status().is_success()
        {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "never served again");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    server.stop().await;
}

/// CPU seconds a process has used (user + system), from `/proc`.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which is in parentheses and may hold spaces).
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks: f64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i).and_then(|f| f.parse::<f64>().ok()))
        .sum();
    ticks / 100.0
}

/// Out of file descriptors, the server backs off between accepts instead of
/// spinning, and serves again once connections close.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accept_errors_back_off() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    // 64 descriptors: a few dozen connections exhaust them.
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -n 64 && exec {} serve --addr 127.0.0.1:0 --header-timeout 30 --db {}",
            env!("CARGO_BIN_EXE_tandem"),
            db.display()
        ))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("tandem serve starts");
    let stdout = child.stdout.take().expect("stdout");
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).map(|_| line)
    })
    .await
    .unwrap()
    .expect("serve prints its URL");
    let addr: std::net::SocketAddr = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("http://"))
        .map(|a| a.trim_end_matches('/'))
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no address in {line:?}"));
    let mut held = Vec::new();
    for _ in 0..100 {
        if let Ok(stream) = tokio::net::TcpStream::connect(addr).await {
            held.push(stream);
        }
    }
    let before = cpu_seconds(child.id());
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let used = cpu_seconds(child.id()) - before;
    println!("out of descriptors for 2 s: the server used {used:.2} s of CPU");
    drop(held);
    let mut served = false;
    for _ in 0..100 {
        if let Ok(response) = reqwest::get(format!("http://{addr}/healthz")).await {
            served = response.status().is_success();
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    assert!(
        used < 1.0,
        "a busy accept loop would use about 2 s of CPU in 2 s: {used:.2} s"
    );
    assert!(served, "the server serves again once connections close");
}
