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

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};
use serde::Deserialize;
use serde_json::{Value, json};
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
/// The server accepts at most this many keys in one input.
const MAX_KEYS: usize = 16;
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
    /// Input-to-frame latency of inputs sent inside the window, microseconds.
    pub latencies_us: Vec<u32>,
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
    /// Inputs sent and not yet acknowledged: (seq, sent at, sent inside window).
    pending: VecDeque<(u64, Instant, bool)>,
    /// When the previous frame arrived, and its `tick` (within the current game).
    last_frame: Option<Instant>,
    last_tick: Option<u64>,
    /// Frames received on this socket: the `frame` field of inputs.
    frames_seen: u64,
}

/// The fields of a server message the bot looks at; the rest is skipped.
#[derive(Deserialize)]
struct Incoming {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    ack: Option<u64>,
    #[serde(default)]
    step: Option<u64>,
    #[serde(default)]
    tick: Option<u64>,
    #[serde(default)]
    index: Option<usize>,
    #[serde(default)]
    scene: Option<Value>,
    /// `seat` messages: this participant's seat.
    #[serde(default)]
    seat: Option<Value>,
    /// `seat` messages: the other seats.
    #[serde(default)]
    others: Option<Vec<Value>>,
    /// `notice` messages.
    #[serde(default)]
    code: Option<String>,
}

/// The header of a binary pixel frame (the fields the bot looks at).
#[derive(Debug, Deserialize, PartialEq)]
struct PixelHeader {
    #[serde(default)]
    ack: Option<u64>,
    #[serde(default)]
    step: u64,
    #[serde(default)]
    tick: Option<u64>,
}

/// What a frame says, for the measurements.
struct FrameFacts {
    ack: Option<u64>,
    /// The game's publish counter.
    tick: Option<u64>,
    /// Step within the episode: 0 is the frame right after a reset, which the
    /// game publishes besides its one frame per tick.
    step: u64,
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
                    self.on_pixels(&bytes, now);
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

    async fn send(&mut self, socket: &mut Socket, message: Value) -> Result<(), String> {
        socket
            .send(Message::Text(message.to_string().into()))
            .await
            .map_err(|e| format!("send failed: {e}"))
    }

    async fn on_text(
        &mut self,
        socket: &mut Socket,
        text: &str,
        now: Instant,
    ) -> Result<Next, String> {
        let message: Incoming = match serde_json::from_str(text) {
            Ok(m) => m,
            Err(_) => {
                self.report.server_errors += 1;
                return Ok(Next::Continue);
            }
        };
        match message.kind.as_str() {
            "frame" => {
                let facts = FrameFacts {
                    ack: message.ack,
                    step: message.step.unwrap_or(1),
                    tick: message.tick,
                    bytes: text.len(),
                    pixels: false,
                };
                self.on_frame(now, &facts);
                Ok(Next::Continue)
            }
            "scene" => {
                let (Some(index), Some(scene)) = (message.index, message.scene) else {
                    self.report.server_errors += 1;
                    return Ok(Next::Continue);
                };
                self.on_scene(socket, index, &scene, now).await
            }
            "lobby" => {
                self.report.lobby_messages += 1;
                Ok(Next::Continue)
            }
            "seat" => {
                let Some(seat) = message.seat else {
                    self.report.server_errors += 1;
                    return Ok(Next::Continue);
                };
                self.on_seat(&seat, message.others.as_deref().unwrap_or_default(), now);
                Ok(Next::Continue)
            }
            "notice" => {
                // After the window the bots close one by one, and each close
                // tells its partner `partner_left`: teardown, not the run's news.
                if now < self.config.window.end {
                    let code = message.code.unwrap_or_else(|| "(none)".to_string());
                    *self.report.notices.entry(code).or_default() += 1;
                }
                Ok(Next::Continue)
            }
            "error" => {
                self.report.server_errors += 1;
                Ok(Next::Continue)
            }
            // A survey answer was refused: the bot cannot do better, so it leaves.
            "invalid" => {
                self.report.server_errors += 1;
                Ok(Next::Close)
            }
            _ => Ok(Next::Continue),
        }
    }

    async fn on_scene(
        &mut self,
        socket: &mut Socket,
        index: usize,
        scene: &Value,
        now: Instant,
    ) -> Result<Next, String> {
        self.leave_game(now);
        match scene["kind"].as_str() {
            Some("info") => {
                self.send(
                    socket,
                    json!({"type": "advance", "scene": index, "checked": true}),
                )
                .await?;
            }
            Some("survey") => {
                let answers = survey_answers(scene);
                self.send(
                    socket,
                    json!({"type": "submit", "scene": index, "answers": answers}),
                )
                .await?;
            }
            Some("game") => self.enter_game(scene, now),
            Some("end") => {
                self.report.finished = true;
                return Ok(Next::Close);
            }
            _ => self.report.server_errors += 1,
        }
        Ok(Next::Continue)
    }

    /// Enters a game scene: a single-player game's clock starts now, a
    /// multiplayer one's at the seat (the bot waits in the lobby until then).
    fn enter_game(&mut self, scene: &Value, now: Instant) {
        let fps = scene["fps"]
            .as_u64()
            .and_then(|f| u32::try_from(f).ok())
            .unwrap_or(0);
        let multiplayer = scene["multiplayer"].as_bool().unwrap_or(false);
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
            keys: key_names(&scene["keys"]),
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
    fn on_seat(&mut self, seat: &Value, others: &[Value], now: Instant) {
        let pause = self.pause();
        let Some(game) = self.game.as_mut() else {
            // A seat outside a game scene: the server is confused, not the bot.
            self.report.server_errors += 1;
            return;
        };
        let keys = key_names(&seat["keys"]);
        if !keys.is_empty() {
            game.keys = keys;
        }
        if others.iter().any(|o| o["human"].as_bool() == Some(false)) {
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
    }

    fn on_pixels(&mut self, bytes: &[u8], now: Instant) {
        match pixel_header(bytes) {
            Some(header) => {
                let facts = FrameFacts {
                    ack: header.ack,
                    step: header.step,
                    tick: header.tick,
                    bytes: bytes.len(),
                    pixels: true,
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
                if let (Some(tick), Some(last)) = (frame.tick, self.last_tick) {
                    r.skipped_frames += tick.saturating_sub(last).saturating_sub(1);
                }
            }
        }
        self.last_frame = Some(now);
        self.last_tick = frame.tick.or(self.last_tick);
        if let Some(ack) = frame.ack {
            while let Some(&(seq, sent, in_window)) = self.pending.front() {
                if seq > ack {
                    break;
                }
                self.pending.pop_front();
                if in_window {
                    self.report.latencies_us.push(micros(now - sent));
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
        let message = json!({
            "type": "input",
            "seq": self.seq,
            "frame": self.frames_seen,
            "ts": ts,
            "keys": self.keys,
        });
        self.send(socket, message).await?;
        let in_window = self.config.window.contains(now);
        if in_window {
            self.report.inputs_sent += 1;
        }
        if self.pending.len() >= MAX_PENDING
            && let Some((_, _, true)) = self.pending.pop_front()
        {
            self.report.inputs_unacked += 1;
        }
        self.pending.push_back((self.seq, now, in_window));
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

/// Key names from a `keys` array of a scene or seat message, capped at
/// [`MAX_KEYS`]; empty if there is none.
fn key_names(keys: &Value) -> Vec<String> {
    keys.as_array()
        .map(|keys| {
            keys.iter()
                .filter_map(|k| k.as_str().map(str::to_string))
                .take(MAX_KEYS)
                .collect()
        })
        .unwrap_or_default()
}

/// The header of a binary pixel frame, if the frame is well formed (byte 0 is 1,
/// a little-endian u32 header length, a JSON header).
fn pixel_header(bytes: &[u8]) -> Option<PixelHeader> {
    let (&version, rest) = bytes.split_first()?;
    if version != 1 {
        return None;
    }
    let len = u32::from_le_bytes(rest.get(..4)?.try_into().ok()?) as usize;
    let header = rest.get(4..4usize.checked_add(len)?)?;
    serde_json::from_slice(header).ok()
}

/// Answers a willing participant gives: the first option, the middle of a
/// likert scale, "bench" for text.
fn survey_answers(scene: &Value) -> Value {
    let mut answers = serde_json::Map::new();
    for question in scene["questions"].as_array().into_iter().flatten() {
        let Some(id) = question["id"].as_str() else {
            continue;
        };
        let first = question["options"].get(0).cloned().unwrap_or(Value::Null);
        let answer = match question["kind"].as_str() {
            Some("single") => first,
            Some("multiple") => json!([first]),
            Some("likert") => json!(question["scale"].as_u64().unwrap_or(1).div_ceil(2).max(1)),
            Some("text") => json!("bench"),
            _ => Value::Null,
        };
        answers.insert(id.to_string(), answer);
    }
    Value::Object(answers)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Survey answers follow each question's kind and pass the server's checks.
    #[test]
    fn answers_surveys() {
        let scene = json!({"kind": "survey", "questions": [
            {"id": "a", "kind": "single", "options": ["x", "y"]},
            {"id": "b", "kind": "multiple", "options": ["p", "q"]},
            {"id": "c", "kind": "likert", "scale": 7},
            {"id": "d", "kind": "text"},
        ]});
        assert_eq!(
            survey_answers(&scene),
            json!({"a": "x", "b": ["p"], "c": 4, "d": "bench"})
        );
    }

    /// Pixel frame headers are read as documented; malformed ones are refused.
    #[test]
    fn reads_pixel_headers() {
        let header = br#"{"tick":9,"step":3,"ack":7,"width":2}"#;
        let mut frame = vec![1u8];
        frame.extend_from_slice(&(header.len() as u32).to_le_bytes());
        frame.extend_from_slice(header);
        frame.extend_from_slice(b"\x89PNG");
        assert_eq!(
            pixel_header(&frame),
            Some(PixelHeader {
                ack: Some(7),
                step: 3,
                tick: Some(9),
            })
        );
        assert_eq!(pixel_header(&frame[..8]), None);
        assert_eq!(pixel_header(&[2, 0, 0, 0, 0]), None);
        assert_eq!(pixel_header(&[1, 255, 255, 255, 255, b'{']), None);
        assert_eq!(pixel_header(&[]), None);
    }

    /// A bot that waits in a multiplayer scene's lobby starts its game clock at
    /// the seat: the wait is reported as such, not as game time owing frames.
    #[test]
    fn lobby_time_is_not_game_time() {
        let t = Instant::now();
        let live = Arc::new(Live::default());
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
            live: Arc::clone(&live),
        };
        let mut bot = Bot::new(config, BotReport::default());
        let scene = json!({"kind": "game", "fps": 15, "multiplayer": true, "keys": ["Space"]});
        bot.enter_game(&scene, t);
        assert!(bot.in_lobby());
        assert_eq!(Live::get(&live.in_lobby), 1);
        let seat = json!({"agent": 1, "keys": ["ArrowUp", "Space"]});
        let others = [json!({"agent": 0, "human": true})];
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
