//! MountainCar-v0, a step-for-step port of Gymnasium's `MountainCarEnv` with its
//! `TimeLimit` of 200 steps folded in.
//!
//! Gymnasium's state here is a pair of NumPy `float64` scalars (the reset array is
//! `float64`, and every update mixes it with Python floats), so the port computes
//! in `f64` in the same order and rounds to `f32` only for the observation.

use tandem_env::{
    Action, AgentSpec, Env, EnvError, EnvSpec, Frame, Observation, RenderKind, Shape, Space,
    Sprite, Step,
};

use crate::episode::{Episode, single_discrete};
use crate::rng::GymRng;
use crate::screen::Screen;

const MIN_POSITION: f64 = -1.2;
const MAX_POSITION: f64 = 0.6;
const MAX_SPEED: f64 = 0.07;
const GOAL_POSITION: f64 = 0.5;
const GOAL_VELOCITY: f64 = 0.0;
const FORCE: f64 = 0.001;
const GRAVITY: f64 = 0.0025;
const MAX_EPISODE_STEPS: u32 = 200;

const SCREEN: Screen = Screen {
    width: 600.0,
    height: 400.0,
};
/// Points on the drawn hill, as in Gymnasium's `np.linspace(..., 100)`.
const HILL_POINTS: usize = 100;

/// An under-powered car in a valley that must rock back and forth to reach the
/// flag on the right hill, as Gymnasium's `MountainCar-v0`: action 0 accelerates
/// left, 1 not at all, 2 right; reward -1 every step.
#[derive(Clone, Debug)]
pub struct MountainCar {
    spec: EnvSpec,
    /// `[position, velocity]`.
    state: [f64; 2],
    episode: Episode,
}

impl MountainCar {
    /// The registered id.
    pub const ID: &'static str = "MountainCar-v0";

    /// A mountain car that needs a `reset` before its first step.
    pub fn new() -> Self {
        MountainCar {
            spec: spec(),
            state: [-0.5, 0.0],
            episode: Episode::new(MAX_EPISODE_STEPS),
        }
    }

    /// Overwrites `[position, velocity]`, as assigning `env.unwrapped.state` does
    /// in Gymnasium. The step count and whether the episode is running are kept,
    /// so call it right after `reset`.
    pub fn set_state(&mut self, state: [f64; 2]) {
        self.state = state;
    }

    /// The exact `f64` state `[position, velocity]`.
    pub fn state(&self) -> [f64; 2] {
        self.state
    }

    fn observation(&self) -> Observation {
        Observation::vector(self.state.iter().map(|v| *v as f32).collect())
    }
}

impl Default for MountainCar {
    fn default() -> Self {
        MountainCar::new()
    }
}

fn spec() -> EnvSpec {
    // float32 roundings, as Gymnasium builds these bounds as a float32 array.
    let low = [MIN_POSITION, -MAX_SPEED].map(|v| f64::from(v as f32));
    let high = [MAX_POSITION, MAX_SPEED].map(|v| f64::from(v as f32));
    EnvSpec {
        id: MountainCar::ID.to_string(),
        version: 1,
        agents: vec![AgentSpec {
            name: "agent_0".to_string(),
            observation_space: Space::vector_f32(low.to_vec(), high.to_vec()),
            action_space: Space::discrete(3),
        }],
        render: RenderKind::Sprites {
            width: 600,
            height: 400,
        },
        fps: 30,
        max_episode_steps: Some(MAX_EPISODE_STEPS),
    }
}

/// One step of the car, in Gymnasium's operation order.
fn dynamics(state: [f64; 2], action: i64) -> [f64; 2] {
    let [mut position, mut velocity] = state;
    // `(action - 1) * force` with a Python int: exactly -force, 0 or +force.
    velocity += (action - 1) as f64 * FORCE + libm::cos(3.0 * position) * (-GRAVITY);
    velocity = clip(velocity, -MAX_SPEED, MAX_SPEED);
    position += velocity;
    position = clip(position, MIN_POSITION, MAX_POSITION);
    // The left wall is inelastic.
    if position == MIN_POSITION && velocity < 0.0 {
        velocity = 0.0;
    }
    [position, velocity]
}

/// `np.clip` for scalars: `min(max(v, low), high)`.
fn clip(v: f64, low: f64, high: f64) -> f64 {
    v.max(low).min(high)
}

/// The hill's height at `x`, Gymnasium's `_height`.
fn height(x: f64) -> f64 {
    libm::sin(3.0 * x) * 0.45 + 0.55
}

/// Sprite ids, in Gymnasium's drawing order.
mod id {
    pub const BACKGROUND: u32 = 0;
    pub const HILL: u32 = 1;
    pub const CAR: u32 = 2;
    pub const FRONT_WHEEL: u32 = 3;
    pub const BACK_WHEEL: u32 = 4;
    pub const FLAGPOLE: u32 = 5;
    pub const FLAG: u32 = 6;
}

impl Env for MountainCar {
    fn spec(&self) -> &EnvSpec {
        &self.spec
    }

    fn reset(&mut self, seed: u64) -> Result<Vec<Observation>, EnvError> {
        let mut rng = GymRng::from_seed(seed);
        self.state = [rng.uniform(-0.6, -0.4), 0.0];
        self.episode.start();
        Ok(vec![self.observation()])
    }

    fn step(&mut self, actions: &[Action]) -> Result<Step, EnvError> {
        let action = single_discrete(&self.spec, actions)?;
        self.episode.ensure_running()?;
        self.state = dynamics(self.state, action);
        let [position, velocity] = self.state;
        let terminated = position >= GOAL_POSITION && velocity >= GOAL_VELOCITY;
        let truncated = self.episode.count(terminated);
        Ok(Step {
            observations: vec![self.observation()],
            rewards: vec![-1.0],
            terminated: vec![terminated],
            truncated: vec![truncated],
        })
    }

    /// Gymnasium's picture: the hill `sin(3x)·0.45 + 0.55` as a black line, a
    /// black car tilted to the slope on two grey wheels, and a yellow flag at the
    /// goal, on 600 × 400 px where positions -1.2..0.6 span the width.
    fn render(&self) -> Frame {
        let scale = SCREEN.width / (MAX_POSITION - MIN_POSITION);
        let (carwidth, carheight) = (40.0, 20.0);
        let clearance = 10.0;
        let pos = self.state[0];

        let hill = (0..HILL_POINTS)
            .map(|i| {
                let x = MIN_POSITION
                    + (MAX_POSITION - MIN_POSITION) * i as f64 / (HILL_POINTS - 1) as f64;
                SCREEN.point((x - MIN_POSITION) * scale, height(x) * scale)
            })
            .collect();

        // The car's frame turns by cos(3·pos), Gymnasium's stand-in for the slope's
        // angle, counter-clockwise with y up as pygame's rotate_rad does.
        let angle = libm::cos(3.0 * pos);
        let (sin, cos) = (libm::sin(angle), libm::cos(angle));
        let origin = (
            (pos - MIN_POSITION) * scale,
            clearance + height(pos) * scale,
        );
        let place = |(cx, cy): (f64, f64)| {
            SCREEN.point(
                cx * cos - cy * sin + origin.0,
                cx * sin + cy * cos + origin.1,
            )
        };
        let (l, r, t, b) = (-carwidth / 2.0, carwidth / 2.0, carheight, 0.0);
        let car = [(l, b), (l, t), (r, t), (r, b)].map(place).to_vec();
        let wheel = |id: u32, cx: f64| {
            let [x, y] = place((cx, 0.0));
            Sprite::new(
                id,
                Shape::Circle {
                    x,
                    y,
                    r: SCREEN.dx(carheight / 2.5),
                },
            )
            .fill("#808080")
        };

        // Gymnasium truncates the flag's position to whole pixels.
        let flagx = ((GOAL_POSITION - MIN_POSITION) * scale).trunc();
        let flagy1 = (height(GOAL_POSITION) * scale).trunc();
        let flagy2 = flagy1 + 50.0;
        Frame::Sprites(vec![
            Sprite::new(
                id::BACKGROUND,
                Shape::Rect {
                    x: 0.0,
                    y: 0.0,
                    w: 1.0,
                    h: 1.0,
                    angle: 0.0,
                },
            )
            .fill("#ffffff"),
            Sprite::new(id::HILL, Shape::Line { points: hill }).stroke("#000000", SCREEN.dx(1.0)),
            Sprite::new(id::CAR, Shape::Polygon { points: car }).fill("#000000"),
            wheel(id::FRONT_WHEEL, carwidth / 4.0),
            wheel(id::BACK_WHEEL, -carwidth / 4.0),
            Sprite::new(
                id::FLAGPOLE,
                Shape::Line {
                    points: vec![SCREEN.point(flagx, flagy1), SCREEN.point(flagx, flagy2)],
                },
            )
            .stroke("#000000", SCREEN.dx(1.0)),
            Sprite::new(
                id::FLAG,
                Shape::Polygon {
                    points: vec![
                        SCREEN.point(flagx, flagy2),
                        SCREEN.point(flagx, flagy2 - 10.0),
                        SCREEN.point(flagx + 25.0, flagy2 - 5.0),
                    ],
                },
            )
            .fill("#cccc00"),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drive(env: &mut MountainCar, action: i64) -> Result<Step, EnvError> {
        env.step(&[Action::Discrete(action)])
    }

    /// Doing nothing never reaches the flag, and the episode is truncated on
    /// exactly step 200.
    #[test]
    fn truncates_at_200_steps() {
        let mut env = MountainCar::new();
        env.reset(5).unwrap();
        for n in 1..=200 {
            let step = drive(&mut env, 1).unwrap();
            assert_eq!(step.terminated, vec![false]);
            assert_eq!(step.truncated[0], n == 200, "step {n}");
            assert_eq!(step.rewards, vec![-1.0]);
        }
        assert!(matches!(drive(&mut env, 1), Err(EnvError::NeedsReset)));
    }

    /// Reaching position 0.5 with non-negative velocity terminates.
    #[test]
    fn terminates_at_the_flag() {
        let mut env = MountainCar::new();
        env.reset(0).unwrap();
        env.set_state([0.49, 0.02]);
        let step = drive(&mut env, 2).unwrap();
        assert_eq!(step.terminated, vec![true]);
        assert_eq!(step.rewards, vec![-1.0]);
        assert!(matches!(drive(&mut env, 2), Err(EnvError::NeedsReset)));

        // Past the flag but rolling back does not count.
        env.reset(0).unwrap();
        env.set_state([0.55, -0.06]);
        assert_eq!(drive(&mut env, 0).unwrap().terminated, vec![false]);
    }

    /// Speed is capped at 0.07 and the left wall stops the car dead.
    #[test]
    fn clips_speed_and_stops_at_the_wall() {
        let mut env = MountainCar::new();
        env.reset(0).unwrap();
        env.set_state([-0.5, 0.0699]);
        drive(&mut env, 2).unwrap();
        assert_eq!(env.state()[1], MAX_SPEED);

        env.set_state([-1.19, -0.05]);
        drive(&mut env, 0).unwrap();
        assert_eq!(env.state(), [MIN_POSITION, 0.0]);
    }

    /// The reset state is Gymnasium's for the same seed (`env.reset(seed=0)`).
    #[test]
    fn reset_matches_gymnasium_seeding() {
        let mut env = MountainCar::new();
        let obs = env.reset(0).unwrap();
        assert_eq!(obs, vec![Observation::vector(vec![-0.472_607_67, 0.0])]);
    }

    /// Actions outside Discrete(3) are refused.
    #[test]
    fn invalid_actions_are_refused() {
        let mut env = MountainCar::new();
        env.reset(0).unwrap();
        assert!(matches!(
            drive(&mut env, 3),
            Err(EnvError::InvalidAction { agent: 0, .. })
        ));
        assert!(matches!(
            env.step(&[Action::MultiDiscrete(vec![1])]),
            Err(EnvError::InvalidAction { .. })
        ));
        assert!(drive(&mut env, 2).is_ok());
    }

    /// The spaces are Gymnasium's, in Minari's JSON form.
    #[test]
    fn spaces_json_match_gymnasium() {
        let agent = &spec().agents[0];
        assert_eq!(
            agent.observation_space.to_json(),
            serde_json::json!({
                "type": "Box", "dtype": "float32", "shape": [2],
                "low": [-1.2000000476837158, -0.07000000029802322],
                "high": [0.6000000238418579, 0.07000000029802322],
            })
        );
        assert_eq!(
            agent.action_space.to_json(),
            serde_json::json!({"type": "Discrete", "dtype": "int64", "start": 0, "n": 3})
        );
    }
}
