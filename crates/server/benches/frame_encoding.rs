//! The cost of turning game frames into socket messages.
//!
//! - `sprites/cartpole_encode`: [`FrameEncoder::encode`] over consecutive CartPole
//!   frames, as one socket sees them: a sprite diff against the previous frame,
//!   then JSON (a full frame at each episode start).
//! - `pixels/png_atari`: [`encode_png`] on real Atari Breakout frames from the
//!   fixture (`testdata/atari`), 160 × 210, as a pixel game does once per tick.
//! - `pixels/png_cartpole_600x400`: the same on CartPole rasterized at 600 × 400,
//!   what a pixel scene of a sprite env costs on top of rasterizing.
//! - `pixels/message_atari`: wrapping a ready PNG in the binary frame message, the
//!   per-socket part of a pixel frame.
//! - `candidate/xor_zstd{1,3}_atari`: what a delta codec would cost instead of PNG:
//!   XOR against the previous frame, then zstd at level 1 or 3 (a reused
//!   context). Not the wire format; a measurement for the next design step.
//!
//! Bytes per frame for the same inputs: `cargo run --release -p tandem-server
//! --example pixel_frame_bytes`.
//!
//! ```text
//! cargo bench -p tandem-server --bench frame_encoding
//! ```

#[path = "../../../testdata/atari/fixture.rs"]
mod fixture;

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tandem_env::{Action, Env, Frame, Image, Sprite};
use tandem_envs::{CartPole, rasterize};
use tandem_server::{
    FrameContent, FrameEncoder, PixelContent, PixelDeltaEncoder, PublishedFrame, encode_png,
};

/// Keeps the pole up (a linear controller), so episodes run to the 500-step limit.
fn balance(env: &CartPole) -> i64 {
    let [x, x_dot, theta, theta_dot] = env.state();
    i64::from(0.1 * x + 0.5 * x_dot + 10.0 * theta + 2.0 * theta_dot > 0.0)
}

/// The sprite lists of `episodes` balanced CartPole episodes, with their episode
/// index: every frame a game publishes, reset frames included.
fn cartpole_sprites(episodes: u32) -> Vec<(u32, Vec<Sprite>)> {
    let mut env = CartPole::new();
    let mut frames = Vec::new();
    for episode in 0..episodes {
        env.reset(u64::from(episode)).expect("reset");
        loop {
            let Frame::Sprites(sprites) = env.render() else {
                panic!("CartPole draws sprites");
            };
            frames.push((episode, sprites));
            let action = balance(&env);
            if env
                .step(&[Action::Discrete(action)])
                .expect("step")
                .is_done()
            {
                break;
            }
        }
    }
    frames
}

fn published(tick: usize, episode: u32, step: u32, content: FrameContent) -> Arc<PublishedFrame> {
    Arc::new(PublishedFrame {
        tick: tick as u64,
        episode,
        step,
        acks: vec![Some(tick as u64)],
        rewards: vec![1.0],
        returns: vec![f64::from(step)],
        content,
    })
}

fn sprites(c: &mut Criterion) {
    let frames: Vec<Arc<PublishedFrame>> = cartpole_sprites(2)
        .into_iter()
        .enumerate()
        .scan(
            (u32::MAX, 0),
            |(last_episode, step), (tick, (episode, s))| {
                *step = if episode == *last_episode {
                    *step + 1
                } else {
                    0
                };
                *last_episode = episode;
                Some(published(tick, episode, *step, FrameContent::Sprites(s)))
            },
        )
        .collect();
    let mut group = c.benchmark_group("sprites");
    group.throughput(Throughput::Elements(1));
    let mut encoder = FrameEncoder::default();
    let mut i = 0;
    group.bench_function("cartpole_encode", |b| {
        b.iter(|| {
            let out = encoder.encode(&frames[i], 0);
            i = (i + 1) % frames.len();
            black_box(out)
        })
    });
    group.finish();
}

fn pixels(c: &mut Criterion) {
    let atari = fixture::Fixture::load_default();
    // Every 10th frame: PNG cost hardly depends on the neighbours, and 300 owned
    // images (30 MB) are enough to keep the cache honest.
    let atari_images: Vec<Image> = atari
        .frames()
        .step_by(10)
        .map(|rgb| Image {
            width: atari.width,
            height: atari.height,
            rgb: rgb.to_vec(),
        })
        .collect();
    let cartpole_images: Vec<Image> = cartpole_sprites(1)
        .iter()
        .step_by(5)
        .map(|(_, s)| rasterize(s, 600, 400, [255, 255, 255]))
        .collect();

    let mut group = c.benchmark_group("pixels");
    group.throughput(Throughput::Elements(1));
    let mut i = 0;
    group.bench_function("png_atari", |b| {
        b.iter(|| {
            let png = encode_png(&atari_images[i]).expect("png");
            i = (i + 1) % atari_images.len();
            black_box(png)
        })
    });
    let mut i = 0;
    group.bench_function("png_cartpole_600x400", |b| {
        b.iter(|| {
            let png = encode_png(&cartpole_images[i]).expect("png");
            i = (i + 1) % cartpole_images.len();
            black_box(png)
        })
    });
    let mut deltas = PixelDeltaEncoder::default();
    let mut i = 1;
    group.bench_function("delta_atari", |b| {
        b.iter(|| {
            let delta = deltas.encode(&atari_images[i - 1], &atari_images[i]);
            i = i % (atari_images.len() - 1) + 1;
            black_box(delta)
        })
    });
    let previous = Arc::new(atari_images[0].clone());
    let current = Arc::new(atari_images[1].clone());
    let delta = deltas.encode(&previous, &current);
    let before = published(
        1,
        0,
        1,
        FrameContent::Pixels(PixelContent::new(previous, None)),
    );
    let ready = published(
        2,
        0,
        2,
        FrameContent::Pixels(PixelContent::new(current, delta)),
    );
    group.bench_function("message_atari", |b| {
        b.iter(|| {
            let mut encoder = FrameEncoder::default();
            black_box(encoder.encode(&before, 0));
            black_box(encoder.encode(&ready, 0))
        })
    });
    group.finish();

    let mut group = c.benchmark_group("candidate");
    group.throughput(Throughput::Elements(1));
    for level in [1, 3] {
        let mut compressor = zstd::bulk::Compressor::new(level).expect("zstd context");
        let mut delta = vec![0u8; atari.frame_len()];
        let mut i = 1;
        group.bench_function(format!("xor_zstd{level}_atari"), |b| {
            b.iter(|| {
                let (prev, cur) = (atari.frame(i - 1), atari.frame(i));
                for ((d, p), c) in delta.iter_mut().zip(prev).zip(cur) {
                    *d = p ^ c;
                }
                let packed = compressor.compress(&delta).expect("zstd");
                i = i % (atari.frame_count() - 1) + 1;
                black_box(packed)
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50);
    targets = sprites, pixels
}
criterion_main!(benches);
