//! Reads `testdata/atari/breakout.frames`: 3,000 real Atari Breakout frames
//! (160 × 210 RGB, every emulator frame at 60 Hz, a seeded random player),
//! recorded with `ale-py` by `python/tools/record_atari_fixture.py`, which holds
//! the exact command and the reasons behind its choices.
//!
//! Benches and examples include this file rather than depend on a crate:
//!
//! ```ignore
//! #[path = "../../../testdata/atari/fixture.rs"]
//! mod fixture;
//! let atari = fixture::Fixture::load_default();
//! ```
//!
//! The format (integers little-endian):
//!
//! ```text
//! 8 bytes     magic "TNDPIX1\n"
//! u32 × 5     width, height, channels (3), frame count n, metadata length m
//! m bytes     UTF-8 JSON: how the file was made (env, seed, policy, versions)
//! n bytes     flags per frame: bit 0 set on the first frame of an episode
//! rest        one zstd frame of the n frames back to back, each
//!             height × width × channels bytes, row-major (as an `[h, w, 3]`
//!             observation is)
//! ```

// Each bench or example that includes this file uses a different part of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"TNDPIX1\n";
/// Refuse to inflate more than this: bounds what a damaged file can allocate.
const MAX_RAW_BYTES: usize = 1 << 30;

/// Every frame of the fixture, decompressed.
pub struct Fixture {
    pub width: u32,
    pub height: u32,
    /// Bytes per pixel (3: RGB).
    pub channels: u32,
    /// How the file was made, as the recording script wrote it (JSON).
    pub meta: String,
    /// Per frame: whether it is the first frame of an episode (right after a reset).
    pub episode_starts: Vec<bool>,
    /// All frames back to back; see [`Fixture::frame`].
    raw: Vec<u8>,
}

impl Fixture {
    /// The committed Breakout fixture, found from the including crate's manifest
    /// directory (every crate lives in `crates/<name>/`).
    pub fn default_path() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/atari/breakout.frames")
    }

    /// Loads [`Fixture::default_path`], panicking with the reason if it cannot:
    /// benches have nothing to measure without it.
    pub fn load_default() -> Fixture {
        let path = Fixture::default_path();
        Fixture::load(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
    }

    /// Reads and decompresses a fixture file.
    pub fn load(path: &Path) -> Result<Fixture, String> {
        let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
        Fixture::parse(&bytes)
    }

    /// Parses the bytes of a fixture file (see the module docs).
    pub fn parse(bytes: &[u8]) -> Result<Fixture, String> {
        let rest = bytes
            .strip_prefix(MAGIC)
            .ok_or("not a Tandem pixel fixture (bad magic)")?;
        if rest.len() < 20 {
            return Err("truncated header".into());
        }
        let word = |i: usize| u32::from_le_bytes([rest[i], rest[i + 1], rest[i + 2], rest[i + 3]]);
        let (width, height, channels, count, meta_len) =
            (word(0), word(4), word(8), word(12), word(16));
        let rest = &rest[20..];
        let (meta, rest) = rest
            .split_at_checked(meta_len as usize)
            .ok_or("truncated metadata")?;
        let meta = String::from_utf8(meta.to_vec()).map_err(|e| e.to_string())?;
        let (flags, packed) = rest
            .split_at_checked(count as usize)
            .ok_or("truncated flags")?;
        let frame_len = width as usize * height as usize * channels as usize;
        let raw_len = frame_len
            .checked_mul(count as usize)
            .filter(|n| *n <= MAX_RAW_BYTES)
            .ok_or("frames too large")?;
        let raw = zstd::bulk::decompress(packed, raw_len).map_err(|e| format!("zstd: {e}"))?;
        if raw.len() != raw_len {
            return Err(format!(
                "{count} frames need {raw_len} bytes, found {}",
                raw.len()
            ));
        }
        Ok(Fixture {
            width,
            height,
            channels,
            meta,
            episode_starts: flags.iter().map(|f| f & 1 != 0).collect(),
            raw,
        })
    }

    /// How many frames there are.
    pub fn frame_count(&self) -> usize {
        self.episode_starts.len()
    }

    /// Frame `i`, height × width × channels bytes, row-major.
    pub fn frame(&self, i: usize) -> &[u8] {
        let n = self.frame_len();
        &self.raw[i * n..(i + 1) * n]
    }

    /// Every frame in order.
    pub fn frames(&self) -> impl ExactSizeIterator<Item = &[u8]> {
        self.raw.chunks_exact(self.frame_len())
    }

    /// Bytes in one frame.
    pub fn frame_len(&self) -> usize {
        self.width as usize * self.height as usize * self.channels as usize
    }
}
