//! Frames on their way to browsers: what a game publishes each tick, and how each
//! socket turns it into a message.
//!
//! A game publishes one [`PublishedFrame`] per tick into a `watch` channel, so a
//! socket always reads the newest frame and a slow browser skips frames instead of
//! queueing them. Sprite frames are diffed per socket ([`FrameEncoder`]) against the
//! frame that socket last sent, because a socket that skipped frames must still
//! receive a change set that applies to what it holds. Pixel frames are PNG-encoded
//! once by the game, since every viewer gets the same bytes.

use std::sync::Arc;

use tandem_env::{Image, Sprite, SpriteDiff};
use tandem_wire::{PixelHeader, SpriteFrameRef, encode_pixel_frame};

/// What a game publishes into; each viewer's socket holds a receiver.
pub type FrameSender = tokio::sync::watch::Sender<Option<Arc<PublishedFrame>>>;
/// What a socket streams a game's frames from.
pub type FrameReceiver = tokio::sync::watch::Receiver<Option<Arc<PublishedFrame>>>;

/// One tick of a game, as every viewer sees it.
#[derive(Debug)]
pub struct PublishedFrame {
    pub tick: u64,
    pub episode: u32,
    /// Step within the episode; 0 is the frame right after reset.
    pub step: u32,
    /// Per agent: the highest input sequence number applied by the step that made
    /// this frame.
    pub acks: Vec<Option<u64>>,
    /// Per agent: the reward of this step and the return so far.
    pub rewards: Vec<f64>,
    pub returns: Vec<f64>,
    pub content: FrameContent,
}

/// What a frame draws.
#[derive(Debug)]
pub enum FrameContent {
    Sprites(Vec<Sprite>),
    /// A PNG image, ready to send.
    Png {
        width: u32,
        height: u32,
        png: Vec<u8>,
    },
}

/// A message for one socket.
#[derive(Debug, PartialEq)]
pub enum Encoded {
    Text(String),
    Binary(Vec<u8>),
    /// The frame could not be serialized (never expected; logged by the caller).
    Nothing,
}

/// Byte 0 of a binary pixel frame (see `docs/WIRE.md`).
pub use tandem_wire::PIXEL_FRAME_V1;

/// Per-socket frame state: the last frame this socket sent, to diff against.
#[derive(Default)]
pub struct FrameEncoder {
    last: Option<Arc<PublishedFrame>>,
}

impl FrameEncoder {
    /// Forgets what the browser holds, so the next sprite frame is sent in full
    /// (after the socket switches games).
    pub fn reset(&mut self) {
        self.last = None;
    }

    /// Encodes `frame` for the viewer seated as `agent` (whose `ack` it carries).
    pub fn encode(&mut self, frame: &Arc<PublishedFrame>, agent: usize) -> Encoded {
        let ack = frame.acks.get(agent).copied().flatten();
        let reward = frame.rewards.get(agent).copied().unwrap_or(0.0);
        let total = frame.returns.get(agent).copied().unwrap_or(0.0);
        let encoded = match &frame.content {
            FrameContent::Sprites(sprites) => {
                let previous = self.last.as_ref().and_then(|last| match &last.content {
                    FrameContent::Sprites(s) if last.episode == frame.episode => Some(s),
                    _ => None,
                });
                let diff = previous.map(|prev| SpriteDiff::between(prev, sprites));
                let message = SpriteFrameRef {
                    tick: frame.tick,
                    episode: frame.episode,
                    step: frame.step,
                    ack,
                    full: diff.is_none(),
                    upsert: diff.as_ref().map_or(sprites, |d| &d.upsert),
                    remove: diff.as_ref().map_or(&[], |d| &d.remove),
                    reward,
                    episode_return: total,
                };
                match serde_json::to_string(&message) {
                    Ok(text) => Encoded::Text(text),
                    Err(_) => Encoded::Nothing,
                }
            }
            FrameContent::Png { width, height, png } => {
                let header = PixelHeader {
                    tick: frame.tick,
                    episode: frame.episode,
                    step: frame.step,
                    ack,
                    width: *width,
                    height: *height,
                    reward,
                    episode_return: total,
                };
                match encode_pixel_frame(&header, png) {
                    Ok(bytes) => Encoded::Binary(bytes),
                    Err(_) => return Encoded::Nothing,
                }
            }
        };
        self.last = Some(Arc::clone(frame));
        encoded
    }
}

/// Encodes an RGB image as PNG, tuned for speed: frames are encoded every tick.
pub fn encode_png(image: &Image) -> Result<Vec<u8>, png::EncodingError> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, image.width, image.height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_compression(png::Compression::Fast);
    let mut writer = encoder.write_header()?;
    writer.write_image_data(&image.rgb)?;
    writer.finish()?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tandem_env::Shape;

    fn frame(episode: u32, step: u32, x: f32) -> Arc<PublishedFrame> {
        let sprites = vec![
            Sprite::new(1, Shape::Circle { x, y: 0.5, r: 0.1 }).fill("#f00"),
            Sprite::new(
                2,
                Shape::Line {
                    points: vec![[0.0, 0.9], [1.0, 0.9]],
                },
            ),
        ];
        Arc::new(PublishedFrame {
            tick: u64::from(step),
            episode,
            step,
            acks: vec![Some(u64::from(step))],
            rewards: vec![1.0],
            returns: vec![f64::from(step)],
            content: FrameContent::Sprites(sprites),
        })
    }

    fn json(e: Encoded) -> serde_json::Value {
        match e {
            Encoded::Text(t) => serde_json::from_str(&t).unwrap(),
            other => panic!("expected text, got {other:?}"),
        }
    }

    /// The first frame is full; later frames carry only the sprites that changed,
    /// relative to what this socket last sent, and a new episode starts full again.
    #[test]
    fn sprite_frames_are_diffs_per_socket() {
        let mut enc = FrameEncoder::default();
        let first = json(enc.encode(&frame(0, 0, 0.1), 0));
        assert_eq!(first["full"], true);
        assert_eq!(first["upsert"].as_array().unwrap().len(), 2);
        // The socket skipped step 1 and gets step 2: the diff is against step 0.
        let second = json(enc.encode(&frame(0, 2, 0.3), 0));
        assert_eq!(second["full"], false);
        assert_eq!(second["upsert"].as_array().unwrap().len(), 1);
        assert_eq!(second["upsert"][0]["x"], 0.3);
        assert_eq!(second["ack"], 2);
        let next_episode = json(enc.encode(&frame(1, 0, 0.3), 0));
        assert_eq!(next_episode["full"], true);
    }

    /// Pixel frames follow the documented binary layout and carry a valid PNG.
    #[test]
    fn pixel_frames_have_header_and_png() {
        let image = Image {
            width: 4,
            height: 2,
            rgb: vec![200; 4 * 2 * 3],
        };
        let png = encode_png(&image).unwrap();
        let frame = Arc::new(PublishedFrame {
            tick: 7,
            episode: 0,
            step: 3,
            acks: vec![None],
            rewards: vec![0.0],
            returns: vec![0.0],
            content: FrameContent::Png {
                width: 4,
                height: 2,
                png: png.clone(),
            },
        });
        let Encoded::Binary(bytes) = FrameEncoder::default().encode(&frame, 0) else {
            panic!("expected binary");
        };
        assert_eq!(bytes[0], PIXEL_FRAME_V1);
        let n = u32::from_le_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]) as usize;
        let header: serde_json::Value = serde_json::from_slice(&bytes[5..5 + n]).unwrap();
        assert_eq!(header["tick"], 7);
        assert_eq!(header["width"], 4);
        assert_eq!(&bytes[5 + n..], &png[..]);
        assert_eq!(&png[1..4], b"PNG");
    }
}
