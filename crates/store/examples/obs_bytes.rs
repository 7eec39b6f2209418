//! Stored bytes per Atari observation: what the observation codec stores today
//! for each of the 3,000 real Breakout frames in `testdata/atari`
//! (`U8 [210, 160, 3]`), and what a temporal delta would store instead: each
//! observation XOR-ed with the previous one in its episode, then zstd (levels 1
//! and 3), with a whole observation (a key frame, stored as today) at every
//! episode start and, for random access, every `K` steps.
//!
//! A measurement that informs the design; the codec is unchanged. Blob sizes
//! only: SQLite adds a few bytes per row on top.
//!
//! ```text
//! cargo run --release -p tandem-store --example obs_bytes
//! ```

#[path = "../../../testdata/atari/fixture.rs"]
mod fixture;

use tandem_env::Observation;
use tandem_store::obs_codec::encode_obs;

/// The codec's header for a 3-d observation: tag, ndim, three u32 dims. A delta
/// format would need the same, plus a flag in the reserved tag bits.
const HEADER: usize = 2 + 3 * 4;

fn main() {
    let atari = fixture::Fixture::load_default();
    println!("fixture: {}", atari.meta);
    let n = atari.frame_count();
    let shape = vec![atari.height as usize, atari.width as usize, 3];
    let whole: Vec<usize> = atari
        .frames()
        .map(|rgb| {
            encode_obs(&Observation::U8 {
                shape: shape.clone(),
                data: rgb.to_vec(),
            })
            .len()
        })
        .collect();
    let mean = |sizes: &[usize]| sizes.iter().sum::<usize>() as f64 / sizes.len().max(1) as f64;
    println!(
        "Atari Breakout observations: {n} frames, {} raw bytes each, {} episode starts",
        atari.frame_len(),
        atari.episode_starts.iter().filter(|s| **s).count()
    );
    println!(
        "  {:<64} {:>6.0} bytes/frame",
        "encode_obs (zstd-3 of each frame, as stored today)",
        mean(&whole)
    );

    for level in [1, 3] {
        let mut zstd = zstd::bulk::Compressor::new(level).expect("zstd context");
        // Delta sizes for every frame that has a previous frame in its episode.
        let delta: Vec<Option<usize>> = (0..n)
            .map(|i| {
                if atari.episode_starts[i] {
                    return None;
                }
                let (prev, cur) = (atari.frame(i - 1), atari.frame(i));
                let xor: Vec<u8> = prev.iter().zip(cur).map(|(p, c)| p ^ c).collect();
                Some(HEADER + zstd.compress(&xor).expect("zstd").len())
            })
            .collect();
        let only: Vec<usize> = delta.iter().flatten().copied().collect();
        println!(
            "  {:<64} {:>6.0} bytes/frame",
            format!("XOR previous + zstd-{level}, delta frames only"),
            mean(&only)
        );
        for (label, every) in [
            ("key frames at episode starts only", None),
            ("key frames also every 600 steps (10 s)", Some(600)),
            ("key frames also every 60 steps (1 s)", Some(60)),
        ] {
            let mut since_key = 0;
            let sizes: Vec<usize> = (0..n)
                .map(|i| {
                    since_key += 1;
                    let key = delta[i].is_none() || every.is_some_and(|k| since_key >= k);
                    if key {
                        since_key = 0;
                        whole[i]
                    } else {
                        delta[i].unwrap_or(whole[i])
                    }
                })
                .collect();
            println!(
                "  {:<64} {:>6.0} bytes/frame",
                format!("XOR previous + zstd-{level}, {label}"),
                mean(&sizes)
            );
        }
    }
}
