//! One simulated participant: `GET /` for a cookie, the socket, the experiment's
//! scenes answered as a willing participant would, and a game played with
//! changing keys, measured from the participant's side.
//!
//! A bot is one task that owns its socket and its measurements, and hands them
//! back as a [`BotReport`] when it ends; nothing it measures is shared while it
//! runs, so bots never contend. It keeps what the bench reports:
//! - frames received inside the measurement window, the intervals between
//!   consecutive ones, and their sizes on the wire; and frames the game published
//!   that this socket never received (gaps in the game's `tick` counter, which
//!   counts every frame published, including the one at each episode's reset);
//! - for every input it sends, the instant it sent it, until a frame's `ack`
//!   reaches that sequence number: that difference is the input-to-frame latency;
//! - how long it sat in a game inside the window, and at what fps, so that the
//!   frames it should have had are known exactly;
//! - in a multiplayer scene, how long it waited in the lobby (from the `scene`
//!   message to its `seat`), and the `notice`s it was sent. Its game clock starts
//!   at the seat, not at the scene: a lobby publishes no frames, so counting its
//!   wait as game time would report frames as missing that no game owed.
//!
//! Network trouble is an outcome, not a panic: a failed connection or a socket
//! that drops is recorded in the report and the bot ends.
//!
//! The bot speaks the protocol through `tandem-wire`: it decodes every server
//! message into the server's own types and builds every message it sends with
//! them, so it cannot drift from what the server and the browser speak. A
//! message it cannot decode counts as a server error and is skipped.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};
use serde_json::{Value, json};
use tandem_wire::{
    ClientMessage, GameView, Input, MAX_KEYS, OtherSeat, QuestionKind, SPRITE_FRAME_V1,
    SceneMessage, SceneView, SeatMessage, SeatView, ServerMessage, SurveyView, decode_pixel_frame,
    sprite_frame_header,
};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::http;
use crate::live::Live;

/// How long connecting (GET / and the socket handshake) may take.
const CONNECT_LIMIT: Duration = Duration::from_secs(30);
/// How long a closing bot waits for the server's close reply.
const CLOSE_LIMIT: Duration = Duration::from_secs(5);
/// Bots change their keys every 100–300 ms: a busy human's pace.
const KEY_CHANGE_MS: std::ops::RangeInclusive<u64> = 100..=300;
/// The browser re-sends held keys this often (docs/WIRE.md); so do bots.
const HELD_RESEND: Duration = Duration::from_millis(500);
/// The socket's read buffer (see [`socket_config`]).
const READ_BUFFER: usize = 8 * 1024;
/// Inputs awaiting an ack beyond this are dropped unmeasured (a server that never
/// acks must not grow a bot's memory without bound).
const MAX_PENDING: usize = 4096;

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The measurement window, shared by all bots.
#[derive(Clone, Copy, Debug)]
pub struct Window {
    pub start: Instant,
    pub end: Instant,
}

impl Window {
    pub fn contains(&self, t: Instant) -> bool {
        t >= self.start && t < self.end
    }

    /// Seconds of `[from, to)` inside the window.
    pub fn overlap(&self, from: Instant, to: Instant) -> f64 {
        let a = from.max(self.start);
        let b = to.min(self.end);
        if b > a { (b - a).as_secs_f64() } else { 0.0 }
    }
}

/// What one bot needs to run.
#[derive(Clone)]
pub struct BotConfig {
    pub index: usize,
    pub addr: SocketAddr,
    /// `host:port` for the Host header and the socket URL.
    pub host: String,
    pub window: Window,
    /// The run's start: input `ts` values are milliseconds since it, as a
    /// browser's `performance.now()` counts from page load.
    pub epoch: Instant,
    /// Flips to `true` when bots must close.
    pub stop: watch::Receiver<bool>,
    pub live: Arc<Live>,
}

/// How a bot's connection ended badly, if it did.
#[derive(Clone, Debug, PartialEq)]
pub enum Trouble {
    /// `GET /` or the socket handshake failed.
    Connect(String),
    /// The socket closed or failed before the bot was told to stop.
    Disconnect(String),
}

/// Everything one bot measured.
#[derive(Debug, Default)]
pub struct BotReport {
    pub connected: bool,
    pub reached_game: bool,
    /// Reached the end scene.
    pub finished: bool,
    /// Was shown a screened-out page instead.
    pub screened_out: bool,
    pub trouble: Option<Trouble>,
    /// `error` and `invalid` messages from the server.
    pub server_errors: u64,
    /// The fps of the game scene this bot played (the last one, if several).
    pub fps: Option<u32>,
    /// Seconds spent in a game inside the window, and the frames that time
    /// should have brought at the game's fps.
    pub game_seconds: f64,
    pub expected_frames: f64,
    /// Frames received inside the window, and how many of them were the frame
    /// published at an episode's reset (step 0) rather than by a tick's step.
    pub frames: u64,
    pub reset_frames: u64,
    /// Frames the game published inside the window that this socket skipped
    /// (it only ever gets the newest), from gaps in `tick`.
    pub skipped_frames: u64,
    /// Microseconds between consecutive frames, both inside the window.
    pub intervals_us: Vec<u32>,
    /// Input-to-frame latency of inputs sent inside the window and applied
    /// in the episode they were sent in, microseconds.
    pub latencies_us: Vec<u32>,
    /// The same for inputs that waited over an episode's end: an input sent
    /// at a last or reset frame applies at the next episode's first step.
    pub boundary_latencies_us: Vec<u32>,
    pub inputs_sent: u64,
    /// Inputs sent inside the window that no frame acknowledged before the end.
    pub inputs_unacked: u64,
    /// Reached a multiplayer game scene (one with a lobby).
    pub multiplayer: bool,
    /// Microseconds from each multiplayer scene's `scene` message to the first
    /// `seat` (the lobby wait), whether or not inside the window.
    pub lobby_waits_us: Vec<u32>,
    /// Was in a lobby, not yet seated, when told to stop.
    pub waiting_at_end: bool,
    /// Was seated with at least one seat played by an AI rather than a person.
    pub seated_with_ai: bool,
    /// `seat` messages after the first of a game (the game resumed).
    pub reseats: u64,
    pub lobby_messages: u64,
    /// `notice` messages by code, received before the window's end (from then
    /// on bots close, and each close sends its partner one).
    pub notices: BTreeMap<String, u64>,
    pub sprite_frames: u64,
    pub sprite_bytes: u64,
    pub pixel_frames: u64,
    pub pixel_bytes: u64,
}

/// Runs one bot until it is told to stop, its socket fails, or it finishes.
pub async fn run(config: BotConfig) -> BotReport {
    let mut report = BotReport::default();
    let live = Arc::clone(&config.live);
    let mut socket = match tokio::time::timeout(CONNECT_LIMIT, connect(&config)).await {
        Ok(Ok(socket)) => socket,
        Ok(Err(cause)) => return failed(report, &live, cause),
        Err(_) => {
            return failed(
                report,
                &live,
                format!("no connection within {CONNECT_LIMIT:?}"),
            );
        }
    };
    report.connected = true;
    Live::add(&live.connected, 1);
    let mut bot = Bot::new(config, report);
    bot.play(&mut socket).await;
    bot.leave_game(Instant::now());
    Live::sub(&live.connected, 1);
    bot.report
}

fn failed(mut report: BotReport, live: &Live, cause: String) -> BotReport {
    Live::add(&live.connect_errors, 1);
    report.trouble = Some(Trouble::Connect(cause));
    report
}

/// `GET /` for the participant cookie, then the socket with it.
async fn connect(config: &BotConfig) -> Result<Socket, String> {
    let page = http::get(config.addr, &config.host, "/", None, CONNECT_LIMIT)
        .await
        .map_err(|e| format!("GET /: {e:#}"))?;
    if page.status != 200 {
        return Err(format!("GET / answered {}", page.status));
    }
    let cookie = page
        .cookie("tandem_participant")
        .ok_or_else(|| "GET / set no tandem_participant cookie".to_string())?;
    let mut request = format!("ws://{}/ws", config.host)
        .into_client_request()
        .map_err(|e| format!("socket request: {e}"))?;
    let value = cookie
        .parse()
        .map_err(|_| "the cookie is not a valid header value".to_string())?;
    request.headers_mut().insert("cookie", value);
    // Nagle off, as browsers do for WebSockets: a small input must not wait for
    // the previous segment's acknowledgement.
    let (socket, _) =
        tokio_tungstenite::connect_async_with_config(request, Some(socket_config()), true)
            .await
            .map_err(|e| format!("socket: {e}"))?;
    Ok(socket)
}

/// tungstenite zero-fills its whole read buffer before every read (128 KiB by
/// default): at thousands of sockets that memset was a fifth of the bots' CPU.
/// Frames are a few hundred bytes; larger pixel frames still arrive whole, the
/// buffer grows for them.
fn socket_config() -> WebSocketConfig {
    WebSocketConfig::default().read_buffer_size(READ_BUFFER)
}

/// The game scene a bot is in.
struct Game {
    /// Key names the bot's seat maps (from the seat message, else the scene
    /// message), capped at [`MAX_KEYS`].
    keys: Vec<String>,
    fps: u32,
    /// When the scene message came.
    entered: Instant,
    /// When play began: at the scene message, or for a multiplayer scene at the
    /// seat message; `None` while waiting in the lobby.
    since: Option<Instant>,
    /// `seat` messages received in this scene.
    seats: u32,
    next_change: Instant,
}

impl Game {
    /// When the bot next changes its keys: only while seated.
    fn next_change(&self) -> Option<Instant> {
        self.since.map(|_| self.next_change)
    }
}

struct Bot {
    config: BotConfig,
    report: BotReport,
    rng: SmallRng,
    game: Option<Game>,
    /// The last input sequence number sent on this socket.
    seq: u64,
    /// The keys held now.
    keys: Vec<String>,
    last_sent: Option<Instant>,
    /// Inputs sent and not yet acknowledged: (seq, sent at, sent inside
    /// window, the episode of the frame on screen then).
    pending: VecDeque<(u64, Instant, bool, Option<u32>)>,
    /// The episode of the last frame received.
    last_episode: Option<u32>,
    /// When the previous frame arrived, and its `tick` (within the current game).
    last_frame: Option<Instant>,
    last_tick: Option<u64>,
    /// Frames received on this socket: the `frame` field of inputs.
    frames_seen: u64,
}

/// What a frame says, for the measurements.
struct FrameFacts {
    ack: Option<u64>,
    /// The game's publish counter.
    tick: u64,
    /// Step within the episode: 0 is the frame right after a reset, which the
    /// game publishes besides its one frame per tick.
    step: u32,
    episode: u32,
    bytes: usize,
    pixels: bool,
}

/// What a message asks the bot to do next.
enum Next {
    Continue,
    /// Close the socket and end (finished, or stuck).
    Close,
}

impl Bot {
    fn new(config: BotConfig, report: BotReport) -> Bot {
        Bot {
            rng: SmallRng::seed_from_u64(config.index as u64),
            config,
            report,
            game: None,
            seq: 0,
            keys: Vec::new(),
            last_sent: None,
            pending: VecDeque::new(),
            last_episode: None,
            last_frame: None,
            last_tick: None,
            frames_seen: 0,
        }
    }

    async fn play(&mut self, socket: &mut Socket) {
        let mut stop = self.config.stop.clone();
        loop {
            let change = self.game.as_ref().and_then(Game::next_change);
            let message = tokio::select! {
                biased;
                () = stopped(&mut stop) => {
                    self.report.waiting_at_end = self.in_lobby();
                    self.close(socket).await;
                    return;
                }
                message = socket.next() => message,
                _ = sleep_until_some(change) => {
                    if let Err(cause) = self.change_keys(socket).await {
                        self.disconnected(cause);
                        return;
                    }
                    continue;
                }
            };
            let now = Instant::now();
            let next = match message {
                Some(Ok(Message::Text(text))) => self.on_text(socket, text.as_str(), now).await,
                Some(Ok(Message::Binary(bytes))) => {
                    self.on_binary(&bytes, now);
                    Ok(Next::Continue)
                }
                Some(Ok(Message::Close(frame))) => {
                    let code = frame.map_or(0, |f| u16::from(f.code));
                    self.disconnected(format!("closed by the server with code {code}"));
                    return;
                }
                Some(Ok(_)) => Ok(Next::Continue),
                Some(Err(e)) => {
                    self.disconnected(format!("socket error: {e}"));
                    return;
                }
                None => {
                    self.disconnected("socket ended".to_string());
                    return;
                }
            };
            match next {
                Ok(Next::Continue) => {}
                Ok(Next::Close) => {
                    self.close(socket).await;
                    return;
                }
                Err(cause) => {
                    self.disconnected(cause);
                    return;
                }
            }
        }
    }

    fn in_lobby(&self) -> bool {
        self.game.as_ref().is_some_and(|g| g.since.is_none())
    }

    fn disconnected(&mut self, cause: String) {
        Live::add(&self.config.live.disconnects, 1);
        self.report.trouble = Some(Trouble::Disconnect(cause));
    }

    /// Sends a close and waits (briefly) for the server's reply, so that the
    /// server has seen the close, and paused the game, when the bot returns.
    async fn close(&mut self, socket: &mut Socket) {
        self.leave_game(Instant::now());
        let _ = tokio::time::timeout(CLOSE_LIMIT, async {
            let _ = socket.close(None).await;
            while let Some(Ok(_)) = socket.next().await {}
        })
        .await;
    }

    async fn send(&mut self, socket: &mut Socket, message: &ClientMessage) -> Result<(), String> {
        socket
            .send(Message::Text(message.to_text().into()))
            .await
            .map_err(|e| format!("send failed: {e}"))
    }

    async fn on_text(
        &mut self,
        socket: &mut Socket,
        text: &str,
        now: Instant,
    ) -> Result<Next, String> {
        // A message that does not decode (malformed, or a known type with the
        // wrong fields) is the server's fault; one of a type this build does
        // not know is skipped.
        let Ok(message) = ServerMessage::from_text(text) else {
            self.report.server_errors += 1;
            return Ok(Next::Continue);
        };
        match message {
            ServerMessage::Frame(frame) => {
                let facts = FrameFacts {
                    ack: frame.ack,
                    step: frame.step,
                    episode: frame.episode,
                    tick: frame.tick,
                    bytes: text.len(),
                    pixels: false,
                };
                self.on_frame(now, &facts);
                Ok(Next::Continue)
            }
            ServerMessage::Scene(SceneMessage {
                index,
                count,
                step,
                scene,
            }) => {
                self.on_scene(socket, index, (step, count), &scene, now)
                    .await
            }
            ServerMessage::Lobby(_) => {
                self.report.lobby_messages += 1;
                Ok(Next::Continue)
            }
            ServerMessage::Seat(SeatMessage { seat, others }) => {
                self.on_seat(&seat, &others, now);
                Ok(Next::Continue)
            }
            ServerMessage::Notice(notice) => {
                // After the window the bots close one by one, and each close
                // tells its partner `partner_left`: teardown, not the run's news.
                if now < self.config.window.end {
                    let code = notice.code.as_str().to_string();
                    *self.report.notices.entry(code).or_default() += 1;
                }
                Ok(Next::Continue)
            }
            ServerMessage::Error(_) => {
                self.report.server_errors += 1;
                Ok(Next::Continue)
            }
            // A survey answer was refused: the bot cannot do better, so it leaves.
            ServerMessage::Invalid(_) => {
                self.report.server_errors += 1;
                Ok(Next::Close)
            }
            // Answered as the page does, so the server's clock samples and
            // their cost are part of what is measured.
            ServerMessage::Clock(probe) => {
                // Milliseconds on a clock of the bots' own, as `performance.now()`.
                static ORIGIN: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
                let origin = *ORIGIN.get_or_init(Instant::now);
                let t = now.saturating_duration_since(origin).as_secs_f64() * 1000.0;
                self.send(socket, &ClientMessage::Clock { id: probe.id, t })
                    .await?;
                Ok(Next::Continue)
            }
            ServerMessage::Hello(_)
            | ServerMessage::Game(_)
            | ServerMessage::Pong(_)
            | ServerMessage::Replaced
            | ServerMessage::Unknown => Ok(Next::Continue),
        }
    }

    async fn on_scene(
        &mut self,
        socket: &mut Socket,
        index: usize,
        (step, count): (usize, usize),
        scene: &SceneView,
        now: Instant,
    ) -> Result<Next, String> {
        self.leave_game(now);
        match scene {
            SceneView::Info(_) | SceneView::Score(_) => {
                let advance = ClientMessage::Advance {
                    scene: index,
                    checked: true,
                };
                self.send(socket, &advance).await?;
            }
            SceneView::Survey(survey) => {
                let submit = ClientMessage::Submit {
                    scene: index,
                    answers: survey_answers(survey),
                };
                self.send(socket, &submit).await?;
            }
            SceneView::Screening(screening) => {
                // A bot has a keyboard and a window as large as asked.
                let screen = ClientMessage::Screen {
                    scene: index,
                    width: screening.min_width.unwrap_or(1280).max(1280),
                    height: screening.min_height.unwrap_or(800).max(800),
                    key: true,
                };
                self.send(socket, &screen).await?;
            }
            SceneView::Game(game) => self.enter_game(game, now),
            SceneView::End(_) => {
                // The study's own end, not a screened-out page shown early.
                self.report.finished = step + 1 == count;
                self.report.screened_out = !self.report.finished;
                return Ok(Next::Close);
            }
        }
        Ok(Next::Continue)
    }

    /// Enters a game scene: a single-player game's clock starts now, a
    /// multiplayer one's at the seat (the bot waits in the lobby until then).
    fn enter_game(&mut self, scene: &GameView, now: Instant) {
        let fps = scene.fps;
        let multiplayer = scene.multiplayer;
        self.report.reached_game = true;
        self.report.fps = Some(fps);
        self.report.multiplayer |= multiplayer;
        let since = if multiplayer {
            Live::add(&self.config.live.in_lobby, 1);
            None
        } else {
            Live::add(&self.config.live.in_game, 1);
            Some(now)
        };
        let next_change = now + self.pause();
        self.game = Some(Game {
            keys: key_names(&scene.keys),
            fps,
            entered: now,
            since,
            seats: 0,
            next_change,
        });
    }

    /// A `seat` message: the game started (or resumed) with this bot in `seat`.
    /// The first one of a multiplayer scene ends the lobby wait and starts the
    /// game's clock; the seat's own keys replace the scene's.
    fn on_seat(&mut self, seat: &SeatView, others: &[OtherSeat], now: Instant) {
        let pause = self.pause();
        let Some(game) = self.game.as_mut() else {
            // A seat outside a game scene: the server is confused, not the bot.
            self.report.server_errors += 1;
            return;
        };
        let keys = key_names(&seat.keys);
        if !keys.is_empty() {
            game.keys = keys;
        }
        if others.iter().any(|o| !o.human) {
            self.report.seated_with_ai = true;
        }
        game.seats += 1;
        if game.seats > 1 {
            self.report.reseats += 1;
        }
        // Single-player games announce their seat too, after the clock started.
        if game.since.is_some() {
            return;
        }
        game.since = Some(now);
        game.next_change = now + pause;
        self.report.lobby_waits_us.push(micros(now - game.entered));
        Live::sub(&self.config.live.in_lobby, 1);
        Live::add(&self.config.live.in_game, 1);
    }

    /// Leaves the current game, if any: books its time in the window and forgets
    /// its pending inputs. A bot still in the lobby only leaves the lobby.
    fn leave_game(&mut self, now: Instant) {
        let Some(game) = self.game.take() else {
            return;
        };
        let Some(since) = game.since else {
            Live::sub(&self.config.live.in_lobby, 1);
            return;
        };
        Live::sub(&self.config.live.in_game, 1);
        let seconds = self.config.window.overlap(since, now);
        self.report.game_seconds += seconds;
        self.report.expected_frames += seconds * f64::from(game.fps);
        self.report.inputs_unacked += self.pending.iter().filter(|p| p.2).count() as u64;
        self.pending.clear();
        self.last_frame = None;
        self.last_tick = None;
        self.last_episode = None;
    }

    /// A binary frame, sprites or pixels: only its header is read (a bot
    /// draws nothing); one that does not read is the server's error.
    fn on_binary(&mut self, bytes: &[u8], now: Instant) {
        let pixels = bytes.first() != Some(&SPRITE_FRAME_V1);
        let header = if pixels {
            decode_pixel_frame(bytes)
                .ok()
                .map(|f| (f.header.ack, f.header.step, f.header.episode, f.header.tick))
        } else {
            sprite_frame_header(bytes)
                .ok()
                .map(|h| (h.ack, h.step, h.episode, h.tick))
        };
        match header {
            Some((ack, step, episode, tick)) => {
                let facts = FrameFacts {
                    ack,
                    step,
                    episode,
                    tick,
                    bytes: bytes.len(),
                    pixels,
                };
                self.on_frame(now, &facts);
            }
            None => self.report.server_errors += 1,
        }
    }

    fn on_frame(&mut self, now: Instant, frame: &FrameFacts) {
        Live::add(&self.config.live.frames, 1);
        self.frames_seen += 1;
        let window = self.config.window;
        if window.contains(now) {
            let r = &mut self.report;
            r.frames += 1;
            if frame.step == 0 {
                r.reset_frames += 1;
            }
            let bytes = frame.bytes as u64;
            if frame.pixels {
                r.pixel_frames += 1;
                r.pixel_bytes += bytes;
            } else {
                r.sprite_frames += 1;
                r.sprite_bytes += bytes;
            }
            if let Some(previous) = self.last_frame.filter(|p| *p >= window.start) {
                r.intervals_us.push(micros(now - previous));
                if let Some(last) = self.last_tick {
                    r.skipped_frames += frame.tick.saturating_sub(last).saturating_sub(1);
                }
            }
        }
        self.last_frame = Some(now);
        self.last_tick = Some(frame.tick);
        self.last_episode = Some(frame.episode);
        if let Some(ack) = frame.ack {
            while let Some(&(seq, sent, in_window, episode)) = self.pending.front() {
                if seq > ack {
                    break;
                }
                self.pending.pop_front();
                if in_window {
                    // Applied at an episode's first step, or in another
                    // episode than the one on screen: it waited for a reset.
                    let across = frame.step <= 1 || episode != Some(frame.episode);
                    let latency = micros(now - sent);
                    if across {
                        self.report.boundary_latencies_us.push(latency);
                    } else {
                        self.report.latencies_us.push(latency);
                    }
                }
            }
        }
    }

    /// Picks a new random key set; sends it if it differs from the held one, or
    /// if held keys are due for the browser's periodic re-send.
    async fn change_keys(&mut self, socket: &mut Socket) -> Result<(), String> {
        let pause = self.pause();
        let Some(game) = self.game.as_mut() else {
            return Ok(());
        };
        let now = Instant::now();
        game.next_change = now + pause;
        // A uniformly random subset of the scene's keys (the empty set included).
        let keys: Vec<String> = game
            .keys
            .iter()
            .filter(|_| self.rng.random_bool(0.5))
            .cloned()
            .collect();
        let resend = !keys.is_empty()
            && self
                .last_sent
                .is_some_and(|t| now.duration_since(t) >= HELD_RESEND);
        if keys == self.keys && !resend {
            return Ok(());
        }
        self.keys = keys;
        self.seq += 1;
        let ts = now.duration_since(self.config.epoch).as_secs_f64() * 1000.0;
        let input = ClientMessage::Input(Input {
            seq: self.seq,
            frame: Some(self.frames_seen),
            ts: Some(ts),
            tick: None,
            keys: self.keys.clone(),
        });
        self.send(socket, &input).await?;
        let in_window = self.config.window.contains(now);
        if in_window {
            self.report.inputs_sent += 1;
        }
        if self.pending.len() >= MAX_PENDING
            && let Some((_, _, true, _)) = self.pending.pop_front()
        {
            self.report.inputs_unacked += 1;
        }
        self.pending
            .push_back((self.seq, now, in_window, self.last_episode));
        self.last_sent = Some(now);
        Ok(())
    }

    fn pause(&mut self) -> Duration {
        Duration::from_millis(self.rng.random_range(KEY_CHANGE_MS))
    }
}

/// Completes once the stop signal is set (or its sender is gone). The signal's
/// borrow guard is dropped here, so it is never held across the close's awaits.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// Sleeps until `at`, or forever without one.
async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

fn micros(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

/// The keys of a scene or seat message, capped at the server's [`MAX_KEYS`]
/// (an input holding more would be refused).
fn key_names(keys: &[String]) -> Vec<String> {
    keys.iter().take(MAX_KEYS).cloned().collect()
}

/// Answers a willing participant gives: the first option, the middle of a
/// likert scale, "bench" for text. (A question with no options gets null, which
/// the server refuses; the bot then counts an `invalid` and leaves.)
fn survey_answers(survey: &SurveyView) -> Value {
    let mut answers = serde_json::Map::new();
    for question in &survey.questions {
        let answer = match &question.kind {
            QuestionKind::Single { options } => json!(options.first()),
            QuestionKind::Multiple { options } => json!([options.first()]),
            QuestionKind::Likert { scale, .. } => json!(scale.div_ceil(2).max(1)),
            QuestionKind::Text { .. } => json!("bench"),
        };
        answers.insert(question.id.clone(), answer);
    }
    Value::Object(answers)
}

#[cfg(test)]
mod tests {
    use super::*;

    use tandem_wire::{Canvas, PixelHeader, QuestionView, RenderMode, encode_pixel_frame};

    fn question(id: &str, kind: QuestionKind) -> QuestionView {
        QuestionView {
            id: id.into(),
            prompt: String::new(),
            required: true,
            kind,
        }
    }

    fn game(fps: u32, multiplayer: bool, keys: &[&str]) -> GameView {
        GameView {
            id: "g".into(),
            title: "G".into(),
            instructions_html: String::new(),
            fps,
            render: RenderMode::Sprites,
            canvas: Canvas {
                width: 600,
                height: 400,
            },
            keys: keys.iter().map(|k| k.to_string()).collect(),
            episodes: None,
            time_limit_s: None,
            multiplayer,
            agents: vec!["chef_0".into(), "chef_1".into()],
        }
    }

    fn bot(t: Instant, live: &Arc<Live>) -> Bot {
        let config = BotConfig {
            index: 0,
            addr: SocketAddr::from(([127, 0, 0, 1], 9)),
            host: "127.0.0.1:9".to_string(),
            window: Window {
                start: t,
                end: t + Duration::from_secs(60),
            },
            epoch: t,
            stop: watch::channel(false).1,
            live: Arc::clone(live),
        };
        Bot::new(config, BotReport::default())
    }

    /// Survey answers follow each question's kind and pass the server's checks.
    #[test]
    fn answers_surveys() {
        let options = |o: &[&str]| o.iter().map(|o| o.to_string()).collect();
        let survey = SurveyView {
            id: "s".into(),
            title: "S".into(),
            html: String::new(),
            questions: vec![
                question(
                    "a",
                    QuestionKind::Single {
                        options: options(&["x", "y"]),
                    },
                ),
                question(
                    "b",
                    QuestionKind::Multiple {
                        options: options(&["p", "q"]),
                    },
                ),
                question(
                    "c",
                    QuestionKind::Likert {
                        scale: 7,
                        low_label: None,
                        high_label: None,
                    },
                ),
                question(
                    "d",
                    QuestionKind::Text {
                        multiline: false,
                        max_length: 100,
                    },
                ),
            ],
        };
        assert_eq!(
            survey_answers(&survey),
            json!({"a": "x", "b": ["p"], "c": 4, "d": "bench"})
        );
    }

    /// Pixel frames are measured from their header; a malformed binary
    /// message is the server's error, not a frame.
    #[test]
    fn measures_pixel_frames() {
        let t = Instant::now();
        let live = Arc::new(Live::default());
        let mut bot = bot(t, &live);
        let header = PixelHeader {
            tick: 9,
            episode: 0,
            step: 0,
            ack: Some(7),
            width: 2,
            height: 1,
            reward: 0.0,
            episode_return: 0.0,
            base: None,
        };
        let Ok(frame) = encode_pixel_frame(&header, b"\x89PNG") else {
            panic!("the frame encodes");
        };
        bot.on_binary(&frame, t + Duration::from_secs(1));
        bot.on_binary(&frame[..8], t + Duration::from_secs(1));
        let r = &bot.report;
        assert_eq!((r.frames, r.reset_frames, r.pixel_frames), (1, 1, 1));
        assert_eq!(r.pixel_bytes, frame.len() as u64);
        assert_eq!(r.server_errors, 1);
        assert_eq!(bot.last_tick, Some(9));
    }

    /// An input applied in the episode it was sent in counts as latency; one
    /// that waited over an episode's end (acknowledged at the next episode's
    /// first step) is counted apart.
    #[test]
    fn inputs_over_an_episode_end_are_counted_apart() {
        let t = Instant::now();
        let live = Arc::new(Live::default());
        let mut bot = bot(t, &live);
        let frame = |step, episode, ack| FrameFacts {
            ack: Some(ack),
            tick: u64::from(step) + u64::from(episode) * 100,
            step,
            episode,
            bytes: 80,
            pixels: false,
        };
        bot.on_frame(t + Duration::from_millis(10), &frame(4, 0, 0));
        bot.pending
            .push_back((1, t + Duration::from_millis(20), true, bot.last_episode));
        bot.on_frame(t + Duration::from_millis(50), &frame(5, 0, 1));
        bot.pending
            .push_back((2, t + Duration::from_millis(60), true, bot.last_episode));
        bot.on_frame(t + Duration::from_millis(80), &frame(0, 1, 1));
        bot.on_frame(t + Duration::from_millis(120), &frame(1, 1, 2));
        assert_eq!(bot.report.latencies_us, vec![30_000]);
        assert_eq!(bot.report.boundary_latencies_us, vec![60_000]);
    }

    /// A bot that waits in a multiplayer scene's lobby starts its game clock at
    /// the seat: the wait is reported as such, not as game time owing frames.
    #[test]
    fn lobby_time_is_not_game_time() {
        let t = Instant::now();
        let live = Arc::new(Live::default());
        let mut bot = bot(t, &live);
        bot.enter_game(&game(15, true, &["Space"]), t);
        assert!(bot.in_lobby());
        assert_eq!(Live::get(&live.in_lobby), 1);
        let seat = SeatView {
            agent: 1,
            agent_name: "chef_1".into(),
            input: Some(tandem_wire::InputKind::Action),
            keys: vec!["ArrowUp".into(), "Space".into()],
            feedback: Some(Vec::new()),
        };
        let others = [OtherSeat {
            agent: 0,
            agent_name: "chef_0".into(),
            human: true,
            actor: "participant:1".into(),
        }];
        bot.on_seat(&seat, &others, t + Duration::from_secs(2));
        assert!(!bot.in_lobby());
        assert_eq!(
            (Live::get(&live.in_lobby), Live::get(&live.in_game)),
            (0, 1)
        );
        assert_eq!(bot.game.as_ref().map(|g| g.keys.len()), Some(2));
        bot.leave_game(t + Duration::from_secs(5));
        let r = &bot.report;
        assert_eq!(r.lobby_waits_us, vec![2_000_000]);
        assert_eq!(r.game_seconds, 3.0);
        assert_eq!(r.expected_frames, 45.0);
        assert!(r.multiplayer && !r.seated_with_ai);
        assert_eq!(Live::get(&live.in_game), 0);
    }

    /// Window overlap counts only the part of a span inside the window.
    #[test]
    fn window_overlap() {
        let t = Instant::now();
        let w = Window {
            start: t + Duration::from_secs(10),
            end: t + Duration::from_secs(20),
        };
        assert_eq!(w.overlap(t, t + Duration::from_secs(15)), 5.0);
        assert_eq!(w.overlap(t, t + Duration::from_secs(5)), 0.0);
        assert_eq!(
            w.overlap(t + Duration::from_secs(12), t + Duration::from_secs(30)),
            8.0
        );
        assert!(w.contains(t + Duration::from_secs(10)));
        assert!(!w.contains(t + Duration::from_secs(20)));
    }
}
