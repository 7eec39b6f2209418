//! Hand-written agents for the built-in environments: partners and opponents
//! for people, and baselines for learned policies.
//!
//! They act only from the observation their seat receives, never from the
//! environment's internals, so a scripted agent can sit wherever a human or a
//! learned policy could, see what they would see, and be swapped for either.
//! They are deterministic given the seed passed to `reset` and the observations:
//! a recorded episode with a scripted partner re-simulates exactly. Each is
//! meant to be reasonable, not optimal: a decent partner is what human–AI
//! studies need, and a beatable opponent is what people enjoy.

use std::collections::VecDeque;

use tandem_env::{Action, Observation};

use crate::kitchen::{self, Cell, Dir, INTERACT, Item, STAY, Tile};
use crate::paddles::{BALL_MAX_SPEED, BALL_R, COURT_H, COURT_W, FACE, PADDLE_H, PADDLE_SPEED};
use crate::rng::GymRng;
use crate::{CartPole, Kitchen, MountainCar, Paddles};

/// A hand-written agent for one built-in environment, acting from observations.
pub trait ScriptedAgent: Send {
    /// Called at the start of each episode.
    fn reset(&mut self, seed: u64);
    /// The action for this step, given this agent's observation.
    fn act(&mut self, obs: &Observation) -> Action;
}

/// The scripted agent for `agent` (index into the spec's agents) of built-in env
/// `env_id`, if it has one.
pub fn scripted_agent(env_id: &str, agent: usize) -> Option<Box<dyn ScriptedAgent>> {
    let agents = match env_id {
        CartPole::ID | MountainCar::ID => 1,
        Kitchen::ID | Paddles::ID | Paddles::COOP_ID => 2,
        _ => return None,
    };
    if agent >= agents {
        return None;
    }
    Some(match env_id {
        CartPole::ID => Box::new(CartPoleBot),
        MountainCar::ID => Box::new(MountainCarBot),
        Kitchen::ID => Box::new(ChefBot::new(agent)),
        _ => Box::new(PaddleBot::new(agent)),
    })
}

/// The float features of an observation, if that is what it holds.
fn features(obs: &Observation) -> Option<&[f32]> {
    match obs {
        Observation::F32 { data, .. } => Some(data),
        _ => None,
    }
}

/// Spreads an agent index over the seed, so two copies of one bot seeded alike
/// still make different random choices (and so break each other's deadlocks).
fn salted(seed: u64, agent: usize) -> u64 {
    seed ^ (agent as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

// ---------------------------------------------------------------------------
// Classic control.

/// Pushes the cart towards where the pole is falling: the sign of a linear mix
/// dominated by the pole's angle and angular velocity, with a little of the
/// cart's position and speed so it does not drift off the track.
struct CartPoleBot;

impl ScriptedAgent for CartPoleBot {
    fn reset(&mut self, _seed: u64) {}

    fn act(&mut self, obs: &Observation) -> Action {
        let push = match features(obs) {
            Some(&[x, x_dot, theta, theta_dot]) => {
                theta + 0.2 * theta_dot + 0.01 * x + 0.05 * x_dot > 0.0
            }
            _ => false,
        };
        Action::Discrete(i64::from(push))
    }
}

/// Accelerates with the car's velocity, which pumps energy into the swing until
/// it clears the hill.
struct MountainCarBot;

impl ScriptedAgent for MountainCarBot {
    fn reset(&mut self, _seed: u64) {}

    fn act(&mut self, obs: &Observation) -> Action {
        let action = match features(obs) {
            Some(&[_, velocity]) if velocity < 0.0 => 0,
            Some(&[_, _]) => 2,
            _ => 1,
        };
        Action::Discrete(action)
    }
}

// ---------------------------------------------------------------------------
// Paddles.

/// Steps between seeing the ball and reacting to it: about 100 ms at 30 fps,
/// a quick human's reaction time.
const PADDLE_LAG: usize = 3;
/// Closer than this (court units) to its target, the paddle holds still rather
/// than jitter.
const PADDLE_DEAD_ZONE: f64 = PADDLE_SPEED * 0.7;
/// How far off the predicted spot the paddle aims, at most, in half paddle
/// heights: a base error, more per wall bounce ahead and more for a fast ball.
/// Straight, slow balls always come back; a fast bank shot beats it now and
/// then (the paddle reaches only 1.18 half heights either side), as it beats
/// people, so a person can win by playing the paddle's ends.
const PADDLE_AIM_BASE: f64 = 0.6;
const PADDLE_AIM_PER_BOUNCE: f64 = 0.5;
const PADDLE_AIM_AT_TOP_SPEED: f64 = 0.5;

/// Moves its paddle to where the ball will cross it, predicted from what it
/// saw `PADDLE_LAG` steps ago (walls included), with a seeded aiming error per
/// approach; between approaches it drifts back to the middle.
struct PaddleBot {
    agent: usize,
    /// The ball `[x, y, vx, vy]` of the last `PADDLE_LAG + 1` observations.
    seen: VecDeque<[f64; 4]>,
    rng: GymRng,
    aim: f64,
    approaching: bool,
}

impl PaddleBot {
    fn new(agent: usize) -> Self {
        PaddleBot {
            agent,
            seen: VecDeque::new(),
            rng: GymRng::from_seed(salted(0, agent)),
            aim: 0.0,
            approaching: false,
        }
    }
}

/// Where a ball at `(x, y)` with velocity `(vx, vy)` (court units, moving
/// left) will be in y when it reaches the left paddle's face, and how many
/// times it bounces off a wall on the way.
fn landing_y(x: f64, y: f64, vx: f64, vy: f64) -> (f64, u32) {
    let t = (x - (FACE + BALL_R)) / -vx;
    let span = COURT_H - 2.0 * BALL_R;
    // Unfold the bounces: the path is a straight line on a strip mirrored at
    // every wall.
    let unfolded = y + vy * t - BALL_R;
    let bounces = (unfolded / span).floor().abs() as u32;
    let m = unfolded.rem_euclid(2.0 * span);
    (BALL_R + if m > span { 2.0 * span - m } else { m }, bounces)
}

impl ScriptedAgent for PaddleBot {
    fn reset(&mut self, seed: u64) {
        self.seen.clear();
        self.rng = GymRng::from_seed(salted(seed, self.agent));
        self.aim = 0.0;
        self.approaching = false;
    }

    fn act(&mut self, obs: &Observation) -> Action {
        let Some(&[own, _, x, y, vx, vy]) = features(obs) else {
            return Action::Discrete(0);
        };
        self.seen.push_back([x, y, vx, vy].map(f64::from));
        while self.seen.len() > PADDLE_LAG + 1 {
            self.seen.pop_front();
        }
        let Some(&[x, y, vx, vy]) = self.seen.front() else {
            return Action::Discrete(0);
        };
        // Observations are mirrored so this paddle is always the left one.
        let (x, y, vx, vy) = (
            x * COURT_W,
            y * COURT_H,
            vx * BALL_MAX_SPEED,
            vy * BALL_MAX_SPEED,
        );
        let approaching = vx < 0.0;
        let target = if approaching {
            let (landing, bounces) = landing_y(x, y, vx, vy);
            if !self.approaching {
                let speed = vx.hypot(vy) / BALL_MAX_SPEED;
                let error = PADDLE_AIM_BASE
                    + PADDLE_AIM_PER_BOUNCE * f64::from(bounces)
                    + PADDLE_AIM_AT_TOP_SPEED * speed * speed;
                self.aim = self.rng.uniform(-error, error) * PADDLE_H / 2.0;
            }
            landing + self.aim
        } else {
            COURT_H / 2.0
        };
        self.approaching = approaching;
        // Its own paddle it feels without delay.
        let gap = target - f64::from(own) * COURT_H;
        Action::Discrete(if gap.abs() <= PADDLE_DEAD_ZONE {
            0
        } else if gap < 0.0 {
            1
        } else {
            2
        })
    }
}

// ---------------------------------------------------------------------------
// Kitchen.

/// Blocked moves in a row before a chef gives way with a random detour.
const CHEF_PATIENCE: u32 = 3;

/// What a chef can read off its observation.
#[derive(Clone, Copy, Debug)]
struct ChefView {
    cell: Cell,
    facing: Dir,
    held: Option<Item>,
}

#[derive(Clone, Debug)]
struct KitchenView {
    me: ChefView,
    other: ChefView,
    onions: u8,
    cooking: bool,
    ready: bool,
    counters: Vec<(Cell, Option<Item>)>,
}

impl KitchenView {
    /// Reads the vector laid out in [`Kitchen`]'s docs; `None` if it is not
    /// one.
    fn read(obs: &Observation) -> Option<KitchenView> {
        use kitchen::obs;
        let v = features(obs)?;
        if v.len() != kitchen::obs_len() {
            return None;
        }
        let hot = |from: usize, n: usize| (0..n).find(|k| v[from + k] > 0.5);
        let chef = |start: usize| ChefView {
            cell: Cell {
                x: v[start + obs::CELL].round() as i32,
                y: v[start + obs::CELL + 1].round() as i32,
            },
            facing: hot(start + obs::FACING, 4)
                .and_then(|k| Dir::ALL.get(k).copied())
                .unwrap_or(Dir::Up),
            held: hot(start + obs::HELD, 4)
                .and_then(|k| k.checked_sub(1))
                .and_then(|k| Item::ALL.get(k).copied()),
        };
        let counters = kitchen::counters()
            .into_iter()
            .enumerate()
            .map(|(slot, cell)| {
                let item = hot(obs::COUNTERS + obs::PER_COUNTER * slot, obs::PER_COUNTER)
                    .and_then(|k| Item::ALL.get(k).copied());
                (cell, item)
            })
            .collect();
        Some(KitchenView {
            me: chef(obs::OWN),
            other: chef(obs::OTHER),
            onions: v[obs::POT_ONIONS].round() as u8,
            cooking: v[obs::POT_COOKING] > 0.5,
            ready: v[obs::POT_READY] > 0.5,
            counters,
        })
    }

    fn counters_with(&self, item: Option<Item>) -> impl Iterator<Item = Cell> + '_ {
        self.counters
            .iter()
            .filter(move |(_, on)| *on == item)
            .map(|(cell, _)| *cell)
    }
}

/// What a chef sets out to do this step.
enum Goal {
    /// Face one of these tiles and interact with it.
    Use(Vec<Cell>),
    /// Keep out of the way: off any cell in front of a station.
    Idle,
}

/// A kitchen partner that follows Overcooked's recipe from its observation:
/// onions into the pot until it holds three, a dish while it cooks, plate,
/// serve. It counts what the other chef carries (so two of them do not both
/// fetch the last onion), walks shortest paths around the other chef, and
/// when blocked for a few steps gives way with a short random detour.
struct ChefBot {
    agent: usize,
    rng: GymRng,
    /// The cell the last action tried to enter, to notice being blocked.
    expected: Option<Cell>,
    /// The targets being worked towards and the cell chosen to use them from.
    plan: Option<(Vec<Cell>, Cell)>,
    blocked: u32,
    detour: u32,
}

impl ChefBot {
    fn new(agent: usize) -> Self {
        ChefBot {
            agent,
            rng: GymRng::from_seed(salted(0, agent)),
            expected: None,
            plan: None,
            blocked: 0,
            detour: 0,
        }
    }

    fn goal(&self, view: &KitchenView) -> Goal {
        let (me, other) = (view.me, view.other);
        let stations = |t: Tile| kitchen::cells().filter(move |c| kitchen::tile(*c) == t);
        let pot: Vec<Cell> = stations(Tile::Pot).collect();
        let onions: Vec<Cell> = stations(Tile::OnionDispenser)
            .chain(view.counters_with(Some(Item::Onion)))
            .collect();
        let dishes: Vec<Cell> = stations(Tile::DishDispenser)
            .chain(view.counters_with(Some(Item::Dish)))
            .collect();
        let free_counters = || Goal::Use(view.counters_with(None).collect());
        let other_has = |item: Item| other.held == Some(item);
        let busy = view.cooking || view.ready;
        let onions_coming = view.onions.saturating_add(u8::from(other_has(Item::Onion)));
        let full_soon = busy || onions_coming >= 3;
        let dish_taken = other_has(Item::Dish) || other_has(Item::Soup);
        match me.held {
            Some(Item::Soup) => Goal::Use(stations(Tile::Window).collect()),
            Some(Item::Dish) if busy => Goal::Use(pot),
            Some(Item::Dish) if full_soon => Goal::Idle,
            Some(Item::Dish) => free_counters(),
            Some(Item::Onion) if !busy => Goal::Use(pot),
            // A spare onion waits for the next soup, unless the soup is ready
            // and nobody is bringing a dish: then hands must be freed for one.
            Some(Item::Onion) if dish_taken || view.cooking => Goal::Idle,
            Some(Item::Onion) => free_counters(),
            None => {
                let soups: Vec<Cell> = view.counters_with(Some(Item::Soup)).collect();
                if !soups.is_empty() {
                    return Goal::Use(soups);
                }
                let want_dish = if busy {
                    // While it cooks, leave the dish to an empty-handed partner
                    // who is nearer to one; once ready, go regardless.
                    let nearer = other.held.is_none()
                        && view.cooking
                        && distance(other.cell, me.cell, &dishes)
                            < distance(me.cell, other.cell, &dishes);
                    !dish_taken && !nearer
                } else {
                    onions_coming >= 3 && !dish_taken
                };
                Goal::Use(if want_dish { dishes } else { onions })
            }
        }
    }

    /// The action that makes progress towards `goal`, and the cell it tries to
    /// enter, if it moves.
    fn pursue(&mut self, view: &KitchenView, goal: Goal) -> (i64, Option<Cell>) {
        let (me, other) = (view.me, view.other);
        let targets = match goal {
            Goal::Use(targets) => targets,
            Goal::Idle => {
                self.plan = None;
                if !in_front_of_station(me.cell) {
                    return (STAY, None);
                }
                return match search(me.cell, Some(other.cell), |c| !in_front_of_station(c)) {
                    Some(Route {
                        first: Some(dir), ..
                    }) => (dir.action(), Some(me.cell.next(dir))),
                    _ => (STAY, None),
                };
            }
        };
        // Keep heading for the cell chosen earlier while the goal is the same:
        // re-choosing every step makes two chefs dodge each other in step for
        // ever.
        let kept = match &self.plan {
            Some((t, cell)) if *t == targets && faces(*cell, &targets).is_some() => Some(*cell),
            _ => None,
        };
        let spot = match kept {
            Some(cell) => cell,
            None => {
                let at_target = |c: Cell| faces(c, &targets).is_some();
                // The nearest spot reachable around the other chef, else the
                // nearest at all (the other chef may move away).
                let found = search(me.cell, Some(other.cell), at_target)
                    .or_else(|| search(me.cell, None, at_target));
                let Some(Route { end: cell, .. }) = found else {
                    return self.pursue(view, Goal::Idle);
                };
                self.plan = Some((targets.clone(), cell));
                cell
            }
        };
        if me.cell == spot {
            return match faces(spot, &targets) {
                Some(dir) if dir == me.facing => (INTERACT, None),
                // Pressing towards a station only turns the chef.
                Some(dir) => (dir.action(), None),
                None => (STAY, None),
            };
        }
        // Around the other chef if possible; else straight at it, which blocks
        // and, if it lasts, sends this chef on a detour.
        let route = search(me.cell, Some(other.cell), |c| c == spot)
            .or_else(|| search(me.cell, None, |c| c == spot));
        match route {
            Some(Route {
                first: Some(dir), ..
            }) => (dir.action(), Some(me.cell.next(dir))),
            _ => (STAY, None),
        }
    }

    /// A random step to a free neighbouring cell, or staying if there is none.
    fn sidestep(&mut self, view: &KitchenView) -> (i64, Option<Cell>) {
        let free: Vec<Dir> = Dir::ALL
            .into_iter()
            .filter(|d| {
                let to = view.me.cell.next(*d);
                kitchen::tile(to) == Tile::Floor && to != view.other.cell
            })
            .collect();
        if free.is_empty() {
            return (STAY, None);
        }
        let dir = free[(self.rng.next_u64() % free.len() as u64) as usize];
        (dir.action(), Some(view.me.cell.next(dir)))
    }
}

impl ScriptedAgent for ChefBot {
    fn reset(&mut self, seed: u64) {
        self.rng = GymRng::from_seed(salted(seed, self.agent));
        self.expected = None;
        self.plan = None;
        self.blocked = 0;
        self.detour = 0;
    }

    fn act(&mut self, obs: &Observation) -> Action {
        let Some(view) = KitchenView::read(obs) else {
            return Action::Discrete(STAY);
        };
        self.blocked = match self.expected.take() {
            Some(cell) if cell != view.me.cell => self.blocked + 1,
            _ => 0,
        };
        if self.blocked >= CHEF_PATIENCE {
            self.blocked = 0;
            self.detour = 1 + (self.rng.next_u64() % 3) as u32;
            // After giving way, choose afresh: the spot may be taken for good.
            self.plan = None;
        }
        let (action, expected) = if self.detour > 0 {
            self.detour -= 1;
            self.sidestep(&view)
        } else {
            let goal = self.goal(&view);
            self.pursue(&view, goal)
        };
        self.expected = expected;
        Action::Discrete(action)
    }
}

/// The direction from floor cell `cell` to one of `targets` next to it.
fn faces(cell: Cell, targets: &[Cell]) -> Option<Dir> {
    Dir::ALL
        .into_iter()
        .find(|d| targets.contains(&cell.next(*d)))
}

/// Whether a chef on `cell` stands in front of a station (pot, dispenser,
/// window), where idling would be in the way.
fn in_front_of_station(cell: Cell) -> bool {
    Dir::ALL
        .iter()
        .any(|d| !matches!(kitchen::tile(cell.next(*d)), Tile::Floor | Tile::Counter))
}

/// A shortest walk found by [`search`].
struct Route {
    /// The first step, or `None` when already there.
    first: Option<Dir>,
    /// Where it ends.
    end: Cell,
    /// Its length in steps.
    length: u32,
}

/// Breadth-first search over floor from `from`, never entering `avoid`, for
/// the nearest cell where `goal` holds. Ties go to the first direction in
/// `Dir::ALL` order, so the choice is deterministic.
fn search(from: Cell, avoid: Option<Cell>, goal: impl Fn(Cell) -> bool) -> Option<Route> {
    if kitchen::tile(from) != Tile::Floor {
        return None;
    }
    // Only floor cells, which all lie on the grid, are ever indexed.
    let index = |c: Cell| (c.y * kitchen::WIDTH + c.x) as usize;
    let mut seen = vec![false; (kitchen::WIDTH * kitchen::HEIGHT) as usize];
    seen[index(from)] = true;
    let mut queue = VecDeque::from([(from, None, 0)]);
    while let Some((cell, first, length)) = queue.pop_front() {
        if goal(cell) {
            return Some(Route {
                first,
                end: cell,
                length,
            });
        }
        for dir in Dir::ALL {
            let next = cell.next(dir);
            if kitchen::tile(next) != Tile::Floor || Some(next) == avoid || seen[index(next)] {
                continue;
            }
            seen[index(next)] = true;
            queue.push_back((next, first.or(Some(dir)), length + 1));
        }
    }
    None
}

/// Steps from `from` to the nearest cell facing one of `targets`, walking
/// around `avoid`; `u32::MAX` if there is no way.
fn distance(from: Cell, avoid: Cell, targets: &[Cell]) -> u32 {
    search(from, Some(avoid), |c| faces(c, targets).is_some()).map_or(u32::MAX, |r| r.length)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tandem_env::Env;

    use crate::PaddlesMode;

    /// Runs one episode of `env` from `seed` with a scripted agent in each seat
    /// marked true and a constant action `idle` in the others; returns the
    /// environment at the end and the summed reward of agent 0.
    fn play<E: Env>(mut env: E, seed: u64, scripted: &[bool], idle: i64) -> (E, f64) {
        let id = env.spec().id.clone();
        let mut bots: Vec<Option<Box<dyn ScriptedAgent>>> = scripted
            .iter()
            .enumerate()
            .map(|(i, on)| on.then(|| scripted_agent(&id, i).expect("a scripted agent")))
            .collect();
        let mut obs = env.reset(seed).unwrap();
        for bot in bots.iter_mut().flatten() {
            bot.reset(seed);
        }
        let mut total = 0.0;
        loop {
            let actions: Vec<Action> = bots
                .iter_mut()
                .zip(&obs)
                .map(|(bot, o)| match bot {
                    Some(bot) => bot.act(o),
                    None => Action::Discrete(idle),
                })
                .collect();
            let step = env.step(&actions).unwrap();
            total += step.rewards[0];
            obs = step.observations.clone();
            if step.is_done() {
                return (env, total);
            }
        }
    }

    /// Two scripted chefs serve several soups in every 400-step episode tried.
    #[test]
    fn scripted_chefs_serve_together() {
        for seed in 0..10 {
            let (env, reward) = play(Kitchen::new(), seed, &[true, true], STAY);
            assert!(env.served() >= 2, "seed {seed}: {} soups", env.served());
            assert_eq!(reward, 20.0 * f64::from(env.served()));
        }
    }

    /// One scripted chef serves on its own, in either seat, while the other
    /// chef stands still wherever it started.
    #[test]
    fn scripted_chef_serves_alone() {
        for seed in 0..10 {
            for seats in [[true, false], [false, true]] {
                let (env, _) = play(Kitchen::new(), seed, &seats, STAY);
                assert!(env.served() >= 1, "seed {seed} {seats:?}: nothing served");
            }
        }
    }

    /// A scripted paddle returns more balls than a still one against the same
    /// scripted opponent.
    #[test]
    fn scripted_paddle_beats_standing_still() {
        let mut with_bot = 0;
        let mut without = 0;
        for seed in 0..5 {
            let (env, _) = play(
                Paddles::new(PaddlesMode::Cooperative),
                seed,
                &[true, true],
                0,
            );
            with_bot += env.returns();
            let (env, _) = play(
                Paddles::new(PaddlesMode::Cooperative),
                seed,
                &[false, true],
                0,
            );
            without += env.returns();
        }
        assert!(with_bot > 3 * without.max(1), "{with_bot} vs {without}");
    }

    /// The scripted paddle wins a competitive game against a paddle standing
    /// still, from either side.
    #[test]
    fn scripted_paddle_wins_against_standing_still() {
        for seed in 0..3 {
            let (env, _) = play(
                Paddles::new(PaddlesMode::Competitive),
                seed,
                &[true, false],
                0,
            );
            assert_eq!(env.score()[0], 5, "seed {seed}: {:?}", env.score());
            let (env, _) = play(
                Paddles::new(PaddlesMode::Competitive),
                seed,
                &[false, true],
                0,
            );
            assert_eq!(env.score()[1], 5, "seed {seed}: {:?}", env.score());
        }
    }

    /// The scripted cart-pole keeps the pole up for at least 200 steps.
    #[test]
    fn scripted_cartpole_balances() {
        for seed in 0..5 {
            let (_, reward) = play(CartPole::new(), seed, &[true], 0);
            assert!(reward >= 200.0, "seed {seed}: fell after {reward} steps");
        }
    }

    /// The scripted mountain car reaches the flag before the time limit.
    #[test]
    fn scripted_mountain_car_reaches_the_flag() {
        for seed in 0..5 {
            let mut env = MountainCar::new();
            let mut bot = scripted_agent(MountainCar::ID, 0).expect("a scripted agent");
            let mut obs = env.reset(seed).unwrap();
            bot.reset(seed);
            let step = loop {
                let step = env.step(&[bot.act(&obs[0])]).unwrap();
                obs = step.observations.clone();
                if step.is_done() {
                    break step;
                }
            };
            assert!(step.terminated[0], "seed {seed}: ran out of time");
        }
    }

    /// Only built-in ids and their agent indices have scripted agents, and an
    /// unexpected observation gets a harmless action, not a panic.
    #[test]
    fn lookup_and_bad_observations() {
        assert!(scripted_agent("Pong-v5", 0).is_none());
        assert!(scripted_agent(CartPole::ID, 1).is_none());
        assert!(scripted_agent(Kitchen::ID, 2).is_none());
        for (id, agent) in [
            (CartPole::ID, 0),
            (MountainCar::ID, 0),
            (Kitchen::ID, 1),
            (Paddles::ID, 0),
            (Paddles::COOP_ID, 1),
        ] {
            let mut bot = scripted_agent(id, agent).expect("a scripted agent");
            bot.reset(0);
            let space = crate::spec(id).expect("a built-in").agents[agent]
                .action_space
                .clone();
            for obs in [
                Observation::vector(vec![]),
                Observation::vector(vec![0.5; 3]),
                Observation::U8 {
                    shape: vec![1],
                    data: vec![1],
                },
            ] {
                assert!(space.contains(&bot.act(&obs)), "{id}");
            }
        }
    }
}
