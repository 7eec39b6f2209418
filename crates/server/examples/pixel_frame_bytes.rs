//! Bytes per frame on the wire: what each frame kind costs, and what other
//! codecs would cost instead, on the same frames the `frame_encoding` bench
//! times.
//!
//! - Atari Breakout, the 3,000 real frames of `testdata/atari` (160 × 210, every
//!   emulator frame at 60 Hz): the message as served to a socket that keeps up
//!   (a delta: header + raw-deflated runs of changed bytes), the whole frame
//!   (header + PNG, what a socket that skipped a frame gets) and the PNG alone;
//!   for comparison, each frame XOR-ed with the previous one and then compressed
//!   with zstd (levels 1 and 3) or PNG, and a whole frame with zstd.
//! - CartPole rasterized at 600 × 400 (one 500-step episode): the same figures.
//! - CartPole and MountainCar sprite frames (two episodes each): the binary
//!   messages as served, and the JSON text messages they replaced.
//!
//!
//! ```text
//! cargo run --release -p tandem-server --example pixel_frame_bytes
//! ```

#[path = "../../../testdata/atari/fixture.rs"]
mod fixture;

use std::sync::Arc;

use tandem_env::{Action, Env, Frame, Image, Sprite, SpriteDiff};
use tandem_envs::{CartPole, MountainCar, rasterize};
use tandem_server::{
    Encoded, FrameContent, FrameEncoder, PixelContent, PixelDeltaEncoder, PublishedFrame,
    encode_png,
};
use tandem_wire::SpriteFrameRef;

/// A running mean of sizes.
#[derive(Default)]
struct Mean {
    total: usize,
    count: usize,
}

impl Mean {
    fn add(&mut self, bytes: usize) {
        self.total += bytes;
        self.count += 1;
    }

    fn value(&self) -> f64 {
        self.total as f64 / self.count.max(1) as f64
    }
}

/// Average sizes over a sequence of RGB frames of one size.
struct PixelSizes {
    png: Mean,
    message: Mean,
    whole: Mean,
    zstd3_whole: Mean,
    xor_zstd1: Mean,
    xor_zstd3: Mean,
    xor_png: Mean,
}

fn measure<'a>(width: u32, height: u32, frames: impl Iterator<Item = &'a [u8]>) -> PixelSizes {
    let mut sizes = PixelSizes {
        png: Mean::default(),
        message: Mean::default(),
        whole: Mean::default(),
        zstd3_whole: Mean::default(),
        xor_zstd1: Mean::default(),
        xor_zstd3: Mean::default(),
        xor_png: Mean::default(),
    };
    let mut zstd1 = zstd::bulk::Compressor::new(1).expect("zstd context");
    let mut zstd3 = zstd::bulk::Compressor::new(3).expect("zstd context");
    let mut encoder = FrameEncoder::default();
    let image = |rgb: Vec<u8>| Image { width, height, rgb };
    let mut prev: Option<&[u8]> = None;
    let mut deltas = PixelDeltaEncoder::default();
    for (tick, rgb) in frames.enumerate() {
        let png = encode_png(&image(rgb.to_vec())).expect("png");
        sizes.png.add(png.len());
        let current = Arc::new(image(rgb.to_vec()));
        let delta = prev.and_then(|p| deltas.encode(&image(p.to_vec()), &current));
        let frame = Arc::new(PublishedFrame {
            tick: tick as u64 + 1,
            episode: 0,
            step: tick as u32,
            acks: vec![Some(tick as u64)],
            rewards: vec![0.0],
            returns: vec![2.0],
            content: FrameContent::Pixels(PixelContent::new(current, delta)),
        });
        let Encoded::Binary(message) = encoder.encode(&frame, 0) else {
            panic!("a pixel frame is a binary message");
        };
        if tick > 0 {
            sizes.message.add(message.len());
        }
        let Encoded::Binary(whole) = FrameEncoder::default().encode(&frame, 0) else {
            panic!("a pixel frame is a binary message");
        };
        sizes.whole.add(whole.len());
        sizes
            .zstd3_whole
            .add(zstd3.compress(rgb).expect("zstd").len());
        if let Some(prev) = prev {
            let delta: Vec<u8> = prev.iter().zip(rgb).map(|(p, c)| p ^ c).collect();
            sizes
                .xor_zstd1
                .add(zstd1.compress(&delta).expect("zstd").len());
            sizes
                .xor_zstd3
                .add(zstd3.compress(&delta).expect("zstd").len());
            sizes
                .xor_png
                .add(encode_png(&image(delta)).expect("png").len());
        }
        prev = Some(rgb);
    }
    sizes
}

fn print(label: &str, raw: usize, s: &PixelSizes) {
    println!("{label} ({} frames, {raw} raw bytes each)", s.png.count);
    for (what, mean) in [
        ("PNG per frame (as served)", &s.png),
        ("message as served (header + deflated runs)", &s.message),
        ("whole frame (header + PNG, after a skip)", &s.whole),
        ("zstd-3 of a whole frame (a key frame)", &s.zstd3_whole),
        ("XOR previous frame + zstd-1", &s.xor_zstd1),
        ("XOR previous frame + zstd-3", &s.xor_zstd3),
        ("XOR previous frame + PNG", &s.xor_png),
    ] {
        println!("  {what:<40} {:>9.0} bytes/frame", mean.value());
    }
}

/// Keeps the pole up (a linear controller), so episodes run to the 500-step limit.
fn balance(env: &CartPole) -> i64 {
    let [x, x_dot, theta, theta_dot] = env.state();
    i64::from(0.1 * x + 0.5 * x_dot + 10.0 * theta + 2.0 * theta_dot > 0.0)
}

fn main() {
    let atari = fixture::Fixture::load_default();
    println!("fixture: {}", atari.meta);
    let sizes = measure(atari.width, atari.height, atari.frames());
    print("Atari Breakout 160x210", atari.frame_len(), &sizes);

    // Two CartPole episodes as sprites, then the first rasterized.
    let mut env = CartPole::new();
    let (cartpole, sprite_frames) = sprite_sizes(&mut env, balance);
    let images: Vec<Image> = sprite_frames
        .iter()
        .map(|s| rasterize(s, 600, 400, [255, 255, 255]))
        .collect();
    let sizes = measure(600, 400, images.iter().map(|i| i.rgb.as_slice()));
    print("CartPole rasterized 600x400", 600 * 400 * 3, &sizes);
    print_sprites("CartPole", &cartpole);
    // MountainCar rocked by its velocity (it reaches the flag).
    let mut env = MountainCar::new();
    let (mountain_car, _) = sprite_sizes(
        &mut env,
        |env: &MountainCar| {
            if env.state()[1] < 0.0 { 0 } else { 2 }
        },
    );
    print_sprites("MountainCar", &mountain_car);
}

/// Mean sizes of sprite frame messages: as served (binary), and as the
/// `frame` text message (JSON diff) for comparison.
struct SpriteSizes {
    binary: Mean,
    json: Mean,
}

/// Two episodes of `env` played by `policy`: message sizes, and the first
/// episode's sprites.
fn sprite_sizes<E: Env>(
    env: &mut E,
    policy: impl Fn(&E) -> i64,
) -> (SpriteSizes, Vec<Vec<Sprite>>) {
    let mut sizes = SpriteSizes {
        binary: Mean::default(),
        json: Mean::default(),
    };
    let mut first_episode = Vec::new();
    let mut encoder = FrameEncoder::default();
    for episode in 0..2u32 {
        env.reset(u64::from(episode)).expect("reset");
        let mut previous: Option<Vec<Sprite>> = None;
        for step in 0.. {
            let Frame::Sprites(sprites) = env.render() else {
                panic!("a sprite environment");
            };
            let frame = Arc::new(PublishedFrame {
                tick: u64::from(step),
                episode,
                step,
                acks: vec![Some(u64::from(step))],
                rewards: vec![-1.0],
                returns: vec![-f64::from(step)],
                content: FrameContent::Sprites(sprites.clone()),
            });
            let Encoded::Binary(bytes) = encoder.encode(&frame, 0) else {
                panic!("a sprite frame is a binary message");
            };
            let diff = previous.as_ref().map(|p| SpriteDiff::between(p, &sprites));
            let text = SpriteFrameRef {
                tick: frame.tick,
                episode,
                step,
                ack: Some(u64::from(step)),
                full: diff.is_none(),
                upsert: diff.as_ref().map_or(&sprites, |d| &d.upsert),
                remove: diff.as_ref().map_or(&[], |d| &d.remove),
                reward: -1.0,
                episode_return: -f64::from(step),
            };
            if step > 0 {
                sizes.binary.add(bytes.len());
                sizes
                    .json
                    .add(serde_json::to_string(&text).expect("json").len());
            }
            if episode == 0 {
                first_episode.push(sprites.clone());
            }
            previous = Some(sprites);
            let action = policy(env);
            if env
                .step(&[Action::Discrete(action)])
                .expect("step")
                .is_done()
            {
                break;
            }
        }
    }
    (sizes, first_episode)
}

fn print_sprites(label: &str, s: &SpriteSizes) {
    println!(
        "{label} sprite frames ({} frames after the first, 2 episodes)",
        s.binary.count
    );
    println!(
        "  {:<40} {:>9.1} bytes/frame",
        "binary patch message (as served)",
        s.binary.value()
    );
    println!(
        "  {:<40} {:>9.1} bytes/frame",
        "JSON text message (diff, before)",
        s.json.value()
    );
}
