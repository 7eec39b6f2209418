//! The experiment: a file's id, title and scenes, and the functions that load one.
//!
//! Loading is all-or-nothing: [`parse`] either returns an [`Experiment`] in which
//! every scene, key map and template has been checked, or every problem it found.
//! The server can then trust the experiment it holds and never re-validates.

use std::path::Path;

use serde_json::Value;
use tandem_envs::Catalog;
use tandem_wire::ExperimentInfo;

use crate::design::{self, Design};
use crate::error::{ConfigError, Problems};
use crate::policy::{self, PolicyDef};
use crate::reader::{Table, check_id};
use crate::scene::{self, Scene};

/// The built-in experiment's file text: consent, instructions, CartPole, a short
/// survey and an end page with a completion code.
pub const DEFAULT_SOURCE: &str = include_str!("../default.toml");

/// The file name problems in [`DEFAULT_SOURCE`] would be reported against.
const DEFAULT_FILE_NAME: &str = "<built-in default.toml>";

/// Fields of the top-level table.
const ROOT_FIELDS: &[&str] = &[
    "id",
    "title",
    "lockout_group",
    "bonus",
    "scene",
    "policy",
    "condition",
    "block",
];

/// A validated experiment.
#[derive(Clone, Debug, PartialEq)]
pub struct Experiment {
    /// Unique among the experiments a database holds: `[a-z0-9][a-z0-9_-]*`.
    pub id: String,
    pub title: String,
    /// Studies that share a lockout group take each person once: a Prolific
    /// or MTurk id that has started one of them is refused by the others.
    pub lockout_group: Option<String>,
    /// What each participant who finished earns from their game scores.
    pub bonus: Option<crate::bonus::BonusRule>,
    /// Every scene a participant may be shown: the file's, in file order, then
    /// those its design derives (a condition's version of a scene, a block's
    /// repetitions). Without a design, the file's scenes in the order every
    /// participant sees them, the last an end scene.
    pub scenes: Vec<Scene>,
    /// Conditions and blocks: which scenes each participant sees, in which
    /// order (their plan).
    pub design: Design,
    /// Policies the file defines in `[policy.NAME]` tables, in file order.
    pub policies: Vec<PolicyDef>,
    /// The file text, kept so the exact configuration is recorded with the data.
    pub source: String,
    /// The name problems were reported against, usually the path.
    pub file_name: String,
}

impl Experiment {
    pub fn scene_count(&self) -> usize {
        self.scenes.len()
    }

    pub fn scene(&self, index: usize) -> Option<&Scene> {
        self.scenes.get(index)
    }

    /// The index of the scene with this id.
    pub fn scene_index(&self, id: &str) -> Option<usize> {
        self.scenes.iter().position(|s| s.id() == id)
    }

    /// The plan stored for a participant (scene ids, in order) as catalogue
    /// indices; ids the file no longer has are left out. Without a stored
    /// plan (participants from before designs existed), the file's scenes in
    /// order.
    pub fn plan_of(&self, stored: Option<&[String]>) -> Vec<usize> {
        let plan: Vec<usize> = stored
            .unwrap_or_default()
            .iter()
            .filter_map(|id| self.scene_index(id))
            .collect();
        if plan.is_empty() {
            (0..self.design.file_scene_count()).collect()
        } else {
            plan
        }
    }

    /// A plan's scene ids, as stored with the participant.
    pub fn plan_ids(&self, plan: &[usize]) -> Vec<String> {
        plan.iter()
            .filter_map(|&i| self.scenes.get(i).map(|s| s.id().to_string()))
            .collect()
    }

    /// The scene a score scene at `step` of `plan` shows: the latest scene
    /// before it that is (or derives from) the file scene its `game` names.
    pub fn score_game(&self, plan: &[usize], step: usize) -> Option<&str> {
        let Some(Scene::Score(score)) = plan.get(step).and_then(|&i| self.scenes.get(i)) else {
            return None;
        };
        plan[..step].iter().rev().find_map(|&i| {
            let origin = *self.design.origins.get(i)?;
            (self.scenes.get(origin)?.id() == score.game).then(|| self.scenes[i].id())
        })
    }

    /// Every game seat that names a policy: `(scene index, seat, policy)`, for
    /// checking that each named policy can serve the seat that names it.
    pub fn policy_uses(&self) -> Vec<(usize, &crate::SeatConfig, &crate::PolicyRef)> {
        let mut uses = Vec::new();
        for (index, scene) in self.scenes.iter().enumerate() {
            if let Scene::Game(game) = scene {
                for seat in &game.seats {
                    for policy in seat.policies() {
                        uses.push((index, seat, policy));
                    }
                }
            }
        }
        uses
    }

    /// The `experiment` object of the `hello` message: `id` and `title`.
    pub fn view(&self) -> ExperimentInfo {
        ExperimentInfo {
            id: self.id.clone(),
            title: self.title.clone(),
        }
    }

    /// [`Experiment::view`] as JSON.
    pub fn client_json(&self) -> Value {
        scene::to_json(&self.view())
    }
}

/// Parses and validates an experiment file whose games use the built-in
/// environments. `file_name` is only used in messages.
pub fn parse(source: &str, file_name: &str) -> Result<Experiment, ConfigError> {
    parse_with(source, file_name, &Catalog::builtin())
}

/// [`parse`], with the environments of `envs`.
pub fn parse_with(
    source: &str,
    file_name: &str,
    envs: &Catalog,
) -> Result<Experiment, ConfigError> {
    let mut problems = Problems::new(file_name, source);
    let document = match toml_edit::Document::parse(source) {
        Ok(document) => document,
        Err(error) => {
            let span = error.span().unwrap_or(0..0);
            let hint = syntax_hint(error.message(), problems.lines().line_text(span.start));
            problems.report(&span, "", format!("{}{hint}", error.message()));
            return Err(problems.into_error());
        }
    };
    let root = Table::root(document.as_table());
    root.deny_unknown(&mut problems, "the top level", ROOT_FIELDS, |key| {
        matches!(key, "kind" | "markdown" | "env" | "keys" | "question")
            .then(|| "scene fields go inside a [[scene]] table, after its header".to_string())
    });
    let id = match root.field("id") {
        None => Err(root.missing(
            &mut problems,
            "id",
            ": the experiment's id, such as id = \"pilot-1\"",
        )),
        Some(field) => field
            .text(&mut problems)
            .and_then(|id| check_id(&mut problems, &field, &id).map(|()| id)),
    };
    let title = root.req_str(&mut problems, "title");
    let lockout_group = root.opt_str(&mut problems, "lockout_group");
    let base_dir = Path::new(file_name).parent().unwrap_or(Path::new(""));
    let policies = policy::read_all(&mut problems, &root, base_dir);
    let policy_names: Vec<String> = match &policies {
        Ok(defs) => defs.iter().map(|d| d.name.clone()).collect(),
        // Names from a `[policy]` table that failed to read: still known, so
        // seats naming them are not reported as unknown too.
        Err(_) => root
            .field("policy")
            .and_then(|f| {
                f.item
                    .as_table_like()
                    .map(|t| t.iter().map(|(k, _)| k.to_string()).collect())
            })
            .unwrap_or_default(),
    };
    let context = scene::Context {
        policy_names: &policy_names,
        envs,
    };
    let file_order_is_a_plan = design::file_order_is_a_plan(document.as_table());
    let scenes =
        scene::read_all(&mut problems, &root, &context, file_order_is_a_plan).and_then(|scenes| {
            design::read(&mut problems, &root, document.as_table(), scenes, &context)
        });
    let bonus = match &scenes {
        Ok((scenes, design)) => crate::bonus::read(&mut problems, &root, Some(scenes))
            .map(|rule| rule.map(|rule| rule.with_derived_scenes(scenes, design))),
        Err(reported) => Err(*reported),
    };
    // Some checks (unknown fields, for one) report a problem without failing the
    // value they sit in, so the experiment loads only if nothing was reported.
    match (id, title, lockout_group, scenes, policies, bonus) {
        (Ok(id), Ok(title), Ok(lockout_group), Ok((scenes, design)), Ok(policies), Ok(bonus))
            if problems.is_empty() =>
        {
            Ok(Experiment {
                id,
                title,
                bonus,
                lockout_group: lockout_group.filter(|g| !g.trim().is_empty()),
                scenes,
                design,
                policies,
                source: source.to_string(),
                file_name: file_name.to_string(),
            })
        }
        _ => Err(problems.into_error()),
    }
}

/// Reads and parses the experiment file at `path` (built-in environments).
pub fn load(path: &Path) -> Result<Experiment, ConfigError> {
    load_with(path, &Catalog::builtin())
}

/// [`load`], with the environments of `envs`.
pub fn load_with(path: &Path, envs: &Catalog) -> Result<Experiment, ConfigError> {
    let file_name = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(source) => parse_with(&source, &file_name, envs),
        Err(source) => Err(ConfigError::Read {
            file: file_name,
            source,
        }),
    }
}

/// The built-in experiment, for trying Tandem without writing a file.
pub fn default_experiment() -> Experiment {
    // DEFAULT_SOURCE is compiled in and parsed by the tests, so this cannot fail
    // at run time unless the tests were not run.
    parse(DEFAULT_SOURCE, DEFAULT_FILE_NAME)
        .unwrap_or_else(|error| panic!("the built-in default experiment is invalid:\n{error}"))
}

/// A hint for the syntax error a researcher is most likely to make: an unquoted
/// chord such as `ArrowLeft+Space = 0` in a key map.
fn syntax_hint(message: &str, line: &str) -> String {
    let key = line.split('=').next().unwrap_or("").trim();
    if message.contains("key") && key.contains('+') && !key.starts_with(['"', '\'']) {
        format!("; a chord must be quoted: \"{key}\" = ...")
    } else {
        String::new()
    }
}
