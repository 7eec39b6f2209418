//! A pixel frame's delta from the frame before: what changed, as runs over the
//! RGB bytes, raw-deflated (the payload of a `base`d pixel message, see
//! `docs/WIRE.md`).
//!
//! Runs first, because deflate alone cannot say "100 kB unchanged" in fewer
//! than several hundred bytes (its longest match is 258 bytes), and a game
//! frame is mostly unchanged: Breakout's deltas are tens of bytes this way.
//!
//! This runs once per tick of every pixel game, so it is shaped for that: the
//! unchanged stretches are found eight bytes at a time, and one encoder keeps
//! its run buffer and its deflate state from frame to frame instead of
//! allocating (and zeroing) a compressor's tables every tick.

use flate2::{Compress, Compression, FlushCompress, Status};
use tandem_env::Image;
use tandem_wire::put_varint;

/// Encodes deltas between consecutive frames of one game.
pub struct PixelDeltaEncoder {
    runs: Vec<u8>,
    deflate: Compress,
}

impl Default for PixelDeltaEncoder {
    fn default() -> Self {
        PixelDeltaEncoder {
            runs: Vec::new(),
            // `false`: raw deflate, no zlib header, as the page's
            // `DecompressionStream("deflate-raw")` reads it.
            deflate: Compress::new(Compression::fast(), false),
        }
    }
}

impl PixelDeltaEncoder {
    /// What changed from `previous` to `current`: runs over their RGB bytes,
    /// each a varint count of bytes that stay, a varint count of bytes that
    /// change and those bytes' new values, all raw-deflated. `None` when the
    /// sizes differ.
    pub fn encode(&mut self, previous: &Image, current: &Image) -> Option<Vec<u8>> {
        if (previous.width, previous.height) != (current.width, current.height)
            || previous.rgb.len() != current.rgb.len()
        {
            return None;
        }
        self.runs.clear();
        let (old, new) = (&previous.rgb, &current.rgb);
        let mut at = 0;
        loop {
            let start = at + unchanged_prefix(&old[at..], &new[at..]);
            let end = start + changed_run(&old[start..], &new[start..]);
            put_varint(&mut self.runs, (start - at) as u64);
            put_varint(&mut self.runs, (end - start) as u64);
            self.runs.extend_from_slice(&new[start..end]);
            if end == new.len() {
                break;
            }
            at = end;
        }
        self.deflate_runs()
    }

    fn deflate_runs(&mut self) -> Option<Vec<u8>> {
        // Deflate's worst case is a few bytes per 16 kB over its input.
        let mut out = Vec::with_capacity(self.runs.len() + self.runs.len() / 64 + 64);
        let done = loop {
            let consumed = self.deflate.total_in() as usize;
            let input = self.runs.get(consumed..).unwrap_or_default();
            match self
                .deflate
                .compress_vec(input, &mut out, FlushCompress::Finish)
            {
                Ok(Status::StreamEnd) => break true,
                Ok(_) => out.reserve(out.capacity().max(64)),
                Err(_) => break false,
            }
        };
        self.deflate.reset();
        done.then_some(out)
    }
}

/// How many leading bytes `a` and `b` share, compared eight at a time.
fn unchanged_prefix(a: &[u8], b: &[u8]) -> usize {
    let (words_a, _) = a.as_chunks::<8>();
    let (words_b, _) = b.as_chunks::<8>();
    for (index, (x, y)) in words_a.iter().zip(words_b).enumerate() {
        let differ = u64::from_le_bytes(*x) ^ u64::from_le_bytes(*y);
        if differ != 0 {
            return index * 8 + (differ.trailing_zeros() / 8) as usize;
        }
    }
    let done = words_a.len().min(words_b.len()) * 8;
    done + a[done..]
        .iter()
        .zip(&b[done..])
        .take_while(|(x, y)| x == y)
        .count()
}

/// How long the changed run starting at `a[0] != b[0]` (or at the end) is: it
/// ends at the first stretch of 4 unchanged bytes, since a shorter one costs
/// less inside the run than as a run of its own.
fn changed_run(a: &[u8], b: &[u8]) -> usize {
    let mut end = 0;
    let mut unchanged = 0;
    while end < b.len() && unchanged < 4 {
        unchanged = if a[end] == b[end] { unchanged + 1 } else { 0 };
        end += 1;
    }
    if unchanged == 4 { end - 4 } else { end }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::io::Read;

    use super::*;

    fn image(rgb: Vec<u8>) -> Image {
        Image {
            width: (rgb.len() / 3) as u32,
            height: 1,
            rgb,
        }
    }

    /// Applies a delta the way the page does: inflate, then walk the runs.
    pub(crate) fn apply(previous: &[u8], delta: &[u8]) -> Vec<u8> {
        let mut runs = Vec::new();
        flate2::read::DeflateDecoder::new(delta)
            .read_to_end(&mut runs)
            .expect("a raw deflate stream");
        let mut out = previous.to_vec();
        let (mut at, mut read) = (0usize, 0usize);
        let varint = |read: &mut usize| {
            let (mut value, mut shift) = (0u64, 0);
            loop {
                let byte = runs[*read];
                *read += 1;
                value |= u64::from(byte & 0x7f) << shift;
                if byte < 0x80 {
                    return value as usize;
                }
                shift += 7;
            }
        };
        while read < runs.len() {
            at += varint(&mut read);
            let changed = varint(&mut read);
            out[at..at + changed].copy_from_slice(&runs[read..read + changed]);
            read += changed;
            at += changed;
        }
        out
    }

    /// Changes at every alignment, at the start and the end, in runs long and
    /// short, and none at all: applying the delta rebuilds the frame exactly.
    #[test]
    fn deltas_rebuild_the_frame_exactly() {
        let base: Vec<u8> = (0..3 * 1001).map(|i| (i * 7 % 251) as u8).collect();
        let mut encoder = PixelDeltaEncoder::default();
        let changes: &[&[usize]] = &[
            &[],
            &[0],
            &[3002],
            &[1, 2, 3, 4, 5, 6, 7, 8, 9],
            &[8, 16, 17, 23, 24, 31],
            &[100, 102, 104, 106, 200, 1500, 1507, 2999, 3000, 3001],
        ];
        for changed in changes {
            let mut next = base.clone();
            for &i in *changed {
                next[i] ^= 0x5a;
            }
            let delta = encoder
                .encode(&image(base.clone()), &image(next.clone()))
                .expect("same size");
            assert_eq!(apply(&base, &delta), next, "changes at {changed:?}");
        }
        let everything: Vec<u8> = base.iter().map(|b| !b).collect();
        let delta = encoder
            .encode(&image(base.clone()), &image(everything.clone()))
            .expect("same size");
        assert_eq!(apply(&base, &delta), everything);
    }

    #[test]
    fn frames_of_different_sizes_have_no_delta() {
        let mut encoder = PixelDeltaEncoder::default();
        assert!(
            encoder
                .encode(&image(vec![0; 30]), &image(vec![0; 33]))
                .is_none()
        );
    }

    #[test]
    fn the_unchanged_prefix_is_found_at_every_offset() {
        let a = vec![9u8; 37];
        for differ_at in 0..=37 {
            let mut b = a.clone();
            if differ_at < b.len() {
                b[differ_at] = 1;
            }
            assert_eq!(unchanged_prefix(&a, &b), differ_at);
        }
    }
}
