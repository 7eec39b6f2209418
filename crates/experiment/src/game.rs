//! Game scenes: an environment to play, its pace and length, and the key map that
//! turns held keys into actions.
//!
//! The key map is resolved on every tick for every human seat, so it is compiled
//! once at load into [`KeyBinding`]s ordered by priority (more keys first, then
//! file order) and [`GameScene::action_for`] only walks that short list. Keys and
//! the default action are validated against the environment's action space at
//! load, so a running game never meets an action the environment would refuse.
//!
//! Only agent 0 is played by a human for now, and the key map and default action
//! are that agent's. Multiplayer will add `[[scene.seat]]` tables, each with its
//! own agent, key map and default action; the fields here then become the
//! defaults for seats that give none.

use std::collections::HashMap;

use serde_json::{Value, json};
use tandem_env::{Action, EnvSpec, RenderKind, Space};

use crate::error::{Problems, Reported};
use crate::keys::{is_held, parse_chord};
use crate::markdown;
use crate::reader::{Field, Span, Table};
use crate::scene::Head;
use crate::suggest::did_you_mean;

/// Fields of a game scene besides `kind`, `id` and `title`.
pub(crate) const FIELDS: &[&str] = &[
    "env",
    "fps",
    "episodes",
    "time_limit_s",
    "max_steps",
    "render",
    "seed",
    "default_action",
    "instructions",
    "keys",
];

/// How frames travel to the browser.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RenderMode {
    /// Sprite lists, diffed frame to frame (small, sharp at any size).
    Sprites,
    /// PNG images (any environment, larger).
    Pixels,
}

impl RenderMode {
    pub fn name(self) -> &'static str {
        match self {
            RenderMode::Sprites => "sprites",
            RenderMode::Pixels => "pixels",
        }
    }
}

/// One entry of a key map: when all of `keys` are held, play `action`.
#[derive(Clone, Debug, PartialEq)]
pub struct KeyBinding {
    /// The entry's name as written in the file, such as `"ArrowLeft+Space"`;
    /// recorded with each step to say which binding chose the action.
    pub chord: String,
    /// The key names of the chord, in the order written.
    pub keys: Vec<String>,
    pub action: Action,
}

/// The action held keys select, and the binding that selected it.
#[derive(Clone, Debug, PartialEq)]
pub struct Resolved {
    pub action: Action,
    /// The chosen binding's chord, or `None` when no binding matched and the
    /// default action applies.
    pub chord: Option<String>,
}

/// An environment to play.
#[derive(Clone, Debug, PartialEq)]
pub struct GameScene {
    pub id: String,
    pub title: String,
    /// The registered environment id, as written in the file.
    pub env: String,
    /// That environment's spec, looked up at load.
    pub env_spec: EnvSpec,
    /// Ticks (steps) per second.
    pub fps: u32,
    /// Episodes to play; with `time_limit_s`, whichever comes first ends the game.
    pub episodes: Option<u32>,
    /// Seconds of play; the episode running at the limit is cut short.
    pub time_limit_s: Option<u32>,
    /// Steps after which an episode is truncated: the file's `max_steps`, else the
    /// environment's own limit, else none.
    pub max_steps: Option<u32>,
    pub render: RenderMode,
    /// Base seed; `None` means the server picks one per game (and records it).
    /// Episode seeds come from [`episode_seed`].
    pub seed: Option<u64>,
    /// Agent 0's action when no binding matches.
    pub default_action: Action,
    /// Markdown shown beside the game (may be empty).
    pub instructions: String,
    /// `instructions` rendered once, at load.
    pub instructions_html: String,
    /// The key map in file order.
    bindings: Vec<KeyBinding>,
    /// Indices into `bindings`, most keys first, ties in file order: the first
    /// binding here whose keys are all held is the one that wins.
    priority: Vec<usize>,
    /// Every key name the map uses, in order of first use.
    key_names: Vec<String>,
}

impl GameScene {
    /// The action for agent 0 when the browser reports `held` keys: among the
    /// bindings whose keys are all held, the one with the most keys (ties: the
    /// first in the file); keys the map does not use are ignored; with no match,
    /// the default action.
    pub fn action_for(&self, held: &[String]) -> Resolved {
        for &index in &self.priority {
            let binding = &self.bindings[index];
            if binding.keys.iter().all(|key| is_held(key, held)) {
                return Resolved {
                    action: binding.action.clone(),
                    chord: Some(binding.chord.clone()),
                };
            }
        }
        Resolved {
            action: self.default_action.clone(),
            chord: None,
        }
    }

    /// The key map, in file order.
    pub fn bindings(&self) -> &[KeyBinding] {
        &self.bindings
    }

    /// Every key name the key map uses, in order of first use.
    pub fn key_names(&self) -> &[String] {
        &self.key_names
    }

    /// The canvas aspect the environment draws for: `(width, height)`.
    pub fn canvas(&self) -> (u32, u32) {
        match self.env_spec.render {
            RenderKind::Pixels { width, height } | RenderKind::Sprites { width, height } => {
                (width, height)
            }
        }
    }

    /// The scene's settings as recorded with each game: everything that decides
    /// how it plays, with the key map in file order.
    pub fn to_config_json(&self) -> Value {
        let keys: Vec<Value> = self
            .bindings
            .iter()
            .map(|b| json!({"chord": b.chord, "keys": b.keys, "action": b.action}))
            .collect();
        json!({
            "scene": self.id,
            "env": self.env,
            "env_version": self.env_spec.version,
            "fps": self.fps,
            "episodes": self.episodes,
            "time_limit_s": self.time_limit_s,
            "max_steps": self.max_steps,
            "render": self.render.name(),
            "seed": self.seed,
            "default_action": self.default_action,
            "keys": keys,
        })
    }

    pub(crate) fn client_json(&self) -> Value {
        let (width, height) = self.canvas();
        json!({
            "kind": "game",
            "id": self.id,
            "title": self.title,
            "instructions_html": self.instructions_html,
            "fps": self.fps,
            "render": self.render.name(),
            "canvas": {"width": width, "height": height},
            "keys": self.key_names,
            "episodes": self.episodes,
            "time_limit_s": self.time_limit_s,
        })
    }
}

/// The seed of episode `episode` (0-based) of game `game` from base seed `base`.
///
/// Each input is mixed with SplitMix64, so neighbouring games and episodes get
/// unrelated seeds; the result is masked to 63 bits so that it fits a signed
/// 64-bit database column and any Gymnasium seed argument. This function is part
/// of the recorded-data contract: changing it would change which seeds an
/// experiment file produces, so it must not change.
pub fn episode_seed(base: u64, game: u64, episode: u64) -> u64 {
    let mixed = splitmix64(splitmix64(splitmix64(base) ^ game) ^ episode);
    mixed & (i64::MAX as u64)
}

fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

pub(crate) fn read(
    problems: &mut Problems,
    table: &Table,
    head: Result<Head, Reported>,
) -> Result<GameScene, Reported> {
    let env = read_env(problems, table);
    // `read_env` only returns specs with exactly one agent.
    let space = env
        .as_ref()
        .map(|env| (env.id.as_str(), &env.agents[0].action_space))
        .map_err(|r| *r);

    let fps = table.opt_int(problems, "fps", 1..=240);
    let episodes = table.opt_int(problems, "episodes", 1..=10_000);
    let time_limit_s = table.opt_int(problems, "time_limit_s", 1..=86_400);
    let max_steps = table.opt_int(problems, "max_steps", 1..=i64::from(u32::MAX));
    let seed = table.opt_int(problems, "seed", 0..=i64::MAX);
    let instructions = table.opt_str(problems, "instructions");
    let render = read_render(problems, table, env.as_ref().ok());

    let ends = match (&episodes, &time_limit_s) {
        (Ok(None), Ok(None)) => Err(problems.report(
            table.span(),
            table.child_path("episodes"),
            "a game scene needs episodes, time_limit_s or both, so that it ends",
        )),
        _ => Ok(()),
    };

    let default_action = match table.field("default_action") {
        None => Err(table.missing(
            problems,
            "default_action",
            ": the action played while no mapped key is held",
        )),
        Some(field) => {
            space.and_then(|(env_id, space)| read_action(problems, &field, env_id, space))
        }
    };
    let bindings = read_keys(problems, table, space);

    let head = head?;
    let env = env?;
    let bindings = bindings?;
    ends?;
    let instructions = instructions?.unwrap_or_default();
    let mut priority: Vec<usize> = (0..bindings.len()).collect();
    // Stable, so equal-sized chords keep file order.
    priority.sort_by_key(|&i| std::cmp::Reverse(bindings[i].keys.len()));
    let mut key_names: Vec<String> = Vec::new();
    for key in bindings.iter().flat_map(|b| &b.keys) {
        if !key_names.contains(key) {
            key_names.push(key.clone());
        }
    }
    // Range checks above keep these conversions lossless; a failure would only
    // mean a range was widened without widening the type.
    let to_u32 = |v: Option<i64>| v.and_then(|v| u32::try_from(v).ok());
    Ok(GameScene {
        id: head.id,
        title: head.title,
        fps: to_u32(fps?).unwrap_or(env.fps),
        episodes: to_u32(episodes?),
        time_limit_s: to_u32(time_limit_s?),
        max_steps: to_u32(max_steps?).or(env.max_episode_steps),
        render: render?,
        seed: seed?.and_then(|s| u64::try_from(s).ok()),
        default_action: default_action?,
        instructions_html: markdown::to_html(&instructions),
        instructions,
        env: env.id.clone(),
        env_spec: env,
        bindings,
        priority,
        key_names,
    })
}

/// Looks up `env`, which must name a registered, single-agent environment.
fn read_env(problems: &mut Problems, table: &Table) -> Result<EnvSpec, Reported> {
    let Some(field) = table.field("env") else {
        let hint = format!(
            ": the id of a registered environment, one of {}",
            tandem_envs::ids().join(", ")
        );
        return Err(table.missing(problems, "env", &hint));
    };
    let id = field.string(problems)?;
    let Some(spec) = tandem_envs::spec(id) else {
        let ids = tandem_envs::ids();
        return Err(field.report(
            problems,
            format!(
                "unknown environment {id:?}{}; known environments: {}",
                did_you_mean(id, ids),
                ids.join(", ")
            ),
        ));
    };
    if spec.agents.len() != 1 {
        return Err(field.report(
            problems,
            format!(
                "{id} has {} agents, but game scenes can seat only one human player for now",
                spec.agents.len()
            ),
        ));
    }
    Ok(spec)
}

fn read_render(
    problems: &mut Problems,
    table: &Table,
    env: Option<&EnvSpec>,
) -> Result<RenderMode, Reported> {
    let native = match env.map(|e| e.render) {
        Some(RenderKind::Pixels { .. }) => RenderMode::Pixels,
        _ => RenderMode::Sprites,
    };
    let Some(field) = table.field("render") else {
        return Ok(native);
    };
    let name = field.string(problems)?;
    let render = match name {
        "sprites" => RenderMode::Sprites,
        "pixels" => RenderMode::Pixels,
        other => {
            return Err(field.report(
                problems,
                format!(
                    "render must be \"sprites\" or \"pixels\", not {other:?}{}",
                    did_you_mean(other, &["sprites", "pixels"])
                ),
            ));
        }
    };
    if let Some(env) = env
        && render == RenderMode::Sprites
        && native == RenderMode::Pixels
    {
        return Err(field.report(
            problems,
            format!(
                "{} draws pixels, not sprites, so render must be \"pixels\"",
                env.id
            ),
        ));
    }
    Ok(render)
}

/// Reads the `keys` table. Chords are checked even when the environment is
/// unknown, so that one run reports both kinds of problem.
fn read_keys(
    problems: &mut Problems,
    table: &Table,
    space: Result<(&str, &Space), Reported>,
) -> Result<Vec<KeyBinding>, Reported> {
    let Some(field) = table.field("keys") else {
        return Err(table.missing(
            problems,
            "keys",
            ": a [scene.keys] table mapping key names to actions, \
             such as ArrowLeft = 0",
        ));
    };
    let keys = field.table(problems)?;
    let entries = keys.fields();
    if entries.is_empty() {
        return Err(field.report(
            problems,
            "the key map is empty: map at least one key to an action, such as ArrowLeft = 0",
        ));
    }
    let mut result = Ok(Vec::with_capacity(entries.len()));
    // Each chord's keys, sorted, to find entries that name the same keys.
    let mut seen: HashMap<Vec<String>, (String, Span)> = HashMap::new();
    for entry in &entries {
        let chord = parse_chord(entry.key)
            .map_err(|e| entry.report_key(problems, e.message()))
            .and_then(|keys| {
                let mut sorted = keys.clone();
                sorted.sort();
                if let Some((other, span)) = seen.get(&sorted) {
                    let (line, _) = problems.lines().position(span.start);
                    return Err(entry.report_key(
                        problems,
                        format!("{other:?} (line {line}) already maps the same keys"),
                    ));
                }
                seen.insert(sorted, (entry.key.to_string(), entry.key_span.clone()));
                Ok(keys)
            });
        let action = space.and_then(|(env_id, space)| read_action(problems, entry, env_id, space));
        match (&mut result, chord, action) {
            (Ok(bindings), Ok(keys), Ok(action)) => bindings.push(KeyBinding {
                chord: entry.key.to_string(),
                keys,
                action,
            }),
            (_, Err(r), _) | (_, _, Err(r)) => result = Err(r),
            (Err(_), Ok(_), Ok(_)) => {}
        }
    }
    result
}

/// Reads an action written for `space` and checks that the space contains it.
fn read_action(
    problems: &mut Problems,
    field: &Field,
    env_id: &str,
    space: &Space,
) -> Result<Action, Reported> {
    let expected = describe(space);
    let mismatch = |problems: &mut Problems, shown: String| {
        field.report(
            problems,
            format!("{shown} is not an action of {env_id}: its actions are {expected}"),
        )
    };
    let action = match space {
        Space::Discrete { .. } => {
            let value = field.value(problems, "an integer action")?;
            match value.as_integer() {
                Some(i) => Action::Discrete(i),
                None => return Err(mismatch(problems, shown(value))),
            }
        }
        Space::MultiDiscrete { .. } => {
            let value = field.value(problems, "an array action")?;
            let ints: Option<Vec<i64>> = value
                .as_array()
                .and_then(|a| a.iter().map(toml_edit::Value::as_integer).collect());
            match ints {
                Some(ints) => Action::MultiDiscrete(ints),
                None => return Err(mismatch(problems, shown(value))),
            }
        }
        Space::Box { .. } => {
            let value = field.value(problems, "an array action")?;
            let floats: Option<Vec<f32>> = value.as_array().and_then(|a| {
                a.iter()
                    .map(|v| {
                        v.as_float()
                            .or_else(|| v.as_integer().map(|i| i as f64))
                            .map(|f| f as f32)
                    })
                    .collect()
            });
            match floats {
                Some(floats) => Action::Continuous(floats),
                None => return Err(mismatch(problems, shown(value))),
            }
        }
    };
    if space.contains(&action) {
        Ok(action)
    } else {
        let shown = match &action {
            Action::Discrete(i) => i.to_string(),
            Action::MultiDiscrete(v) => format!("{v:?}"),
            Action::Continuous(v) => format!("{v:?}"),
        };
        Err(mismatch(problems, shown))
    }
}

/// A value as written, without surrounding white space or comments.
fn shown(value: &toml_edit::Value) -> String {
    let mut value = value.clone();
    value.decor_mut().clear();
    value.to_string()
}

/// A space's elements in words, for error messages.
fn describe(space: &Space) -> String {
    match space {
        Space::Discrete { n, start } if *n == 1 => format!("only the integer {start}"),
        Space::Discrete { n, start } => {
            format!("the integers {start} to {}", start + n - 1)
        }
        Space::MultiDiscrete { nvec, start } => {
            let ranges: Vec<String> = nvec
                .iter()
                .zip(start)
                .map(|(n, s)| format!("{s}..={}", s + n - 1))
                .collect();
            format!(
                "arrays of {} integers within [{}]",
                nvec.len(),
                ranges.join(", ")
            )
        }
        Space::Box { low, high, .. } => {
            let ranges: Vec<String> = low
                .iter()
                .zip(high)
                .map(|(lo, hi)| format!("{lo}..={hi}"))
                .collect();
            format!(
                "arrays of {} numbers within [{}]",
                low.len(),
                ranges.join(", ")
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Episode seeds are fixed by the contract, distinct, and fit in an i64.
    #[test]
    fn episode_seeds_are_stable_and_distinct() {
        let a = episode_seed(1, 0, 0);
        assert_eq!(a, episode_seed(1, 0, 0));
        assert_ne!(a, episode_seed(1, 0, 1));
        assert_ne!(a, episode_seed(1, 1, 0));
        assert_ne!(a, episode_seed(2, 0, 0));
        for k in 0..100 {
            assert!(episode_seed(u64::MAX, 7, k) <= i64::MAX as u64);
        }
    }

    /// Spaces are described the way a researcher would write their elements.
    #[test]
    fn spaces_are_described() {
        assert_eq!(describe(&Space::discrete(3)), "the integers 0 to 2");
        assert_eq!(
            describe(&Space::MultiDiscrete {
                nvec: vec![3, 2],
                start: vec![0, 1]
            }),
            "arrays of 2 integers within [0..=2, 1..=2]"
        );
    }
}
