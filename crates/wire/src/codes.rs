//! The protocol's numbers and names: its version, the close codes the server
//! closes a socket with, and the codes of `notice` and `error` messages.
//!
//! Notice and error codes are enums so that senders cannot misspell them, but
//! each keeps an `Other` variant for a code this build does not know: codes are
//! an open list that grows with the server, and a client one version behind must
//! still read the message (and show its text) rather than fail on it.

use serde::{Deserialize, Serialize};

/// The protocol version sent in `hello`.
pub const PROTOCOL_VERSION: u32 = 1;

/// Close code: a normal close.
pub const CLOSE_NORMAL: u16 = 1000;
/// Close code: too many refused messages (WebSocket "policy violation").
pub const CLOSE_POLICY: u16 = 1008;
/// Close code: a message broke the WebSocket protocol.
pub const CLOSE_PROTOCOL: u16 = 1002;
/// Close code: a text message was not UTF-8.
pub const CLOSE_INVALID_DATA: u16 = 1007;
/// Close code: a message was larger than [`crate::MAX_CLIENT_MESSAGE`].
pub const CLOSE_TOO_BIG: u16 = 1009;
/// Close code: the server is shutting down (WebSocket "service restart"):
/// reconnect with backoff.
pub const CLOSE_RESTART: u16 = 1012;
/// Close code: the server holds as many sockets as it may; try again later.
pub const CLOSE_FULL: u16 = 1013;
/// Close code: no participant cookie, or an unknown one: reload the page.
pub const CLOSE_UNKNOWN_PARTICIPANT: u16 = 4001;
/// Close code: another socket took over this participant.
pub const CLOSE_REPLACED: u16 = 4002;
/// Close code: the socket answered none of the server's WebSocket pings for
/// [`SILENCE_LIMIT_S`] seconds; the peer is taken to be gone. A page that is
/// still there reconnects.
pub const CLOSE_SILENT: u16 = 4003;

/// How often the server pings a socket (WebSocket ping frames, which browsers
/// answer without the page's code, even in a background tab), in seconds.
pub const PING_INTERVAL_S: u64 = 15;
/// How long a socket may stay silent (no message, no pong) before the server
/// closes it, in seconds: three pings unanswered.
pub const SILENCE_LIMIT_S: u64 = 45;

/// What a `notice` is about.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeCode {
    /// A partner's player left; the game goes on (their fallback plays) or waits.
    PartnerLeft,
    /// A partner who left came back.
    PartnerBack,
    /// A partner did not come back in time; an AI keeps their seat.
    PartnerGone,
    /// A partner did not come back and nobody could take the seat: the game
    /// ended early, and a `scene` follows.
    PartnerDidNotReturn,
    /// An AI player failed and nobody could take its seat: the game ended
    /// early, and a `scene` follows.
    PolicyFailed,
    /// Every player left: the game ended early, and a `scene` follows.
    Abandoned,
    /// The lobby timed out with no partner: a `scene` follows.
    NoPartner,
    /// A researcher ended the game from the console: a `scene` follows.
    EndedByResearcher,
    /// A code this build does not know, as sent.
    #[serde(untagged)]
    Other(String),
}

impl NoticeCode {
    /// Every code this build knows, in the order `docs/WIRE.md` lists them.
    pub const KNOWN: [NoticeCode; 8] = [
        NoticeCode::PartnerLeft,
        NoticeCode::PartnerBack,
        NoticeCode::PartnerGone,
        NoticeCode::PartnerDidNotReturn,
        NoticeCode::PolicyFailed,
        NoticeCode::Abandoned,
        NoticeCode::NoPartner,
        NoticeCode::EndedByResearcher,
    ];

    /// The code as written on the wire.
    pub fn as_str(&self) -> &str {
        match self {
            NoticeCode::PartnerLeft => "partner_left",
            NoticeCode::PartnerBack => "partner_back",
            NoticeCode::PartnerGone => "partner_gone",
            NoticeCode::PartnerDidNotReturn => "partner_did_not_return",
            NoticeCode::PolicyFailed => "policy_failed",
            NoticeCode::Abandoned => "abandoned",
            NoticeCode::NoPartner => "no_partner",
            NoticeCode::EndedByResearcher => "ended_by_researcher",
            NoticeCode::Other(code) => code,
        }
    }
}

/// Why an `error` was sent: mostly a message from this browser was refused.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Not a valid message (malformed, unknown, too many keys, binary).
    InvalidMessage,
    /// `scene` is not the participant's current scene.
    WrongScene,
    /// The message does not fit the current scene's kind.
    WrongKind,
    /// An `advance` without the consent box ticked.
    ConsentRequired,
    /// The server could not read or write what it needed; reloading may help.
    Storage,
    /// The game stopped because of an error; the participant moves on.
    GameFailed,
    /// A code this build does not know, as sent.
    #[serde(untagged)]
    Other(String),
}

impl ErrorCode {
    /// Every code this build knows, in the order `docs/WIRE.md` lists them.
    pub const KNOWN: [ErrorCode; 6] = [
        ErrorCode::InvalidMessage,
        ErrorCode::WrongScene,
        ErrorCode::WrongKind,
        ErrorCode::ConsentRequired,
        ErrorCode::Storage,
        ErrorCode::GameFailed,
    ];

    /// The code as written on the wire.
    pub fn as_str(&self) -> &str {
        match self {
            ErrorCode::InvalidMessage => "invalid_message",
            ErrorCode::WrongScene => "wrong_scene",
            ErrorCode::WrongKind => "wrong_kind",
            ErrorCode::ConsentRequired => "consent_required",
            ErrorCode::Storage => "storage",
            ErrorCode::GameFailed => "game_failed",
            ErrorCode::Other(code) => code,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Known codes serialize as their names; unknown ones are kept as sent.
    #[test]
    fn codes_round_trip() {
        for code in NoticeCode::KNOWN {
            let text = serde_json::to_string(&code).ok();
            assert_eq!(text, Some(format!("\"{}\"", code.as_str())));
            let back: Option<NoticeCode> = text.and_then(|t| serde_json::from_str(&t).ok());
            assert_eq!(back, Some(code));
        }
        for code in ErrorCode::KNOWN {
            let text = serde_json::to_string(&code).ok();
            assert_eq!(text, Some(format!("\"{}\"", code.as_str())));
            let back: Option<ErrorCode> = text.and_then(|t| serde_json::from_str(&t).ok());
            assert_eq!(back, Some(code));
        }
        let other: Option<NoticeCode> = serde_json::from_str("\"meteor_strike\"").ok();
        assert_eq!(other, Some(NoticeCode::Other("meteor_strike".into())));
        assert_eq!(
            serde_json::to_string(&ErrorCode::Other("x".into())).ok(),
            Some("\"x\"".into())
        );
        assert!(serde_json::from_str::<ErrorCode>("3").is_err());
    }
}
