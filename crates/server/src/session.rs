//! One participant's WebSocket: a send task and a receive loop.
//!
//! The send task is the only writer to the socket. It takes control messages
//! (scenes, game status, errors) in order from a channel, and frames from the
//! current game's `watch` channel, newest only, so frames never queue behind a
//! slow browser. The receive loop parses each message and hands it to the
//! flow; a bad message gets an `error` reply and is otherwise ignored. When
//! either side ends, the other is stopped and placement is told the socket
//! closed, which detaches it from its game or lobby.
//!
//! Both halves are generic over `Sink`/`Stream` of WebSocket messages, so a
//! session can be driven without a real socket.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes};
use futures::{Sink, SinkExt, Stream, StreamExt};
use tandem_experiment::Scene;
use tandem_wire::{ClientMessage, ErrorCode, Pong, ServerMessage};
use tokio::sync::{OwnedSemaphorePermit, mpsc, watch};
use tracing::{debug, warn};

use crate::connection::{Connection, Outgoing};
use crate::flow;
use crate::frames::{Encoded, FrameEncoder, PublishedFrame};
use crate::state::AppState;
use crate::sync::{lock, stopped};

/// How many refused messages a socket may send before it is closed.
const MAX_BAD_MESSAGES: u32 = 50;

/// How long a closing socket's send task may take to send what it holds.
const SEND_DRAIN_LIMIT: Duration = Duration::from_secs(1);

/// Runs one participant's socket until it closes. `permit` is its place under
/// the server's cap on sockets, given back when this returns.
pub async fn run<S, E>(
    socket: S,
    state: AppState,
    participant_id: i64,
    permit: OwnedSemaphorePermit,
) where
    S: Stream<Item = Result<Message, E>> + Sink<Message> + Send + 'static,
    E: std::fmt::Display,
{
    let (out_tx, out_rx) = mpsc::unbounded_channel();
    let connection = Connection::new(participant_id, state.next_connection_id(), out_tx);
    let (sink, mut stream) = socket.split();
    let mut send_task = tokio::spawn(send_loop(sink, out_rx));

    flow::on_connect(&state, &connection).await;

    let mut shutdown = state.shutdown.clone();
    let mut bad_messages = 0u32;
    // A finished JoinHandle must not be polled again, so remember it finished.
    let mut send_finished = false;
    loop {
        let message = tokio::select! {
            message = stream.next() => message,
            _ = stopped(&mut shutdown) => {
                connection.control(Outgoing::Close(tandem_wire::CLOSE_RESTART, "server restarting"));
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
                    &connection,
                    &mut bad_messages,
                    ErrorCode::InvalidMessage,
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
        handle(&state, &connection, &mut bad_messages, text.as_str()).await;
        if bad_messages > MAX_BAD_MESSAGES {
            warn!(
                participant = participant_id,
                "closing a socket that sent too many bad messages"
            );
            connection.control(Outgoing::Close(
                tandem_wire::CLOSE_POLICY,
                "too many bad messages",
            ));
            break;
        }
    }

    let left = state
        .placement
        .disconnect(participant_id, connection.id, state.is_shutting_down());
    if let Some((scene_index, waiter)) = left {
        debug!(participant = participant_id, "left the lobby");
        if let Some(Scene::Game(scene)) = state.experiment.scenes.get(scene_index) {
            state.placement.announce(scene_index, scene);
        }
        if let Err(e) = state.store.close_lobby_wait(waiter.wait_id, "left").await {
            warn!(cause = %e, "could not record leaving the lobby");
        }
    }
    // A game may still hold this connection, so the send task is told to
    // close rather than left to notice; a close already queued goes first.
    connection.control(Outgoing::Close(1000, "bye"));
    drop(connection);
    if !send_finished
        && tokio::time::timeout(SEND_DRAIN_LIMIT, &mut send_task)
            .await
            .is_err()
    {
        send_task.abort();
    }
    drop(permit);
    debug!(participant = participant_id, "socket closed");
}

/// Acts on one text message from the browser.
async fn handle(state: &AppState, connection: &Connection, bad_messages: &mut u32, text: &str) {
    match ClientMessage::parse(text) {
        ClientMessage::Invalid { reason } => {
            refuse(connection, bad_messages, ErrorCode::InvalidMessage, &reason);
        }
        ClientMessage::Ping { t } => connection.send(ServerMessage::Pong(Pong { t })),
        ClientMessage::Input(input) => {
            let mut held = lock(&connection.input);
            // Sequence numbers start at 1 on every socket.
            if input.seq <= held.seq.unwrap_or(0) {
                debug!(
                    participant = connection.participant_id,
                    seq = input.seq,
                    "out-of-order input ignored"
                );
                return;
            }
            held.update(input.keys, input.seq, input.frame, input.ts);
        }
        ClientMessage::Advance { scene, checked } => {
            if let Err(refusal) = flow::advance_info(state, connection, scene, checked).await {
                refuse(
                    connection,
                    bad_messages,
                    refusal.code(),
                    &refusal.to_string(),
                );
            }
        }
        ClientMessage::Submit { scene, answers } => {
            if let Err(refusal) = flow::submit_survey(state, connection, scene, &answers).await {
                refuse(
                    connection,
                    bad_messages,
                    refusal.code(),
                    &refusal.to_string(),
                );
            }
        }
    }
}

/// Logs a refused message, counts it, and tells the browser why (until the
/// socket has refused so many that replies would only feed a flood).
fn refuse(connection: &Connection, bad_messages: &mut u32, code: ErrorCode, reason: &str) {
    *bad_messages += 1;
    warn!(
        participant = connection.participant_id,
        code = code.as_str(),
        reason,
        "refused a message"
    );
    if *bad_messages <= MAX_BAD_MESSAGES {
        connection.send(ServerMessage::error(code, reason));
    }
}

type Frames = watch::Receiver<Option<Arc<PublishedFrame>>>;

async fn send_loop<K>(mut sink: K, mut control: mpsc::UnboundedReceiver<Outgoing>)
where
    K: Sink<Message> + Unpin,
{
    let mut frames: Option<(Frames, usize)> = None;
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
                    Outgoing::Message(message) => {
                        if sink.send(Message::Text(Utf8Bytes::from(message.to_text()))).await.is_err() {
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
