//! The `Env` contract, checked for every built-in environment through the
//! registry, so a newly registered env is held to it without new tests. Every
//! agent of a multi-agent env acts in each step; per-agent results are kept in
//! spec order.

use tandem_env::{Action, Env, EnvError, Frame, Observation, Space, Sprite, SpriteDiff};
use tandem_envs::{ids, make, scripted_agent, spec};

/// What one run of an env produced, flattened for bit-exact comparison.
#[derive(Debug, PartialEq)]
struct Trace {
    observations: Vec<Vec<Vec<u32>>>,
    rewards: Vec<Vec<u64>>,
    flags: Vec<Vec<(bool, bool)>>,
}

fn bits(observation: &Observation) -> Vec<u32> {
    match observation {
        Observation::F32 { data, .. } => data.iter().map(|v| v.to_bits()).collect(),
        other => panic!("built-ins observe f32, got {other:?}"),
    }
}

/// A fixed pseudo-random action pattern (splitmix64), independent of any env.
fn actions(n: usize, choices: i64) -> Vec<i64> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..n)
        .map(|_| {
            x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            ((z ^ (z >> 31)) % choices as u64) as i64
        })
        .collect()
}

fn choices(env: &dyn Env) -> i64 {
    let counts: Vec<i64> = env
        .spec()
        .agents
        .iter()
        .map(|agent| match agent.action_space {
            Space::Discrete { n, .. } => n,
            ref other => panic!("built-ins act discretely, got {other:?}"),
        })
        .collect();
    // Every built-in gives all its agents the same action space.
    assert!(counts.windows(2).all(|w| w[0] == w[1]), "{counts:?}");
    counts[0]
}

/// The same action for every agent of `env`.
fn everyone(env: &dyn Env, action: i64) -> Vec<Action> {
    vec![Action::Discrete(action); env.spec().agents.len()]
}

fn all_bits(observations: &[Observation]) -> Vec<Vec<u32>> {
    observations.iter().map(bits).collect()
}

/// Runs `steps` steps from `seed`, resetting with the next seed whenever an
/// episode ends.
fn run(id: &str, seed: u64, steps: usize) -> Trace {
    let mut env = make(id).unwrap();
    let mut trace = Trace {
        observations: vec![],
        rewards: vec![],
        flags: vec![],
    };
    let mut seed = seed;
    let agents = env.spec().agents.len();
    trace.observations.push(all_bits(&env.reset(seed).unwrap()));
    let pattern = actions(steps * agents, choices(env.as_ref()));
    for joint in pattern.chunks(agents) {
        let joint: Vec<Action> = joint.iter().map(|a| Action::Discrete(*a)).collect();
        let step = env.step(&joint).unwrap();
        trace.observations.push(all_bits(&step.observations));
        trace
            .rewards
            .push(step.rewards.iter().map(|r| r.to_bits()).collect());
        trace.flags.push(
            step.terminated
                .iter()
                .zip(&step.truncated)
                .map(|(te, tr)| (*te, *tr))
                .collect(),
        );
        if step.is_done() {
            seed += 1;
            trace.observations.push(all_bits(&env.reset(seed).unwrap()));
        }
    }
    trace
}

fn sprites(env: &dyn Env) -> Vec<Sprite> {
    match env.render() {
        Frame::Sprites(sprites) => sprites,
        Frame::Pixels(_) => panic!("built-ins draw sprites"),
    }
}

/// Same seed and actions give bit-identical observations, rewards and flags
/// over 600 steps (across several episodes).
#[test]
fn same_seed_same_actions_same_trace() {
    for id in ids() {
        let first = run(id, 7, 600);
        assert_eq!(first, run(id, 7, 600), "{id}");
        assert!(
            first.flags.iter().flatten().any(|(te, tr)| *te || *tr),
            "{id} never ended"
        );
    }
}

/// Different seeds start from different observations.
#[test]
fn different_seeds_start_differently() {
    for id in ids() {
        let mut env = make(id).unwrap();
        let a = env.reset(0).unwrap();
        let b = env.reset(1).unwrap();
        let c = env.reset(u64::MAX).unwrap();
        assert_ne!(a, b, "{id}");
        assert_ne!(b, c, "{id}");
        assert_eq!(a, env.reset(0).unwrap(), "{id}");
    }
}

/// Stepping a fresh env is `NeedsReset`, not a panic or a silent default.
#[test]
fn step_before_reset_needs_reset() {
    for id in ids() {
        let mut env = make(id).unwrap();
        let result = env.step(&everyone(env.as_ref(), 0));
        assert!(matches!(result, Err(EnvError::NeedsReset)), "{id}");
    }
}

/// Sprite ids are unique and the same in every frame, and only moving parts
/// change between frames, so sprite diffs stay small.
#[test]
fn sprite_ids_are_stable() {
    for id in ids() {
        let mut env = make(id).unwrap();
        let before_reset = sprites(env.as_ref());
        env.reset(0).unwrap();
        let first = sprites(env.as_ref());
        for _ in 0..5 {
            env.step(&everyone(env.as_ref(), 0)).unwrap();
        }
        let later = sprites(env.as_ref());
        let ids_of = |s: &[Sprite]| s.iter().map(|s| s.id).collect::<Vec<_>>();
        let mut unique = ids_of(&first);
        unique.dedup();
        assert_eq!(unique, ids_of(&first), "{id}: ids not unique and ascending");
        assert_eq!(ids_of(&before_reset), ids_of(&first), "{id}");
        assert_eq!(ids_of(&first), ids_of(&later), "{id}");
        let diff = SpriteDiff::between(&first, &later);
        assert!(diff.remove.is_empty(), "{id}");
        assert!(!diff.upsert.is_empty(), "{id}: nothing moved");
        assert!(diff.upsert.len() < first.len(), "{id}: everything moved");
    }
}

/// Every sprite lies on the canvas (normalized coordinates within 0..1).
#[test]
fn sprites_stay_on_canvas() {
    use tandem_env::Shape;
    for id in ids() {
        let mut env = make(id).unwrap();
        env.reset(0).unwrap();
        for sprite in sprites(env.as_ref()) {
            let points: Vec<[f32; 2]> = match &sprite.shape {
                Shape::Rect { x, y, w, h, .. } => vec![[*x, *y], [x + w, y + h]],
                Shape::Circle { x, y, .. } => vec![[*x, *y]],
                Shape::Line { points } | Shape::Polygon { points } => points.clone(),
                _ => vec![],
            };
            for [x, y] in points {
                assert!(
                    (-1e-6..=1.0 + 1e-6).contains(&x) && (-1e-6..=1.0 + 1e-6).contains(&y),
                    "{id} sprite {} at ({x}, {y})",
                    sprite.id
                );
            }
        }
    }
}

/// The registry knows each id, its spec agrees with the env, agents have
/// distinct names, and an unknown id is an error that lists the known ones.
#[test]
fn registry_makes_known_ids_only() {
    assert_eq!(
        ids(),
        [
            "CartPole-v1",
            "MountainCar-v0",
            "Kitchen-v0",
            "Paddles-v0",
            "PaddlesCoop-v0"
        ]
    );
    for id in ids() {
        let env = make(id).unwrap();
        assert_eq!(env.spec().id, *id);
        assert_eq!(spec(id).as_ref(), Some(env.spec()));
        let mut names: Vec<&str> = env.spec().agents.iter().map(|a| a.name.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), env.spec().agents.len(), "{id}: {names:?}");
    }
    assert_eq!(spec("CartPole-v1").unwrap().agents[0].name, "agent_0");
    assert_eq!(spec("CartPole-v1").unwrap().max_episode_steps, Some(500));
    assert_eq!(spec("MountainCar-v0").unwrap().max_episode_steps, Some(200));
    assert_eq!(spec("Kitchen-v0").unwrap().agents.len(), 2);
    assert_eq!(spec("Paddles-v0").unwrap().agents.len(), 2);
    assert!(spec("Pong-v5").is_none());
    let message = make("Pong-v5").err().unwrap().to_string();
    assert!(message.contains("Pong-v5"), "{message}");
    for id in ids() {
        assert!(message.contains(id), "{message}");
    }
}

/// A built-in's frame rasterizes to Gymnasium-like pixels: white background,
/// the black cart under CartPole's track.
#[test]
fn frames_rasterize() {
    let mut env = make("CartPole-v1").unwrap();
    env.reset(0).unwrap();
    let image = tandem_envs::rasterize(&sprites(env.as_ref()), 600, 400, [0, 0, 0]);
    let at = |x: usize, y: usize| {
        let i = (y * 600 + x) * 3;
        [image.rgb[i], image.rgb[i + 1], image.rgb[i + 2]]
    };
    assert_eq!(at(5, 5), [255, 255, 255]);
    // The cart is centred near x = 300 with its middle 100 px above the bottom.
    assert_eq!(at(300, 400 - 95), [0, 0, 0]);
    // The pole stands above the axle.
    assert_eq!(at(300, 400 - 160), [0xca, 0x98, 0x65]);
}

/// Whether every value of `observation` lies within the Box `space`.
fn in_space(observation: &Observation, space: &Space) -> bool {
    let Space::Box {
        low, high, shape, ..
    } = space
    else {
        return false;
    };
    let Observation::F32 { shape: got, data } = observation else {
        return false;
    };
    got == shape
        && data
            .iter()
            .zip(low.iter().zip(high))
            .all(|(v, (lo, hi))| f64::from(*v) >= *lo && f64::from(*v) <= *hi)
}

/// Every built-in agent has a scripted agent, whose actions are always in its
/// action space, and a scripted episode's observations stay in their spaces.
#[test]
fn scripted_agents_play_every_builtin() {
    for id in ids() {
        let mut env = make(id).unwrap();
        let spec = env.spec().clone();
        let mut bots: Vec<_> = (0..spec.agents.len())
            .map(|i| scripted_agent(id, i).unwrap_or_else(|| panic!("{id} agent {i}")))
            .collect();
        assert!(scripted_agent(id, spec.agents.len()).is_none(), "{id}");
        let mut observations = env.reset(3).unwrap();
        for bot in &mut bots {
            bot.reset(3);
        }
        for _ in 0..spec.max_episode_steps.unwrap_or(1000) {
            for (o, agent) in observations.iter().zip(&spec.agents) {
                assert!(in_space(o, &agent.observation_space), "{id}: {o:?}");
            }
            let joint: Vec<Action> = bots
                .iter_mut()
                .zip(&observations)
                .map(|(bot, o)| bot.act(o))
                .collect();
            for (action, agent) in joint.iter().zip(&spec.agents) {
                assert!(agent.action_space.contains(action), "{id}: {action:?}");
            }
            let step = env.step(&joint).unwrap();
            observations = step.observations.clone();
            if step.is_done() {
                break;
            }
        }
    }
}
