//! CartPole-v1, a step-for-step port of Gymnasium's `CartPoleEnv` with its
//! `TimeLimit` of 500 steps folded in.
//!
//! The arithmetic is written in the same order as Gymnasium's Python, in `f64` as
//! NumPy does, because recorded episodes are compared with Gymnasium's (the
//! parity test in `python/tests`) and re-simulated from seed and actions. Only the
//! observation is rounded to `f32`, on the way out, as Gymnasium does.

use tandem_env::{
    AgentSpec, Env, EnvError, EnvSpec, Frame, Observation, RenderKind, Shape, Space, Sprite, Step,
};

use crate::episode::{Episode, single_discrete};
use crate::rng::GymRng;
use crate::screen::Screen;

const GRAVITY: f64 = 9.8;
const MASSCART: f64 = 1.0;
const MASSPOLE: f64 = 0.1;
const TOTAL_MASS: f64 = MASSPOLE + MASSCART;
/// Half the pole's length, as in Gymnasium.
const LENGTH: f64 = 0.5;
const POLEMASS_LENGTH: f64 = MASSPOLE * LENGTH;
const FORCE_MAG: f64 = 10.0;
/// Seconds between state updates.
const TAU: f64 = 0.02;
/// 12 degrees, computed as Gymnasium does so the rounding is the same.
const THETA_THRESHOLD_RADIANS: f64 = 12.0 * 2.0 * std::f64::consts::PI / 360.0;
const X_THRESHOLD: f64 = 2.4;
const MAX_EPISODE_STEPS: u32 = 500;
/// Bound of each state variable at reset.
const RESET_BOUND: f64 = 0.05;

const SCREEN: Screen = Screen {
    width: 600.0,
    height: 400.0,
};

/// The cart-pole balancing task (Barto, Sutton & Anderson, 1983) as Gymnasium's
/// `CartPole-v1`: action 0 pushes the cart left, 1 pushes it right; reward 1 for
/// every step, the terminating one included.
#[derive(Clone, Debug)]
pub struct CartPole {
    spec: EnvSpec,
    /// `[x, x_dot, theta, theta_dot]`.
    state: [f64; 4],
    episode: Episode,
}

impl CartPole {
    /// The registered id.
    pub const ID: &'static str = "CartPole-v1";

    /// A cart-pole that needs a `reset` before its first step.
    pub fn new() -> Self {
        CartPole {
            spec: spec(),
            state: [0.0; 4],
            episode: Episode::new(MAX_EPISODE_STEPS),
        }
    }

    /// Overwrites `[x, x_dot, theta, theta_dot]`, as assigning
    /// `env.unwrapped.state` does in Gymnasium. The step count and whether the
    /// episode is running are kept, so call it right after `reset`.
    pub fn set_state(&mut self, state: [f64; 4]) {
        self.state = state;
    }

    /// The exact `f64` state `[x, x_dot, theta, theta_dot]`.
    pub fn state(&self) -> [f64; 4] {
        self.state
    }

    fn observation(&self) -> Observation {
        Observation::vector(self.state.iter().map(|v| *v as f32).collect())
    }
}

impl Default for CartPole {
    fn default() -> Self {
        CartPole::new()
    }
}

fn spec() -> EnvSpec {
    let high = [
        f64::from((X_THRESHOLD * 2.0) as f32),
        f64::INFINITY,
        f64::from((THETA_THRESHOLD_RADIANS * 2.0) as f32),
        f64::INFINITY,
    ];
    EnvSpec {
        id: CartPole::ID.to_string(),
        version: 1,
        agents: vec![AgentSpec {
            name: "agent_0".to_string(),
            // Gymnasium builds the bounds as a float32 array, so they are the f32
            // roundings (4.800000190734863, not 4.8) and the unbounded ones are
            // infinite rather than float32's max.
            observation_space: Space::vector_f32(high.iter().map(|h| -h).collect(), high.to_vec()),
            action_space: Space::discrete(2),
        }],
        render: RenderKind::Sprites {
            width: 600,
            height: 400,
        },
        // Gymnasium's metadata says 50, but 30 is Tandem's comfortable pace for
        // people playing it.
        fps: 30,
        max_episode_steps: Some(MAX_EPISODE_STEPS),
    }
}

/// One Euler step of the cart-pole equations (Florian 2007, "Correct equations
/// for the dynamics of the cart-pole system"), in Gymnasium's operation order.
fn dynamics(state: [f64; 4], action: i64) -> [f64; 4] {
    let [x, x_dot, theta, theta_dot] = state;
    let force = if action == 1 { FORCE_MAG } else { -FORCE_MAG };
    let costheta = libm::cos(theta);
    let sintheta = libm::sin(theta);
    let temp = (force + POLEMASS_LENGTH * (theta_dot * theta_dot) * sintheta) / TOTAL_MASS;
    let thetaacc = (GRAVITY * sintheta - costheta * temp)
        / (LENGTH * (4.0 / 3.0 - MASSPOLE * (costheta * costheta) / TOTAL_MASS));
    let xacc = temp - POLEMASS_LENGTH * thetaacc * costheta / TOTAL_MASS;
    [
        x + TAU * x_dot,
        x_dot + TAU * xacc,
        theta + TAU * theta_dot,
        theta_dot + TAU * thetaacc,
    ]
}

/// Sprite ids, in Gymnasium's drawing order.
mod id {
    pub const BACKGROUND: u32 = 0;
    pub const CART: u32 = 1;
    pub const POLE: u32 = 2;
    pub const AXLE: u32 = 3;
    pub const TRACK: u32 = 4;
}

impl Env for CartPole {
    fn spec(&self) -> &EnvSpec {
        &self.spec
    }

    fn reset(&mut self, seed: u64) -> Result<Vec<Observation>, EnvError> {
        let mut rng = GymRng::from_seed(seed);
        self.state = std::array::from_fn(|_| rng.uniform(-RESET_BOUND, RESET_BOUND));
        self.episode.start();
        Ok(vec![self.observation()])
    }

    fn step(&mut self, actions: &[tandem_env::Action]) -> Result<Step, EnvError> {
        let action = single_discrete(&self.spec, actions)?;
        self.episode.ensure_running()?;
        self.state = dynamics(self.state, action);
        let [x, _, theta, _] = self.state;
        // Gymnasium's four comparisons, not a range check: with a NaN state they
        // are all false, so neither env terminates.
        #[expect(clippy::manual_range_contains, reason = "NaN parity with Gymnasium")]
        let terminated = x < -X_THRESHOLD
            || x > X_THRESHOLD
            || theta < -THETA_THRESHOLD_RADIANS
            || theta > THETA_THRESHOLD_RADIANS;
        let truncated = self.episode.count(terminated);
        Ok(Step {
            observations: vec![self.observation()],
            rewards: vec![1.0],
            terminated: vec![terminated],
            truncated: vec![truncated],
        })
    }

    /// Gymnasium's picture: a black cart on a track 100 px from the bottom, a tan
    /// pole hinged on a blue axle, on 600 × 400 px where the track's ±4.8 spans
    /// the width.
    fn render(&self) -> Frame {
        let scale = SCREEN.width / (X_THRESHOLD * 2.0);
        let polewidth = 10.0;
        let polelen = scale * (2.0 * LENGTH);
        let (cartwidth, cartheight) = (50.0, 30.0);
        let axleoffset = cartheight / 4.0;
        let cartx = self.state[0] * scale + SCREEN.width / 2.0;
        let carty = 100.0;
        let theta = self.state[2];

        let [cart_left, cart_top] = SCREEN.point(cartx - cartwidth / 2.0, carty + cartheight / 2.0);
        let cart = Shape::Rect {
            x: cart_left,
            y: cart_top,
            w: SCREEN.dx(cartwidth),
            h: SCREEN.dy(cartheight),
            angle: 0.0,
        };
        // The pole's corners around the axle, turned by -theta (pygame's
        // rotate_rad is counter-clockwise with y up), so a positive angle leans
        // the pole right.
        let (l, r, t, b) = (
            -polewidth / 2.0,
            polewidth / 2.0,
            polelen - polewidth / 2.0,
            -polewidth / 2.0,
        );
        let (sin, cos) = (libm::sin(-theta), libm::cos(-theta));
        let pole = [(l, b), (l, t), (r, t), (r, b)]
            .iter()
            .map(|(px, py)| {
                SCREEN.point(
                    px * cos - py * sin + cartx,
                    px * sin + py * cos + carty + axleoffset,
                )
            })
            .collect();
        let [axle_x, axle_y] = SCREEN.point(cartx, carty + axleoffset);
        Frame::Sprites(vec![
            background(),
            Sprite::new(id::CART, cart).fill("#000000"),
            Sprite::new(id::POLE, Shape::Polygon { points: pole }).fill("#ca9865"),
            Sprite::new(
                id::AXLE,
                Shape::Circle {
                    x: axle_x,
                    y: axle_y,
                    r: SCREEN.dx(polewidth / 2.0),
                },
            )
            .fill("#8184cb"),
            Sprite::new(
                id::TRACK,
                Shape::Line {
                    points: vec![SCREEN.point(0.0, carty), SCREEN.point(SCREEN.width, carty)],
                },
            )
            .stroke("#000000", SCREEN.dx(1.0)),
        ])
    }
}

/// A white backdrop, so the frame does not depend on the canvas's default colour.
fn background() -> Sprite {
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
    .fill("#ffffff")
}

#[cfg(test)]
mod tests {
    use super::*;
    use tandem_env::Action;

    fn push(env: &mut CartPole, action: i64) -> Result<Step, EnvError> {
        env.step(&[Action::Discrete(action)])
    }

    /// Keeps the pole up with a linear policy, so episodes last until truncation.
    fn balance(state: [f64; 4]) -> i64 {
        let [x, x_dot, theta, theta_dot] = state;
        i64::from(0.1 * x + 0.5 * x_dot + 10.0 * theta + 2.0 * theta_dot > 0.0)
    }

    /// A balanced pole is truncated on exactly step 500, and stepping after needs
    /// a reset.
    #[test]
    fn truncates_at_500_steps() {
        let mut env = CartPole::new();
        env.reset(3).unwrap();
        for n in 1..=500 {
            let action = balance(env.state());
            let step = push(&mut env, action).unwrap();
            assert!(!step.terminated[0], "fell at step {n}");
            assert_eq!(step.truncated[0], n == 500, "step {n}");
            assert_eq!(step.rewards[0], 1.0);
        }
        assert!(matches!(push(&mut env, 0), Err(EnvError::NeedsReset)));
    }

    /// Tilting past 12° or leaving ±2.4 terminates, with reward 1 on that step.
    #[test]
    fn terminates_on_angle_and_position() {
        for state in [
            [0.0, 0.0, 0.21, 0.0],
            [0.0, 0.0, -0.21, 0.0],
            [2.4, 1.0, 0.0, 0.0],
            [-2.4, -1.0, 0.0, 0.0],
        ] {
            let mut env = CartPole::new();
            env.reset(0).unwrap();
            env.set_state(state);
            let step = push(&mut env, 1).unwrap();
            assert_eq!(step.terminated, vec![true], "{state:?}");
            assert_eq!(step.truncated, vec![false]);
            assert_eq!(step.rewards, vec![1.0]);
            assert!(matches!(push(&mut env, 1), Err(EnvError::NeedsReset)));
        }
        let mut env = CartPole::new();
        env.reset(0).unwrap();
        env.set_state([0.0, 0.0, 0.2, 0.0]);
        assert_eq!(push(&mut env, 1).unwrap().terminated, vec![false]);
    }

    /// The reset state is Gymnasium's for the same seed (`env.reset(seed=42)`).
    #[test]
    fn reset_matches_gymnasium_seeding() {
        let mut env = CartPole::new();
        env.reset(42).unwrap();
        assert_eq!(
            env.state(),
            [
                0.027395604855596334,
                -0.006112156024794771,
                0.03585979199113824,
                0.019736802905936393
            ]
        );
    }

    /// Actions outside Discrete(2), of the wrong kind or count are refused.
    #[test]
    fn invalid_actions_are_refused() {
        let mut env = CartPole::new();
        env.reset(0).unwrap();
        for bad in [
            vec![Action::Discrete(2)],
            vec![Action::Discrete(-1)],
            vec![Action::Continuous(vec![1.0])],
            vec![],
            vec![Action::Discrete(0), Action::Discrete(1)],
        ] {
            assert!(
                matches!(env.step(&bad), Err(EnvError::InvalidAction { .. })),
                "{bad:?}"
            );
        }
        assert!(push(&mut env, 1).is_ok());
    }

    /// The observation space is Gymnasium's, in Minari's JSON form.
    #[test]
    fn spaces_json_match_gymnasium() {
        let agent = &spec().agents[0];
        assert_eq!(
            agent.observation_space.to_json(),
            serde_json::json!({
                "type": "Box", "dtype": "float32", "shape": [4],
                "low": [-4.800000190734863, "-inf", -0.41887903213500977, "-inf"],
                "high": [4.800000190734863, "inf", 0.41887903213500977, "inf"],
            })
        );
        assert_eq!(
            agent.action_space.to_json(),
            serde_json::json!({"type": "Discrete", "dtype": "int64", "start": 0, "n": 2})
        );
    }
}
