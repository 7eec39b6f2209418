//! Game scenes: an environment to play, its pace and length, who sits in each
//! of its agents' seats, and how the lobby fills them.
//!
//! A scene without `[[scene.seat]]` tables is a single-player game: its one
//! agent is played by a human with the scene's `keys` and `default_action`.
//! With seats, each agent is human or AI (see `seat`), the scene-level key map
//! becomes the default for human seats that give none, and `humans`,
//! `human_timeout_s` and `reconnect_grace_s` say how the lobby groups
//! participants and what happens when one leaves.

use serde_json::{Value, json};
use tandem_env::{EnvSpec, RenderKind};
use tandem_wire::{Canvas, GameView};

use crate::error::{Problems, Reported};
use crate::keymap::{KeyMap, read_keys};
use crate::markdown;
use crate::reader::Table;
use crate::scene::Head;
use crate::seat::{SeatConfig, SeatContext, read_seats, read_single};
use crate::suggest::did_you_mean;
use tandem_env::DefaultKey;
use tandem_envs::{Catalog, HostedEnv, is_hosted};

/// How long a participant waits for partners, when the file does not say.
pub const DEFAULT_HUMAN_TIMEOUT_S: u32 = 120;
/// How long a participant who left may take to come back, when the file does
/// not say.
pub const DEFAULT_RECONNECT_GRACE_S: u32 = 30;

/// Fields of a game scene besides `kind`, `id` and `title`.
pub(crate) const FIELDS: &[&str] = &[
    "env",
    "env_kwargs",
    "fps",
    "episodes",
    "time_limit_s",
    "max_steps",
    "render",
    "seed",
    "default_action",
    "instructions",
    "keys",
    "seat",
    "humans",
    "human_timeout_s",
    "reconnect_grace_s",
    "timed_out_markdown",
    "timed_out_code",
    "timed_out_redirect",
    "group",
    "min_active_s",
    "not_passed_markdown",
    "not_passed_code",
    "not_passed_redirect",
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

impl From<RenderMode> for tandem_wire::RenderMode {
    fn from(mode: RenderMode) -> Self {
        match mode {
            RenderMode::Sprites => tandem_wire::RenderMode::Sprites,
            RenderMode::Pixels => tandem_wire::RenderMode::Pixels,
        }
    }
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
    /// Markdown shown beside the game (may be empty).
    pub instructions: String,
    /// `instructions` rendered once, at load.
    pub instructions_html: String,
    /// One seat per agent, in agent order.
    pub seats: Vec<SeatConfig>,
    /// Participants matched into one game: at least one, at most the number of
    /// human seats. Human seats beyond it start with their fallback policy.
    pub humans: u32,
    /// Seconds a participant waits in the lobby before the game starts with
    /// the humans present and fallback policies in the empty human seats.
    /// `None`: wait for a full group.
    pub human_timeout_s: Option<u32>,
    /// Seconds a participant who disconnects may take to come back and get
    /// their seat back. Meanwhile the seat's fallback plays (or, without one,
    /// the game pauses); after it, the fallback keeps the seat (or, without
    /// one, the game ends for everyone with an explanation).
    pub reconnect_grace_s: u32,
    /// What a participant whose lobby timed out with no partner sees, when the
    /// scene says (Prolific's "timed out" code): the study ends for them
    /// there. `None`: they skip the game and the study goes on.
    pub timed_out: Option<Box<crate::end::EarlyEnd>>,
    /// `group = "same"`: participants who played an earlier multiplayer game
    /// together are seated together again, waiting for a member who is
    /// behind under `human_timeout_s` and the seats' fallbacks.
    pub group_same: bool,
    /// Seconds a participant must have played actively (steps chosen with
    /// their own keys) to pass the scene; who does not sees `not_passed`
    /// and the study ends for them there.
    pub min_active_s: Option<u32>,
    pub not_passed: Option<Box<crate::end::EarlyEnd>>,
}

impl GameScene {
    /// Whether participants meet in a lobby before playing.
    pub fn is_multiplayer(&self) -> bool {
        self.humans > 1
    }

    /// The seats participants can hold, in agent order.
    pub fn human_seats(&self) -> impl Iterator<Item = &SeatConfig> {
        self.seats.iter().filter(|s| s.human().is_some())
    }

    /// The key map of agent `agent`'s seat, if a human plays it with keys.
    pub fn keymap(&self, agent: usize) -> Option<&KeyMap> {
        self.seats.get(agent)?.human()?.keys.as_ref()
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
    /// how it plays, with every seat's key map in file order.
    pub fn to_config_json(&self) -> Value {
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
            "humans": self.humans,
            "human_timeout_s": self.human_timeout_s,
            "reconnect_grace_s": self.reconnect_grace_s,
            "seats": self.seats.iter().map(SeatConfig::to_json).collect::<Vec<_>>(),
        })
    }

    /// The scene as the participant page receives it.
    pub fn view(&self) -> GameView {
        let (width, height) = self.canvas();
        let mut keys: Vec<String> = Vec::new();
        for name in self.seats.iter().flat_map(SeatConfig::key_names) {
            if !keys.contains(&name) {
                keys.push(name);
            }
        }
        GameView {
            id: self.id.clone(),
            title: self.title.clone(),
            instructions_html: self.instructions_html.clone(),
            fps: self.fps,
            render: self.render.into(),
            canvas: Canvas { width, height },
            keys,
            episodes: self.episodes,
            time_limit_s: self.time_limit_s,
            multiplayer: self.is_multiplayer(),
            agents: self
                .env_spec
                .agents
                .iter()
                .map(|a| a.name.clone())
                .collect(),
        }
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
    policy_names: &[String],
    envs: &Catalog,
    after_multiplayer: bool,
) -> Result<GameScene, Reported> {
    let env = read_env(problems, table, envs);
    let fps = table.opt_int(problems, "fps", 1..=240);
    let episodes = table.opt_int(problems, "episodes", 1..=10_000);
    let time_limit_s = table.opt_int(problems, "time_limit_s", 1..=86_400);
    let max_steps = table.opt_int(problems, "max_steps", 1..=i64::from(u32::MAX));
    let seed = table.opt_int(problems, "seed", 0..=i64::MAX);
    let instructions = table.opt_str(problems, "instructions");
    let render = read_render(problems, table, env.as_ref().ok().map(|(spec, _)| spec));
    let humans = table.opt_int(problems, "humans", 1..=64);
    let human_timeout_s = table.opt_int(problems, "human_timeout_s", 1..=86_400);
    let reconnect_grace_s = table.opt_int(problems, "reconnect_grace_s", 0..=86_400);
    let group = match table.field("group") {
        None => Ok(false),
        Some(field) => field.text(problems).and_then(|g| match g.as_str() {
            "new" => Ok(false),
            "same" if after_multiplayer => Ok(true),
            "same" => Err(field.report(
                problems,
                "group = \"same\" keeps the groups of an earlier multiplayer game scene, \
                 and there is none before this one",
            )),
            other => Err(field.report(
                problems,
                format!("group is \"same\" or \"new\", not {other:?}"),
            )),
        }),
    };

    let ends = match (&episodes, &time_limit_s) {
        (Ok(None), Ok(None)) => Err(problems.report(
            table.span(),
            table.child_path("episodes"),
            "a game scene needs episodes, time_limit_s or both, so that it ends",
        )),
        _ => Ok(()),
    };

    let seats = match &env {
        Ok((env, default_keys)) => {
            let ctx = SeatContext {
                env,
                default_keys: default_keys.as_deref(),
                scene_keys: table.field("keys"),
                scene_default: table.field("default_action"),
                policy_names,
            };
            match table.field("seat") {
                Some(field) => read_seats(problems, &field, &ctx),
                None if env.agents.len() == 1 => read_single(problems, table, &ctx),
                None => {
                    let names: Vec<&str> = env.agents.iter().map(|a| a.name.as_str()).collect();
                    Err(problems.report(
                        table.span(),
                        table.child_path("seat"),
                        format!(
                            "{} has {} agents ({}): give each a [[scene.seat]] with \
                             human = true or ai = \"<policy>\"",
                            env.id,
                            names.len(),
                            names.join(", ")
                        ),
                    ))
                }
            }
        }
        Err(r) => {
            // Chords are still checked, so one run reports both kinds of problem.
            if let Some(field) = table.field("keys") {
                let _ = read_keys(problems, &field, Err(*r));
            }
            Err(*r)
        }
    };

    let head = head?;
    let (env, _) = env?;
    let seats = seats?;
    ends?;
    let human_seats = seats.iter().filter(|s| s.human().is_some()).count() as u32;
    let humans = match humans? {
        None => human_seats,
        Some(n) => {
            let n = n as u32;
            let at = |problems: &mut Problems, message: String| match table.field("humans") {
                Some(f) => f.report(problems, message),
                None => problems.report(table.span(), table.child_path("humans"), message),
            };
            if n > human_seats {
                return Err(at(
                    problems,
                    format!("humans = {n}, but only {human_seats} seats have human = true"),
                ));
            }
            // Human seats only a person can fill: fewer humans than these
            // would leave one of them empty.
            let unfillable: Vec<&str> = seats
                .iter()
                .filter(|s| s.human().is_some() && s.fallback().is_none())
                .map(|s| s.agent_name.as_str())
                .collect();
            if (n as usize) < unfillable.len() {
                return Err(at(
                    problems,
                    format!(
                        "humans = {n} leaves {} human seats to their fallback, but {} \
                         have no fallback",
                        human_seats - n,
                        unfillable.join(", ")
                    ),
                ));
            }
            n
        }
    };
    if humans == 0 {
        return Err(problems.report(
            table.span(),
            table.child_path("seat"),
            "a game scene needs at least one seat with human = true: \
             participants have to play or watch something",
        ));
    }
    let instructions = instructions?.unwrap_or_default();
    // Range checks above keep these conversions lossless; a failure would only
    // mean a range was widened without widening the type.
    let to_u32 = |v: Option<i64>| v.and_then(|v| u32::try_from(v).ok());
    let human_timeout_s = to_u32(human_timeout_s?);
    let timed_out = crate::end::read_early_end(
        problems,
        table,
        "timed_out",
        "No other participant arrived in time, so the study ends here. Thank you for waiting.",
        false,
    )?;
    let group_same = group?;
    let min_active_s = table.opt_int(problems, "min_active_s", 1..=86_400)?;
    let not_passed = crate::end::read_early_end(
        problems,
        table,
        "not_passed",
        "Thank you for playing. You did not play long enough to complete this part of the \
         study, so it ends here.",
        min_active_s.is_some(),
    )?;
    if not_passed.is_some() && min_active_s.is_none() {
        return Err(problems.report(
            table.span(),
            table.child_path("min_active_s"),
            "not_passed_* fields need min_active_s: the active seconds that pass",
        ));
    }
    if group_same && humans < 2 {
        return Err(problems.report(
            table.span(),
            table.child_path("group"),
            "group = \"same\" needs a multiplayer scene (humans of 2 or more)",
        ));
    }
    Ok(GameScene {
        timed_out: timed_out.map(Box::new),
        min_active_s: to_u32(min_active_s),
        not_passed: not_passed.map(Box::new),
        group_same,
        id: head.id,
        title: head.title,
        fps: to_u32(fps?).unwrap_or(env.fps),
        episodes: to_u32(episodes?),
        time_limit_s: to_u32(time_limit_s?),
        max_steps: to_u32(max_steps?).or(env.max_episode_steps),
        render: render?,
        seed: seed?.and_then(|s| u64::try_from(s).ok()),
        instructions_html: markdown::to_html(&instructions),
        instructions,
        env: env.id.clone(),
        env_spec: env,
        seats,
        humans,
        human_timeout_s: if humans > 1 {
            human_timeout_s.or(Some(DEFAULT_HUMAN_TIMEOUT_S))
        } else {
            human_timeout_s
        },
        reconnect_grace_s: to_u32(reconnect_grace_s?).unwrap_or(DEFAULT_RECONNECT_GRACE_S),
    })
}

/// Looks up `env`, which must name an environment of the catalog (with its
/// `env_kwargs`, for a hosted one); returns its spec and its own key map.
fn read_env(
    problems: &mut Problems,
    table: &Table,
    envs: &Catalog,
) -> Result<(EnvSpec, Option<Vec<DefaultKey>>), Reported> {
    let ids = envs.ids();
    let Some(field) = table.field("env") else {
        let hint = format!(
            ": the id of a registered environment, one of {}",
            ids.join(", ")
        );
        return Err(table.missing(problems, "env", &hint));
    };
    let id = field.string(problems)?;
    let kwargs = match table.field("env_kwargs") {
        Some(kwargs) if !is_hosted(id) => {
            return Err(kwargs.report(
                problems,
                "env_kwargs apply only to Python environments (env = \"gymnasium:...\", \"pettingzoo:...\" or \"python:...\")",
            ));
        }
        Some(kwargs) => crate::hosted::read_kwargs(problems, &kwargs)?,
        None => serde_json::Map::new(),
    };
    let hosted = match HostedEnv::parse(id, kwargs) {
        Some(Err(why)) => return Err(field.report(problems, why)),
        Some(Ok(hosted)) => Some(hosted),
        None => None,
    };
    if let Some(hosted) = &hosted {
        if let Some(why) = envs.unavailable(&hosted.id) {
            return Err(field.report(problems, format!("could not make {id}: {why}")));
        }
        return match envs.get(&hosted.id) {
            Ok(factory) => Ok((
                factory.spec().clone(),
                factory.default_keys().map(<[DefaultKey]>::to_vec),
            )),
            Err(_) => Err(field.report(
                problems,
                format!("{id} runs in a Python worker, and none was started for it"),
            )),
        };
    }
    let Some(spec) = envs.spec(id) else {
        let names: Vec<&str> = ids.iter().map(String::as_str).collect();
        return Err(field.report(
            problems,
            format!(
                "unknown environment {id:?}{}; known environments: {}",
                did_you_mean(id, &names),
                ids.join(", ")
            ),
        ));
    };
    let default_keys = envs
        .get(id)
        .ok()
        .and_then(|f| f.default_keys().map(<[DefaultKey]>::to_vec));
    Ok((spec.clone(), default_keys))
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

    fn kitchen(id: &str, extra: &str) -> String {
        format!(
            "[[scene]]\nkind = \"game\"\nid = \"{id}\"\ntitle = \"K\"\nenv = \"Kitchen-v0\"\n\
             time_limit_s = 5\ndefault_action = 0\n{extra}\n[scene.keys]\nSpace = 5\n\
             [[scene.seat]]\nagent = \"chef_0\"\nhuman = true\n\
             [[scene.seat]]\nagent = \"chef_1\"\nhuman = true\n"
        )
    }

    /// `group = "same"` needs an earlier multiplayer game scene to keep the
    /// groups of; `same` and `new` are the only values.
    #[test]
    fn groups_that_last_need_an_earlier_group() {
        let head = "id = \"g\"\ntitle = \"G\"\n";
        let end = "[[scene]]\nkind = \"end\"\nid = \"end\"\ntitle = \"E\"\nmarkdown = \"D.\"\n";
        let ok = format!(
            "{head}{}{}{end}",
            kitchen("a", ""),
            kitchen("b", "group = \"same\"")
        );
        let experiment = crate::parse(&ok, "g.toml").unwrap_or_else(|e| panic!("{e}"));
        let groups: Vec<bool> = experiment
            .scenes
            .iter()
            .filter_map(|s| s.as_game().map(|g| g.group_same))
            .collect();
        assert_eq!(groups, [false, true]);
        let first = format!("{head}{}{end}", kitchen("a", "group = \"same\""));
        let e = crate::parse(&first, "g.toml").expect_err("no earlier group");
        assert!(
            e.to_string().contains("there is none before this one"),
            "{e}"
        );
        let odd = format!(
            "{head}{}{}{end}",
            kitchen("a", ""),
            kitchen("b", "group = \"old\"")
        );
        let e = crate::parse(&odd, "g.toml").expect_err("not a value");
        assert!(e.to_string().contains("\"same\" or \"new\""), "{e}");
    }

    /// A not-passed ending needs the minimum it is for.
    #[test]
    fn not_passed_needs_a_minimum() {
        let head = "id = \"g\"\ntitle = \"G\"\n";
        let end = "[[scene]]\nkind = \"end\"\nid = \"end\"\ntitle = \"E\"\nmarkdown = \"D.\"\n";
        let without = format!("{head}{}{end}", kitchen("a", "not_passed_code = \"X\""));
        let e = crate::parse(&without, "g.toml").expect_err("no minimum");
        assert!(e.to_string().contains("need min_active_s"), "{e}");
        let with = format!("{head}{}{end}", kitchen("a", "min_active_s = 30"));
        let experiment = crate::parse(&with, "g.toml").unwrap_or_else(|e| panic!("{e}"));
        let game = experiment.scenes[0]
            .as_game()
            .unwrap_or_else(|| panic!("a game"));
        assert_eq!(game.min_active_s, Some(30));
        assert!(game.not_passed.is_some(), "a default not-passed page");
    }
}
