//! The observation codec: how an [`Observation`] is stored in a BLOB column
//! (`steps.obs`, `episode_agents.reset_obs`).
//!
//! The format is deliberately small enough to decode in a few lines of Python, so
//! that a dataset never needs Tandem to be read:
//!
//! ```text
//! byte 0        tag: bits 0-3 dtype (1 = float32, 2 = uint8, 3 = int64),
//!                    bit 4 (0x10) set if the payload is zstd-compressed,
//!                    bit 5 (0x20) set if the payload is a delta: XOR it, byte for
//!                    byte, with the previous observation's payload,
//!                    bits 6-7 zero (reserved)
//! byte 1        ndim: number of dimensions, 0-255 (0 is a scalar)
//! ndim × u32    the shape, little-endian
//! rest          payload: the values in row-major order, little-endian;
//!               if compressed, one zstd frame (with its content size) of those bytes
//! ```
//!
//! ```python
//! import struct, numpy as np, zstandard
//! def decode_obs(b: bytes) -> np.ndarray:
//!     tag, ndim = b[0], b[1]
//!     dtype = {1: "<f4", 2: "u1", 3: "<i8"}[tag & 0x0F]
//!     shape = struct.unpack_from(f"<{ndim}I", b, 2)
//!     payload = b[2 + 4 * ndim:]
//!     if tag & 0x10:
//!         payload = zstandard.ZstdDecompressor().decompress(payload)
//!     if tag & 0x20:  # a delta: needs the previous observation of this agent
//!         payload = bytes(a ^ b for a, b in zip(payload, prev.tobytes()))
//!     return np.frombuffer(payload, dtype).reshape(shape)
//! ```
//!
//! Deltas are what make pixels cheap to keep: consecutive game frames differ in a
//! few pixels, so the XOR with the previous frame is almost all zeros and zstd
//! shrinks it to tens of bytes (Atari Breakout: 366 bytes a frame alone, about 66
//! as a delta). The recorder writes a step's observation as a delta against the
//! same agent's previous observation in the episode (the reset observation before
//! step 1) when both are large (at least [`DELTA_MIN_LEN`] bytes) and alike in
//! dtype and shape, except every [`KEYFRAME_INTERVAL`] steps, so that a reader
//! can start decoding near any step. Small observations (CartPole's four floats)
//! are never deltas.
//!
//! Compression is used only when it makes the blob smaller: a CartPole state (four
//! floats) is stored raw, since a zstd frame's own header would outweigh any gain,
//! while pixels and grids shrink many times over. Fixed-width dims instead of
//! varints cost a few bytes per row and keep the reader above a one-liner.

use tandem_env::Observation;

use crate::StoreError;

const DTYPE_F32: u8 = 1;
const DTYPE_U8: u8 = 2;
const DTYPE_I64: u8 = 3;
const COMPRESSED: u8 = 0x10;
const DELTA: u8 = 0x20;

/// Observations smaller than this are stored whole: a delta saves nothing on a
/// handful of numbers and would make every read depend on the previous row.
pub const DELTA_MIN_LEN: usize = 1024;

/// Every this many steps (t divisible by it) an observation is stored whole even
/// when it could be a delta, bounding how far back a reader must start.
pub const KEYFRAME_INTERVAL: u32 = 60;

/// Payloads shorter than this are never worth a zstd frame (≈ 10 bytes of header).
const MIN_COMPRESS_LEN: usize = 64;

/// The most a compressed payload may inflate to: bounds the allocation a corrupt
/// blob can cause. A 4K RGB frame is 25 MB.
const MAX_INFLATED_LEN: usize = 1 << 30;

/// zstd's default level: fast enough for a single writer to keep up with many
/// pixel games, and within a few percent of higher levels on game frames.
const ZSTD_LEVEL: i32 = 3;

/// Encodes an observation in the stored format (see the module docs).
///
/// An observation whose shape does not match its number of values (a bug in the
/// environment) is stored flat, as shape `[len]`, so that no value is lost and
/// the blob still decodes.
pub fn encode_obs(obs: &Observation) -> Vec<u8> {
    ObsEncoder::new().encode(obs)
}

/// Decodes a blob written by [`encode_obs`].
///
/// Fails with [`StoreError::Corrupt`] on an unknown tag, a truncated header, or a
/// payload whose length does not match the shape; a compressed payload is never
/// inflated beyond the size its shape announces.
pub fn decode_obs(bytes: &[u8]) -> Result<Observation, StoreError> {
    decode_obs_after(bytes, None)
}

/// Whether a blob is a delta, which needs the previous observation to decode.
pub fn is_delta(bytes: &[u8]) -> bool {
    bytes.first().is_some_and(|tag| tag & DELTA != 0)
}

/// Decodes a blob that may be a delta against `previous`, the same agent's
/// observation one step earlier (its reset observation before step 1).
pub fn decode_obs_after(
    bytes: &[u8],
    previous: Option<&Observation>,
) -> Result<Observation, StoreError> {
    let corrupt = |why: &str| StoreError::corrupt(format!("observation blob: {why}"));
    let [tag, ndim, rest @ ..] = bytes else {
        return Err(corrupt("shorter than its 2-byte header"));
    };
    if tag & !(COMPRESSED | DELTA | 0x0F) != 0 {
        return Err(corrupt(&format!("unknown tag {tag:#04x}")));
    }
    let item_size = match tag & 0x0F {
        DTYPE_F32 => 4,
        DTYPE_U8 => 1,
        DTYPE_I64 => 8,
        other => return Err(corrupt(&format!("unknown dtype code {other}"))),
    };
    let dims_len = usize::from(*ndim) * 4;
    if rest.len() < dims_len {
        return Err(corrupt("truncated shape"));
    }
    let (dims, payload) = rest.split_at(dims_len);
    let shape: Vec<usize> = dims
        .chunks_exact(4)
        .map(|d| u32::from_le_bytes([d[0], d[1], d[2], d[3]]) as usize)
        .collect();
    let byte_len = shape
        .iter()
        .try_fold(item_size, |acc: usize, d| acc.checked_mul(*d))
        .ok_or_else(|| corrupt("shape too large"))?;

    let inflated;
    let raw = if tag & COMPRESSED != 0 {
        if byte_len > MAX_INFLATED_LEN {
            return Err(corrupt(&format!("shape {shape:?} announces over 1 GiB")));
        }
        inflated = zstd::bulk::decompress(payload, byte_len)
            .map_err(|e| corrupt(&format!("zstd: {e}")))?;
        inflated.as_slice()
    } else {
        payload
    };
    if raw.len() != byte_len {
        return Err(corrupt(&format!(
            "shape {shape:?} needs {byte_len} payload bytes, found {}",
            raw.len()
        )));
    }
    let undone;
    let raw = if tag & DELTA != 0 {
        let Some(previous) = previous else {
            return Err(corrupt("a delta, decoded without the previous observation"));
        };
        let base = payload_bytes(previous);
        if base.len() != raw.len() {
            return Err(corrupt(&format!(
                "a delta of {} bytes against a previous observation of {}",
                raw.len(),
                base.len()
            )));
        }
        undone = raw
            .iter()
            .zip(base.iter())
            .map(|(d, b)| d ^ b)
            .collect::<Vec<u8>>();
        undone.as_slice()
    } else {
        raw
    };

    Ok(match tag & 0x0F {
        DTYPE_F32 => Observation::F32 {
            shape,
            data: raw
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
        },
        DTYPE_U8 => Observation::U8 {
            shape,
            data: raw.to_vec(),
        },
        _ => Observation::I64 {
            shape,
            data: raw
                .chunks_exact(8)
                .map(|c| i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
                .collect(),
        },
    })
}

/// An encoder that keeps one zstd context across calls, so the recorder's writer
/// does not set up a compressor for every pixel frame.
pub(crate) struct ObsEncoder {
    /// `None` if zstd could not allocate a context; we then store raw payloads,
    /// which is always a valid encoding.
    compressor: Option<zstd::bulk::Compressor<'static>>,
}

impl ObsEncoder {
    pub(crate) fn new() -> Self {
        ObsEncoder {
            compressor: zstd::bulk::Compressor::new(ZSTD_LEVEL).ok(),
        }
    }

    /// See [`encode_obs`].
    pub(crate) fn encode(&mut self, obs: &Observation) -> Vec<u8> {
        self.encode_after(obs, None)
    }

    /// Encodes `obs`, as a delta against `previous` when [`may_delta`] allows.
    pub(crate) fn encode_after(
        &mut self,
        obs: &Observation,
        previous: Option<&Observation>,
    ) -> Vec<u8> {
        let (dtype, len) = dtype_and_len(obs);
        let mut payload = payload_bytes(obs).into_owned();
        let shape = stored_shape(obs.shape(), len);
        let delta = previous.is_some_and(|p| may_delta(p, obs));
        if let Some(previous) = previous.filter(|_| delta) {
            for (byte, base) in payload.iter_mut().zip(payload_bytes(previous).iter()) {
                *byte ^= base;
            }
        }
        let dtype = if delta { dtype | DELTA } else { dtype };

        let compressed = if payload.len() >= MIN_COMPRESS_LEN {
            self.compressor
                .as_mut()
                .and_then(|c| c.compress(&payload).ok())
                .filter(|c| c.len() < payload.len())
        } else {
            None
        };
        let (tag, body) = match compressed {
            Some(c) => (dtype | COMPRESSED, c),
            None => (dtype, payload),
        };

        let mut out = Vec::with_capacity(2 + 4 * shape.len() + body.len());
        out.push(tag);
        // `stored_shape` guarantees at most 255 dims.
        out.push(shape.len() as u8);
        for d in &shape {
            out.extend_from_slice(&d.to_le_bytes());
        }
        out.extend_from_slice(&body);
        out
    }
}

/// Whether `obs` may be stored as a delta against `previous`: both large, of the
/// same dtype and shape.
pub(crate) fn may_delta(previous: &Observation, obs: &Observation) -> bool {
    let (dtype, len) = dtype_and_len(obs);
    let (previous_dtype, previous_len) = dtype_and_len(previous);
    dtype == previous_dtype
        && len == previous_len
        && obs.shape() == previous.shape()
        && payload_len(obs) >= DELTA_MIN_LEN
}

fn dtype_and_len(obs: &Observation) -> (u8, usize) {
    match obs {
        Observation::F32 { data, .. } => (DTYPE_F32, data.len()),
        Observation::U8 { data, .. } => (DTYPE_U8, data.len()),
        Observation::I64 { data, .. } => (DTYPE_I64, data.len()),
    }
}

/// Bytes an observation's values take.
pub(crate) fn payload_len(obs: &Observation) -> usize {
    match obs {
        Observation::F32 { data, .. } => data.len() * 4,
        Observation::U8 { data, .. } => data.len(),
        Observation::I64 { data, .. } => data.len() * 8,
    }
}

/// The observation's values as stored: little-endian bytes, borrowed for pixels.
fn payload_bytes(obs: &Observation) -> std::borrow::Cow<'_, [u8]> {
    match obs {
        Observation::U8 { data, .. } => std::borrow::Cow::Borrowed(data),
        other => std::borrow::Cow::Owned(other.to_le_bytes()),
    }
}

/// The shape to write: the observation's own if it is consistent with its data
/// and fits the header, otherwise `[len]`.
fn stored_shape(shape: &[usize], len: usize) -> Vec<u32> {
    let consistent = shape.len() <= usize::from(u8::MAX)
        && shape
            .iter()
            .try_fold(1usize, |acc, d| acc.checked_mul(*d))
            .is_some_and(|n| n == len);
    let dims: Option<Vec<u32>> = if consistent {
        shape.iter().map(|d| u32::try_from(*d).ok()).collect()
    } else {
        None
    };
    // A flat length beyond u32 (16 GiB of floats) cannot be in memory; saturating
    // makes such a blob fail to decode rather than decode wrongly.
    dims.unwrap_or_else(|| vec![u32::try_from(len).unwrap_or(u32::MAX)])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Float vectors survive a round trip bit for bit, and small ones are stored raw.
    #[test]
    fn f32_round_trips_raw() {
        let obs = Observation::vector(vec![0.1, -2.5, f32::INFINITY, f32::MIN_POSITIVE]);
        let blob = encode_obs(&obs);
        assert_eq!(blob[0], DTYPE_F32, "a 16-byte payload is not compressed");
        assert_eq!(blob.len(), 2 + 4 + 16);
        assert_eq!(decode_obs(&blob).unwrap(), obs);
    }

    /// Pixels compress and come back identical, shape included.
    #[test]
    fn u8_pixels_round_trip_compressed() {
        let (h, w) = (84, 84);
        let data: Vec<u8> = (0..h * w * 3).map(|i| ((i / 97) % 7) as u8 * 30).collect();
        let obs = Observation::U8 {
            shape: vec![h, w, 3],
            data,
        };
        let blob = encode_obs(&obs);
        assert_eq!(blob[0], DTYPE_U8 | COMPRESSED);
        assert!(blob.len() < h * w * 3 / 4, "{} bytes", blob.len());
        assert_eq!(decode_obs(&blob).unwrap(), obs);
    }

    /// Integer grids round-trip with negative values and a 2-d shape.
    #[test]
    fn i64_grid_round_trips() {
        let data: Vec<i64> = (0..200)
            .map(|i| if i % 3 == 0 { -i } else { i64::MAX - i })
            .collect();
        let obs = Observation::I64 {
            shape: vec![10, 20],
            data,
        };
        assert_eq!(decode_obs(&encode_obs(&obs)).unwrap(), obs);
    }

    /// Scalars and empty tensors are valid observations too.
    #[test]
    fn scalar_and_empty_round_trip() {
        let scalar = Observation::F32 {
            shape: vec![],
            data: vec![1.5],
        };
        assert_eq!(decode_obs(&encode_obs(&scalar)).unwrap(), scalar);
        let empty = Observation::U8 {
            shape: vec![0, 3],
            data: vec![],
        };
        assert_eq!(decode_obs(&encode_obs(&empty)).unwrap(), empty);
    }

    /// A shape that disagrees with the data is stored flat instead of losing values.
    #[test]
    fn inconsistent_shape_is_stored_flat() {
        let obs = Observation::F32 {
            shape: vec![2, 2],
            data: vec![1.0, 2.0, 3.0],
        };
        assert_eq!(
            decode_obs(&encode_obs(&obs)).unwrap(),
            Observation::vector(vec![1.0, 2.0, 3.0])
        );
    }

    /// Malformed blobs are errors, never panics or oversized allocations.
    #[test]
    fn corrupt_blobs_are_errors() {
        assert!(decode_obs(&[]).is_err());
        assert!(decode_obs(&[9, 0]).is_err(), "unknown dtype");
        assert!(decode_obs(&[DTYPE_F32 | 0x40, 0]).is_err(), "reserved bit");
        assert!(
            decode_obs(&[DTYPE_F32, 1, 4, 0]).is_err(),
            "truncated shape"
        );
        assert!(
            decode_obs(&[DTYPE_F32, 1, 2, 0, 0, 0, 1, 2, 3]).is_err(),
            "short payload"
        );
        let huge = [
            DTYPE_U8 | COMPRESSED,
            2,
            255,
            255,
            255,
            255,
            255,
            255,
            255,
            255,
            0,
        ];
        assert!(decode_obs(&huge).is_err());
    }

    /// A noisy 32×32 RGB frame (it compresses poorly on its own) with `changed`
    /// bytes flipped.
    fn frame(seed: u8, changed: usize) -> Observation {
        let mut state = u32::from(seed) | 1;
        let mut data: Vec<u8> = (0..32 * 32 * 3)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                state as u8
            })
            .collect();
        for i in 0..changed {
            let at = (i * 37) % data.len();
            data[at] ^= 0x5A;
        }
        Observation::U8 {
            shape: vec![32, 32, 3],
            data,
        }
    }

    /// A large observation that differs a little from the previous one is stored
    /// as a small delta and decodes back only with that previous observation.
    #[test]
    fn deltas_are_small_and_need_their_base() {
        let base = frame(7, 0);
        let next = frame(7, 5);
        let mut encoder = ObsEncoder::new();
        let whole = encoder.encode(&next);
        let delta = encoder.encode_after(&next, Some(&base));
        assert!(is_delta(&delta) && !is_delta(&whole));
        assert!(
            delta.len() < whole.len(),
            "{} vs {}",
            delta.len(),
            whole.len()
        );
        assert_eq!(decode_obs_after(&delta, Some(&base)).unwrap(), next);
        assert!(
            decode_obs(&delta).is_err(),
            "a delta without its base is refused"
        );
        let wrong_base = Observation::U8 {
            shape: vec![4],
            data: vec![0; 4],
        };
        assert!(decode_obs_after(&delta, Some(&wrong_base)).is_err());
    }

    /// Small or mismatched observations are never deltas.
    #[test]
    fn small_or_mismatched_observations_are_stored_whole() {
        let mut encoder = ObsEncoder::new();
        let small = Observation::vector(vec![1.0, 2.0]);
        assert!(!is_delta(&encoder.encode_after(&small, Some(&small))));
        let big = frame(1, 0);
        let other_shape = Observation::U8 {
            shape: vec![96, 32],
            data: vec![1; 96 * 32],
        };
        assert!(!is_delta(&encoder.encode_after(&big, Some(&other_shape))));
    }
}
