//! One participant's WebSocket: a send task and a receive loop.
//!
//! The send task is the only writer to the socket. It takes control messages (scenes,
//! game status, errors) in order from an unbounded channel, and frames from the
//! current game's `watch` channel, newest only, so frames never queue behind a slow
//! browser. The receive loop parses each message and hands it to the flow; a bad
//! message gets an `error` reply and is otherwise ignored. When either side ends,
//! the other is stopped and the session is removed, which detaches it from its game.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::sync::{mpsc, watch};
use tracing::{debug, info, warn};

use crate::flow;
use crate::frames::{Encoded, FrameEncoder, PublishedFrame};
use crate::game::{SeatInput, SharedInput};
use crate::state::{AppState, lock, stopped};
use crate::wire::{self, ClientMessage};

/// How many refused messages a socket may send before it is closed.
const MAX_BAD_MESSAGES: u32 = 50;

/// A message for the send task.
pub enum Outgoing {
    Json(Value),
    /// Start streaming this game's frames, as seated agent `agent`.
    Watch {
        frames: watch::Receiver<Option<Arc<PublishedFrame>>>,
        agent: usize,
    },
    /// Stop streaming frames.
    Unwatch,
    /// Close the socket with this code and reason.
    Close(u16, &'static str),
}

/// A connected participant.
pub struct Session {
    pub participant_id: i64,
    pub connection: u64,
    out: mpsc::UnboundedSender<Outgoing>,
    /// The keys this socket holds now, shared with the game seat it occupies.
    pub input: SharedInput,
    last_seq: AtomicU64,
}

impl Session {
    /// Queues a JSON message; a closed socket drops it silently (it is going away).
    pub fn send(&self, message: Value) {
        let _ = self.out.send(Outgoing::Json(message));
    }

    /// Queues a control instruction for the send task.
    pub fn control(&self, outgoing: Outgoing) {
        let _ = self.out.send(outgoing);
    }

    /// A sender for the game loop to reach this socket.
    pub fn sender(&self) -> mpsc::UnboundedSender<Outgoing> {
        self.out.clone()
    }
}

/// Runs one participant's socket until it closes.
pub async fn run(socket: WebSocket, state: AppState, participant_id: i64) {
    let connection = state.next_connection_id();
    let (out_tx, out_rx) = mpsc::unbounded_channel();
    let session = Arc::new(Session {
        participant_id,
        connection,
        out: out_tx,
        input: Arc::new(std::sync::Mutex::new(SeatInput::default())),
        last_seq: AtomicU64::new(0),
    });
    if let Some(old) = lock(&state.sessions).insert(participant_id, Arc::clone(&session)) {
        info!(
            participant = participant_id,
            "a new socket replaces the old one"
        );
        old.send(wire::replaced());
        old.control(Outgoing::Close(wire::CLOSE_REPLACED, "replaced"));
    }
    let (sink, mut stream) = socket.split();
    let mut send_task = tokio::spawn(send_loop(sink, out_rx));

    flow::on_connect(&state, &session).await;

    let mut shutdown = state.shutdown.clone();
    let mut bad_messages = 0u32;
    // A finished JoinHandle must not be polled again, so remember it finished.
    let mut send_finished = false;
    loop {
        let message = tokio::select! {
            message = stream.next() => message,
            _ = stopped(&mut shutdown) => {
                session.control(Outgoing::Close(wire::CLOSE_RESTART, "server restarting"));
                break;
            }
            _ = &mut send_task => {
                send_finished = true;
                break;
            }
        };
        let text = match message {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Binary(_))) => {
                refuse(
                    &session,
                    &mut bad_messages,
                    "invalid_message",
                    "binary messages are not accepted",
                );
                if bad_messages > MAX_BAD_MESSAGES {
                    break;
                }
                continue;
            }
            Some(Ok(Message::Close(_))) | None => break,
            Some(Ok(_)) => continue,
            Some(Err(e)) => {
                debug!(participant = participant_id, cause = %e, "socket read failed");
                break;
            }
        };
        match ClientMessage::parse(text.as_str()) {
            ClientMessage::Invalid { reason } => {
                refuse(&session, &mut bad_messages, "invalid_message", &reason);
            }
            ClientMessage::Ping { t } => session.send(wire::pong(&t)),
            ClientMessage::Input(input) => {
                let last = session.last_seq.load(Ordering::Relaxed);
                if input.seq <= last {
                    debug!(
                        participant = participant_id,
                        seq = input.seq,
                        last,
                        "out-of-order input ignored"
                    );
                    continue;
                }
                session.last_seq.store(input.seq, Ordering::Relaxed);
                lock(&session.input).update(input.keys, input.seq, input.frame, input.ts);
            }
            ClientMessage::Advance { scene, checked } => {
                if let Err(refusal) = flow::advance_info(&state, &session, scene, checked).await {
                    refuse(
                        &session,
                        &mut bad_messages,
                        refusal.code(),
                        &refusal.to_string(),
                    );
                }
            }
            ClientMessage::Submit { scene, answers } => {
                if let Err(refusal) = flow::submit_survey(&state, &session, scene, &answers).await {
                    refuse(
                        &session,
                        &mut bad_messages,
                        refusal.code(),
                        &refusal.to_string(),
                    );
                }
            }
        }
        if bad_messages > MAX_BAD_MESSAGES {
            warn!(
                participant = participant_id,
                "closing a socket that sent too many bad messages"
            );
            session.control(Outgoing::Close(wire::CLOSE_POLICY, "too many bad messages"));
            break;
        }
    }

    // Only the current socket of this participant may unregister it: a replaced
    // socket must not remove its successor.
    {
        let mut sessions = lock(&state.sessions);
        if sessions
            .get(&participant_id)
            .is_some_and(|s| s.connection == connection)
        {
            sessions.remove(&participant_id);
        }
    }
    state.games.detach(participant_id, connection);
    crate::lobby::leave(&state, participant_id, connection);
    // The game may still hold a sender to this socket, so the send task is told
    // to close rather than left to notice; a close already queued goes first.
    session.control(Outgoing::Close(1000, "bye"));
    drop(session);
    if !send_finished
        && tokio::time::timeout(std::time::Duration::from_secs(1), &mut send_task)
            .await
            .is_err()
    {
        send_task.abort();
    }
    debug!(participant = participant_id, connection, "socket closed");
}

/// Logs a refused message, counts it, and tells the browser why (until the
/// socket has refused so many that replies would only feed a flood).
fn refuse(session: &Session, bad_messages: &mut u32, code: &str, reason: &str) {
    *bad_messages += 1;
    warn!(
        participant = session.participant_id,
        code, reason, "refused a message"
    );
    if *bad_messages <= MAX_BAD_MESSAGES {
        session.send(wire::error(code, reason));
    }
}

async fn send_loop(
    mut sink: futures::stream::SplitSink<WebSocket, Message>,
    mut control: mpsc::UnboundedReceiver<Outgoing>,
) {
    let mut frames: Option<(watch::Receiver<Option<Arc<PublishedFrame>>>, usize)> = None;
    let mut encoder = FrameEncoder::default();
    loop {
        let next_frame = async {
            match frames.as_mut() {
                Some((rx, _)) => rx.changed().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            message = control.recv() => {
                let Some(message) = message else { break };
                match message {
                    Outgoing::Json(value) => {
                        if sink.send(Message::Text(Utf8Bytes::from(value.to_string()))).await.is_err() {
                            break;
                        }
                    }
                    Outgoing::Watch { frames: mut rx, agent } => {
                        rx.mark_changed();
                        frames = Some((rx, agent));
                        encoder.reset();
                    }
                    Outgoing::Unwatch => frames = None,
                    Outgoing::Close(code, reason) => {
                        let _ = sink
                            .send(Message::Close(Some(CloseFrame { code, reason: Utf8Bytes::from_static(reason) })))
                            .await;
                        break;
                    }
                }
            }
            changed = next_frame => {
                let Some((rx, agent)) = frames.as_mut() else { continue };
                if changed.is_err() {
                    // The game ended and dropped its sender.
                    frames = None;
                    continue;
                }
                let frame = rx.borrow_and_update().clone();
                let Some(frame) = frame else { continue };
                let message = match encoder.encode(&frame, *agent) {
                    Encoded::Text(text) => Message::Text(Utf8Bytes::from(text)),
                    Encoded::Binary(bytes) => Message::Binary(bytes.into()),
                    Encoded::Nothing => continue,
                };
                if sink.send(message).await.is_err() {
                    break;
                }
            }
        }
    }
    let _ = sink.close().await;
}
