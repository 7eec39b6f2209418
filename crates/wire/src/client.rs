//! What a browser sends: one enum, parsed from a text message by a function that
//! never fails.
//!
//! Anything that does not parse becomes [`ClientMessage::Invalid`] with a reason,
//! so the server's socket loop can answer it with an `error` and carry on instead
//! of dropping the participant. Limits that serde cannot express (the size of a
//! message, the number of keys held) are checked by [`ClientMessage::parse`] too,
//! which is why the wire form is read through a private mirror enum rather than a
//! public `Deserialize`: parsing has one door, and the limits stand at it.
//!
//! The same enum serializes, so bots and tests build their messages with it
//! ([`ClientMessage::to_text`]) instead of writing JSON by hand.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Largest text message a browser may send. Inputs are tiny; the largest honest
/// message is a survey with many long text answers (each capped at 10,000
/// characters by the experiment file). Anything bigger is abuse or a bug.
pub const MAX_CLIENT_MESSAGE: usize = 256 * 1024;

/// The most keys one input may hold; a keyboard has no more than this pressed.
pub const MAX_KEYS: usize = 16;

/// The longest key name an input may hold, in bytes. `KeyboardEvent.key` names
/// are at most about 20 characters ("MediaTrackPrevious").
pub const MAX_KEY_LEN: usize = 32;

/// The longest `t` a `ping` may carry when it is a string, in bytes. The
/// server echoes `t`, so an unbounded one would let a client that never reads
/// make the server hold its payloads.
pub const MAX_PING_T_LEN: usize = 64;

/// The most frames one `shown` message may report. The page sends one every
/// half second or so: 30 frames at 60 fps; more is abuse or a bug.
pub const MAX_SHOWN: usize = 120;

/// The longest reason an `Invalid` carries, in characters. A parse error may
/// quote the client's text; the reason goes to the log and back to the client,
/// so only a prefix is kept.
pub const MAX_REASON_LEN: usize = 120;

/// A message from the browser.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ClientMessage {
    /// Leave the info scene `scene`; `checked` is the consent box, if it has one.
    Advance { scene: usize, checked: bool },
    /// Answer the survey scene `scene`: question id → answer. Kept as JSON
    /// because the server's survey check, not the wire, decides what an answer
    /// may be.
    Submit { scene: usize, answers: Value },
    /// The complete set of keys held now.
    Input(Input),
    /// Round-trip probe, echoed back as `pong`: `t` is a number, null, or a
    /// string of at most [`MAX_PING_T_LEN`] bytes.
    Ping { t: Value },
    /// When frames were actually drawn: `[tick, t]` pairs, `t` the page's
    /// `performance.now()` in milliseconds. At most [`MAX_SHOWN`].
    Shown { frames: Vec<(u64, f64)> },
    /// The answer to the server's `clock` probe `id`: the page's
    /// `performance.now()` when it read the probe.
    Clock { id: u64, t: f64 },
    /// The page became visible or hidden, or its window gained or lost focus.
    Page { state: PageState, t: Option<f64> },
    /// The screening scene `scene`'s report: the window's inner size in CSS
    /// pixels, and whether a (trusted) key press was seen.
    Screen {
        scene: usize,
        width: u32,
        height: u32,
        key: bool,
    },
    /// Anything that is not a valid message: the reason says why. Never sent
    /// by an honest client; it serializes as type `invalid`, which the server
    /// parses back into `Invalid` (with its own reason).
    Invalid { reason: String },
}

/// What happened to the page: `document.visibilityState` changes and the
/// window's focus.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PageState {
    Visible,
    Hidden,
    Focus,
    Blur,
}

impl PageState {
    /// The name the page sends, and the store records.
    pub fn as_str(self) -> &'static str {
        match self {
            PageState::Visible => "visible",
            PageState::Hidden => "hidden",
            PageState::Focus => "focus",
            PageState::Blur => "blur",
        }
    }
}

/// One `input` message: the keys held, and where and when the browser saw them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Input {
    /// Increases by one per input on a socket; a new socket may start again at 1.
    pub seq: u64,
    /// The browser's animation-frame counter when the keys changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frame: Option<u64>,
    /// The browser's `performance.now()` when the keys changed, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ts: Option<f64>,
    /// The server `tick` of the frame on screen when the keys changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tick: Option<u64>,
    /// `KeyboardEvent.key` names, with `" "` written `"Space"`.
    pub keys: Vec<String>,
}

/// Whether a ping's `t` is small enough to echo.
fn is_small_probe(t: &Value) -> bool {
    match t {
        Value::Null | Value::Number(_) => true,
        Value::String(s) => s.len() <= MAX_PING_T_LEN,
        _ => false,
    }
}

/// `reason` cut to [`MAX_REASON_LEN`] characters, marked with "…" when cut.
pub fn truncate_reason(reason: String) -> String {
    match reason.char_indices().nth(MAX_REASON_LEN) {
        Some((cut, _)) => format!("{}…", &reason[..cut]),
        None => reason,
    }
}

/// The wire form of the valid messages, for reading only (see the module docs).
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
    Screen {
        scene: usize,
        width: u32,
        height: u32,
        #[serde(default)]
        key: bool,
    },
    Input(Input),
    Ping {
        #[serde(default)]
        t: Value,
    },
    Shown {
        frames: Vec<(u64, f64)>,
    },
    Clock {
        id: u64,
        t: f64,
    },
    Page {
        state: PageState,
        #[serde(default)]
        t: Option<f64>,
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
            Ok(Raw::Input(input)) if input.keys.iter().any(|k| k.len() > MAX_KEY_LEN) => {
                ClientMessage::Invalid {
                    reason: format!("a key name is longer than {MAX_KEY_LEN} bytes"),
                }
            }
            Ok(Raw::Input(input)) => ClientMessage::Input(input),
            Ok(Raw::Ping { t }) if !is_small_probe(&t) => ClientMessage::Invalid {
                reason: format!(
                    "ping's t must be a number, null or a string of at most {MAX_PING_T_LEN} bytes"
                ),
            },
            Ok(Raw::Ping { t }) => ClientMessage::Ping { t },
            Ok(Raw::Shown { frames }) if frames.len() > MAX_SHOWN => ClientMessage::Invalid {
                reason: format!("shown reports {} frames, at most {MAX_SHOWN}", frames.len()),
            },
            Ok(Raw::Shown { frames }) => ClientMessage::Shown { frames },
            Ok(Raw::Clock { id, t }) => ClientMessage::Clock { id, t },
            Ok(Raw::Page { state, t }) => ClientMessage::Page { state, t },
            Ok(Raw::Screen {
                scene,
                width,
                height,
                key,
            }) => ClientMessage::Screen {
                scene,
                width,
                height,
                key,
            },
            Err(e) => ClientMessage::Invalid {
                reason: truncate_reason(e.to_string()),
            },
        }
    }

    /// The message as the text a socket sends.
    pub fn to_text(&self) -> String {
        // Serializing cannot fail: every map key is a string and no field has a
        // fallible `Serialize` (`tests::every_variant_serializes` runs them all).
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn examples() -> Vec<ClientMessage> {
        vec![
            ClientMessage::Advance {
                scene: 0,
                checked: true,
            },
            ClientMessage::Advance {
                scene: 4,
                checked: false,
            },
            ClientMessage::Submit {
                scene: 3,
                answers: json!({"difficulty": 4, "hand": "left", "comments": null}),
            },
            ClientMessage::Screen {
                scene: 0,
                width: 1280,
                height: 720,
                key: true,
            },
            ClientMessage::Input(Input {
                seq: 3,
                frame: Some(10),
                ts: Some(1.5),
                tick: Some(7),
                keys: vec!["ArrowLeft".into(), "Space".into()],
            }),
            ClientMessage::Input(Input {
                seq: 1,
                frame: None,
                ts: None,
                tick: None,
                keys: Vec::new(),
            }),
            ClientMessage::Ping { t: json!(1234.5) },
            ClientMessage::Shown {
                frames: vec![(3, 1000.25), (4, 1016.5)],
            },
            ClientMessage::Clock { id: 2, t: 3.5 },
            ClientMessage::Page {
                state: PageState::Blur,
                t: Some(9.0),
            },
        ]
    }

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
            ClientMessage::parse(r#"{"type":"advance","scene":1}"#),
            ClientMessage::Advance {
                scene: 1,
                checked: false
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
                tick: None,
                keys: vec!["ArrowLeft".into()]
            })
        );
        assert!(matches!(
            ClientMessage::parse(r#"{"type":"submit","scene":3,"answers":{"a":1}}"#),
            ClientMessage::Submit { scene: 3, .. }
        ));
        assert_eq!(
            ClientMessage::parse(r#"{"type":"ping","t":5}"#),
            ClientMessage::Ping { t: json!(5) }
        );
        assert_eq!(
            ClientMessage::parse(r#"{"type":"ping"}"#),
            ClientMessage::Ping { t: Value::Null }
        );
    }

    /// What bots and tests build is what the server parses back.
    #[test]
    fn every_variant_serializes() {
        for message in examples() {
            let text = message.to_text();
            assert!(!text.is_empty(), "{message:?}");
            assert_eq!(ClientMessage::parse(&text), message, "{text}");
        }
        let invalid = ClientMessage::Invalid {
            reason: "made up".into(),
        };
        assert!(matches!(
            ClientMessage::parse(&invalid.to_text()),
            ClientMessage::Invalid { .. }
        ));
    }

    /// The serialized messages are the browser's, field for field.
    #[test]
    fn serializes_as_the_browser_does() {
        let input = ClientMessage::Input(Input {
            seq: 3,
            frame: Some(10),
            ts: Some(1.5),
            tick: None,
            keys: vec!["ArrowLeft".into()],
        });
        assert_eq!(
            serde_json::to_value(&input).ok(),
            Some(json!({"type": "input", "seq": 3, "frame": 10, "ts": 1.5, "keys": ["ArrowLeft"]}))
        );
        let advance = ClientMessage::Advance {
            scene: 2,
            checked: true,
        };
        assert_eq!(
            advance.to_text(),
            r#"{"type":"advance","scene":2,"checked":true}"#
        );
        let submit = ClientMessage::Submit {
            scene: 3,
            answers: json!({"a": 1}),
        };
        assert_eq!(
            submit.to_text(),
            r#"{"type":"submit","scene":3,"answers":{"a":1}}"#
        );
        assert_eq!(
            ClientMessage::Ping { t: json!(7) }.to_text(),
            r#"{"type":"ping","t":7}"#
        );
    }

    /// Malformed, unknown, oversized and abusive messages become `Invalid`, never a panic.
    #[test]
    fn bad_messages_are_invalid() {
        for text in [
            "",
            "not json",
            "[]",
            "{}",
            r#"{"type":"teleport"}"#,
            r#"{"type":"invalid","reason":"x"}"#,
            r#"{"type":"advance"}"#,
            r#"{"type":"advance","scene":-1}"#,
            r#"{"type":"advance","scene":1.5}"#,
            r#"{"type":"submit","scene":3}"#,
            r#"{"type":"input","seq":"x","keys":[]}"#,
            r#"{"type":"input","seq":1}"#,
            r#"{"type":"input","seq":1,"keys":[1]}"#,
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
        let most: Vec<String> = (0..MAX_KEYS).map(|i| format!("k{i}")).collect();
        let allowed = json!({"type": "input", "seq": 1, "keys": most}).to_string();
        assert!(matches!(
            ClientMessage::parse(&allowed),
            ClientMessage::Input(_)
        ));
    }

    /// A ping echoes only a small `t`, and a key name is a key name's length:
    /// a client cannot make the server hold (and echo) big payloads.
    #[test]
    fn echoed_and_held_values_are_small() {
        for t in [json!(12.5), json!(null), json!("x".repeat(MAX_PING_T_LEN))] {
            let ping = json!({"type": "ping", "t": t}).to_string();
            assert!(
                matches!(ClientMessage::parse(&ping), ClientMessage::Ping { .. }),
                "{ping}"
            );
        }
        for t in [
            json!("x".repeat(MAX_PING_T_LEN + 1)),
            json!([1, 2]),
            json!({"a": 1}),
        ] {
            let ping = json!({"type": "ping", "t": t}).to_string();
            assert!(
                matches!(ClientMessage::parse(&ping), ClientMessage::Invalid { .. }),
                "{ping}"
            );
        }
        let long_key = json!({"type": "input", "seq": 1, "keys": ["k".repeat(MAX_KEY_LEN + 1)]});
        assert!(matches!(
            ClientMessage::parse(&long_key.to_string()),
            ClientMessage::Invalid { .. }
        ));
    }

    /// A reason that quotes the client's text keeps only a short prefix of it.
    #[test]
    fn reasons_quote_little() {
        let quoted = format!(r#"{{"type":"{}"}}"#, "é".repeat(10_000));
        let ClientMessage::Invalid { reason } = ClientMessage::parse(&quoted) else {
            panic!("an unknown type is invalid");
        };
        assert!(
            reason.chars().count() <= MAX_REASON_LEN + 1,
            "{}",
            reason.len()
        );
        assert!(reason.ends_with('…'));
    }
}
