//! The participant WebSocket's messages, as documented in `docs/WIRE.md`.
//!
//! Client messages are one enum parsed from JSON text; anything that does not parse
//! becomes [`ClientMessage::Invalid`] with a reason, so the socket loop can answer it
//! with an error and carry on instead of dropping the participant. Server messages
//! are built as JSON values by small constructors, one per message type.

use serde::Deserialize;
use serde_json::{Value, json};

/// Largest text message a browser may send. Inputs are tiny; the largest honest
/// message is a survey with many long text answers (each capped at 10,000
/// characters by the experiment file). Anything bigger is abuse or a bug.
pub const MAX_CLIENT_MESSAGE: usize = 256 * 1024;

/// The protocol version sent in `hello`.
pub const PROTOCOL_VERSION: u32 = 1;

/// Close code: no participant cookie, or an unknown one.
pub const CLOSE_UNKNOWN_PARTICIPANT: u16 = 4001;
/// Close code: another socket took over this participant.
pub const CLOSE_REPLACED: u16 = 4002;
/// Close code: the server is shutting down (WebSocket "service restart").
pub const CLOSE_RESTART: u16 = 1012;
/// Close code: too many bad messages.
pub const CLOSE_POLICY: u16 = 1008;
/// Close code: the server holds as many sockets as it may ("try again later").
pub const CLOSE_FULL: u16 = 1013;

/// A message from the browser.
#[derive(Debug, PartialEq)]
pub enum ClientMessage {
    /// Leave the info scene `scene`.
    Advance { scene: usize, checked: bool },
    /// Answer the survey scene `scene`.
    Submit { scene: usize, answers: Value },
    /// The complete set of keys held now.
    Input(Input),
    /// Round-trip probe, echoed back.
    Ping { t: Value },
    /// Anything that is not a valid message: the reason says why.
    Invalid { reason: String },
}

/// One `input` message: the keys held, and where and when the browser saw them.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Input {
    pub seq: u64,
    #[serde(default)]
    pub frame: Option<u64>,
    #[serde(default)]
    pub ts: Option<f64>,
    pub keys: Vec<String>,
}

/// The most keys one input may hold; a keyboard has no more than this pressed.
const MAX_KEYS: usize = 16;

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum Raw {
    Advance {
        scene: usize,
        #[serde(default)]
        checked: bool,
    },
    Submit {
        scene: usize,
        answers: Value,
    },
    Input(Input),
    Ping {
        #[serde(default)]
        t: Value,
    },
}

impl ClientMessage {
    /// Parses one text message. Never fails: bad input becomes `Invalid`.
    pub fn parse(text: &str) -> ClientMessage {
        if text.len() > MAX_CLIENT_MESSAGE {
            return ClientMessage::Invalid {
                reason: format!("message of {} bytes is too large", text.len()),
            };
        }
        match serde_json::from_str::<Raw>(text) {
            Ok(Raw::Advance { scene, checked }) => ClientMessage::Advance { scene, checked },
            Ok(Raw::Submit { scene, answers }) => ClientMessage::Submit { scene, answers },
            Ok(Raw::Input(input)) if input.keys.len() > MAX_KEYS => ClientMessage::Invalid {
                reason: format!("input holds {} keys, at most {MAX_KEYS}", input.keys.len()),
            },
            Ok(Raw::Input(input)) => ClientMessage::Input(input),
            Ok(Raw::Ping { t }) => ClientMessage::Ping { t },
            Err(e) => ClientMessage::Invalid {
                reason: e.to_string(),
            },
        }
    }
}

/// `hello`: the first message on every socket.
pub fn hello(participant: &str, experiment_id: &str, title: &str) -> Value {
    json!({
        "type": "hello",
        "protocol": PROTOCOL_VERSION,
        "participant": participant,
        "experiment": {"id": experiment_id, "title": title},
    })
}

/// `scene`: show this scene.
pub fn scene(index: usize, count: usize, scene: Value) -> Value {
    json!({"type": "scene", "index": index, "count": count, "scene": scene})
}

/// `invalid`: survey answers rejected, per question.
pub fn invalid(scene: usize, errors: &std::collections::BTreeMap<String, String>) -> Value {
    json!({"type": "invalid", "scene": scene, "errors": errors})
}

/// `error`: a message from this browser was refused.
pub fn error(code: &str, message: &str) -> Value {
    json!({"type": "error", "code": code, "message": message})
}

/// `pong`: the answer to `ping`.
pub fn pong(t: &Value) -> Value {
    json!({"type": "pong", "t": t})
}

/// `replaced`: another socket took over.
pub fn replaced() -> Value {
    json!({"type": "replaced"})
}

/// `lobby`: waiting for partners in the lobby of game scene `scene`.
pub fn lobby(
    scene: usize,
    waiting: usize,
    needed: u32,
    waited_s: f64,
    timeout_s: Option<u32>,
) -> Value {
    json!({
        "type": "lobby",
        "scene": scene,
        "waiting": waiting,
        "needed": needed,
        "waited_s": (waited_s * 10.0).round() / 10.0,
        "timeout_s": timeout_s,
    })
}

/// `seat`: which agent this participant plays, how their keys count, and who
/// holds the other seats.
pub fn seat(seat: Value, others: Vec<Value>) -> Value {
    json!({"type": "seat", "seat": seat, "others": others})
}

/// `notice`: something about the game the participant should read (a partner
/// left, an AI took over, the game ended early).
pub fn notice(code: &str, text: &str) -> Value {
    json!({"type": "notice", "code": code, "text": text})
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every documented client message parses into its variant.
    #[test]
    fn parses_documented_messages() {
        assert_eq!(
            ClientMessage::parse(r#"{"type":"advance","scene":0,"checked":true}"#),
            ClientMessage::Advance {
                scene: 0,
                checked: true
            }
        );
        assert_eq!(
            ClientMessage::parse(
                r#"{"type":"input","seq":3,"frame":10,"ts":1.5,"keys":["ArrowLeft"]}"#
            ),
            ClientMessage::Input(Input {
                seq: 3,
                frame: Some(10),
                ts: Some(1.5),
                keys: vec!["ArrowLeft".into()]
            })
        );
        assert!(matches!(
            ClientMessage::parse(r#"{"type":"submit","scene":3,"answers":{"a":1}}"#),
            ClientMessage::Submit { scene: 3, .. }
        ));
        assert!(matches!(
            ClientMessage::parse(r#"{"type":"ping","t":5}"#),
            ClientMessage::Ping { .. }
        ));
    }

    /// Malformed, unknown, oversized and abusive messages become `Invalid`, never a panic.
    #[test]
    fn bad_messages_are_invalid() {
        for text in [
            "",
            "not json",
            "[]",
            r#"{"type":"teleport"}"#,
            r#"{"type":"advance","scene":-1}"#,
            r#"{"type":"input","seq":"x","keys":[]}"#,
            r#"{"type":"input","seq":1}"#,
        ] {
            assert!(
                matches!(ClientMessage::parse(text), ClientMessage::Invalid { .. }),
                "{text}"
            );
        }
        let big = format!(
            r#"{{"type":"ping","t":"{}"}}"#,
            "x".repeat(MAX_CLIENT_MESSAGE)
        );
        assert!(matches!(
            ClientMessage::parse(&big),
            ClientMessage::Invalid { .. }
        ));
        let keys: Vec<String> = (0..40).map(|i| format!("k{i}")).collect();
        let many = json!({"type": "input", "seq": 1, "keys": keys}).to_string();
        assert!(matches!(
            ClientMessage::parse(&many),
            ClientMessage::Invalid { .. }
        ));
    }
}
