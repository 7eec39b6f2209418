//! A session driven through a fake socket (the session is generic over
//! `Sink`/`Stream`): what it closes with, and what it does with a client that
//! never reads.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::ws::Message;
use futures::stream::{self, BoxStream};
use futures::{Sink, Stream, StreamExt};
use tandem_store::{NewParticipant, RecruitIds};
use tandem_wire::{ClientMessage, MAX_CLIENT_MESSAGE};
use tokio::sync::Semaphore;

use super::*;
use crate::Options;

/// A socket whose incoming messages are given, and whose outgoing ones are
/// kept, or never accepted (a client that stopped reading).
struct FakeSocket {
    incoming: BoxStream<'static, Result<Message, std::io::Error>>,
    reading: bool,
    sent: Arc<Mutex<Vec<Message>>>,
}

impl Stream for FakeSocket {
    type Item = Result<Message, std::io::Error>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.incoming.poll_next_unpin(cx)
    }
}

impl Sink<Message> for FakeSocket {
    type Error = std::io::Error;
    fn poll_ready(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        if self.reading {
            Poll::Ready(Ok(()))
        } else {
            Poll::Pending // the TCP window never opens again
        }
    }
    fn start_send(self: Pin<&mut Self>, item: Message) -> Result<(), Self::Error> {
        lock(&self.sent).push(item);
        Ok(())
    }
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }
    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }
}

/// A survey first, so that answers can be refused.
const SURVEY: &str = r#"
id = "t"
title = "t"
[[scene]]
kind = "survey"
id = "s"
title = "s"
[[scene.question]]
id = "q"
prompt = "Pick one"
kind = "single"
options = ["a", "b"]
[[scene]]
kind = "end"
id = "end"
title = "end"
markdown = "x"
"#;

/// Runs a session for a new participant over `messages`, with a client that
/// reads (and hangs up after its messages) or not (and stays, silent);
/// returns what it was sent once the session ended.
async fn session(messages: Vec<Message>, reading: bool) -> Vec<Message> {
    let incoming = if reading {
        stream::iter(messages.into_iter().map(Ok)).boxed()
    } else {
        stream::iter(messages.into_iter().map(Ok))
            .chain(stream::pending())
            .boxed()
    };
    session_over(incoming, reading, Liveness::default()).await
}

/// Runs a session for a new participant over a client sending `incoming`,
/// which must end by itself; returns what it was sent.
async fn session_over(
    incoming: BoxStream<'static, Result<Message, std::io::Error>>,
    reading: bool,
    liveness: Liveness,
) -> Vec<Message> {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    session_in(&dir, incoming, reading, liveness).await.0
}

/// [`session_over`] with its database in `dir` (`t.db`); also returns the
/// server's state, its recorder flushed.
async fn session_in(
    dir: &tempfile::TempDir,
    incoming: BoxStream<'static, Result<Message, std::io::Error>>,
    reading: bool,
    liveness: Liveness,
) -> (Vec<Message>, AppState) {
    let experiment = tandem_experiment::parse(SURVEY, "t.toml").unwrap_or_else(|e| panic!("{e}"));
    let options = Options {
        liveness,
        ..Options::default()
    };
    let (state, _stop, _writer) = crate::test_support::state_with(dir, experiment, options).await;
    let participant = state
        .store
        .create_participant(&NewParticipant {
            token: "token".into(),
            public_id: "public".into(),
            experiment_id: "t".into(),
            recruit: RecruitIds::default(),
            user_agent: None,
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let entered = state
        .store
        .enter_scene(participant.id, None, (0, "s"))
        .await;
    assert!(entered.is_ok());
    let sent = Arc::new(Mutex::new(Vec::new()));
    let socket = FakeSocket {
        incoming,
        reading,
        sent: Arc::clone(&sent),
    };
    let permit = Arc::new(Semaphore::new(1))
        .try_acquire_owned()
        .unwrap_or_else(|e| panic!("{e}"));
    let ended = tokio::time::timeout(
        Duration::from_secs(20),
        run(
            socket,
            state.clone(),
            participant.id,
            permit,
            FrameEncoder::default(),
        ),
    )
    .await;
    assert!(ended.is_ok(), "the session ended by itself");
    assert_eq!(state.placement.counts().0, 0, "the socket was let go");
    assert!(state.recorder.flush().await.is_ok(), "the recorder writes");
    let sent = lock(&sent).clone();
    (sent, state)
}

fn close_code(sent: &[Message]) -> Option<u16> {
    sent.iter().rev().find_map(|m| match m {
        Message::Close(Some(frame)) => Some(frame.code),
        _ => None,
    })
}

fn text(message: ClientMessage) -> Message {
    Message::Text(message.to_text().into())
}

/// A client that never reads while it pings is dropped once its queue is
/// full: the server holds at most `SOCKET_QUEUE` replies for it.
#[tokio::test]
async fn a_client_that_does_not_read_is_dropped() {
    let pings = 10 * SOCKET_QUEUE;
    let messages = (0..pings)
        .map(|i| text(ClientMessage::Ping { t: i.into() }))
        .collect();
    let sent = session(messages, false).await;
    println!(
        "{pings} pings from a client that never reads: dropped with at most {SOCKET_QUEUE} replies queued"
    );
    assert!(sent.is_empty(), "nothing could be sent to it");
}

/// Binary messages count as refused: past 50, the socket closes with 1008.
#[tokio::test]
async fn binary_floods_close_with_1008() {
    let messages = (0..200)
        .map(|_| Message::Binary(vec![0u8; 1024].into()))
        .collect();
    let sent = session(messages, true).await;
    let errors = sent
        .iter()
        .filter(|m| matches!(m, Message::Text(t) if t.contains("\"error\"")))
        .count();
    println!(
        "200 binary messages: {errors} error replies, then close {:?}",
        close_code(&sent)
    );
    assert_eq!(close_code(&sent), Some(tandem_wire::CLOSE_POLICY));
    assert_eq!(errors, 50);
}

/// Rejected survey answers count toward the limit too (each is answered with
/// `invalid`, never with an `error`).
#[tokio::test]
async fn rejected_answers_count_toward_the_limit() {
    let answers = serde_json::json!({"q": "neither"});
    let messages = (0..60)
        .map(|_| {
            text(ClientMessage::Submit {
                scene: 0,
                answers: answers.clone(),
            })
        })
        .collect();
    let sent = session(messages, true).await;
    let invalid = sent
        .iter()
        .filter(|m| matches!(m, Message::Text(t) if t.contains("\"invalid\"")))
        .count();
    println!(
        "60 rejected submissions: {invalid} answered, then close {:?}",
        close_code(&sent)
    );
    assert_eq!(close_code(&sent), Some(tandem_wire::CLOSE_POLICY));
    assert_eq!(invalid, 51);
}

/// A ping that would make the server echo a large payload is refused.
#[tokio::test]
async fn big_pings_are_refused_not_echoed() {
    let t = "x".repeat(MAX_CLIENT_MESSAGE / 2);
    let ping = Message::Text(format!(r#"{{"type":"ping","t":"{t}"}}"#).into());
    let sent = session(vec![ping], true).await;
    let largest = sent
        .iter()
        .map(|m| match m {
            Message::Text(t) => t.len(),
            Message::Binary(b) => b.len(),
            _ => 0,
        })
        .max()
        .unwrap_or(0);
    println!(
        "a {} KB ping: the largest reply is {largest} bytes",
        t.len() / 1024
    );
    assert!(largest < 1024, "{largest}");
    assert!(
        sent.iter()
            .any(|m| matches!(m, Message::Text(t) if t.contains("invalid_message")))
    );
}

/// Pings every 50 ms and a limit of 150 ms: the production figures (15 s and
/// 45 s) scaled down so that the tests take a fraction of a second.
const QUICK_LIVENESS: Liveness = Liveness {
    ping_every: Duration::from_millis(50),
    silence_limit: Duration::from_millis(150),
};

/// A client that is still there but sends nothing (a peer gone without a
/// close: a laptop asleep) and answers no ping is closed with 4003 once the
/// silence limit has passed, after being pinged.
#[tokio::test]
async fn a_silent_peer_is_closed_after_the_silence_limit() {
    let started = tokio::time::Instant::now();
    let sent = session_over(stream::pending().boxed(), true, QUICK_LIVENESS).await;
    let lasted = started.elapsed();
    let pings = sent
        .iter()
        .filter(|m| matches!(m, Message::Ping(_)))
        .count();
    eprintln!("silent peer: {pings} pings unanswered, closed after {lasted:?}");
    assert_eq!(close_code(&sent), Some(tandem_wire::CLOSE_SILENT));
    assert!(pings >= 2, "{pings} pings");
    assert!(lasted >= QUICK_LIVENESS.silence_limit);
}

/// A client that answers pings (as every browser does, without the page's
/// code) stays connected however long it sends nothing else.
#[tokio::test]
async fn a_peer_that_answers_pings_stays() {
    let answers = stream::unfold(0u32, |n| async move {
        if n == 12 {
            return None;
        }
        tokio::time::sleep(QUICK_LIVENESS.ping_every).await;
        Some((Ok(Message::Pong(Default::default())), n + 1))
    });
    let started = tokio::time::Instant::now();
    let sent = session_over(answers.boxed(), true, QUICK_LIVENESS).await;
    let lasted = started.elapsed();
    assert_ne!(
        close_code(&sent),
        Some(tandem_wire::CLOSE_SILENT),
        "closed after {lasted:?}"
    );
    assert!(
        lasted >= 12 * QUICK_LIVENESS.ping_every,
        "ended after {lasted:?}"
    );
}

/// A page that floods inputs, `shown` reports and clock answers gets at most
/// its budget recorded (the inputs still count as held keys); a clock answer
/// to the probe the server sent is a sample, one to no probe is not.
#[tokio::test]
async fn timing_reports_are_recorded_within_their_budgets() {
    let mut messages: Vec<Message> = (1..=1000)
        .map(|seq| {
            text(ClientMessage::Input(tandem_wire::Input {
                seq,
                frame: Some(seq),
                ts: Some(seq as f64),
                tick: Some(seq),
                keys: vec!["ArrowLeft".into()],
            }))
        })
        .collect();
    messages.extend((0..100).map(|i| {
        text(ClientMessage::Shown {
            frames: vec![(i, i as f64), (i + 1, i as f64 + 16.0)],
        })
    }));
    // The first probe (sent as the socket opened) has id 1; id 99 was never sent.
    messages.push(text(ClientMessage::Clock { id: 99, t: 5.0 }));
    messages.push(text(ClientMessage::Clock { id: 1, t: 5.0 }));
    messages.push(text(ClientMessage::Clock { id: 1, t: 6.0 }));
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (sent, _state) = session_in(
        &dir,
        stream::iter(messages.into_iter().map(Ok)).boxed(),
        true,
        Liveness::default(),
    )
    .await;
    assert!(
        sent.iter()
            .any(|m| matches!(m, Message::Text(t) if t.as_str() == r#"{"type":"clock","id":1}"#)),
        "a clock probe is sent on connect"
    );
    let db = sqlx::SqlitePool::connect(&format!("sqlite://{}", dir.path().join("t.db").display()))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let count = |sql: &'static str| {
        let db = db.clone();
        async move {
            sqlx::query_scalar::<_, i64>(sql)
                .fetch_one(&db)
                .await
                .unwrap_or_else(|e| panic!("{e}"))
        }
    };
    let inputs = count("SELECT COUNT(*) FROM inputs").await;
    let displays = count("SELECT COUNT(*) FROM frame_displays").await;
    let clocks = count("SELECT COUNT(*) FROM clock_samples").await;
    eprintln!(
        "1000 inputs sent: {inputs} recorded; 100 shown: {displays} frames recorded; {clocks} clock sample"
    );
    // A burst of two seconds' budget, and a little refill while it ran.
    assert!((120..=150).contains(&inputs), "{inputs} inputs recorded");
    assert!(
        (16..=20).contains(&displays),
        "{displays} displays recorded"
    );
    assert_eq!(clocks, 1, "one sample, for the one probe answered first");
}
