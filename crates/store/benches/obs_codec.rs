//! The observation codec on real Atari frames: [`encode_obs`] and [`decode_obs`]
//! on `U8 [210, 160, 3]` observations from the fixture (`testdata/atari`).
//!
//! - `obs_codec/encode_atari`: the public [`encode_obs`], which sets up a zstd
//!   context per call.
//! - `obs_codec/zstd3_reused_context_atari`: only the payload compression with a
//!   context kept across calls, as the recorder's writer does (its encoder is
//!   private to the crate): the writer's cost per frame, less a few copies.
//! - `obs_codec/decode_atari`: reading a stored blob back.
//!
//! Stored bytes per frame, and what a temporal delta would store:
//! `cargo run --release -p tandem-store --example obs_bytes`.
//!
//! ```text
//! cargo bench -p tandem-store --bench obs_codec
//! ```

#[path = "../../../testdata/atari/fixture.rs"]
mod fixture;

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tandem_env::Observation;
use tandem_store::obs_codec::{decode_obs, encode_obs};

fn obs_codec(c: &mut Criterion) {
    let atari = fixture::Fixture::load_default();
    let shape = vec![atari.height as usize, atari.width as usize, 3];
    // Every 10th frame: 300 owned observations (30 MB), spread over every episode.
    let observations: Vec<Observation> = atari
        .frames()
        .step_by(10)
        .map(|rgb| Observation::U8 {
            shape: shape.clone(),
            data: rgb.to_vec(),
        })
        .collect();
    let blobs: Vec<Vec<u8>> = observations.iter().map(encode_obs).collect();

    let mut group = c.benchmark_group("obs_codec");
    group.throughput(Throughput::Elements(1));
    let mut i = 0;
    group.bench_function("encode_atari", |b| {
        b.iter(|| {
            let blob = encode_obs(&observations[i]);
            i = (i + 1) % observations.len();
            black_box(blob)
        })
    });
    let mut compressor = zstd::bulk::Compressor::new(3).expect("zstd context");
    let mut i = 0;
    group.bench_function("zstd3_reused_context_atari", |b| {
        b.iter(|| {
            let Observation::U8 { data, .. } = &observations[i] else {
                unreachable!("built as U8 above");
            };
            let packed = compressor.compress(data).expect("zstd");
            i = (i + 1) % observations.len();
            black_box(packed)
        })
    });
    let mut i = 0;
    group.bench_function("decode_atari", |b| {
        b.iter(|| {
            let obs = decode_obs(&blobs[i]).expect("decode");
            i = (i + 1) % blobs.len();
            black_box(obs)
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50);
    targets = obs_codec
}
criterion_main!(benches);
