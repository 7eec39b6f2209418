//! Frames on their way to browsers: what a game publishes each tick, and how each
//! socket turns it into a message.
//!
//! A game publishes one [`PublishedFrame`] per tick into a `watch` channel, so a
//! socket always reads the newest frame and a slow browser skips frames instead of
//! queueing them. Sprite frames are diffed per socket ([`FrameEncoder`]) against the
//! frame that socket last sent, because a socket that skipped frames must still
//! receive a change set that applies to what it holds; they go in binary, as
//! patches of the numbers that changed (`tandem_wire::encode_sprite_frame`). Pixel frames go as
//! deltas: the game encodes what changed since the frame before once, for
//! every viewer, and a socket that received that one gets the delta; a
//! socket that skipped it (or just arrived) gets the whole frame as a PNG,
//! encoded once, by the first socket that needs it.

use std::sync::{Arc, OnceLock};

use tandem_env::{Image, Sprite};
use tandem_wire::{PixelHeader, SpriteHeader, encode_pixel_frame, encode_sprite_frame};

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
    Pixels(PixelContent),
}

/// A pixel frame: the image, its delta from the frame published before it,
/// and its PNG once a socket has needed one.
#[derive(Debug)]
pub struct PixelContent {
    pub image: Arc<Image>,
    /// What changed since the previous frame (tick − 1), as [`PixelDeltaEncoder`](crate::PixelDeltaEncoder)
    /// writes it; `None` for a game's first frame or a new size.
    pub delta: Option<Vec<u8>>,
    png: OnceLock<Option<Vec<u8>>>,
}

impl PixelContent {
    pub fn new(image: Arc<Image>, delta: Option<Vec<u8>>) -> PixelContent {
        PixelContent {
            image,
            delta,
            png: OnceLock::new(),
        }
    }

    /// The whole frame as a PNG, encoded on first use (`None` if it cannot be).
    pub fn png(&self) -> Option<&[u8]> {
        self.png
            .get_or_init(|| encode_png(&self.image).ok())
            .as_deref()
    }
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

/// Every this many ticks each socket gets a whole pixel frame, delta or not:
/// a page that could not apply a delta is never stuck for longer (at 60 fps,
/// 2 s), for about 12 bytes a frame on average at Atari's size.
pub const KEY_FRAME_EVERY: u64 = 120;

/// Per-socket frame state: the last frame this socket sent, to diff against.
#[derive(Default)]
pub struct FrameEncoder {
    last: Option<Arc<PublishedFrame>>,
    /// Whole pixel frames only: for a page that cannot inflate deltas.
    whole_pixels: bool,
}

impl FrameEncoder {
    /// An encoder that never sends pixel deltas.
    pub fn whole_pixels() -> FrameEncoder {
        FrameEncoder {
            last: None,
            whole_pixels: true,
        }
    }

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
                    FrameContent::Sprites(s) if last.episode == frame.episode => Some(&s[..]),
                    _ => None,
                });
                let header = SpriteHeader {
                    tick: frame.tick,
                    episode: frame.episode,
                    step: frame.step,
                    ack,
                    reward,
                    episode_return: total,
                };
                let mut bytes = Vec::with_capacity(64);
                encode_sprite_frame(&mut bytes, &header, previous, sprites);
                Encoded::Binary(bytes)
            }
            FrameContent::Pixels(pixels) => {
                // A delta applies only to the frame just before it, and only
                // if that is the one this socket holds.
                let holds_previous = self.last.as_ref().is_some_and(|last| {
                    last.tick + 1 == frame.tick && matches!(last.content, FrameContent::Pixels(_))
                }) && !frame.tick.is_multiple_of(KEY_FRAME_EVERY)
                    && !self.whole_pixels;
                let (base, payload) = match &pixels.delta {
                    Some(delta) if holds_previous => (Some(frame.tick - 1), &delta[..]),
                    _ => match pixels.png() {
                        Some(png) => (None, png),
                        None => return Encoded::Nothing,
                    },
                };
                let header = PixelHeader {
                    tick: frame.tick,
                    episode: frame.episode,
                    step: frame.step,
                    ack,
                    width: pixels.image.width,
                    height: pixels.image.height,
                    reward,
                    episode_return: total,
                    base,
                };
                match encode_pixel_frame(&header, payload) {
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
    use crate::PixelDeltaEncoder;
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

    /// What a receiver makes of an encoded sprite frame, as the text form's JSON.
    fn json(state: &mut tandem_wire::SpriteState, e: Encoded) -> serde_json::Value {
        match e {
            Encoded::Binary(bytes) => serde_json::to_value(state.apply(&bytes).unwrap()).unwrap(),
            other => panic!("expected binary, got {other:?}"),
        }
    }

    /// The first frame is full; later frames carry only the sprites that changed,
    /// relative to what this socket last sent, and a new episode starts full again.
    #[test]
    fn sprite_frames_are_diffs_per_socket() {
        let mut enc = FrameEncoder::default();
        let mut page = tandem_wire::SpriteState::default();
        let first = json(&mut page, enc.encode(&frame(0, 0, 0.1), 0));
        assert_eq!(first["full"], true);
        assert_eq!(first["upsert"].as_array().unwrap().len(), 2);
        // The socket skipped step 1 and gets step 2: the diff is against step 0.
        let second = json(&mut page, enc.encode(&frame(0, 2, 0.3), 0));
        assert_eq!(second["full"], false);
        assert_eq!(second["upsert"].as_array().unwrap().len(), 1);
        let x = second["upsert"][0]["x"].as_f64().map(|x| x as f32);
        assert_eq!(x, Some(0.3), "sprites hold f32s, sent exactly");
        assert_eq!(second["ack"], 2);
        let next_episode = json(&mut page, enc.encode(&frame(1, 0, 0.3), 0));
        assert_eq!(next_episode["full"], true);
    }

    fn pixel_frame(tick: u64, image: &Arc<Image>, previous: Option<&Image>) -> Arc<PublishedFrame> {
        let delta = previous.and_then(|p| PixelDeltaEncoder::default().encode(p, image));
        Arc::new(PublishedFrame {
            tick,
            episode: 0,
            step: tick as u32,
            acks: vec![None],
            rewards: vec![0.0],
            returns: vec![0.0],
            content: FrameContent::Pixels(PixelContent::new(Arc::clone(image), delta)),
        })
    }

    /// A busy background (hard to compress) with a ball that moves.
    fn image(seed: u8) -> Arc<Image> {
        let mut rgb: Vec<u8> = (0..40 * 30 * 3)
            .map(|i: u32| (i * 7919 % 251) as u8)
            .collect();
        let at = 3 * (40 * 10 + 5 * usize::from(seed));
        for byte in &mut rgb[at..at + 9] {
            *byte = 255 - seed;
        }
        Arc::new(Image {
            width: 40,
            height: 30,
            rgb,
        })
    }

    fn binary(e: Encoded) -> Vec<u8> {
        match e {
            Encoded::Binary(bytes) => bytes,
            other => panic!("expected binary, got {other:?}"),
        }
    }

    /// What a page does with a pixel message: a PNG replaces its picture, a
    /// delta is inflated and its runs written into it (only onto its base).
    fn apply(held: &mut Option<(u64, Vec<u8>)>, bytes: &[u8]) {
        let frame = tandem_wire::decode_pixel_frame(bytes).unwrap();
        let rgb = match frame.header.base {
            None => {
                assert_eq!(&frame.payload[1..4], b"PNG");
                let decoder = png::Decoder::new(std::io::Cursor::new(frame.payload));
                let mut reader = decoder.read_info().unwrap();
                let mut rgb = vec![0; reader.output_buffer_size().unwrap()];
                let info = reader.next_frame(&mut rgb).unwrap();
                rgb.truncate(info.buffer_size());
                rgb
            }
            Some(base) => {
                let (tick, previous) = held.as_ref().expect("a delta needs a frame to apply to");
                assert_eq!(
                    *tick, base,
                    "a delta applies to the frame this socket holds"
                );
                crate::pixel_delta::tests::apply(previous, frame.payload)
            }
        };
        *held = Some((frame.header.tick, rgb));
    }

    /// A socket that holds the frame before gets a small delta; one that
    /// skipped a frame, or just arrived, gets the whole frame; either way
    /// the page ends with exactly the game's picture.
    #[test]
    fn pixel_frames_are_deltas_to_sockets_that_hold_the_frame_before() {
        let images: Vec<Arc<Image>> = (0..5).map(image).collect();
        let frames: Vec<Arc<PublishedFrame>> = (0..5)
            .map(|i| {
                pixel_frame(
                    i as u64 + 1,
                    &images[i],
                    i.checked_sub(1).map(|p| &*images[p]),
                )
            })
            .collect();
        let mut every = FrameEncoder::default();
        let mut held = None;
        for (i, frame) in frames.iter().enumerate() {
            let bytes = binary(every.encode(frame, 0));
            assert_eq!(
                bytes[0],
                if i == 0 {
                    PIXEL_FRAME_V1
                } else {
                    tandem_wire::PIXEL_DELTA_V1
                }
            );
            apply(&mut held, &bytes);
            assert_eq!(
                held.as_ref().map(|h| &h.1),
                Some(&images[i].rgb),
                "frame {i}"
            );
        }
        let png_len = frames[4].content_png_len();
        let mut encoder = FrameEncoder {
            last: Some(Arc::clone(&frames[3])),
            whole_pixels: false,
        };
        let delta_len = binary(encoder.encode(&frames[4], 0)).len();
        assert!(
            delta_len * 4 < png_len,
            "delta {delta_len} B against PNG {png_len} B"
        );

        // A socket that skipped frames 2 and 3 gets frame 4 whole.
        let mut skipping = FrameEncoder::default();
        let mut held = None;
        apply(&mut held, &binary(skipping.encode(&frames[1], 0)));
        let bytes = binary(skipping.encode(&frames[4], 0));
        assert_eq!(bytes[0], PIXEL_FRAME_V1);
        apply(&mut held, &bytes);
        assert_eq!(held.map(|h| h.1), Some(images[4].rgb.clone()));

        // A page that cannot inflate gets whole frames, in order too.
        let mut whole = FrameEncoder::whole_pixels();
        for frame in &frames {
            assert_eq!(binary(whole.encode(frame, 0))[0], PIXEL_FRAME_V1);
        }
    }

    impl PublishedFrame {
        fn content_png_len(&self) -> usize {
            match &self.content {
                FrameContent::Pixels(p) => p.png().map_or(0, <[u8]>::len),
                FrameContent::Sprites(_) => 0,
            }
        }
    }
}
