//! One participant's WebSocket: a send task and a receive loop.
//!
//! The send task is the only writer to the socket. It takes control messages
//! (scenes, game status, errors) in order from a channel, and frames from the
//! current game's `watch` channel, newest only, so frames never queue behind a
//! slow browser. The receive loop parses each message and hands it to the
//! flow; a bad message gets an `error` reply and is otherwise ignored, until
//! too many close the socket (1008). A message over the size limit, a broken
//! frame or text that is not UTF-8 closes it with its own code (1009, 1002,
//! 1007). A browser that stops reading fills its bounded queue and is dropped.
//! When either side ends, the other is stopped and placement is told the
//! socket closed, which detaches it from its game or lobby. A socket that
//! answers none of the server's pings for 45 s is closed (4003): its peer is
//! gone. The loop also sends clock probes (three a second apart as the socket
//! opens, then one every 15 s) and hands the page's timing reports (inputs,
//! frames drawn, clock answers, visibility) to `page_timing`, which records
//! them within a budget.
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
use tokio::time::{Instant, MissedTickBehavior};
use tracing::{debug, warn};

use crate::connection::{Connection, Outgoing, SOCKET_QUEUE};
use crate::flow::{self, Submitted};
use crate::frames::{Encoded, FrameEncoder, PublishedFrame};
use crate::options::Liveness;
use crate::page_timing::PageTiming;
use crate::state::AppState;
use crate::sync::{lock, stopped};

/// How many refused messages a socket may send before it is closed.
const MAX_BAD_MESSAGES: u32 = 50;

/// How many refusals of one socket are logged one by one; the rest are counted
/// and logged as one line when the socket closes, so a flood of bad messages
/// cannot become a flood of log.
const LOGGED_REFUSALS: u32 = 5;

/// How long a closing socket's send task may take to send what it holds.
const SEND_DRAIN_LIMIT: Duration = Duration::from_secs(1);

/// Why the receive loop stopped, when it decides how the socket closes.
enum Ending {
    /// The browser closed, the connection dropped, or the server stops: close
    /// normally, after anything already queued.
    Normal,
    /// Close with this code and reason (a protocol problem, too many refusals).
    Close(u16, &'static str),
    /// The browser stopped reading: its queue is full, so nothing more can be
    /// sent; drop the connection.
    Overwhelmed,
}

/// Runs one participant's socket until it closes. `permit` is its place under
/// the server's cap on sockets, given back when this returns. `frames` says
/// what the page can decode.
pub async fn run<S, E>(
    socket: S,
    state: AppState,
    participant_id: i64,
    permit: OwnedSemaphorePermit,
    frames: FrameEncoder,
) where
    S: Stream<Item = Result<Message, E>> + Sink<Message> + Send + 'static,
    E: std::error::Error + 'static,
{
    let (out_tx, out_rx) = mpsc::channel(SOCKET_QUEUE);
    let connection = Connection::new(participant_id, state.next_connection_id(), out_tx);
    let (sink, mut stream) = socket.split();
    let telemetry = Arc::clone(&state.games.telemetry);
    let mut send_task = tokio::spawn(send_loop(sink, out_rx, telemetry, frames));

    flow::on_connect(&state, &connection).await;
    let mut timing = PageTiming::new();
    timing.probe(&connection);
    let mut screening: Option<PendingScreen> = None;

    let mut shutdown = state.shutdown.clone();
    let mut refusals = Refusals::default();
    let mut liveness = Silence::new(state.liveness);
    // A finished JoinHandle must not be polled again, so remember it finished.
    let mut send_finished = false;
    let ending = loop {
        let probe_at = timing.probe_at;
        // With nothing to measure, a deadline that does not come.
        let screen_due = screening.as_ref().map_or_else(
            || Instant::now() + Duration::from_secs(86_400),
            |p| p.deadline,
        );
        let message = tokio::select! {
            message = stream.next() => message,
            _ = stopped(&mut shutdown) => {
                break Ending::Close(tandem_wire::CLOSE_RESTART, "server restarting");
            }
            _ = connection.overwhelmed() => break Ending::Overwhelmed,
            _ = liveness.ping_due() => {
                if liveness.is_silent() {
                    debug!(participant = participant_id, "closing a socket that answers no pings");
                    break Ending::Close(tandem_wire::CLOSE_SILENT, "no answer to pings");
                }
                connection.control(Outgoing::Ping);
                continue;
            }
            _ = tokio::time::sleep_until(probe_at) => {
                timing.probe(&connection);
                continue;
            }
            _ = tokio::time::sleep_until(screen_due) => {
                // The page did not answer enough probes in time: decide on
                // what was measured.
                if let Some(pending) = screening.take() {
                    pending.decide(&state, &connection, &timing).await;
                }
                continue;
            }
            _ = &mut send_task => {
                send_finished = true;
                break Ending::Normal;
            }
        };
        liveness.heard();
        let text = match message {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Binary(_))) => {
                refusals.refuse(
                    &connection,
                    ErrorCode::InvalidMessage,
                    "binary messages are not accepted",
                );
                if refusals.is_over() {
                    break Ending::Close(tandem_wire::CLOSE_POLICY, "too many bad messages");
                }
                continue;
            }
            Some(Ok(Message::Close(_))) | None => break Ending::Normal,
            Some(Ok(_)) => continue,
            Some(Err(e)) => match close_for(&e) {
                Some((code, reason)) => {
                    warn!(
                        participant = participant_id,
                        code, reason, "closing a socket that broke the protocol"
                    );
                    break Ending::Close(code, reason);
                }
                None => {
                    debug!(participant = participant_id, cause = %e, "socket read failed");
                    break Ending::Normal;
                }
            },
        };
        handle(
            &state,
            &connection,
            &mut refusals,
            &mut timing,
            &mut screening,
            text.as_str(),
        )
        .await;
        if screening
            .as_ref()
            .is_some_and(|p| timing.rtts_ms().len() >= p.pings as usize)
            && let Some(pending) = screening.take()
        {
            pending.decide(&state, &connection, &timing).await;
        }
        if refusals.is_over() {
            break Ending::Close(tandem_wire::CLOSE_POLICY, "too many bad messages");
        }
    };
    if timing.left_out > 0 {
        warn!(
            participant = participant_id,
            left_out = timing.left_out,
            "a page sent more timing reports than are recorded; the rest were counted only"
        );
    }
    if refusals.count > LOGGED_REFUSALS {
        warn!(
            participant = participant_id,
            refused = refusals.count,
            "a socket sent many bad messages (only the first {LOGGED_REFUSALS} were logged)"
        );
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
    match ending {
        Ending::Normal => connection.control(Outgoing::Close(tandem_wire::CLOSE_NORMAL, "bye")),
        Ending::Close(code, reason) => connection.control(Outgoing::Close(code, reason)),
        Ending::Overwhelmed => {
            warn!(
                participant = participant_id,
                queued = SOCKET_QUEUE,
                "closing a socket that stopped reading its messages"
            );
        }
    }
    let overwhelmed = connection.is_overwhelmed();
    drop(connection);
    if !send_finished
        && (overwhelmed
            || tokio::time::timeout(SEND_DRAIN_LIMIT, &mut send_task)
                .await
                .is_err())
    {
        send_task.abort();
    }
    drop(permit);
    debug!(participant = participant_id, "socket closed");
}

/// When a socket was last heard from, and when to ping it next: a peer that
/// vanished without closing (a laptop put to sleep, a dropped network) would
/// otherwise hold its seat, its lobby place and its socket for good, since in a
/// survey or a lobby nothing is sent that could fail.
struct Silence {
    last_heard: Instant,
    limit: Duration,
    pings: tokio::time::Interval,
}

impl Silence {
    fn new(liveness: Liveness) -> Silence {
        let every = liveness.ping_every;
        let mut pings = tokio::time::interval_at(Instant::now() + every, every);
        pings.set_missed_tick_behavior(MissedTickBehavior::Delay);
        Silence {
            last_heard: Instant::now(),
            limit: liveness.silence_limit,
            pings,
        }
    }

    async fn ping_due(&mut self) {
        self.pings.tick().await;
    }

    fn heard(&mut self) {
        self.last_heard = Instant::now();
    }

    fn is_silent(&self) -> bool {
        self.last_heard.elapsed() >= self.limit
    }
}

/// The close code for a read error that is the client's fault: a message over
/// the size limit, a broken frame, text that is not UTF-8. `None` for the
/// connection simply dropping.
fn close_for(error: &(dyn std::error::Error + 'static)) -> Option<(u16, &'static str)> {
    use tokio_tungstenite::tungstenite::Error as WsError;
    let mut cause = Some(error);
    while let Some(e) = cause {
        if let Some(ws) = e.downcast_ref::<WsError>() {
            return match ws {
                WsError::Capacity(_) => Some((tandem_wire::CLOSE_TOO_BIG, "message too big")),
                WsError::Protocol(_) => Some((tandem_wire::CLOSE_PROTOCOL, "protocol error")),
                WsError::Utf8(_) => Some((tandem_wire::CLOSE_INVALID_DATA, "invalid utf-8")),
                _ => None,
            };
        }
        cause = e.source();
    }
    None
}

/// Acts on one text message from the browser.
async fn handle(
    state: &AppState,
    connection: &Connection,
    refusals: &mut Refusals,
    timing: &mut PageTiming,
    screening: &mut Option<PendingScreen>,
    text: &str,
) {
    match ClientMessage::parse(text) {
        ClientMessage::Invalid { reason } => {
            refusals.refuse(connection, ErrorCode::InvalidMessage, &reason);
        }
        ClientMessage::Ping { t } => connection.send(ServerMessage::Pong(Pong { t })),
        ClientMessage::Input(input) => {
            let place = {
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
                held.update(input.keys.clone(), input.seq, input.frame, input.ts);
                held.place
            };
            timing.input(&state.recorder, connection, &input, place);
        }
        ClientMessage::Shown { frames } => timing.shown(&state.recorder, connection, frames),
        ClientMessage::Clock { id, t } => timing.clock(&state.recorder, connection, id, t),
        ClientMessage::Page { state: page, t } => {
            timing.page(&state.recorder, connection, page, t);
        }
        ClientMessage::Advance { scene, checked } => {
            if let Err(refusal) = flow::advance_info(state, connection, scene, checked).await {
                refusals.refuse(connection, refusal.code(), &refusal.to_string());
            }
        }
        // One measurement at a time: more reports while one is under way
        // would only restart it.
        ClientMessage::Screen { .. } if screening.is_some() => refusals.count_silently(),
        ClientMessage::Screen {
            scene,
            width,
            height,
            key,
        } => match flow::screening_pings(state, connection, scene).await {
            Ok(pings) => {
                // Measured now, over this socket, by the server: the page
                // only answers the probes.
                timing.measure_rtts(pings);
                *screening = Some(PendingScreen {
                    report: flow::ScreenReport {
                        scene,
                        width,
                        height,
                        key,
                    },
                    pings,
                    started: Instant::now(),
                    deadline: Instant::now() + SCREEN_MEASURE_LIMIT,
                });
            }
            Err(refusal) => refusals.refuse(connection, refusal.code(), &refusal.to_string()),
        },
        ClientMessage::Submit { scene, answers } => {
            match flow::submit_survey(state, connection, scene, &answers).await {
                Ok(Submitted::Accepted) => {}
                // The page was told which answers to fix (`invalid`); it still
                // counts, or a script could submit forever.
                Ok(Submitted::Rejected) => refusals.count_silently(),
                Err(refusal) => refusals.refuse(connection, refusal.code(), &refusal.to_string()),
            }
        }
    }
}

/// How long a screening waits for the page to answer its round-trip probes.
const SCREEN_MEASURE_LIMIT: Duration = Duration::from_secs(8);

/// A screening report waiting for its round trips.
struct PendingScreen {
    report: flow::ScreenReport,
    pings: u32,
    started: Instant,
    deadline: Instant,
}

impl PendingScreen {
    async fn decide(self, state: &AppState, connection: &Connection, timing: &PageTiming) {
        let mut rtts = timing.rtts_ms();
        // A probe never answered took at least as long as the measurement:
        // it counts as that slow, not as missing.
        let waited_ms = self.started.elapsed().as_secs_f64() * 1000.0;
        while rtts.len() < self.pings as usize {
            rtts.push(waited_ms);
        }
        if let Err(refusal) = flow::screen(state, connection, self.report, rtts).await {
            debug!(
                participant = connection.participant_id,
                %refusal,
                "a screening report was refused"
            );
        }
    }
}

/// A socket's refused messages: counted, the first few logged, each answered
/// until the socket has refused so many that replies would only feed a flood.
#[derive(Default)]
struct Refusals {
    count: u32,
}

impl Refusals {
    fn refuse(&mut self, connection: &Connection, code: ErrorCode, reason: &str) {
        self.count += 1;
        if self.count <= LOGGED_REFUSALS {
            warn!(
                participant = connection.participant_id,
                code = code.as_str(),
                reason,
                "refused a message"
            );
        }
        if self.count <= MAX_BAD_MESSAGES {
            connection.send(ServerMessage::error(code, reason));
        }
    }

    fn count_silently(&mut self) {
        self.count += 1;
    }

    fn is_over(&self) -> bool {
        self.count > MAX_BAD_MESSAGES
    }
}

type Frames = watch::Receiver<Option<Arc<PublishedFrame>>>;

async fn send_loop<K>(
    mut sink: K,
    mut control: mpsc::Receiver<Outgoing>,
    telemetry: Arc<crate::telemetry::Telemetry>,
    mut encoder: FrameEncoder,
) where
    K: Sink<Message> + Unpin,
{
    let mut frames: Option<(Frames, usize)> = None;
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
                    Outgoing::Unwatch(None) => frames = None,
                    Outgoing::Unwatch(Some(game)) => {
                        if frames.as_ref().is_some_and(|(rx, _)| rx.same_channel(&game)) {
                            frames = None;
                        }
                    }
                    Outgoing::Ping => {
                        if sink.send(Message::Ping(Default::default())).await.is_err() {
                            break;
                        }
                    }
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
                let started = std::time::Instant::now();
                let message = match encoder.encode(&frame, *agent) {
                    Encoded::Text(text) => Message::Text(Utf8Bytes::from(text)),
                    Encoded::Binary(bytes) => Message::Binary(bytes.into()),
                    Encoded::Nothing => continue,
                };
                if sink.send(message).await.is_err() {
                    break;
                }
                telemetry
                    .frame_send
                    .observe_us(started.elapsed().as_micros() as u64);
            }
        }
    }
    let _ = sink.close().await;
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
