//! Paddles-v0 and PaddlesCoop-v0: two vertical paddles and one ball, played
//! against each other (Pong) or together (keep the rally going).
//!
//! Both games share one court and one physics so that a study can compare
//! competition with cooperation while nothing else changes. Each agent sees the
//! court as if it played on the left, so one policy (or one scripted agent) can
//! take either side. The physics is `f64` with `libm`'s sine and cosine, so a
//! game re-simulates bit for bit on the server and in wasm.
//!
//! [`Paddles`]'s own docs give the rules and the observation layout.

use tandem_env::{
    Action, AgentSpec, Env, EnvError, EnvSpec, Frame, Observation, RenderKind, Shape, Space,
    Sprite, Step,
};

use crate::episode::{Episode, discrete_pair};
use crate::rng::GymRng;

pub(crate) const COURT_W: f64 = 800.0;
pub(crate) const COURT_H: f64 = 600.0;
pub(crate) const PADDLE_H: f64 = 90.0;
const PADDLE_W: f64 = 12.0;
/// Gap between a court end and the back of its paddle.
const PADDLE_MARGIN: f64 = 24.0;
/// The x of the left paddle's front face; the right one's is `COURT_W` minus it.
pub(crate) const FACE: f64 = PADDLE_MARGIN + PADDLE_W;
pub(crate) const PADDLE_SPEED: f64 = 9.0;
pub(crate) const BALL_R: f64 = 8.0;
const SERVE_SPEED: f64 = 7.0;
const SPEEDUP_PER_HIT: f64 = 0.4;
pub(crate) const BALL_MAX_SPEED: f64 = 14.0;
/// Bounce angle off a paddle's very end, radians from the horizontal.
const MAX_BOUNCE: f64 = 0.85;
/// Serves leave within this angle of the horizontal.
const SERVE_ANGLE: f64 = 0.35;
const WINNING_SCORE: u32 = 5;
const MAX_EPISODE_STEPS: u32 = 3000;

/// Which game the paddles play.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PaddlesMode {
    /// `Paddles-v0`: first to 5 points.
    Competitive,
    /// `PaddlesCoop-v0`: a shared rally until the first miss.
    Cooperative,
}

#[derive(Clone, Copy, Debug, PartialEq)]
struct Ball {
    x: f64,
    y: f64,
    vx: f64,
    vy: f64,
    speed: f64,
}

/// Two paddles and a ball, in one of two games.
///
/// Agents `left` and `right` act with `Discrete(3)`: 0 stay, 1 up, 2 down (up
/// is towards the top of the screen). The ball bounces off the top and bottom
/// walls; off a paddle it leaves at an angle set by where it hit (the centre
/// sends it straight, the ends at up to ~49°), a little faster each hit up to a
/// cap, as in Pong. Serves start from the centre in a seeded direction and
/// angle.
///
/// - `Paddles-v0` ([`PaddlesMode::Competitive`]): when the ball passes a
///   paddle, the other side scores: +1 to the scorer, −1 to the one who missed,
///   and the ball is served again at the starting speed. The episode
///   terminates when a side reaches 5 points, and is truncated at 3000 steps.
/// - `PaddlesCoop-v0` ([`PaddlesMode::Cooperative`]): every return, by either
///   paddle, gives +1 to both agents; the first miss terminates the episode.
///   Truncated at 3000 steps.
///
/// Each agent observes six `f32` values, always as if it played on the LEFT,
/// so one policy can play either side (the right agent's view is mirrored in
/// x):
///
/// | index | meaning                                                        |
/// |-------|----------------------------------------------------------------|
/// | 0     | own paddle centre y, 0 (top) .. 1 (bottom)                     |
/// | 1     | other paddle centre y, 0 .. 1                                  |
/// | 2     | ball x, 0 at one's own end .. 1 at the other's                 |
/// | 3     | ball y, 0 .. 1                                                 |
/// | 4     | ball x velocity, −1 .. 1, negative when coming towards oneself |
/// | 5     | ball y velocity, −1 .. 1, positive downwards                   |
///
/// Positions are fractions of the court's width and height (800 × 600 units);
/// both velocities are in units per step divided by the ball's speed cap
/// (14 units per step), so their ratio is the ball's true heading.
///
/// It draws as sprites on an 800 × 600 canvas: a dark court with a centre
/// line, the score (or the count of returns) at the top, the left paddle blue,
/// the right one orange, and a white ball.
#[derive(Clone, Debug)]
pub struct Paddles {
    spec: EnvSpec,
    mode: PaddlesMode,
    /// Centre y of the left and right paddles.
    paddles: [f64; 2],
    ball: Ball,
    score: [u32; 2],
    /// Returns in this episode (either paddle).
    returns: u32,
    /// Draws serves; seeded by `reset`.
    rng: GymRng,
    episode: Episode,
}

impl Paddles {
    /// The registered id of the competitive game.
    pub const ID: &'static str = "Paddles-v0";
    /// The registered id of the cooperative game.
    pub const COOP_ID: &'static str = "PaddlesCoop-v0";

    /// A game that needs a `reset` before its first step.
    pub fn new(mode: PaddlesMode) -> Self {
        Paddles {
            spec: spec(mode),
            mode,
            paddles: [COURT_H / 2.0; 2],
            ball: Ball {
                x: COURT_W / 2.0,
                y: COURT_H / 2.0,
                vx: 0.0,
                vy: 0.0,
                speed: SERVE_SPEED,
            },
            score: [0; 2],
            returns: 0,
            rng: GymRng::from_seed(0),
            episode: Episode::new(MAX_EPISODE_STEPS),
        }
    }

    /// Points of the left and right sides (competitive game).
    pub fn score(&self) -> [u32; 2] {
        self.score
    }

    /// Balls returned so far in this episode, by either paddle.
    pub fn returns(&self) -> u32 {
        self.returns
    }

    /// Puts the ball in the centre, heading left or right at a seeded angle.
    fn serve(&mut self) {
        let towards = if self.rng.next_f64() < 0.5 { -1.0 } else { 1.0 };
        let angle = self.rng.uniform(-SERVE_ANGLE, SERVE_ANGLE);
        self.ball = Ball {
            x: COURT_W / 2.0,
            y: COURT_H / 2.0,
            vx: towards * SERVE_SPEED * libm::cos(angle),
            vy: SERVE_SPEED * libm::sin(angle),
            speed: SERVE_SPEED,
        };
    }

    /// Moves the ball one step; returns `Some(side)` if paddle `side` returned
    /// it, for the caller to reward.
    fn move_ball(&mut self) -> Option<usize> {
        let before = self.ball;
        let ball = &mut self.ball;
        ball.x += ball.vx;
        let y = ball.y + ball.vy;
        ball.y = fold(y);
        if ball.y != y {
            ball.vy = -ball.vy;
        }
        // A paddle returns the ball if its front face was crossed this step
        // within the paddle's reach; a ball already past the face is lost.
        let (side, face, crossed) = if before.vx < 0.0 {
            let face = FACE + BALL_R;
            (0, face, before.x >= face && ball.x < face)
        } else {
            let face = COURT_W - FACE - BALL_R;
            (1, face, before.x <= face && ball.x > face)
        };
        if !crossed {
            return None;
        }
        let t = (face - before.x) / (ball.x - before.x);
        let y = fold(before.y + before.vy * t);
        let offset = (y - self.paddles[side]) / (PADDLE_H / 2.0 + BALL_R);
        if offset.abs() > 1.0 {
            return None;
        }
        let angle = offset * MAX_BOUNCE;
        let speed = (ball.speed + SPEEDUP_PER_HIT).min(BALL_MAX_SPEED);
        let away = if side == 0 { 1.0 } else { -1.0 };
        *ball = Ball {
            x: face,
            y,
            vx: away * speed * libm::cos(angle),
            vy: speed * libm::sin(angle),
            speed,
        };
        Some(side)
    }

    /// What agent `side` sees, mirrored for the right so both see themselves on
    /// the left.
    fn observation(&self, side: usize) -> Observation {
        let b = self.ball;
        let (x, vx) = if side == 0 {
            (b.x / COURT_W, b.vx)
        } else {
            (1.0 - b.x / COURT_W, -b.vx)
        };
        let unit = |v: f64| (v as f32).clamp(0.0, 1.0);
        let signed = |v: f64| ((v / BALL_MAX_SPEED) as f32).clamp(-1.0, 1.0);
        Observation::vector(vec![
            unit(self.paddles[side] / COURT_H),
            unit(self.paddles[1 - side] / COURT_H),
            unit(x),
            unit(b.y / COURT_H),
            signed(vx),
            signed(b.vy),
        ])
    }

    fn observations(&self) -> Vec<Observation> {
        vec![self.observation(0), self.observation(1)]
    }
}

/// Reflects a ball centre off the top and bottom walls (one bounce per step is
/// all the speeds allow).
fn fold(y: f64) -> f64 {
    if y < BALL_R {
        2.0 * BALL_R - y
    } else if y > COURT_H - BALL_R {
        2.0 * (COURT_H - BALL_R) - y
    } else {
        y
    }
}

fn spec(mode: PaddlesMode) -> EnvSpec {
    let agent = |name: &str| AgentSpec {
        name: name.to_string(),
        observation_space: Space::vector_f32(vec![0.0, 0.0, 0.0, 0.0, -1.0, -1.0], vec![1.0; 6]),
        action_space: Space::discrete(3),
    };
    EnvSpec {
        id: match mode {
            PaddlesMode::Competitive => Paddles::ID,
            PaddlesMode::Cooperative => Paddles::COOP_ID,
        }
        .to_string(),
        version: 1,
        agents: vec![agent("left"), agent("right")],
        render: RenderKind::Sprites {
            width: COURT_W as u32,
            height: COURT_H as u32,
        },
        fps: 30,
        max_episode_steps: Some(MAX_EPISODE_STEPS),
    }
}

impl Env for Paddles {
    fn spec(&self) -> &EnvSpec {
        &self.spec
    }

    fn reset(&mut self, seed: u64) -> Result<Vec<Observation>, EnvError> {
        self.rng = GymRng::from_seed(seed);
        self.paddles = [COURT_H / 2.0; 2];
        self.score = [0; 2];
        self.returns = 0;
        self.serve();
        self.episode.start();
        Ok(self.observations())
    }

    fn step(&mut self, actions: &[Action]) -> Result<Step, EnvError> {
        let actions = discrete_pair(&self.spec, actions)?;
        self.episode.ensure_running()?;
        for (paddle, action) in self.paddles.iter_mut().zip(actions) {
            let dy = match action {
                1 => -PADDLE_SPEED,
                2 => PADDLE_SPEED,
                _ => 0.0,
            };
            *paddle = (*paddle + dy).clamp(PADDLE_H / 2.0, COURT_H - PADDLE_H / 2.0);
        }
        let mut rewards = vec![0.0; 2];
        let mut terminated = false;
        if self.move_ball().is_some() {
            self.returns += 1;
            if self.mode == PaddlesMode::Cooperative {
                rewards = vec![1.0; 2];
            }
        }
        let missed = if self.ball.x < 0.0 {
            Some(0)
        } else if self.ball.x > COURT_W {
            Some(1)
        } else {
            None
        };
        if let Some(loser) = missed {
            match self.mode {
                PaddlesMode::Competitive => {
                    let winner = 1 - loser;
                    self.score[winner] += 1;
                    rewards[winner] = 1.0;
                    rewards[loser] = -1.0;
                    terminated = self.score[winner] >= WINNING_SCORE;
                    if !terminated {
                        self.serve();
                    }
                }
                PaddlesMode::Cooperative => terminated = true,
            }
        }
        let truncated = self.episode.count(terminated);
        Ok(Step {
            observations: self.observations(),
            rewards,
            terminated: vec![terminated; 2],
            truncated: vec![truncated; 2],
        })
    }

    fn render(&self) -> Frame {
        Frame::Sprites(self.sprites())
    }
}

/// Sprite ids.
mod id {
    pub const BACKGROUND: u32 = 0;
    pub const NET: u32 = 1;
    /// The left score, or the shared count of returns in the cooperative game.
    pub const SCORE_LEFT: u32 = 2;
    pub const SCORE_RIGHT: u32 = 3;
    pub const PADDLE_LEFT: u32 = 4;
    pub const PADDLE_RIGHT: u32 = 5;
    pub const BALL: u32 = 6;
}

const PADDLE_COLORS: [&str; 2] = ["#60a5fa", "#fb923c"];
const TEXT: &str = "#e5e7eb";

fn rect(id: u32, x: f64, y: f64, w: f64, h: f64) -> Sprite {
    Sprite::new(
        id,
        Shape::Rect {
            x: (x / COURT_W) as f32,
            y: (y / COURT_H) as f32,
            w: (w / COURT_W) as f32,
            h: (h / COURT_H) as f32,
            angle: 0.0,
        },
    )
}

fn text(id: u32, x: f64, y: f64, size: f64, text: String) -> Sprite {
    Sprite::new(
        id,
        Shape::Text {
            x: (x / COURT_W) as f32,
            y: (y / COURT_H) as f32,
            text,
            size: (size / COURT_H) as f32,
        },
    )
    .fill(TEXT)
}

impl Paddles {
    /// The picture described in [`Paddles`]'s docs.
    fn sprites(&self) -> Vec<Sprite> {
        let mid = COURT_W / 2.0;
        let mut out = vec![
            rect(id::BACKGROUND, 0.0, 0.0, COURT_W, COURT_H).fill("#0f172a"),
            rect(id::NET, mid - 1.5, 0.0, 3.0, COURT_H).fill("#475569"),
        ];
        match self.mode {
            PaddlesMode::Competitive => out.extend([
                text(
                    id::SCORE_LEFT,
                    mid - 90.0,
                    20.0,
                    48.0,
                    self.score[0].to_string(),
                ),
                text(
                    id::SCORE_RIGHT,
                    mid + 60.0,
                    20.0,
                    48.0,
                    self.score[1].to_string(),
                ),
            ]),
            PaddlesMode::Cooperative => out.push(text(
                id::SCORE_LEFT,
                mid + 20.0,
                20.0,
                32.0,
                format!("Returns: {}", self.returns),
            )),
        }
        for (side, y) in self.paddles.iter().enumerate() {
            let x = if side == 0 {
                PADDLE_MARGIN
            } else {
                COURT_W - PADDLE_MARGIN - PADDLE_W
            };
            out.push(
                rect(
                    [id::PADDLE_LEFT, id::PADDLE_RIGHT][side],
                    x,
                    y - PADDLE_H / 2.0,
                    PADDLE_W,
                    PADDLE_H,
                )
                .fill(PADDLE_COLORS[side])
                .z(1),
            );
        }
        // Drawn inside the court even at the moment it leaves, so it never
        // strays off the canvas.
        let (x, y) = (
            self.ball.x.clamp(BALL_R, COURT_W - BALL_R),
            self.ball.y.clamp(BALL_R, COURT_H - BALL_R),
        );
        out.push(
            Sprite::new(
                id::BALL,
                Shape::Circle {
                    x: (x / COURT_W) as f32,
                    y: (y / COURT_H) as f32,
                    r: (BALL_R / COURT_W) as f32,
                },
            )
            .fill("#ffffff")
            .z(2),
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAY: i64 = 0;

    fn step(env: &mut Paddles, a: i64, b: i64) -> Step {
        env.step(&[Action::Discrete(a), Action::Discrete(b)])
            .expect("a running game takes valid actions")
    }

    fn data(obs: &Observation) -> Vec<f32> {
        match obs {
            Observation::F32 { data, .. } => data.clone(),
            other => panic!("expected f32, got {other:?}"),
        }
    }

    /// A ball one step from passing the left paddle's face at height `y`.
    fn ball_at_left(env: &mut Paddles, y: f64) {
        env.ball = Ball {
            x: FACE + BALL_R + 3.0,
            y,
            vx: -SERVE_SPEED,
            vy: 0.0,
            speed: SERVE_SPEED,
        };
    }

    /// Runs until the ball leaves past the left paddle; returns that step.
    fn until_missed(env: &mut Paddles) -> Step {
        for _ in 0..20 {
            let s = step(env, STAY, STAY);
            if s.rewards != vec![0.0; 2] || s.is_done() {
                return s;
            }
        }
        panic!("the ball never left the court");
    }

    /// Two agents with three actions each, and observations of random play stay
    /// inside the observation space in both games.
    #[test]
    fn spec_and_observations_agree() {
        for mode in [PaddlesMode::Competitive, PaddlesMode::Cooperative] {
            let mut env = Paddles::new(mode);
            let spec = env.spec().clone();
            assert_eq!(spec.agents.len(), 2);
            assert_eq!(spec.agents[0].name, "left");
            assert_eq!(spec.agents[1].name, "right");
            assert_eq!(spec.agents[1].action_space, Space::discrete(3));
            let Space::Box { low, high, .. } = &spec.agents[0].observation_space else {
                panic!("box expected");
            };
            let mut seed = 0;
            let mut obs = env.reset(seed).unwrap();
            let mut x = 3u64;
            for _ in 0..5000 {
                for o in &obs {
                    for (k, v) in data(o).iter().enumerate() {
                        let v = f64::from(*v);
                        assert!(v >= low[k] && v <= high[k], "{mode:?} feature {k} = {v}");
                    }
                }
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let s = step(&mut env, (x >> 33) as i64 % 3, (x >> 45) as i64 % 3);
                obs = s.observations.clone();
                if s.is_done() {
                    seed += 1;
                    obs = env.reset(seed).unwrap();
                }
            }
        }
    }

    /// Same seed and actions give the same trace; another seed serves
    /// differently.
    #[test]
    fn deterministic() {
        let run = |seed: u64| {
            let mut env = Paddles::new(PaddlesMode::Competitive);
            let mut trace = vec![format!("{:?}", env.reset(seed).unwrap())];
            for n in 0..500i64 {
                let s = step(&mut env, n % 3, (n / 7) % 3);
                trace.push(format!("{s:?}"));
                if s.is_done() {
                    break;
                }
            }
            trace
        };
        assert_eq!(run(4), run(4));
        assert_ne!(run(4)[0], run(5)[0]);
    }

    /// The right agent sees the court mirrored: its own paddle first, x and the
    /// x velocity flipped.
    #[test]
    fn right_observation_is_mirrored() {
        let mut env = Paddles::new(PaddlesMode::Competitive);
        env.reset(0).unwrap();
        env.paddles = [120.0, 450.0];
        env.ball = Ball {
            x: 200.0,
            y: 300.0,
            vx: -7.0,
            vy: 3.5,
            speed: 7.0,
        };
        let left = data(&env.observation(0));
        let right = data(&env.observation(1));
        assert_eq!(left, vec![0.2, 0.75, 0.25, 0.5, -0.5, 0.25]);
        assert_eq!(right, vec![0.75, 0.2, 0.75, 0.5, 0.5, 0.25]);
    }

    /// Competitive: a miss is +1 to the scorer and −1 to the other, the ball is
    /// served again from the centre, and the fifth point ends the game.
    #[test]
    fn competitive_points_and_game_over() {
        let mut env = Paddles::new(PaddlesMode::Competitive);
        env.reset(1).unwrap();
        env.paddles = [COURT_H - PADDLE_H / 2.0, COURT_H / 2.0];
        ball_at_left(&mut env, 100.0);
        let s = until_missed(&mut env);
        assert_eq!(s.rewards, vec![-1.0, 1.0]);
        assert_eq!(env.score(), [0, 1]);
        assert!(!s.is_done());
        assert_eq!((env.ball.x, env.ball.y), (COURT_W / 2.0, COURT_H / 2.0));
        env.score = [2, 4];
        ball_at_left(&mut env, 100.0);
        let s = until_missed(&mut env);
        assert_eq!(s.rewards, vec![-1.0, 1.0]);
        assert_eq!(s.terminated, vec![true, true]);
        assert_eq!(s.truncated, vec![false, false]);
        assert!(
            env.step(&[Action::Discrete(0), Action::Discrete(0)])
                .is_err()
        );
    }

    /// Competitive: a return earns nothing; cooperative: it earns +1 for both,
    /// and the ball comes back faster, up to the cap.
    #[test]
    fn returns_speed_up_and_pay_in_coop_only() {
        for (mode, reward) in [
            (PaddlesMode::Competitive, 0.0),
            (PaddlesMode::Cooperative, 1.0),
        ] {
            let mut env = Paddles::new(mode);
            env.reset(0).unwrap();
            ball_at_left(&mut env, COURT_H / 2.0);
            let s = step(&mut env, STAY, STAY);
            assert_eq!(s.rewards, vec![reward; 2], "{mode:?}");
            assert!(env.ball.vx > 0.0);
            assert_eq!(env.ball.speed, SERVE_SPEED + SPEEDUP_PER_HIT);
            assert_eq!(env.returns(), 1);
            env.ball.speed = BALL_MAX_SPEED;
            env.ball.x = FACE + BALL_R + 3.0;
            env.ball.vx = -5.0;
            step(&mut env, STAY, STAY);
            assert_eq!(env.ball.speed, BALL_MAX_SPEED);
        }
    }

    /// Cooperative: the first miss ends the episode, with no reward for it.
    #[test]
    fn coop_ends_on_first_miss() {
        let mut env = Paddles::new(PaddlesMode::Cooperative);
        env.reset(2).unwrap();
        env.paddles = [PADDLE_H / 2.0, COURT_H / 2.0];
        ball_at_left(&mut env, COURT_H - 50.0);
        let s = until_missed(&mut env);
        assert_eq!(s.rewards, vec![0.0, 0.0]);
        assert_eq!(s.terminated, vec![true, true]);
        let right = data(&s.observations[1]);
        assert!(right[2] <= 1.0, "{right:?}");
    }

    /// Paddles move by their speed and stop at the walls.
    #[test]
    fn paddles_move_and_clamp() {
        let mut env = Paddles::new(PaddlesMode::Cooperative);
        env.reset(0).unwrap();
        step(&mut env, 1, 2);
        assert_eq!(
            env.paddles,
            [COURT_H / 2.0 - PADDLE_SPEED, COURT_H / 2.0 + PADDLE_SPEED]
        );
        for _ in 0..60 {
            env.ball.x = COURT_W / 2.0;
            step(&mut env, 1, 2);
        }
        assert_eq!(env.paddles, [PADDLE_H / 2.0, COURT_H - PADDLE_H / 2.0]);
    }
}
