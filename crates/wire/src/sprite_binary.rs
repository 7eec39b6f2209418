//! Sprite frames in binary: what the server sends a socket each tick of a
//! sprite game, about a tenth of the `frame` text message's size.
//!
//! From one tick to the next a game moves a few sprites by a few numbers: a
//! cart's `x`, a pole's two end points. So a sprite that keeps its shape kind,
//! colours, `z`, text or image name and point count is sent as a *patch*: its
//! id, a bit mask of which of its numbers changed, and those numbers as f32
//! (the type sprites hold them in, so nothing is lost). Anything else (a new
//! sprite, a changed colour) is sent whole, as JSON inside the message. The
//! header's integers are LEB128 varints; the reward and return stay f64.
//!
//! ```text
//! u8      3 (sprite frame, version 1)
//! varint  tick, episode, step, ack + 1 (0: no ack)
//! u8      flags: bit 0 full (drop every sprite held first)
//! f64 LE  reward, return
//! varint  count of removed ids, then each id
//! varint  count of patches, then each: varint id, varint mask (bit i: number
//!         i changed), one f32 LE per set bit, lowest bit first
//! varint  length of a JSON array of whole sprites (0: none), then the JSON
//! ```
//!
//! A sprite's numbers, in order: a rect's `x, y, w, h, angle`; a circle's
//! `x, y, r`; a line's or polygon's points `x0, y0, x1, y1, …`; a text's
//! `x, y, size`; an image's `x, y, w, h`; then `line_width`. At most 64
//! numbers are patched; a sprite with more is sent whole when it changes.
//!
//! [`encode_sprite_frame`] writes a message from the sprites a socket holds
//! and the new ones; [`SpriteState`] is a receiver's copy, which applies
//! messages and returns each as the [`SpriteFrame`] the text form would
//! decode to (the bench's bots and the tests read frames through it; the page
//! has the same decoder in JavaScript).

use std::collections::BTreeMap;

use tandem_env::{Shape, Sprite};

use crate::frame::SpriteFrame;

/// Byte 0 of a binary sprite frame, version 1.
pub const SPRITE_FRAME_V1: u8 = 3;

/// The most numbers a patch can carry (bits of its mask).
const MAX_PATCHED: usize = 64;

/// Where a sprite frame is in its game, and the viewer's figures at it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SpriteHeader {
    pub tick: u64,
    pub episode: u32,
    pub step: u32,
    pub ack: Option<u64>,
    pub reward: f64,
    pub episode_return: f64,
}

/// Why bytes are not a sprite frame (or not one that applies here).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SpriteFrameError {
    #[error("byte 0 is not {SPRITE_FRAME_V1} (sprite frame, version 1)")]
    Version,
    #[error("the message ends early")]
    Truncated,
    #[error("a number does not fit")]
    Overflow,
    #[error("a patch names sprite {0}, which is not held, or changes numbers it does not have")]
    Patch(u32),
    #[error("the whole sprites are not valid JSON sprites: {0}")]
    Json(String),
}

/// Writes one message into `out` (cleared first): the change from
/// `previous` (what the socket holds, or `None` for a full frame) to `next`.
pub fn encode_sprite_frame(
    out: &mut Vec<u8>,
    header: &SpriteHeader,
    previous: Option<&[Sprite]>,
    next: &[Sprite],
) {
    out.clear();
    out.push(SPRITE_FRAME_V1);
    put_varint(out, header.tick);
    put_varint(out, u64::from(header.episode));
    put_varint(out, u64::from(header.step));
    put_varint(out, header.ack.map_or(0, |a| a.saturating_add(1)));
    out.push(u8::from(previous.is_none()));
    out.extend_from_slice(&header.reward.to_le_bytes());
    out.extend_from_slice(&header.episode_return.to_le_bytes());
    let previous = previous.unwrap_or_default();
    let held: BTreeMap<u32, &Sprite> = previous.iter().map(|s| (s.id, s)).collect();
    let ids: std::collections::BTreeSet<u32> = next.iter().map(|s| s.id).collect();
    let removed: Vec<u32> = held
        .keys()
        .filter(|id| !ids.contains(id))
        .copied()
        .collect();
    put_varint(out, removed.len() as u64);
    for id in removed {
        put_varint(out, u64::from(id));
    }
    let mut whole: Vec<&Sprite> = Vec::new();
    let mut patches: Vec<(u32, u64, Vec<f32>)> = Vec::new();
    for sprite in next {
        match held.get(&sprite.id) {
            Some(before) if *before == sprite => {}
            Some(before) if same_structure(before, sprite) => {
                let (old, new) = (numbers(before), numbers(sprite));
                let mut mask = 0u64;
                let mut values = Vec::new();
                for (i, (a, b)) in old.iter().zip(&new).enumerate() {
                    if a.to_bits() != b.to_bits() {
                        mask |= 1 << i;
                        values.push(*b);
                    }
                }
                patches.push((sprite.id, mask, values));
            }
            _ => whole.push(sprite),
        }
    }
    put_varint(out, patches.len() as u64);
    for (id, mask, values) in patches {
        put_varint(out, u64::from(id));
        put_varint(out, mask);
        for value in values {
            out.extend_from_slice(&value.to_le_bytes());
        }
    }
    let json = if whole.is_empty() {
        Vec::new()
    } else {
        serde_json::to_vec(&whole).unwrap_or_default()
    };
    put_varint(out, json.len() as u64);
    out.extend_from_slice(&json);
}

/// A receiver's copy of the sprites a socket holds.
#[derive(Clone, Debug, Default)]
pub struct SpriteState {
    sprites: BTreeMap<u32, Sprite>,
}

impl SpriteState {
    /// The sprites held, by id.
    pub fn sprites(&self) -> impl Iterator<Item = &Sprite> {
        self.sprites.values()
    }

    /// Applies one binary sprite frame and returns it as the text form would
    /// have it: `upsert` holds every sprite added or changed, whole. On an
    /// error nothing is applied.
    pub fn apply(&mut self, bytes: &[u8]) -> Result<SpriteFrame, SpriteFrameError> {
        let mut r = Reader { bytes, at: 0 };
        let (header, full) = read_header(&mut r)?;
        let mut next = if full {
            BTreeMap::new()
        } else {
            self.sprites.clone()
        };
        let mut remove = Vec::new();
        for _ in 0..r.count()? {
            let id = r.id()?;
            next.remove(&id);
            remove.push(id);
        }
        let mut upsert = Vec::new();
        for _ in 0..r.count()? {
            let id = r.id()?;
            let mask = r.varint()?;
            let sprite = next.get_mut(&id).ok_or(SpriteFrameError::Patch(id))?;
            let mut values = numbers(sprite);
            // The encoder sends a sprite with more numbers than a mask has
            // bits whole; a patch for one, or a bit past its numbers, is forged.
            if values.len() > MAX_PATCHED
                || (values.len() < MAX_PATCHED && mask >> values.len() != 0)
            {
                return Err(SpriteFrameError::Patch(id));
            }
            for (i, value) in values.iter_mut().enumerate() {
                if mask & (1u64 << i) != 0 {
                    *value = f32::from_le_bytes(r.array()?);
                }
            }
            set_numbers(sprite, &values);
            upsert.push(sprite.clone());
        }
        let length = usize::try_from(r.varint()?).map_err(|_| SpriteFrameError::Overflow)?;
        if length > 0 {
            let json = r.take(length)?;
            let mut de = serde_json::Deserializer::from_slice(json);
            let sprites = crate::frame::flat::sprites(&mut de)
                .map_err(|e| SpriteFrameError::Json(e.to_string()))?;
            for sprite in sprites {
                next.insert(sprite.id, sprite.clone());
                upsert.push(sprite);
            }
        }
        if r.at != bytes.len() {
            return Err(SpriteFrameError::Truncated);
        }
        self.sprites = next;
        Ok(SpriteFrame {
            tick: header.tick,
            episode: header.episode,
            step: header.step,
            ack: header.ack,
            full,
            upsert,
            remove,
            reward: header.reward,
            episode_return: header.episode_return,
        })
    }
}

/// Reads only a sprite frame's header: for counting frames without keeping
/// sprites (the bench's bots).
pub fn sprite_frame_header(bytes: &[u8]) -> Result<SpriteHeader, SpriteFrameError> {
    read_header(&mut Reader { bytes, at: 0 }).map(|(header, _)| header)
}

/// Reads byte 0 and the header; returns it and the `full` flag.
fn read_header(r: &mut Reader) -> Result<(SpriteHeader, bool), SpriteFrameError> {
    if r.byte()? != SPRITE_FRAME_V1 {
        return Err(SpriteFrameError::Version);
    }
    let tick = r.varint()?;
    let episode = u32::try_from(r.varint()?).map_err(|_| SpriteFrameError::Overflow)?;
    let step = u32::try_from(r.varint()?).map_err(|_| SpriteFrameError::Overflow)?;
    let ack = r.varint()?.checked_sub(1);
    let full = r.byte()? & 1 == 1;
    let header = SpriteHeader {
        tick,
        episode,
        step,
        ack,
        reward: f64::from_le_bytes(r.array()?),
        episode_return: f64::from_le_bytes(r.array()?),
    };
    Ok((header, full))
}

/// Whether `b` can be sent as a patch of `a`: everything but its numbers is
/// the same, and it has as many numbers, at most [`MAX_PATCHED`].
fn same_structure(a: &Sprite, b: &Sprite) -> bool {
    let shapes = match (&a.shape, &b.shape) {
        (Shape::Rect { .. }, Shape::Rect { .. }) | (Shape::Circle { .. }, Shape::Circle { .. }) => {
            true
        }
        (Shape::Line { points: p }, Shape::Line { points: q })
        | (Shape::Polygon { points: p }, Shape::Polygon { points: q }) => p.len() == q.len(),
        (Shape::Text { text: s, .. }, Shape::Text { text: t, .. }) => s == t,
        (Shape::Image { name: m, .. }, Shape::Image { name: n, .. }) => m == n,
        _ => false,
    };
    shapes
        && a.fill == b.fill
        && a.stroke == b.stroke
        && a.z == b.z
        && numbers(b).len() <= MAX_PATCHED
}

/// A sprite's numbers, in the documented order.
fn numbers(sprite: &Sprite) -> Vec<f32> {
    let mut out = match &sprite.shape {
        Shape::Rect { x, y, w, h, angle } => vec![*x, *y, *w, *h, *angle],
        Shape::Circle { x, y, r } => vec![*x, *y, *r],
        Shape::Line { points } | Shape::Polygon { points } => {
            points.iter().flat_map(|p| [p[0], p[1]]).collect()
        }
        Shape::Text { x, y, size, .. } => vec![*x, *y, *size],
        Shape::Image { x, y, w, h, .. } => vec![*x, *y, *w, *h],
    };
    out.push(sprite.line_width);
    out
}

/// Sets a sprite's numbers from `values` (as [`numbers`] orders them).
fn set_numbers(sprite: &mut Sprite, values: &[f32]) {
    let v = |i: usize| values.get(i).copied().unwrap_or(0.0);
    let count = match &mut sprite.shape {
        Shape::Rect { x, y, w, h, angle } => {
            (*x, *y, *w, *h, *angle) = (v(0), v(1), v(2), v(3), v(4));
            5
        }
        Shape::Circle { x, y, r } => {
            (*x, *y, *r) = (v(0), v(1), v(2));
            3
        }
        Shape::Line { points } | Shape::Polygon { points } => {
            for (i, p) in points.iter_mut().enumerate() {
                *p = [v(2 * i), v(2 * i + 1)];
            }
            2 * points.len()
        }
        Shape::Text { x, y, size, .. } => {
            (*x, *y, *size) = (v(0), v(1), v(2));
            3
        }
        Shape::Image { x, y, w, h, .. } => {
            (*x, *y, *w, *h) = (v(0), v(1), v(2), v(3));
            4
        }
    };
    sprite.line_width = v(count);
}

/// Appends `value` as a LEB128 varint (seven bits a byte, low first), the
/// integer form of binary frames (sprite headers and pixel-delta runs).
pub fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], SpriteFrameError> {
        let end = self.at.checked_add(n).ok_or(SpriteFrameError::Overflow)?;
        let slice = self
            .bytes
            .get(self.at..end)
            .ok_or(SpriteFrameError::Truncated)?;
        self.at = end;
        Ok(slice)
    }

    fn byte(&mut self) -> Result<u8, SpriteFrameError> {
        Ok(self.take(1)?[0])
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], SpriteFrameError> {
        self.take(N)?
            .try_into()
            .map_err(|_| SpriteFrameError::Truncated)
    }

    fn varint(&mut self) -> Result<u64, SpriteFrameError> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.byte()?;
            value |= u64::from(byte & 0x7f)
                .checked_shl(shift)
                .ok_or(SpriteFrameError::Overflow)?;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(SpriteFrameError::Overflow)
    }

    /// A count of items that follow, each at least a byte: never more than
    /// the bytes left, so a forged count cannot make a reader loop long.
    fn count(&mut self) -> Result<usize, SpriteFrameError> {
        let n = usize::try_from(self.varint()?).map_err(|_| SpriteFrameError::Overflow)?;
        if n > self.bytes.len() - self.at {
            return Err(SpriteFrameError::Truncated);
        }
        Ok(n)
    }

    fn id(&mut self) -> Result<u32, SpriteFrameError> {
        u32::try_from(self.varint()?).map_err(|_| SpriteFrameError::Overflow)
    }
}

#[cfg(test)]
mod tests {
    use tandem_env::Shape;

    use super::*;

    fn header(tick: u64) -> SpriteHeader {
        SpriteHeader {
            tick,
            episode: 1,
            step: 7,
            ack: Some(41),
            reward: -1.0,
            episode_return: -7.5,
        }
    }

    fn scene(x: f32, colour: &str) -> Vec<Sprite> {
        vec![
            Sprite::new(
                1,
                Shape::Rect {
                    x,
                    y: 0.5,
                    w: 0.1,
                    h: 0.05,
                    angle: x / 3.0,
                },
            )
            .fill(colour),
            Sprite::new(
                2,
                Shape::Line {
                    points: vec![[x, 0.5], [x + 0.1, 0.2]],
                },
            ),
            Sprite::new(
                3,
                Shape::Text {
                    x: 0.0,
                    y: 0.0,
                    text: "score".into(),
                    size: 0.05,
                },
            ),
        ]
    }

    /// Full, then patches, then a whole sprite and a removal: the receiver
    /// ends with exactly the sender's sprites, and the text form's fields.
    #[test]
    fn frames_round_trip_through_a_receiver() {
        let mut out = Vec::new();
        let mut state = SpriteState::default();
        let first = scene(0.25, "#333");
        encode_sprite_frame(&mut out, &header(1), None, &first);
        let frame = state.apply(&out).unwrap();
        assert!(frame.full);
        assert_eq!(frame.upsert, first);
        assert_eq!(
            (frame.tick, frame.episode, frame.step, frame.ack),
            (1, 1, 7, Some(41))
        );
        assert_eq!((frame.reward, frame.episode_return), (-1.0, -7.5));

        let moved = scene(0.3, "#333");
        encode_sprite_frame(&mut out, &header(2), Some(&first), &moved);
        let patch_len = out.len();
        let frame = state.apply(&out).unwrap();
        assert!(!frame.full);
        assert_eq!(
            frame.upsert.len(),
            2,
            "the rect and the line moved, the text did not"
        );
        assert_eq!(state.sprites().cloned().collect::<Vec<_>>(), moved);
        assert!(patch_len < 60, "a moved cart and pole: {patch_len} bytes");

        let mut recoloured = scene(0.3, "#f00");
        recoloured.remove(2);
        encode_sprite_frame(&mut out, &header(3), Some(&moved), &recoloured);
        let frame = state.apply(&out).unwrap();
        assert_eq!(frame.remove, vec![3]);
        assert_eq!(frame.upsert.len(), 1);
        assert_eq!(state.sprites().cloned().collect::<Vec<_>>(), recoloured);
    }

    /// Truncated, forged or misapplied messages are refused with a reason,
    /// and leave the receiver's sprites as they were.
    #[test]
    fn bad_messages_are_refused_and_change_nothing() {
        let mut out = Vec::new();
        let first = scene(0.25, "#333");
        encode_sprite_frame(&mut out, &header(1), None, &first);
        let mut state = SpriteState::default();
        state.apply(&out).unwrap();
        let held: Vec<Sprite> = state.sprites().cloned().collect();
        let mut patch = Vec::new();
        encode_sprite_frame(&mut patch, &header(2), Some(&first), &scene(0.5, "#333"));
        for cut in 0..patch.len() {
            assert!(state.apply(&patch[..cut]).is_err(), "cut at {cut}");
        }
        assert_eq!(state.apply(&[9]), Err(SpriteFrameError::Version));
        // A patch for a sprite the receiver does not hold.
        let mut fresh = SpriteState::default();
        assert_eq!(fresh.apply(&patch), Err(SpriteFrameError::Patch(1)));
        // A count far beyond the message's length.
        let mut forged = out[..out.len() - 1].to_vec();
        forged.truncate(1 + 4 + 1 + 16);
        forged.extend_from_slice(&[0xff, 0xff, 0xff, 0x0f]);
        assert!(state.apply(&forged).is_err());
        assert_eq!(state.sprites().cloned().collect::<Vec<_>>(), held);
        assert_eq!(sprite_frame_header(&patch).map(|h| h.tick), Ok(2));

        // A patch for a sprite with more numbers than a mask has bits (a
        // 40-point line: 81 numbers) is refused, not applied.
        let long = vec![Sprite::new(
            9,
            Shape::Line {
                points: vec![[0.5, 0.5]; 40],
            },
        )];
        let mut state = SpriteState::default();
        encode_sprite_frame(&mut out, &header(1), None, &long);
        state.apply(&out).unwrap();
        let mut forged = vec![SPRITE_FRAME_V1, 2, 1, 7, 0, 0];
        forged.extend_from_slice(&[0; 16]);
        forged.extend_from_slice(&[0, 1, 9]); // no removals, one patch of sprite 9
        forged.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
        forged.extend_from_slice(&[0; 4 * 64]);
        forged.push(0);
        assert_eq!(state.apply(&forged), Err(SpriteFrameError::Patch(9)));
        assert_eq!(state.sprites().cloned().collect::<Vec<_>>(), long);
    }
}
