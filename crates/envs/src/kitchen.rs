//! Kitchen-v0: a cooperative, Overcooked-style kitchen where two chefs share one
//! pot, one serving window and one reward.
//!
//! It follows the rules of Carroll et al.'s Overcooked-AI ("On the Utility of
//! Learning about Humans for Human-AI Coordination", 2019) closely enough that
//! results are comparable in kind: onion soup only, three onions start the pot,
//! 20 steps of cooking, +20 per soup served, 400-step episodes. The layout is a
//! small fixed one in the spirit of the "cramped room", but with three rows of
//! floor so that a chef standing still in the middle never walls the other off
//! from a station: a human who idles must not make the task impossible for the
//! AI partner, or the other way round.
//!
//! [`Kitchen`]'s own docs give the rules, the observation layout and the
//! picture.

use tandem_env::{
    Action, AgentSpec, Env, EnvError, EnvSpec, Frame, Observation, RenderKind, Shape, Space,
    Sprite, Step,
};

use crate::episode::{Episode, discrete_pair};
use crate::rng::GymRng;

/// The grid, row by row; anything off it counts as counter.
const LAYOUT: [&[u8; 7]; 5] = [b"XXXPXXX", b"O.....O", b"X.....X", b"X.....X", b"XDXXXSX"];
pub(crate) const WIDTH: i32 = 7;
pub(crate) const HEIGHT: i32 = 5;
/// The row chefs start on: it touches no station.
const START_ROW: i32 = 2;
/// Steps from the third onion to a soup ready to plate.
pub(crate) const COOK_TIME: u32 = 20;
const ONIONS_PER_SOUP: u8 = 3;
const SOUP_REWARD: f64 = 20.0;
const MAX_EPISODE_STEPS: u32 = 400;

pub(crate) const STAY: i64 = 0;
pub(crate) const INTERACT: i64 = 5;

/// Where each feature starts in the observation vector (see [`Kitchen`]).
pub(crate) mod obs {
    pub(crate) const OWN: usize = 0;
    pub(crate) const OTHER: usize = 10;
    /// Offsets inside each chef's block of ten.
    pub(crate) const CELL: usize = 0;
    pub(crate) const FACING: usize = 2;
    pub(crate) const HELD: usize = 6;
    pub(crate) const POT_ONIONS: usize = 20;
    pub(crate) const POT_COOKING: usize = 21;
    pub(crate) const POT_PROGRESS: usize = 22;
    pub(crate) const POT_READY: usize = 23;
    pub(crate) const TIME_LEFT: usize = 24;
    pub(crate) const COUNTERS: usize = 25;
    /// Values per counter: onion, dish, soup.
    pub(crate) const PER_COUNTER: usize = 3;
}

/// A grid cell; x grows to the right, y downwards.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Cell {
    pub(crate) x: i32,
    pub(crate) y: i32,
}

impl Cell {
    pub(crate) fn next(self, dir: Dir) -> Cell {
        let (dx, dy) = dir.delta();
        Cell {
            x: self.x + dx,
            y: self.y + dy,
        }
    }
}

/// A facing or a move, in action order (action `1 + index`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dir {
    Up,
    Down,
    Left,
    Right,
}

impl Dir {
    pub(crate) const ALL: [Dir; 4] = [Dir::Up, Dir::Down, Dir::Left, Dir::Right];

    pub(crate) fn index(self) -> usize {
        self as usize
    }

    pub(crate) fn action(self) -> i64 {
        1 + self as i64
    }

    fn from_action(action: i64) -> Option<Dir> {
        usize::try_from(action - 1)
            .ok()
            .and_then(|i| Dir::ALL.get(i).copied())
    }

    fn delta(self) -> (i32, i32) {
        match self {
            Dir::Up => (0, -1),
            Dir::Down => (0, 1),
            Dir::Left => (-1, 0),
            Dir::Right => (1, 0),
        }
    }
}

/// What a chef can hold or a counter can bear.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Item {
    Onion,
    Dish,
    Soup,
}

impl Item {
    pub(crate) const ALL: [Item; 3] = [Item::Onion, Item::Dish, Item::Soup];

    /// Index in a held-item one-hot, where 0 is "nothing".
    fn code(item: Option<Item>) -> usize {
        item.map_or(0, |i| 1 + i as usize)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Tile {
    Floor,
    Counter,
    OnionDispenser,
    DishDispenser,
    Pot,
    Window,
}

/// The tile at `cell`; off the grid is counter, so nobody walks off it.
pub(crate) fn tile(cell: Cell) -> Tile {
    let row = usize::try_from(cell.y).ok().and_then(|y| LAYOUT.get(y));
    let byte = row.and_then(|r| usize::try_from(cell.x).ok().and_then(|x| r.get(x)));
    match byte {
        Some(b'.') => Tile::Floor,
        Some(b'O') => Tile::OnionDispenser,
        Some(b'D') => Tile::DishDispenser,
        Some(b'P') => Tile::Pot,
        Some(b'S') => Tile::Window,
        _ => Tile::Counter,
    }
}

/// Every cell of the grid, row-major.
pub(crate) fn cells() -> impl Iterator<Item = Cell> {
    (0..HEIGHT).flat_map(|y| (0..WIDTH).map(move |x| Cell { x, y }))
}

/// The counters a chef can reach (those next to floor), row-major: the order of
/// the counter block in the observation.
pub(crate) fn counters() -> Vec<Cell> {
    cells()
        .filter(|c| tile(*c) == Tile::Counter)
        .filter(|c| Dir::ALL.iter().any(|d| tile(c.next(*d)) == Tile::Floor))
        .collect()
}

/// Length of the observation vector.
pub(crate) fn obs_len() -> usize {
    obs::COUNTERS + obs::PER_COUNTER * counters().len()
}

#[derive(Clone, Copy, Debug, PartialEq)]
struct Chef {
    cell: Cell,
    facing: Dir,
    held: Option<Item>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Pot {
    Filling { onions: u8 },
    Cooking { elapsed: u32 },
    Ready,
}

/// Two chefs cooking onion soup together, as in Overcooked, in this kitchen:
///
/// ```text
///     x: 0 1 2 3 4 5 6
///  y: 0  X X X P X X X      X counter     P pot
///     1  O . . . . . O      O onions      D dishes
///     2  X . . . . . X      S serving window
///     3  X . . . . . X      . floor
///     4  X D X X X S X
/// ```
///
/// Agents `chef_0` and `chef_1` act with `Discrete(6)`: 0 stay, 1 up, 2 down,
/// 3 left, 4 right, 5 interact. A move turns the chef that way and steps if the
/// cell there is floor and free; walking into a counter, a station or the other
/// chef only turns, which is how a chef faces a station. Chefs never overlap: a
/// chef cannot enter the cell the other stands on at the start of the step, and
/// when both head for the same cell neither moves. Interact acts on the faced
/// tile, chef 0 first: take an onion or a dish from a dispenser with empty
/// hands; put an onion in the pot (the third starts the cooking); put a dish on
/// the cooked soup to plate it; hand soup through the window (+20 to both chefs);
/// put anything on an empty counter or take what lies there. Both chefs always
/// get the same reward. Episodes are truncated at 400 steps and never terminate.
/// The seed picks the two chefs' starting cells on the middle row (which touches
/// no station), so seeds differ but no start is better placed than another.
///
/// Each chef observes the whole state as a flat `f32` vector from its own point
/// of view (itself first), so one policy can play either chef:
///
/// | index  | meaning                                                        |
/// |--------|----------------------------------------------------------------|
/// | 0, 1   | own x (0..6, left to right), own y (0..4, top to bottom)       |
/// | 2..=5  | own facing, one-hot: up, down, left, right                     |
/// | 6..=9  | own held item, one-hot: nothing, onion, dish, soup             |
/// | 10, 11 | other chef's x, y                                              |
/// | 12..=15| other chef's facing, one-hot as above                          |
/// | 16..=19| other chef's held item, one-hot as above                       |
/// | 20     | onions in the pot, 0..3 (3 while cooking and when ready)       |
/// | 21     | 1 while the pot cooks, else 0                                  |
/// | 22     | cooking progress, 0..1 (1 when ready)                          |
/// | 23     | 1 when the soup is ready to plate, else 0                      |
/// | 24     | fraction of the episode left, 1 at reset down to 0             |
/// | 25..=57| the 11 reachable counters, 3 values each: one-hot onion, dish, soup (all 0 when empty) |
///
/// The counters come in row-major order: (1,0) (2,0) (4,0) (5,0) (0,2) (6,2)
/// (0,3) (6,3) (2,4) (3,4) (4,4), so counter `k` is at indices `25 + 3k ..
/// 25 + 3k + 2`. The four corner counters touch no floor and are left out.
///
/// It draws as sprites on a 7 × 5.6 cell canvas: the grid, then a strip with the
/// soups served and a bar of the time left. `chef_0` is blue, `chef_1` orange;
/// each wears a white hat, has a dark wedge on the side it faces, and carries its
/// item in front of it.
#[derive(Clone, Debug)]
pub struct Kitchen {
    spec: EnvSpec,
    /// Reachable counters, row-major; `counter_items` is indexed alike.
    counters: Vec<Cell>,
    counter_items: Vec<Option<Item>>,
    chefs: [Chef; 2],
    pot: Pot,
    served: u32,
    episode: Episode,
}

impl Kitchen {
    /// The registered id.
    pub const ID: &'static str = "Kitchen-v0";

    /// A kitchen that needs a `reset` before its first step.
    pub fn new() -> Self {
        let counters = counters();
        Kitchen {
            spec: spec(),
            counter_items: vec![None; counters.len()],
            counters,
            chefs: [
                start_chef(Cell { x: 2, y: START_ROW }),
                start_chef(Cell { x: 4, y: START_ROW }),
            ],
            pot: Pot::Filling { onions: 0 },
            served: 0,
            episode: Episode::new(MAX_EPISODE_STEPS),
        }
    }

    /// Soups served so far in this episode.
    pub fn served(&self) -> u32 {
        self.served
    }

    /// Moves the chefs for one joint action (see [`Kitchen`] for the rules).
    fn walk(&mut self, actions: [i64; 2]) {
        let mut targets = [None, None];
        for (i, action) in actions.iter().enumerate() {
            let Some(dir) = Dir::from_action(*action) else {
                continue;
            };
            let chef = &mut self.chefs[i];
            chef.facing = dir;
            let to = chef.cell.next(dir);
            if tile(to) == Tile::Floor && to != self.chefs[1 - i].cell {
                targets[i] = Some(to);
            }
        }
        if targets[0].is_some() && targets[0] == targets[1] {
            return;
        }
        for (chef, target) in self.chefs.iter_mut().zip(targets) {
            if let Some(to) = target {
                chef.cell = to;
            }
        }
    }

    /// Chef `i` interacts with the tile it faces; returns the reward earned.
    fn interact(&mut self, i: usize) -> f64 {
        let chef = &mut self.chefs[i];
        let faced = chef.cell.next(chef.facing);
        match (tile(faced), chef.held) {
            (Tile::OnionDispenser, None) => chef.held = Some(Item::Onion),
            (Tile::DishDispenser, None) => chef.held = Some(Item::Dish),
            (Tile::Pot, Some(Item::Onion)) => {
                if let Pot::Filling { onions } = self.pot {
                    chef.held = None;
                    self.pot = if onions + 1 >= ONIONS_PER_SOUP {
                        Pot::Cooking { elapsed: 0 }
                    } else {
                        Pot::Filling { onions: onions + 1 }
                    };
                }
            }
            (Tile::Pot, Some(Item::Dish)) if self.pot == Pot::Ready => {
                chef.held = Some(Item::Soup);
                self.pot = Pot::Filling { onions: 0 };
            }
            (Tile::Window, Some(Item::Soup)) => {
                chef.held = None;
                self.served += 1;
                return SOUP_REWARD;
            }
            (Tile::Counter, held) => {
                if let Some(slot) = self.counters.iter().position(|c| *c == faced) {
                    let on_counter = &mut self.counter_items[slot];
                    if held.is_some() != on_counter.is_some() {
                        std::mem::swap(&mut chef.held, on_counter);
                    }
                }
            }
            _ => {}
        }
        0.0
    }

    /// Chef `me`'s observation (see the table in [`Kitchen`]'s docs).
    fn observation(&self, me: usize) -> Observation {
        let mut v = vec![0.0f32; obs_len()];
        for (start, chef) in [
            (obs::OWN, &self.chefs[me]),
            (obs::OTHER, &self.chefs[1 - me]),
        ] {
            v[start + obs::CELL] = chef.cell.x as f32;
            v[start + obs::CELL + 1] = chef.cell.y as f32;
            v[start + obs::FACING + chef.facing.index()] = 1.0;
            v[start + obs::HELD + Item::code(chef.held)] = 1.0;
        }
        let (onions, cooking, progress, ready) = match self.pot {
            Pot::Filling { onions } => (onions, 0.0, 0.0, 0.0),
            Pot::Cooking { elapsed } => {
                (ONIONS_PER_SOUP, 1.0, elapsed as f32 / COOK_TIME as f32, 0.0)
            }
            Pot::Ready => (ONIONS_PER_SOUP, 0.0, 1.0, 1.0),
        };
        v[obs::POT_ONIONS] = f32::from(onions);
        v[obs::POT_COOKING] = cooking;
        v[obs::POT_PROGRESS] = progress;
        v[obs::POT_READY] = ready;
        v[obs::TIME_LEFT] = time_left(self.episode.steps());
        for (slot, item) in self.counter_items.iter().enumerate() {
            if let Some(item) = item {
                v[obs::COUNTERS + obs::PER_COUNTER * slot + *item as usize] = 1.0;
            }
        }
        Observation::vector(v)
    }

    fn observations(&self) -> Vec<Observation> {
        vec![self.observation(0), self.observation(1)]
    }
}

impl Default for Kitchen {
    fn default() -> Self {
        Kitchen::new()
    }
}

fn start_chef(cell: Cell) -> Chef {
    Chef {
        cell,
        facing: Dir::Up,
        held: None,
    }
}

fn time_left(steps: u32) -> f32 {
    MAX_EPISODE_STEPS.saturating_sub(steps) as f32 / MAX_EPISODE_STEPS as f32
}

fn spec() -> EnvSpec {
    let n = obs_len();
    let low = vec![0.0; n];
    let mut high = vec![1.0; n];
    for start in [obs::OWN, obs::OTHER] {
        high[start + obs::CELL] = f64::from(WIDTH - 1);
        high[start + obs::CELL + 1] = f64::from(HEIGHT - 1);
    }
    high[obs::POT_ONIONS] = f64::from(ONIONS_PER_SOUP);
    let agent = |name: &str| AgentSpec {
        name: name.to_string(),
        observation_space: Space::vector_f32(low.clone(), high.clone()),
        action_space: Space::discrete(6),
    };
    EnvSpec {
        id: Kitchen::ID.to_string(),
        version: 1,
        agents: vec![agent("chef_0"), agent("chef_1")],
        render: RenderKind::Sprites {
            width: (CANVAS_W * 100.0) as u32,
            height: (CANVAS_H * 100.0) as u32,
        },
        // Overcooked's human studies ran at about this pace: slow enough to plan
        // each step, fast enough to feel like a game.
        fps: 8,
        max_episode_steps: Some(MAX_EPISODE_STEPS),
    }
}

impl Env for Kitchen {
    fn spec(&self) -> &EnvSpec {
        &self.spec
    }

    fn reset(&mut self, seed: u64) -> Result<Vec<Observation>, EnvError> {
        let mut rng = GymRng::from_seed(seed);
        let floor = (WIDTH - 2) as u64;
        let first = rng.next_u64() % floor;
        // An offset of 1..floor from the first, so the two always differ.
        let second = (first + 1 + rng.next_u64() % (floor - 1)) % floor;
        let start = |x: u64| {
            start_chef(Cell {
                x: 1 + x as i32,
                y: START_ROW,
            })
        };
        self.chefs = [start(first), start(second)];
        self.pot = Pot::Filling { onions: 0 };
        self.counter_items.iter_mut().for_each(|c| *c = None);
        self.served = 0;
        self.episode.start();
        Ok(self.observations())
    }

    fn step(&mut self, actions: &[Action]) -> Result<Step, EnvError> {
        let actions = discrete_pair(&self.spec, actions)?;
        self.episode.ensure_running()?;
        // Cooking advances before anyone acts, so a soup is ready exactly
        // COOK_TIME steps after its third onion went in.
        if let Pot::Cooking { elapsed } = self.pot {
            self.pot = if elapsed + 1 >= COOK_TIME {
                Pot::Ready
            } else {
                Pot::Cooking {
                    elapsed: elapsed + 1,
                }
            };
        }
        self.walk(actions);
        let mut reward = 0.0;
        for (i, action) in actions.iter().enumerate() {
            if *action == INTERACT {
                reward += self.interact(i);
            }
        }
        let truncated = self.episode.count(false);
        Ok(Step {
            observations: self.observations(),
            rewards: vec![reward; 2],
            terminated: vec![false; 2],
            truncated: vec![truncated; 2],
        })
    }

    fn render(&self) -> Frame {
        Frame::Sprites(self.sprites())
    }

    /// Soups served so far in the episode: the kitchen's statistic.
    fn info(&self) -> Option<serde_json::Map<String, serde_json::Value>> {
        let mut info = serde_json::Map::new();
        info.insert("soups_served".into(), self.served.into());
        Some(info)
    }
}

// ---------------------------------------------------------------------------
// Drawing. Everything below works in cell units on a CANVAS_W × CANVAS_H canvas
// and converts to normalized coordinates at the last moment.

/// Height of the strip under the grid for the score and the clock, in cells.
const HUD: f32 = 0.6;
const CANVAS_W: f32 = WIDTH as f32;
const CANVAS_H: f32 = HEIGHT as f32 + HUD;

/// Sprite ids. Every sprite exists in every frame, so ids never come and go:
/// an empty hand or counter is an item sprite with no colour, which draws as
/// nothing.
mod id {
    pub const BACKGROUND: u32 = 0;
    /// `+ y * WIDTH + x`, one per non-floor tile.
    pub const TILE: u32 = 100;
    /// `+ y * WIDTH + x`, the picture on each station.
    pub const ICON: u32 = 200;
    /// `+ 2 * slot`: the item on each reachable counter (two sprites each).
    pub const COUNTER_ITEM: u32 = 300;
    /// `+ 0..3`: the onions in the pot.
    pub const POT_ONION: u32 = 400;
    pub const POT_SOUP: u32 = 403;
    pub const POT_BAR_BACK: u32 = 404;
    pub const POT_BAR: u32 = 405;
    /// `+ 10 * chef + part`.
    pub const CHEF: u32 = 500;
    pub const SCORE: u32 = 600;
    pub const CLOCK_BACK: u32 = 601;
    pub const CLOCK: u32 = 602;
}

/// Parts of a chef, added to `id::CHEF + 10 * chef`.
mod part {
    pub const BODY: u32 = 0;
    pub const HAT: u32 = 1;
    pub const NOSE: u32 = 2;
    pub const ITEM: u32 = 3;
}

const FLOOR: &str = "#f3ead8";
const COUNTER: &str = "#c49a6c";
const DISPENSER: &str = "#8b6b4a";
const WINDOW: &str = "#6b7280";
const EDGE: &str = "#5c4330";
const ONION: &str = "#e8b923";
const ONION_EDGE: &str = "#8a6200";
const PLATE: &str = "#ffffff";
const PLATE_EDGE: &str = "#6b7280";
const SOUP: &str = "#d9480f";
const POT: &str = "#374151";
const COOKING: &str = "#f59e0b";
const READY: &str = "#16a34a";
const INK: &str = "#1f2937";
const CHEF_COLORS: [&str; 2] = ["#2563eb", "#ea580c"];

fn nx(x: f32) -> f32 {
    x / CANVAS_W
}

fn ny(y: f32) -> f32 {
    y / CANVAS_H
}

fn rect(id: u32, x: f32, y: f32, w: f32, h: f32) -> Sprite {
    Sprite::new(
        id,
        Shape::Rect {
            x: nx(x),
            y: ny(y),
            w: nx(w),
            h: ny(h),
            angle: 0.0,
        },
    )
}

fn circle(id: u32, x: f32, y: f32, r: f32) -> Sprite {
    // A circle's radius is a fraction of the canvas width.
    Sprite::new(
        id,
        Shape::Circle {
            x: nx(x),
            y: ny(y),
            r: nx(r),
        },
    )
}

fn polygon(id: u32, points: &[(f32, f32)]) -> Sprite {
    let points = points.iter().map(|(x, y)| [nx(*x), ny(*y)]).collect();
    Sprite::new(id, Shape::Polygon { points })
}

/// A line width of `w` cells.
fn lw(w: f32) -> f32 {
    nx(w)
}

/// The two sprites of an item centred at `(x, y)`: a base (onion, or plate) and
/// a top (the soup on a plate). Absent parts get no colour.
fn item_sprites(id: u32, item: Option<Item>, x: f32, y: f32, r: f32) -> [Sprite; 2] {
    let base = circle(id, x, y, r);
    let top = circle(id + 1, x, y, r * 0.62);
    match item {
        None => [base, top],
        Some(Item::Onion) => [base.fill(ONION).stroke(ONION_EDGE, lw(0.02)), top],
        Some(Item::Dish) => [base.fill(PLATE).stroke(PLATE_EDGE, lw(0.02)), top],
        Some(Item::Soup) => [
            base.fill(PLATE).stroke(PLATE_EDGE, lw(0.02)),
            top.fill(SOUP),
        ],
    }
}

impl Kitchen {
    fn sprites(&self) -> Vec<Sprite> {
        let mut out = vec![rect(id::BACKGROUND, 0.0, 0.0, CANVAS_W, CANVAS_H).fill(FLOOR)];
        let stations: Vec<(Cell, Tile)> = cells()
            .map(|c| (c, tile(c)))
            .filter(|(_, t)| *t != Tile::Floor)
            .collect();
        for (cell, kind) in &stations {
            let color = match kind {
                Tile::OnionDispenser | Tile::DishDispenser => DISPENSER,
                Tile::Window => WINDOW,
                _ => COUNTER,
            };
            let index = (cell.y * WIDTH + cell.x) as u32;
            out.push(
                rect(id::TILE + index, cell.x as f32, cell.y as f32, 1.0, 1.0)
                    .fill(color)
                    .stroke(EDGE, lw(0.02))
                    .z(1),
            );
        }
        for (cell, kind) in &stations {
            let index = (cell.y * WIDTH + cell.x) as u32;
            let (cx, cy) = (cell.x as f32 + 0.5, cell.y as f32 + 0.5);
            let icon = match kind {
                Tile::OnionDispenser => circle(id::ICON + index, cx, cy, 0.24)
                    .fill(ONION)
                    .stroke(ONION_EDGE, lw(0.03)),
                Tile::DishDispenser => circle(id::ICON + index, cx, cy, 0.26)
                    .fill(PLATE)
                    .stroke(PLATE_EDGE, lw(0.05)),
                Tile::Pot => circle(id::ICON + index, cx, cy - 0.08, 0.34).fill(POT),
                // An arrow out of the kitchen: soup goes this way.
                Tile::Window => polygon(
                    id::ICON + index,
                    &[
                        (cx - 0.12, cy - 0.3),
                        (cx + 0.12, cy - 0.3),
                        (cx + 0.12, cy),
                        (cx + 0.26, cy),
                        (cx, cy + 0.3),
                        (cx - 0.26, cy),
                        (cx - 0.12, cy),
                    ],
                )
                .fill(READY),
                _ => continue,
            };
            out.push(icon.z(2));
        }
        for (slot, (cell, item)) in self.counters.iter().zip(&self.counter_items).enumerate() {
            let (cx, cy) = (cell.x as f32 + 0.5, cell.y as f32 + 0.5);
            let id = id::COUNTER_ITEM + 2 * slot as u32;
            out.extend(item_sprites(id, *item, cx, cy, 0.22).map(|s| s.z(3)));
        }
        out.extend(self.pot_sprites());
        for (i, chef) in self.chefs.iter().enumerate() {
            out.extend(chef_sprites(id::CHEF + 10 * i as u32, chef, CHEF_COLORS[i]));
        }
        out.extend(self.hud_sprites());
        out
    }

    /// The pot's onions or soup, and a bar of cooking progress under it.
    fn pot_sprites(&self) -> Vec<Sprite> {
        let pot = cells()
            .find(|c| tile(*c) == Tile::Pot)
            .unwrap_or(Cell { x: WIDTH / 2, y: 0 });
        let (cx, cy) = (pot.x as f32 + 0.5, pot.y as f32 + 0.42);
        let (onions, progress, color) = match self.pot {
            Pot::Filling { onions } => (onions, None, COOKING),
            Pot::Cooking { elapsed } => (
                ONIONS_PER_SOUP,
                Some(elapsed as f32 / COOK_TIME as f32),
                COOKING,
            ),
            Pot::Ready => (0, Some(1.0), READY),
        };
        let mut out = Vec::new();
        for (k, (dx, dy)) in [(-0.12, -0.06), (0.12, -0.06), (0.0, 0.12)]
            .into_iter()
            .enumerate()
        {
            let dot = circle(id::POT_ONION + k as u32, cx + dx, cy + dy, 0.1);
            out.push(if (k as u8) < onions {
                dot.fill(ONION).stroke(ONION_EDGE, lw(0.015))
            } else {
                dot
            });
        }
        let soup = circle(id::POT_SOUP, cx, cy, 0.24);
        out.push(if self.pot == Pot::Ready {
            soup.fill(SOUP)
        } else {
            soup
        });
        let (bx, by, bw, bh) = (pot.x as f32 + 0.1, pot.y as f32 + 0.82, 0.8, 0.1);
        let back = rect(id::POT_BAR_BACK, bx, by, bw, bh);
        let bar = rect(id::POT_BAR, bx, by, bw * progress.unwrap_or(0.0), bh);
        match progress {
            Some(_) => out.extend([back.fill(INK), bar.fill(color)]),
            None => out.extend([back, bar]),
        }
        out.into_iter().map(|s| s.z(3)).collect()
    }

    /// The soups served and a bar of the time left, under the grid.
    fn hud_sprites(&self) -> Vec<Sprite> {
        let y = HEIGHT as f32;
        let left = time_left(self.episode.steps());
        let (bx, bw) = (3.5, 3.3);
        vec![
            Sprite::new(
                id::SCORE,
                Shape::Text {
                    x: nx(0.2),
                    y: ny(y + 0.1),
                    text: format!("Soups served: {}", self.served),
                    size: ny(0.4),
                },
            )
            .fill(INK),
            rect(id::CLOCK_BACK, bx, y + 0.2, bw, 0.2).fill("#d1d5db"),
            rect(id::CLOCK, bx, y + 0.2, bw * left, 0.2).fill(INK),
        ]
        .into_iter()
        .map(|s| s.z(7))
        .collect()
    }
}

/// A chef seen from above: a body in its colour, a white hat, a dark wedge on
/// the side it faces, and what it holds in front of it.
fn chef_sprites(base: u32, chef: &Chef, color: &str) -> Vec<Sprite> {
    let (cx, cy) = (chef.cell.x as f32 + 0.5, chef.cell.y as f32 + 0.5);
    let (dx, dy) = chef.facing.delta();
    let (dx, dy) = (dx as f32, dy as f32);
    // The perpendicular, for the wedge's base.
    let (px, py) = (-dy, dx);
    let nose = [
        (cx + 0.47 * dx, cy + 0.47 * dy),
        (cx + 0.26 * dx + 0.14 * px, cy + 0.26 * dy + 0.14 * py),
        (cx + 0.26 * dx - 0.14 * px, cy + 0.26 * dy - 0.14 * py),
    ];
    let mut out = vec![
        circle(base + part::BODY, cx, cy, 0.36)
            .fill(color)
            .stroke(INK, lw(0.02))
            .z(4),
        circle(base + part::HAT, cx - 0.06 * dx, cy - 0.06 * dy, 0.16)
            .fill("#ffffff")
            .stroke(INK, lw(0.015))
            .z(5),
        polygon(base + part::NOSE, &nose).fill(INK).z(5),
    ];
    let (ix, iy) = (cx + 0.3 * dx, cy + 0.3 * dy);
    out.extend(item_sprites(base + part::ITEM, chef.held, ix, iy, 0.15).map(|s| s.z(6)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const UP: i64 = 1;
    const DOWN: i64 = 2;
    const LEFT: i64 = 3;
    const RIGHT: i64 = 4;

    fn step(env: &mut Kitchen, a: i64, b: i64) -> Step {
        env.step(&[Action::Discrete(a), Action::Discrete(b)])
            .expect("a running kitchen takes valid actions")
    }

    /// Puts the chefs where a test wants them, after a reset.
    fn place(env: &mut Kitchen, a: (i32, i32), b: (i32, i32)) {
        env.reset(0).unwrap();
        env.chefs[0].cell = Cell { x: a.0, y: a.1 };
        env.chefs[1].cell = Cell { x: b.0, y: b.1 };
    }

    fn data(obs: &Observation) -> &[f32] {
        match obs {
            Observation::F32 { data, .. } => data,
            other => panic!("expected f32, got {other:?}"),
        }
    }

    /// Two agents with six actions each, and every observation of a random
    /// episode lies in the observation space.
    #[test]
    fn spec_and_observations_agree() {
        let mut env = Kitchen::new();
        let spec = env.spec().clone();
        assert_eq!(spec.agents.len(), 2);
        assert_eq!(spec.agents[0].name, "chef_0");
        assert_eq!(spec.agents[1].name, "chef_1");
        assert_eq!(counters().len(), 11);
        assert_eq!(obs_len(), 58);
        let inside = |obs: &[Observation]| {
            for (o, agent) in obs.iter().zip(&spec.agents) {
                let Space::Box {
                    low, high, shape, ..
                } = &agent.observation_space
                else {
                    panic!("box expected");
                };
                assert_eq!(o.shape(), shape.as_slice());
                for (k, v) in data(o).iter().enumerate() {
                    let v = f64::from(*v);
                    assert!(v >= low[k] && v <= high[k], "feature {k} = {v}");
                }
            }
        };
        inside(&env.reset(3).unwrap());
        let mut x: u64 = 12345;
        for _ in 0..400 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let step = step(&mut env, (x >> 33) as i64 % 6, (x >> 45) as i64 % 6);
            inside(&step.observations);
        }
    }

    /// Chefs never share a cell, whatever they do, and a head-on race for one
    /// cell leaves both where they were.
    #[test]
    fn chefs_never_overlap() {
        let mut env = Kitchen::new();
        for seed in 0..20 {
            env.reset(seed).unwrap();
            let mut x = seed.wrapping_add(99);
            for _ in 0..400 {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                step(&mut env, (x >> 33) as i64 % 5, (x >> 45) as i64 % 5);
                assert_ne!(env.chefs[0].cell, env.chefs[1].cell, "seed {seed}");
            }
        }
        place(&mut env, (2, 2), (4, 2));
        step(&mut env, RIGHT, LEFT);
        assert_eq!(env.chefs[0].cell, Cell { x: 2, y: 2 });
        assert_eq!(env.chefs[1].cell, Cell { x: 4, y: 2 });
        assert_eq!(
            (env.chefs[0].facing, env.chefs[1].facing),
            (Dir::Right, Dir::Left)
        );
        // Walking into the other chef only turns, even if it moves away.
        place(&mut env, (2, 2), (3, 2));
        step(&mut env, RIGHT, RIGHT);
        assert_eq!(env.chefs[0].cell, Cell { x: 2, y: 2 });
        assert_eq!(env.chefs[1].cell, Cell { x: 4, y: 2 });
        // Walking into a counter only turns.
        place(&mut env, (1, 2), (4, 2));
        step(&mut env, LEFT, STAY);
        assert_eq!(env.chefs[0].cell, Cell { x: 1, y: 2 });
        assert_eq!(env.chefs[0].facing, Dir::Left);
    }

    /// One soup made by hand, onion by onion, pays +20 to both chefs on the step
    /// it is served, and nothing before.
    #[test]
    fn recipe_end_to_end_pays_both() {
        let mut env = Kitchen::new();
        place(&mut env, (1, 1), (4, 3));
        let mut total = [0.0; 2];
        // Chef 0 acts while chef 1 stays out of the way; rewards add up in `total`.
        let act = |env: &mut Kitchen, a: i64, total: &mut [f64; 2]| {
            let s = step(env, a, STAY);
            total[0] += s.rewards[0];
            total[1] += s.rewards[1];
            s
        };
        for _ in 0..3 {
            // Take an onion on the left, walk to the pot and drop it in.
            act(&mut env, LEFT, &mut total);
            act(&mut env, INTERACT, &mut total);
            assert_eq!(env.chefs[0].held, Some(Item::Onion));
            act(&mut env, RIGHT, &mut total);
            act(&mut env, RIGHT, &mut total);
            act(&mut env, UP, &mut total);
            act(&mut env, INTERACT, &mut total);
            assert_eq!(env.chefs[0].held, None);
            act(&mut env, LEFT, &mut total);
            act(&mut env, LEFT, &mut total);
        }
        assert!(matches!(env.pot, Pot::Cooking { .. }), "{:?}", env.pot);
        // Fetch a dish from (1, 4) and come back to the pot.
        act(&mut env, DOWN, &mut total);
        act(&mut env, DOWN, &mut total);
        act(&mut env, DOWN, &mut total);
        act(&mut env, INTERACT, &mut total);
        assert_eq!(env.chefs[0].held, Some(Item::Dish));
        act(&mut env, UP, &mut total);
        act(&mut env, UP, &mut total);
        act(&mut env, RIGHT, &mut total);
        act(&mut env, RIGHT, &mut total);
        act(&mut env, UP, &mut total);
        // Plating before the soup is ready does nothing.
        let s = act(&mut env, INTERACT, &mut total);
        assert_eq!(env.chefs[0].held, Some(Item::Dish));
        assert_eq!(data(&s.observations[0])[obs::POT_COOKING], 1.0);
        while env.pot != Pot::Ready {
            act(&mut env, STAY, &mut total);
        }
        act(&mut env, INTERACT, &mut total);
        assert_eq!(env.chefs[0].held, Some(Item::Soup));
        assert_eq!(env.pot, Pot::Filling { onions: 0 });
        // Carry it to the window at (5, 4).
        act(&mut env, RIGHT, &mut total);
        act(&mut env, RIGHT, &mut total);
        act(&mut env, DOWN, &mut total);
        act(&mut env, DOWN, &mut total);
        assert_eq!(total, [0.0, 0.0]);
        let s = act(&mut env, INTERACT, &mut total);
        assert_eq!(s.rewards, vec![SOUP_REWARD, SOUP_REWARD]);
        assert_eq!(env.served(), 1);
        let info = env.info().unwrap_or_default();
        assert_eq!(
            info.get("soups_served"),
            Some(&serde_json::json!(1)),
            "the statistic"
        );
        assert_eq!(env.chefs[0].held, None);
    }

    /// The pot cooks for exactly COOK_TIME steps after the third onion.
    #[test]
    fn cooking_takes_cook_time() {
        let mut env = Kitchen::new();
        place(&mut env, (3, 1), (1, 3));
        env.chefs[0].facing = Dir::Up;
        env.pot = Pot::Filling { onions: 2 };
        env.chefs[0].held = Some(Item::Onion);
        step(&mut env, INTERACT, STAY);
        for n in 1..COOK_TIME {
            step(&mut env, STAY, STAY);
            assert_eq!(env.pot, Pot::Cooking { elapsed: n });
        }
        let s = step(&mut env, STAY, STAY);
        assert_eq!(env.pot, Pot::Ready);
        assert_eq!(data(&s.observations[1])[obs::POT_READY], 1.0);
    }

    /// Counters hold one item: put down, then picked up by the other chef, and
    /// each chef sees the item in the same counter slot.
    #[test]
    fn counters_pass_items_between_chefs() {
        let mut env = Kitchen::new();
        place(&mut env, (1, 2), (2, 1));
        env.chefs[0].held = Some(Item::Dish);
        step(&mut env, LEFT, UP);
        let s = step(&mut env, INTERACT, STAY);
        assert_eq!(env.chefs[0].held, None);
        // Counter (0, 2) is slot 4.
        let slot = obs::COUNTERS + 4 * obs::PER_COUNTER + Item::Dish as usize;
        assert_eq!(data(&s.observations[0])[slot], 1.0);
        assert_eq!(data(&s.observations[1])[slot], 1.0);
        // A second item does not go on an occupied counter.
        env.chefs[0].held = Some(Item::Onion);
        step(&mut env, INTERACT, STAY);
        assert_eq!(env.chefs[0].held, Some(Item::Onion));
        env.chefs[0].held = None;
        step(&mut env, INTERACT, STAY);
        assert_eq!(env.chefs[0].held, Some(Item::Dish));
        assert_eq!(env.counter_items[4], None);
    }

    /// Each chef sees itself first and the other second.
    #[test]
    fn observations_are_egocentric() {
        let mut env = Kitchen::new();
        place(&mut env, (1, 1), (5, 3));
        env.chefs[1].held = Some(Item::Soup);
        let s = step(&mut env, DOWN, STAY);
        let (a, b) = (data(&s.observations[0]), data(&s.observations[1]));
        assert_eq!(&a[0..2], &[1.0, 2.0]);
        assert_eq!(&b[10..12], &[1.0, 2.0]);
        assert_eq!(&b[0..2], &[5.0, 3.0]);
        assert_eq!(a[obs::OTHER + obs::HELD + 3], 1.0);
        assert_eq!(b[obs::OWN + obs::HELD + 3], 1.0);
        assert_eq!(a[obs::OWN + obs::FACING + Dir::Down.index()], 1.0);
        assert_eq!(a[obs::TIME_LEFT], 399.0 / 400.0);
    }

    /// Same seed and actions give the same observations, rewards and flags, and
    /// the episode is truncated, never terminated, at 400 steps.
    #[test]
    fn deterministic_and_truncated_at_400() {
        let run = |seed: u64| {
            let mut env = Kitchen::new();
            let mut trace = vec![env.reset(seed).unwrap()];
            let mut x = 7u64;
            let mut flags = vec![];
            for _ in 0..MAX_EPISODE_STEPS {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let s = step(&mut env, (x >> 33) as i64 % 6, (x >> 45) as i64 % 6);
                trace.push(s.observations);
                flags.push((s.rewards, s.terminated, s.truncated));
            }
            assert!(
                env.step(&[Action::Discrete(0), Action::Discrete(0)])
                    .is_err()
            );
            (trace, flags)
        };
        let (trace, flags) = run(11);
        assert_eq!((trace.clone(), flags.clone()), run(11));
        assert_ne!(trace[0], run(12).0[0]);
        assert!(flags.iter().all(|(_, te, _)| te == &vec![false, false]));
        let last = flags.len() - 1;
        for (n, (_, _, tr)) in flags.iter().enumerate() {
            assert_eq!(tr, &vec![n == last; 2], "step {n}");
        }
    }
}
