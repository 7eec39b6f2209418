//! ONNX policies playing: the CartPole MLP through `OnnxFactory` against the
//! real `CartPole-v1`, and the pixel CNN behind Atari preprocessing on
//! synthetic frames.

mod common;

use std::time::Instant;

use tandem_env::{Action, AgentSpec, Dtype, EnvSpec, Observation, RenderKind, Space};
use tandem_policy::{OnnxSpec, Policy, PolicyError, PolicyFactory, Preprocess, Sampling};

/// Plays one CartPole-v1 episode from `seed`; returns the actions taken.
fn play_cartpole(policy: &mut dyn Policy, seed: u64) -> Result<Vec<Action>, PolicyError> {
    let mut env =
        tandem_envs::make("CartPole-v1").map_err(|e| PolicyError::Incompatible(e.to_string()))?;
    let fail = |e: tandem_env::EnvError| PolicyError::Inference(e.to_string());
    let mut obs = env.reset(seed).map_err(fail)?;
    policy.reset(seed);
    let mut actions = Vec::new();
    loop {
        let action = policy.act(&obs[0])?;
        actions.push(action.clone());
        let step = env.step(&[action]).map_err(fail)?;
        if step.is_done() {
            return Ok(actions);
        }
        obs = step.observations;
    }
}

fn cartpole_policy(sampling: Sampling) -> Result<Box<dyn Policy>, PolicyError> {
    let mut spec = OnnxSpec::new(common::cartpole_mlp());
    spec.sampling = sampling;
    common::load(&spec).create(&common::env_spec("CartPole-v1")?, 0)
}

/// Greedy play is deterministic, and good: the hand-set MLP balances the pole
/// for the whole 500 steps.
#[test]
fn greedy_cartpole_is_deterministic_and_balances() -> Result<(), PolicyError> {
    let mut a = cartpole_policy(Sampling::Greedy)?;
    let mut b = cartpole_policy(Sampling::Greedy)?;
    for seed in [0, 1, 42] {
        let first = play_cartpole(a.as_mut(), seed)?;
        assert_eq!(first, play_cartpole(b.as_mut(), seed)?, "seed {seed}");
        assert_eq!(
            first,
            play_cartpole(a.as_mut(), seed)?,
            "seed {seed}, replayed"
        );
        assert_eq!(first.len(), 500, "seed {seed}: the pole fell");
    }
    Ok(())
}

/// Sampled play replays exactly from the episode seed, in a fresh instance or
/// the same one, and another seed plays differently.
#[test]
fn sampled_cartpole_replays_from_the_seed() -> Result<(), PolicyError> {
    let sampling = Sampling::Sample { temperature: 1.0 };
    let mut a = cartpole_policy(sampling)?;
    let mut b = cartpole_policy(sampling)?;
    let first = play_cartpole(a.as_mut(), 7)?;
    assert_eq!(first, play_cartpole(b.as_mut(), 7)?);
    assert_eq!(first, play_cartpole(a.as_mut(), 7)?);
    let other = play_cartpole(a.as_mut(), 8)?;
    assert_ne!(first, other);
    Ok(())
}

/// An Atari-shaped seat: RGB 210 x 160 frames, Breakout's four actions.
fn atari_env() -> EnvSpec {
    let size = 210 * 160 * 3;
    EnvSpec {
        id: "FakeBreakout-v0".to_string(),
        version: 1,
        agents: vec![AgentSpec {
            name: "agent_0".to_string(),
            observation_space: Space::Box {
                low: vec![0.0; size],
                high: vec![255.0; size],
                shape: vec![210, 160, 3],
                dtype: Dtype::Uint8,
            },
            action_space: Space::discrete(4),
        }],
        render: RenderKind::Pixels {
            width: 160,
            height: 210,
        },
        fps: 60,
        max_episode_steps: None,
    }
}

/// A deterministic frame: a ball that moves with `t` over a gradient.
fn frame(t: usize) -> Observation {
    let mut data = vec![0u8; 210 * 160 * 3];
    for y in 0..210 {
        for x in 0..160 {
            let i = (y * 160 + x) * 3;
            data[i] = (x + y) as u8;
            data[i + 2] = (y / 2) as u8;
            let (bx, by) = ((t * 7) % 150, (t * 5) % 200);
            if x.abs_diff(bx) < 4 && y.abs_diff(by) < 4 {
                data[i..i + 3].copy_from_slice(&[255, 255, 255]);
            }
        }
    }
    Observation::U8 {
        shape: vec![210, 160, 3],
        data,
    }
}

fn atari_preprocess() -> Preprocess {
    Preprocess {
        grayscale: true,
        resize: Some((84, 84)),
        scale: Some(1.0 / 255.0),
        frame_stack: 4,
        max_and_skip: 4,
        ..Preprocess::default()
    }
}

/// The pixel CNN plays behind grayscale, resize, scale, a 4-frame stack and
/// max-and-skip 4: it takes the seat, its actions are in the space, it
/// decides every 4th step and holds the action in between, and a replay from
/// the same seed is identical.
#[test]
fn pixel_cnn_plays_behind_atari_preprocessing() -> Result<(), PolicyError> {
    let env = atari_env();
    let mut spec = OnnxSpec::new(common::pixel_cnn());
    spec.preprocess = atari_preprocess();
    spec.sampling = Sampling::Sample { temperature: 1.0 };
    let factory = common::load(&spec);
    let description = factory.describe();
    assert!(description.contains("pixel_cnn.onnx"), "{description}");
    let frames: Vec<Observation> = (0..24).map(frame).collect();
    let play = |policy: &mut dyn Policy| -> Result<Vec<Action>, PolicyError> {
        policy.reset(3);
        frames.iter().map(|f| policy.act(f)).collect()
    };
    let mut policy = factory.create(&env, 0)?;
    let actions = play(policy.as_mut())?;
    assert!(
        actions
            .iter()
            .all(|a| env.agents[0].action_space.contains(a))
    );
    for group in actions.chunks(4) {
        assert!(group.iter().all(|a| *a == group[0]), "{actions:?}");
    }
    assert_eq!(actions, play(factory.create(&env, 0)?.as_mut())?);
    Ok(())
}

/// Per-act time, printed rather than asserted (machines differ). Run with
/// `cargo test -p tandem-policy-onnx --test end_to_end -- --ignored --nocapture`
/// (add `--release` for optimized numbers).
#[test]
#[ignore = "timing, not a check"]
fn per_act_time() -> Result<(), PolicyError> {
    let mut cartpole = cartpole_policy(Sampling::Greedy)?;
    cartpole.reset(0);
    let obs = Observation::vector(vec![0.01, -0.02, 0.03, 0.04]);
    let n = 2000;
    let start = Instant::now();
    for _ in 0..n {
        cartpole.act(&obs)?;
    }
    println!("cartpole MLP: {:?} per act", start.elapsed() / n);

    // Every act decides (no skip) so each one runs preprocessing and the CNN.
    let mut spec = OnnxSpec::new(common::pixel_cnn());
    spec.preprocess = Preprocess {
        max_and_skip: 1,
        ..atari_preprocess()
    };
    let mut pixels = common::load(&spec).create(&atari_env(), 0)?;
    pixels.reset(0);
    let frames: Vec<Observation> = (0..8).map(frame).collect();
    let n = 100;
    let start = Instant::now();
    for i in 0..n {
        pixels.act(&frames[i % frames.len()])?;
    }
    println!(
        "pixel CNN with Atari preprocessing: {:?} per act",
        start.elapsed() / n as u32
    );
    let factory = common::load(&OnnxSpec::new(common::pixel_cnn()));
    let input = vec![0.5f32; 4 * 84 * 84];
    let start = Instant::now();
    for _ in 0..n {
        factory.run_raw(&input, &[4, 84, 84])?;
    }
    println!(
        "pixel CNN inference alone: {:?} per run",
        start.elapsed() / n as u32
    );
    Ok(())
}
