//! What the server sends: one enum, tagged by `type`, with a payload struct per
//! message type as `docs/WIRE.md` lists them.
//!
//! The server encodes with [`ServerMessage::to_text`]; clients decode with
//! [`ServerMessage::from_text`]. A message of a type this build does not know
//! decodes to [`ServerMessage::Unknown`], so a client one version behind skips
//! it instead of failing; a known type with missing or mistyped fields is an
//! error the caller can count and skip. Fields a payload does not name are
//! ignored, so the server may add fields without breaking older clients.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::codes::{ErrorCode, NoticeCode, PROTOCOL_VERSION};
use crate::frame::SpriteFrame;
use crate::scene::SceneView;
use crate::seat::{OtherSeat, SeatView};

/// A text message from the server. (Pixel frames are binary: see
/// [`crate::decode_pixel_frame`].)
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ServerMessage {
    /// The first message on every socket.
    Hello(Hello),
    /// Show this scene: sent on connect and after every advance.
    Scene(SceneMessage),
    /// A survey answer was rejected; stay on the scene.
    Invalid(Invalid),
    /// Game progress for the heads-up display.
    Game(GameStatus),
    /// Waiting for partners in a lobby.
    Lobby(LobbyStatus),
    /// The game started (or resumed) with this participant in a seat.
    Seat(SeatMessage),
    /// Something to tell the participant about the game.
    Notice(Notice),
    /// A sprite frame.
    Frame(SpriteFrame),
    /// The answer to a `ping`.
    Pong(Pong),
    /// A clock probe: the page answers with its own time at once, so the
    /// server can relate the page's clock to its own.
    Clock(ClockProbe),
    /// A message from this browser was refused, or something failed.
    Error(ErrorMessage),
    /// Another socket took over this participant; this one is closed next.
    Replaced,
    /// A message of a type this build does not know. Only ever decoded; it
    /// serializes as type `unknown`, which decodes back to it.
    #[serde(other)]
    Unknown,
}

impl ServerMessage {
    /// Every `type` the protocol defines, in the order `docs/WIRE.md` lists them.
    pub const TYPES: [&'static str; 12] = [
        "hello", "scene", "invalid", "game", "lobby", "seat", "notice", "frame", "pong", "clock",
        "error", "replaced",
    ];

    /// `hello` for `participant` (a public id) in `experiment`, at this build's
    /// protocol version.
    pub fn hello(participant: impl Into<String>, experiment: ExperimentInfo) -> ServerMessage {
        ServerMessage::Hello(Hello {
            protocol: PROTOCOL_VERSION,
            participant: participant.into(),
            experiment,
        })
    }

    /// `error` with `code` and a message for the log and the participant.
    pub fn error(code: ErrorCode, message: impl Into<String>) -> ServerMessage {
        ServerMessage::Error(ErrorMessage {
            code,
            message: message.into(),
        })
    }

    /// `notice` with `code` and a text written for the participant.
    pub fn notice(code: NoticeCode, text: impl Into<String>) -> ServerMessage {
        ServerMessage::Notice(Notice {
            code,
            text: text.into(),
        })
    }

    /// The message's `type` on the wire (`unknown` for [`ServerMessage::Unknown`]).
    pub fn type_name(&self) -> &'static str {
        match self {
            ServerMessage::Hello(_) => "hello",
            ServerMessage::Scene(_) => "scene",
            ServerMessage::Invalid(_) => "invalid",
            ServerMessage::Game(_) => "game",
            ServerMessage::Lobby(_) => "lobby",
            ServerMessage::Seat(_) => "seat",
            ServerMessage::Notice(_) => "notice",
            ServerMessage::Frame(_) => "frame",
            ServerMessage::Pong(_) => "pong",
            ServerMessage::Clock(_) => "clock",
            ServerMessage::Error(_) => "error",
            ServerMessage::Replaced => "replaced",
            ServerMessage::Unknown => "unknown",
        }
    }

    /// Decodes one text message. An unknown `type` is `Ok(Unknown)`; text that
    /// is not JSON, has no `type`, or has a known type with the wrong fields is
    /// an error.
    pub fn from_text(text: &str) -> Result<ServerMessage, serde_json::Error> {
        // Not the derived `Deserialize`: serde reads an internally tagged enum
        // by first copying the whole message into a generic tree, and the
        // bench's bots decode every frame of thousands of sockets. Frames,
        // nearly all the traffic, are written with `type` first, so they are
        // read in one pass; any other message in two: the tag (skipping the
        // other fields without copying them), then the payload, straight from
        // the text and ignoring `type`.
        if text.starts_with(FRAME_PREFIX) {
            return Ok(ServerMessage::Frame(serde_json::from_str(text)?));
        }
        let tag: Tag = serde_json::from_str(text)?;
        Ok(match tag.kind.as_ref() {
            "hello" => ServerMessage::Hello(serde_json::from_str(text)?),
            "scene" => ServerMessage::Scene(serde_json::from_str(text)?),
            "invalid" => ServerMessage::Invalid(serde_json::from_str(text)?),
            "game" => ServerMessage::Game(serde_json::from_str(text)?),
            "lobby" => ServerMessage::Lobby(serde_json::from_str(text)?),
            "seat" => ServerMessage::Seat(serde_json::from_str(text)?),
            "notice" => ServerMessage::Notice(serde_json::from_str(text)?),
            "frame" => ServerMessage::Frame(serde_json::from_str(text)?),
            "pong" => ServerMessage::Pong(serde_json::from_str(text)?),
            "clock" => ServerMessage::Clock(serde_json::from_str(text)?),
            "error" => ServerMessage::Error(serde_json::from_str(text)?),
            "replaced" => ServerMessage::Replaced,
            _ => ServerMessage::Unknown,
        })
    }

    /// The message as the text a socket sends.
    pub fn to_text(&self) -> String {
        // Serializing cannot fail: every map key is a string and no field has a
        // fallible `Serialize` (the tests serialize every variant).
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// How every frame the server encodes begins (`SpriteFrameRef` and the
/// enum both write the tag first).
const FRAME_PREFIX: &str = r#"{"type":"frame","#;

/// A message's `type`, read without the rest of it.
#[derive(Deserialize)]
struct Tag<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
}

/// `hello`: who this socket is, in which experiment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Hello {
    /// The protocol version ([`PROTOCOL_VERSION`]).
    pub protocol: u32,
    /// The participant's public id.
    pub participant: String,
    pub experiment: ExperimentInfo,
}

/// The experiment, as `hello` names it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExperimentInfo {
    pub id: String,
    pub title: String,
}

/// `scene`: show scene `index` (the experiment's numbering, which messages
/// about the scene quote back), step `step` of the `count` scenes this
/// participant is shown (their plan: conditions and blocks make it differ
/// between participants).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SceneMessage {
    pub index: usize,
    pub count: usize,
    #[serde(default)]
    pub step: usize,
    pub scene: SceneView,
}

/// `invalid`: the survey answers for scene `scene` were rejected.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Invalid {
    pub scene: usize,
    /// Question id → message for the participant; problems that concern no
    /// single question are under `_`.
    pub errors: BTreeMap<String, String>,
}

/// Where a game stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GameState {
    Playing,
    Ended,
    /// Paused for a participant who left.
    Waiting,
}

/// `game`: progress for the heads-up display, sent at episode boundaries.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GameStatus {
    pub status: GameState,
    /// The episode playing (or next), 0-based.
    pub episode: u32,
    pub episodes_done: u32,
    /// The episodes the scene plays, if it counts them.
    pub episodes_total: Option<u32>,
    /// Seconds left, if the scene has a time limit.
    pub time_left_s: Option<f64>,
    /// The return of the last finished episode, if any.
    pub last_return: Option<f64>,
}

/// `lobby`: waiting for partners in game scene `scene`'s lobby.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LobbyStatus {
    pub scene: usize,
    /// Participants waiting in this scene's lobby.
    pub waiting: usize,
    /// Participants per game.
    pub needed: u32,
    /// This participant's wait so far (the server rounds it to tenths).
    pub waited_s: f64,
    /// How long the lobby waits before filling seats; null: for a full group.
    pub timeout_s: Option<u32>,
}

/// `seat`: the participant plays `seat`; `others` are the game's other seats.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SeatMessage {
    pub seat: SeatView,
    pub others: Vec<OtherSeat>,
}

/// `notice`: something about the game the participant should read.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Notice {
    pub code: NoticeCode,
    /// Written for the participant.
    pub text: String,
}

/// `pong`: the `t` of the `ping` it answers, echoed as sent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Pong {
    #[serde(default)]
    pub t: Value,
}

/// `clock`: a probe the page answers with a `clock` of its own carrying `id`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClockProbe {
    pub id: u64,
}

/// `error`: what went wrong, for the log and (sometimes) the participant.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ErrorMessage {
    pub code: ErrorCode,
    pub message: String,
}
