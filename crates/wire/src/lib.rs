//! The participant WebSocket's messages, typed, in one place: the server encodes
//! with these types, and the bench's bots, the tests and any future client decode
//! with them, so the two ends cannot drift apart. `docs/WIRE.md` documents the
//! protocol these types speak; the JSON they produce is that protocol, field for
//! field.
//!
//! Layout:
//! - `client`: [`ClientMessage`], what a browser sends, and its [`ClientMessage::parse`],
//!   which never fails (anything bad is [`ClientMessage::Invalid`]).
//! - `server`: [`ServerMessage`], every text message the server sends, one variant
//!   per `type`, with a payload struct each.
//! - `scene`: [`SceneView`], a scene as the page receives it (`info`, `game`,
//!   `survey`, `end`).
//! - `seat`: [`SeatView`] and [`OtherSeat`], who plays which agent of a game.
//! - `codes`: [`PROTOCOL_VERSION`], close codes, and the [`NoticeCode`]s and
//!   [`ErrorCode`]s a message can carry.
//! - `frame`: sprite frames (an owned [`SpriteFrame`] for decoding, a borrowed
//!   [`SpriteFrameRef`] for the server's hot path) and binary pixel frames
//!   ([`encode_pixel_frame`], [`decode_pixel_frame`]).
//! - `sprite_binary`: sprite frames in binary, patches of the numbers that
//!   changed ([`encode_sprite_frame`], [`SpriteState`]).
//!
//! This crate does no I/O: it turns messages into text or bytes and back, and
//! leaves sockets to its users.

mod client;
mod codes;
mod frame;
mod scene;
mod seat;
mod server;
mod sprite_binary;

pub use client::{
    ClientMessage, Input, MAX_CLIENT_MESSAGE, MAX_KEY_LEN, MAX_KEYS, MAX_PING_T_LEN,
    MAX_REASON_LEN, MAX_SHOWN, PageState, truncate_reason,
};
pub use codes::{
    CLOSE_FULL, CLOSE_INVALID_DATA, CLOSE_NORMAL, CLOSE_POLICY, CLOSE_PROTOCOL, CLOSE_REPLACED,
    CLOSE_RESTART, CLOSE_SILENT, CLOSE_TOO_BIG, CLOSE_UNKNOWN_PARTICIPANT, ErrorCode, NoticeCode,
    PING_INTERVAL_S, PROTOCOL_VERSION, SILENCE_LIMIT_S,
};
pub use frame::{
    PIXEL_DELTA_V1, PIXEL_FRAME_V1, PixelFrame, PixelFrameError, PixelHeader, SpriteFrame,
    SpriteFrameRef, decode_pixel_frame, encode_pixel_frame,
};
pub use scene::{
    Canvas, EndView, GameView, InfoView, MturkSubmit, QuestionKind, QuestionView, RenderMode,
    SceneView, ScoreHistogram, ScoreView, ScreeningView, SurveyView,
};
pub use seat::{FeedbackKey, InputKind, OtherSeat, SeatView};
pub use server::{
    ClockProbe, ErrorMessage, ExperimentInfo, GameState, GameStatus, Hello, Invalid, LobbyStatus,
    Notice, Pong, SceneMessage, SeatMessage, ServerMessage,
};
pub use sprite_binary::{
    SPRITE_FRAME_V1, SpriteFrameError, SpriteHeader, SpriteState, encode_sprite_frame, put_varint,
    sprite_frame_header,
};
