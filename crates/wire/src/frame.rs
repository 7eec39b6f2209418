//! Frames: the `frame` text message that carries sprites, and the binary message
//! that carries a PNG.
//!
//! A sprite frame is encoded once per socket per tick, so the server must not
//! copy a frame's sprites to send them: [`SpriteFrameRef`] borrows them and
//! serializes to exactly the text that the owned [`SpriteFrame`] (what clients
//! decode into) serializes to. A test holds the two to that.
//!
//! A pixel frame is binary, because a PNG in JSON would grow by a third: byte 0
//! is [`PIXEL_FRAME_V1`], bytes 1–4 a little-endian u32 `n`, bytes 5..5+n a JSON
//! [`PixelHeader`], and the rest the PNG. A pixel delta has the same layout with
//! byte 0 [`PIXEL_DELTA_V1`]: its header names the `base` tick it applies to
//! (the frame this socket received last), and the rest is what changed: runs
//! over the RGB bytes (a varint count of bytes that stay, a varint count that
//! change, their new values), raw-deflated. Consecutive game frames differ in
//! a few pixels, so a delta is tens of bytes where a PNG is over a thousand,
//! and browsers inflate it with `DecompressionStream("deflate-raw")`.

use serde::{Deserialize, Serialize};
use tandem_env::Sprite;

/// A sprite frame, as a client decodes it (`ServerMessage::Frame`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SpriteFrame {
    /// The game's tick counter: it counts every frame the game published, so a
    /// gap means this socket skipped frames.
    pub tick: u64,
    /// Episode index within the game.
    pub episode: u32,
    /// Step within the episode; 0 is the frame right after reset.
    pub step: u32,
    /// The highest input `seq` from this participant applied by the step that
    /// made this frame; null before any.
    pub ack: Option<u64>,
    /// True when the browser must drop what it holds and draw `upsert` alone.
    pub full: bool,
    /// Sprites added or changed since the previous frame this socket received
    /// (every sprite, when `full`).
    #[serde(deserialize_with = "flat::sprites")]
    pub upsert: Vec<Sprite>,
    /// Ids of sprites that disappeared.
    pub remove: Vec<u32>,
    /// This participant's agent's reward for the step.
    pub reward: f64,
    /// This participant's agent's return so far in the episode.
    #[serde(rename = "return")]
    pub episode_return: f64,
}

/// A sprite frame that borrows its sprites, for encoding on the server's hot
/// path. It serializes as a whole `frame` message, `type` included.
#[derive(Clone, Copy, Debug, Serialize)]
#[serde(tag = "type", rename = "frame")]
pub struct SpriteFrameRef<'a> {
    pub tick: u64,
    pub episode: u32,
    pub step: u32,
    pub ack: Option<u64>,
    pub full: bool,
    pub upsert: &'a [Sprite],
    pub remove: &'a [u32],
    pub reward: f64,
    #[serde(rename = "return")]
    pub episode_return: f64,
}

impl SpriteFrameRef<'_> {
    /// The `frame` message as text.
    pub fn to_text(&self) -> String {
        // Cannot fail, as `ServerMessage::to_text` cannot: string keys only,
        // and serde_json writes a non-finite number as null.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// An owned copy, as a client would decode it.
    pub fn to_owned_frame(&self) -> SpriteFrame {
        SpriteFrame {
            tick: self.tick,
            episode: self.episode,
            step: self.step,
            ack: self.ack,
            full: self.full,
            upsert: self.upsert.to_vec(),
            remove: self.remove.to_vec(),
            reward: self.reward,
            episode_return: self.episode_return,
        }
    }
}

impl SpriteFrame {
    /// A borrowed view of this frame, which serializes identically.
    pub fn borrowed(&self) -> SpriteFrameRef<'_> {
        SpriteFrameRef {
            tick: self.tick,
            episode: self.episode,
            step: self.step,
            ack: self.ack,
            full: self.full,
            upsert: &self.upsert,
            remove: &self.remove,
            reward: self.reward,
            episode_return: self.episode_return,
        }
    }
}

/// Reading sprites in one pass.
///
/// `Sprite`'s own `Deserialize` (in `tandem-env`) flattens an internally tagged
/// `Shape`, which serde can only read by first copying each sprite into a
/// generic tree and then reading that; with it, decoding a CartPole frame took
/// about 4.4 µs instead of 2.4 µs, and the bench's bots decode every frame of
/// thousands of sockets. Here each sprite is read once into a struct holding
/// every field any shape has, and the shape is picked by its `shape` tag
/// afterwards. The format is still `tandem-env`'s:
/// `tests::sprites_decode_as_env_does` holds this reader to `Sprite`'s own for
/// every shape and optional field.
pub(crate) mod flat {
    use serde::de::Error;
    use serde::{Deserialize, Deserializer};
    use tandem_env::{Shape, Sprite};

    #[derive(Deserialize)]
    #[serde(rename_all = "lowercase")]
    enum ShapeName {
        Rect,
        Circle,
        Line,
        Polygon,
        Text,
        Image,
    }

    /// Every field of every shape, each optional until the shape says which it
    /// needs.
    #[derive(Deserialize)]
    struct Fields {
        id: u32,
        shape: ShapeName,
        x: Option<f32>,
        y: Option<f32>,
        w: Option<f32>,
        h: Option<f32>,
        #[serde(default)]
        angle: f32,
        r: Option<f32>,
        points: Option<Vec<[f32; 2]>>,
        text: Option<String>,
        size: Option<f32>,
        name: Option<String>,
        fill: Option<String>,
        stroke: Option<String>,
        #[serde(default)]
        line_width: f32,
        #[serde(default)]
        z: i32,
    }

    fn need<T, E: Error>(value: Option<T>, field: &'static str) -> Result<T, E> {
        value.ok_or_else(|| E::missing_field(field))
    }

    impl Fields {
        fn into_sprite<E: Error>(self) -> Result<Sprite, E> {
            let shape = match self.shape {
                ShapeName::Rect => Shape::Rect {
                    x: need(self.x, "x")?,
                    y: need(self.y, "y")?,
                    w: need(self.w, "w")?,
                    h: need(self.h, "h")?,
                    angle: self.angle,
                },
                ShapeName::Circle => Shape::Circle {
                    x: need(self.x, "x")?,
                    y: need(self.y, "y")?,
                    r: need(self.r, "r")?,
                },
                ShapeName::Line => Shape::Line {
                    points: need(self.points, "points")?,
                },
                ShapeName::Polygon => Shape::Polygon {
                    points: need(self.points, "points")?,
                },
                ShapeName::Text => Shape::Text {
                    x: need(self.x, "x")?,
                    y: need(self.y, "y")?,
                    text: need(self.text, "text")?,
                    size: need(self.size, "size")?,
                },
                ShapeName::Image => Shape::Image {
                    x: need(self.x, "x")?,
                    y: need(self.y, "y")?,
                    w: need(self.w, "w")?,
                    h: need(self.h, "h")?,
                    name: need(self.name, "name")?,
                },
            };
            Ok(Sprite {
                id: self.id,
                shape,
                fill: self.fill,
                stroke: self.stroke,
                line_width: self.line_width,
                z: self.z,
            })
        }
    }

    /// A sprite list, as `tandem-env` writes it.
    pub(crate) fn sprites<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<Sprite>, D::Error> {
        let fields = Vec::<Fields>::deserialize(deserializer)?;
        fields
            .into_iter()
            .map(Fields::into_sprite::<D::Error>)
            .collect()
    }
}

/// Byte 0 of a binary pixel frame: pixel frame, version 1.
pub const PIXEL_FRAME_V1: u8 = 1;

/// Byte 0 of a binary pixel delta, version 1.
pub const PIXEL_DELTA_V1: u8 = 2;

/// The JSON header of a binary pixel frame. The fields mean what they mean in
/// [`SpriteFrame`]; `width` and `height` are the PNG's.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct PixelHeader {
    pub tick: u64,
    pub episode: u32,
    pub step: u32,
    pub ack: Option<u64>,
    pub width: u32,
    pub height: u32,
    pub reward: f64,
    #[serde(rename = "return")]
    pub episode_return: f64,
    /// A delta's base: the tick of the frame it applies to (absent in a whole
    /// frame).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<u64>,
}

/// A decoded pixel message: its header and its payload, borrowed from the
/// message: a PNG, or for a delta (`header.base` set) its deflated runs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PixelFrame<'a> {
    pub header: PixelHeader,
    pub payload: &'a [u8],
}

impl PixelFrame<'_> {
    /// Whether this is a delta against the frame of tick `header.base`.
    pub fn is_delta(&self) -> bool {
        self.header.base.is_some()
    }
}

/// Why a binary message is not a pixel frame.
#[derive(Debug, thiserror::Error)]
pub enum PixelFrameError {
    #[error("the message is empty")]
    Empty,
    #[error("byte 0 is {0}, not {PIXEL_FRAME_V1} (pixel frame) or {PIXEL_DELTA_V1} (pixel delta)")]
    Version(u8),
    #[error("a pixel delta's header has no base, or a whole frame's has one")]
    Base,
    #[error("the message ends inside the header")]
    Truncated,
    #[error("the header is not valid JSON: {0}")]
    Header(#[source] serde_json::Error),
    #[error("the header is {0} bytes, more than a u32 can count")]
    HeaderTooLong(usize),
}

/// Encodes a binary pixel message: version byte ([`PIXEL_DELTA_V1`] when the
/// header has a `base`, else [`PIXEL_FRAME_V1`]), header length, header,
/// payload (the PNG, or a delta's deflated runs).
pub fn encode_pixel_frame(
    header: &PixelHeader,
    payload: &[u8],
) -> Result<Vec<u8>, PixelFrameError> {
    let json = serde_json::to_vec(header).map_err(PixelFrameError::Header)?;
    let length =
        u32::try_from(json.len()).map_err(|_| PixelFrameError::HeaderTooLong(json.len()))?;
    let mut bytes = Vec::with_capacity(5 + json.len() + payload.len());
    bytes.push(if header.base.is_some() {
        PIXEL_DELTA_V1
    } else {
        PIXEL_FRAME_V1
    });
    bytes.extend_from_slice(&length.to_le_bytes());
    bytes.extend_from_slice(&json);
    bytes.extend_from_slice(payload);
    Ok(bytes)
}

/// Decodes a binary pixel message. The payload is returned as sent, not
/// decoded.
pub fn decode_pixel_frame(bytes: &[u8]) -> Result<PixelFrame<'_>, PixelFrameError> {
    let (&version, rest) = bytes.split_first().ok_or(PixelFrameError::Empty)?;
    if version != PIXEL_FRAME_V1 && version != PIXEL_DELTA_V1 {
        return Err(PixelFrameError::Version(version));
    }
    let (length, rest) = rest
        .split_first_chunk::<4>()
        .ok_or(PixelFrameError::Truncated)?;
    let length =
        usize::try_from(u32::from_le_bytes(*length)).map_err(|_| PixelFrameError::Truncated)?;
    if rest.len() < length {
        return Err(PixelFrameError::Truncated);
    }
    let (header, payload) = rest.split_at(length);
    let header: PixelHeader = serde_json::from_slice(header).map_err(PixelFrameError::Header)?;
    if header.base.is_some() != (version == PIXEL_DELTA_V1) {
        return Err(PixelFrameError::Base);
    }
    Ok(PixelFrame { header, payload })
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use tandem_env::Shape;

    use super::*;

    fn sprites() -> Vec<Sprite> {
        vec![
            Sprite::new(
                1,
                Shape::Circle {
                    x: 0.25,
                    y: 0.5,
                    r: 0.1,
                },
            )
            .fill("#f00"),
            Sprite::new(
                2,
                Shape::Rect {
                    x: 0.1,
                    y: 0.2,
                    w: 0.3,
                    h: 0.05,
                    angle: 0.4,
                },
            )
            .stroke("#000", 0.01)
            .z(2),
            Sprite::new(
                3,
                Shape::Line {
                    points: vec![[0.0, 0.9], [1.0, 0.9]],
                },
            ),
            Sprite::new(
                4,
                Shape::Text {
                    x: 0.5,
                    y: 0.1,
                    text: "Score: 3".into(),
                    size: 0.05,
                },
            ),
        ]
    }

    /// The borrowed frame the server encodes and the owned frame clients decode
    /// are the same message, byte for byte, and decode to each other.
    #[test]
    fn borrowed_and_owned_frames_agree() {
        let upsert = sprites();
        let remove = [7, 9];
        let borrowed = SpriteFrameRef {
            tick: 41,
            episode: 2,
            step: 17,
            ack: Some(12),
            full: false,
            upsert: &upsert,
            remove: &remove,
            reward: 1.0,
            episode_return: 17.5,
        };
        let owned = borrowed.to_owned_frame();
        let text = borrowed.to_text();
        let message = crate::ServerMessage::Frame(owned.clone());
        assert_eq!(text, message.to_text());
        assert_eq!(owned.borrowed().to_text(), text);
        let decoded = crate::ServerMessage::from_text(&text);
        assert!(
            matches!(&decoded, Ok(crate::ServerMessage::Frame(f)) if *f == owned),
            "{decoded:?}"
        );
    }

    /// The one-pass sprite reader reads what `tandem-env` writes exactly as
    /// `Sprite`'s own `Deserialize` does, for every shape and optional field,
    /// and refuses what it refuses.
    #[test]
    fn sprites_decode_as_env_does() {
        let mut all = sprites();
        all.extend([
            Sprite::new(
                5,
                Shape::Polygon {
                    points: vec![[0.0, 0.0], [0.5, 1.0], [1.0, 0.0]],
                },
            )
            .fill("#0f0")
            .z(-1),
            Sprite::new(
                6,
                Shape::Image {
                    x: 0.0,
                    y: 0.0,
                    w: 0.5,
                    h: 0.5,
                    name: "chef".into(),
                },
            ),
            Sprite::new(
                7,
                Shape::Rect {
                    x: 0.0,
                    y: 0.0,
                    w: 1.0,
                    h: 1.0,
                    angle: 0.0,
                },
            ),
        ]);
        let frame = |upsert: &str| {
            format!(
                r#"{{"type":"frame","tick":1,"episode":0,"step":1,"ack":null,"full":true,"upsert":{upsert},"remove":[],"reward":0.0,"return":0.0}}"#
            )
        };
        let Ok(upsert) = serde_json::to_string(&all) else {
            panic!("sprites serialize");
        };
        let env: Result<Vec<Sprite>, _> = serde_json::from_str(&upsert);
        let wire = serde_json::from_str::<SpriteFrame>(&frame(&upsert)).map(|f| f.upsert);
        assert_eq!(env.ok(), Some(all.clone()));
        assert_eq!(wire.ok(), Some(all));
        for bad in [
            r#"[{"id":1,"shape":"rect","x":0,"y":0,"w":1}]"#,
            r#"[{"id":1,"shape":"hexagon","x":0,"y":0}]"#,
            r#"[{"shape":"circle","x":0,"y":0,"r":1}]"#,
            r#"[{"id":1,"x":0,"y":0,"r":1}]"#,
            r#"[{"id":1,"shape":"text","x":0,"y":0,"size":1}]"#,
            r#"[{"id":1,"shape":"line","points":[[0,0,0]]}]"#,
            r#"[{"id":1,"shape":"circle","x":0,"y":0,"r":1,"fill":3}]"#,
        ] {
            assert!(serde_json::from_str::<Vec<Sprite>>(bad).is_err(), "{bad}");
            assert!(
                serde_json::from_str::<SpriteFrame>(&frame(bad)).is_err(),
                "{bad}"
            );
        }
        // Fields no shape of this kind has are ignored by both.
        let extra = r#"[{"id":1,"shape":"circle","x":0,"y":0,"r":1,"w":5,"glow":true}]"#;
        let env: Result<Vec<Sprite>, _> = serde_json::from_str(extra);
        let wire = serde_json::from_str::<SpriteFrame>(&frame(extra)).map(|f| f.upsert);
        assert!(env.is_ok());
        assert_eq!(wire.ok(), env.ok());
    }

    /// The frame message has the documented fields, `return` included.
    #[test]
    fn frames_have_the_documented_fields() {
        let frame = SpriteFrameRef {
            tick: 1,
            episode: 0,
            step: 0,
            ack: None,
            full: true,
            upsert: &[],
            remove: &[],
            reward: 0.0,
            episode_return: 0.0,
        };
        let value: Option<serde_json::Value> = serde_json::from_str(&frame.to_text()).ok();
        assert_eq!(
            value,
            Some(
                json!({"type": "frame", "tick": 1, "episode": 0, "step": 0, "ack": null,
                        "full": true, "upsert": [], "remove": [], "reward": 0.0, "return": 0.0})
            )
        );
    }

    /// Pixel frames follow the documented layout and decode to what was encoded.
    #[test]
    fn pixel_frames_round_trip() {
        let header = PixelHeader {
            tick: 7,
            episode: 0,
            step: 3,
            ack: Some(2),
            width: 4,
            height: 2,
            reward: 1.0,
            episode_return: 3.0,
            base: None,
        };
        let png = b"\x89PNG\r\n\x1a\nrest";
        let Ok(bytes) = encode_pixel_frame(&header, png) else {
            panic!("encodes");
        };
        assert_eq!(bytes[0], PIXEL_FRAME_V1);
        let n = u32::from_le_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]) as usize;
        let json: Option<serde_json::Value> = serde_json::from_slice(&bytes[5..5 + n]).ok();
        assert_eq!(
            json,
            Some(
                json!({"tick": 7, "episode": 0, "step": 3, "ack": 2, "width": 4,
                        "height": 2, "reward": 1.0, "return": 3.0})
            )
        );
        assert_eq!(&bytes[5 + n..], png);
        let decoded = decode_pixel_frame(&bytes).ok();
        assert_eq!(
            decoded,
            Some(PixelFrame {
                header,
                payload: &png[..]
            })
        );
        // A delta: byte 0 says so, the header names its base.
        let delta = PixelHeader {
            base: Some(6),
            ..header
        };
        let Ok(bytes) = encode_pixel_frame(&delta, b"runs") else {
            panic!("encodes");
        };
        assert_eq!(bytes[0], PIXEL_DELTA_V1);
        let decoded = decode_pixel_frame(&bytes).ok();
        assert!(decoded.is_some_and(|f| f.is_delta() && f.payload == b"runs"));
        // A base under byte 1, or none under byte 2, is refused.
        let mut wrong = bytes.clone();
        wrong[0] = PIXEL_FRAME_V1;
        assert!(matches!(
            decode_pixel_frame(&wrong),
            Err(PixelFrameError::Base)
        ));
    }

    /// Malformed binary messages are refused with a reason, never a panic.
    #[test]
    fn malformed_pixel_frames_are_refused() {
        let header = br#"{"tick":9,"episode":0,"step":3,"ack":7,"width":2,"height":1,"reward":0,"return":0}"#;
        let mut frame = vec![1u8];
        frame.extend_from_slice(&(header.len() as u32).to_le_bytes());
        frame.extend_from_slice(header);
        frame.extend_from_slice(b"\x89PNG");
        assert!(decode_pixel_frame(&frame).is_ok());
        assert!(matches!(
            decode_pixel_frame(&frame[..8]),
            Err(PixelFrameError::Truncated)
        ));
        assert!(matches!(
            decode_pixel_frame(&[3, 0, 0, 0, 0]),
            Err(PixelFrameError::Version(3))
        ));
        assert!(matches!(
            decode_pixel_frame(&[1, 255, 255, 255, 255, b'{']),
            Err(PixelFrameError::Truncated)
        ));
        assert!(matches!(
            decode_pixel_frame(&[1, 0, 0]),
            Err(PixelFrameError::Truncated)
        ));
        assert!(matches!(
            decode_pixel_frame(&[]),
            Err(PixelFrameError::Empty)
        ));
        assert!(matches!(
            decode_pixel_frame(&[1, 2, 0, 0, 0, b'{', b'}']),
            Err(PixelFrameError::Header(_))
        ));
    }
}
