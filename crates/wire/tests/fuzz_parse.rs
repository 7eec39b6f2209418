//! Property tests (proptest) that throw generated text at the one door hostile
//! input comes through, [`ClientMessage::parse`]: it never panics, whatever it
//! accepts keeps every limit, whatever it refuses carries a short reason, and
//! every message an honest client can build reads back unchanged.
//!
//! A few thousand cases run with the test suite (seconds); set `PROPTEST_CASES`
//! to fuzz longer.

use proptest::prelude::*;
use serde_json::{Value, json};
use tandem_wire::{
    ClientMessage, Input, MAX_CLIENT_MESSAGE, MAX_KEY_LEN, MAX_KEYS, MAX_PING_T_LEN,
    MAX_REASON_LEN, MAX_SHOWN, PageState,
};

/// What every parse result must satisfy, whatever the text.
fn check_limits(message: &ClientMessage) -> Result<(), TestCaseError> {
    match message {
        ClientMessage::Invalid { reason } => {
            // The reason may end with the "…" that marks a cut.
            prop_assert!(reason.chars().count() <= MAX_REASON_LEN + 1, "{reason}");
        }
        ClientMessage::Input(input) => {
            prop_assert!(input.keys.len() <= MAX_KEYS);
            prop_assert!(input.keys.iter().all(|k| k.len() <= MAX_KEY_LEN));
        }
        ClientMessage::Ping { t } => match t {
            Value::Null | Value::Number(_) => {}
            Value::String(s) => prop_assert!(s.len() <= MAX_PING_T_LEN),
            other => prop_assert!(false, "ping echoes {other}"),
        },
        ClientMessage::Shown { frames } => prop_assert!(frames.len() <= MAX_SHOWN),
        ClientMessage::Advance { .. }
        | ClientMessage::Submit { .. }
        | ClientMessage::Clock { .. }
        | ClientMessage::Page { .. }
        | ClientMessage::Screen { .. } => {}
    }
    Ok(())
}

/// Any JSON value, nested a few levels deep.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        ".{0,80}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::from),
            prop::collection::btree_map(".{0,12}", inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// An object shaped like a client message, with a known type and fields that
/// are sometimes right and sometimes anything: the messages a fuzzer is most
/// likely to get past serde with.
fn message_like() -> impl Strategy<Value = Value> {
    let kind = prop_oneof![
        Just("advance"),
        Just("submit"),
        Just("input"),
        Just("ping"),
        Just("shown"),
        Just("clock"),
        Just("page"),
        Just("invalid"),
        Just("hello"),
    ];
    let field = prop_oneof![
        Just("scene"),
        Just("checked"),
        Just("answers"),
        Just("seq"),
        Just("frame"),
        Just("ts"),
        Just("keys"),
        Just("t"),
        Just("tick"),
        Just("frames"),
        Just("id"),
        Just("state"),
    ];
    let keys = prop::collection::vec(".{0,40}", 0..24).prop_map(Value::from);
    let value = prop_oneof![any_json(), keys];
    (kind, prop::collection::btree_map(field, value, 0..6)).prop_map(|(kind, fields)| {
        let mut object: serde_json::Map<String, Value> = fields
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        object.insert("type".into(), kind.into());
        Value::Object(object)
    })
}

/// A message an honest client could send.
fn honest() -> impl Strategy<Value = ClientMessage> {
    let key = "[A-Za-z]{1,32}";
    prop_oneof![
        (any::<usize>(), any::<bool>())
            .prop_map(|(scene, checked)| ClientMessage::Advance { scene, checked }),
        (any::<usize>(), any_json())
            .prop_map(|(scene, answers)| ClientMessage::Submit { scene, answers }),
        (
            any::<u64>(),
            any::<Option<u64>>(),
            prop::option::of(-1e12f64..1e12),
            any::<Option<u64>>(),
            prop::collection::vec(key, 0..=MAX_KEYS)
        )
            .prop_map(|(seq, frame, ts, tick, keys)| ClientMessage::Input(Input {
                seq,
                frame,
                ts,
                tick,
                keys
            })),
        prop::collection::vec((any::<u64>(), -1e12f64..1e12), 0..=MAX_SHOWN)
            .prop_map(|frames| ClientMessage::Shown { frames }),
        (any::<u64>(), -1e12f64..1e12).prop_map(|(id, t)| ClientMessage::Clock { id, t }),
        (
            prop_oneof![
                Just(PageState::Visible),
                Just(PageState::Hidden),
                Just(PageState::Focus),
                Just(PageState::Blur)
            ],
            prop::option::of(-1e12f64..1e12)
        )
            .prop_map(|(state, t)| ClientMessage::Page { state, t }),
        prop_oneof![
            Just(Value::Null),
            any::<i64>().prop_map(Value::from),
            ".{0,16}".prop_map(Value::from),
        ]
        .prop_map(|t| ClientMessage::Ping { t }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 2_000,
        // A failing case is printed with the test's output; there is no
        // `src/` beside this file to keep regressions in.
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Arbitrary text, most of it not JSON at all.
    #[test]
    fn any_text_parses_without_panic(text in ".{0,400}") {
        check_limits(&ClientMessage::parse(&text))?;
    }

    /// Arbitrary bytes, read as a browser's text would be after lossy decoding.
    #[test]
    fn any_bytes_parse_without_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        check_limits(&ClientMessage::parse(&String::from_utf8_lossy(&bytes)))?;
    }

    /// Arbitrary JSON values of every shape.
    #[test]
    fn any_json_parses_within_limits(value in any_json()) {
        check_limits(&ClientMessage::parse(&value.to_string()))?;
    }

    /// Objects that look like messages, with fields right and wrong.
    #[test]
    fn message_like_objects_parse_within_limits(value in message_like()) {
        check_limits(&ClientMessage::parse(&value.to_string()))?;
    }

    /// Every honest message reads back as itself, numbers to the last bit (the
/// workspace's serde_json parses floats exactly: client timestamps are data).
    #[test]
    fn honest_messages_round_trip(message in honest()) {
        let text = message.to_text();
        prop_assume!(text.len() <= MAX_CLIENT_MESSAGE);
        prop_assert_eq!(ClientMessage::parse(&text), message);
    }
}
