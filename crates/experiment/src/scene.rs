//! Scenes: the steps a participant passes through, one after another.
//!
//! An experiment is a fixed sequence of scenes, each an `[[scene]]` table whose
//! `kind` picks one of four shapes. This module holds the [`Scene`] enum, the
//! checks that concern the sequence as a whole (unique ids, one `end` scene, last),
//! and the dispatch to each kind's own module for the rest.

use std::collections::HashMap;

use serde::Serialize;
use serde_json::Value;
use tandem_wire::SceneView;

use crate::end::{EndScene, ExternalIds};
use crate::error::{Problems, Reported};
use crate::game::GameScene;
use crate::info::InfoScene;
use crate::reader::{Field, Span, Table, article, check_id};
use crate::score::ScoreScene;
use crate::screening::ScreeningScene;
use crate::suggest::did_you_mean;
use crate::survey::SurveyScene;
use crate::{end, game, info, score, screening, survey};

/// One step of an experiment.
#[derive(Clone, Debug, PartialEq)]
pub enum Scene {
    /// Text to read, such as consent or instructions.
    Info(InfoScene),
    /// An environment to play.
    Game(GameScene),
    /// Questions to answer.
    Survey(SurveyScene),
    /// The last page: thanks, a completion code, a redirect.
    End(EndScene),
    /// Checks of the participant's connection, window, keyboard and browser.
    Screening(ScreeningScene),
    /// Their score in an earlier game against everyone's.
    Score(ScoreScene),
}

/// Which of the four kinds a scene is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SceneKind {
    Info,
    Game,
    Survey,
    End,
    Screening,
    Score,
}

impl SceneKind {
    /// Every kind, in the order the documentation lists them.
    pub const ALL: [SceneKind; 6] = [
        SceneKind::Info,
        SceneKind::Game,
        SceneKind::Survey,
        SceneKind::End,
        SceneKind::Screening,
        SceneKind::Score,
    ];

    /// The name used for `kind` in the file and on the wire.
    pub fn name(self) -> &'static str {
        match self {
            SceneKind::Info => "info",
            SceneKind::Game => "game",
            SceneKind::Survey => "survey",
            SceneKind::End => "end",
            SceneKind::Screening => "screening",
            SceneKind::Score => "score",
        }
    }

    /// The kind called `name`, if any.
    pub fn from_name(name: &str) -> Option<Self> {
        SceneKind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// The fields a scene of this kind may have, beyond `kind`, `id` and `title`.
    fn fields(self) -> &'static [&'static str] {
        match self {
            SceneKind::Info => info::FIELDS,
            SceneKind::Game => game::FIELDS,
            SceneKind::Survey => survey::FIELDS,
            SceneKind::End => end::FIELDS,
            SceneKind::Screening => screening::FIELDS,
            SceneKind::Score => score::FIELDS,
        }
    }
}

/// Fields every scene has.
const COMMON_FIELDS: &[&str] = &["kind", "id", "title"];

impl Scene {
    /// The scene's id, unique within its experiment.
    pub fn id(&self) -> &str {
        match self {
            Scene::Info(s) => &s.id,
            Scene::Game(s) => &s.id,
            Scene::Survey(s) => &s.id,
            Scene::End(s) => &s.id,
            Scene::Screening(s) => &s.id,
            Scene::Score(s) => &s.id,
        }
    }

    /// The same scene under another id: a repetition of it in a block.
    pub(crate) fn with_id(&self, id: String) -> Scene {
        let mut scene = self.clone();
        match &mut scene {
            Scene::Info(s) => s.id = id,
            Scene::Game(s) => s.id = id,
            Scene::Survey(s) => s.id = id,
            Scene::End(s) => s.id = id,
            Scene::Screening(s) => s.id = id,
            Scene::Score(s) => s.id = id,
        }
        scene
    }

    /// The scene's title.
    pub fn title(&self) -> &str {
        match self {
            Scene::Info(s) => &s.title,
            Scene::Game(s) => &s.title,
            Scene::Survey(s) => &s.title,
            Scene::End(s) => &s.title,
            Scene::Screening(s) => &s.title,
            Scene::Score(s) => &s.title,
        }
    }

    /// The scene's kind.
    pub fn kind(&self) -> SceneKind {
        match self {
            Scene::Info(_) => SceneKind::Info,
            Scene::Game(_) => SceneKind::Game,
            Scene::Survey(_) => SceneKind::Survey,
            Scene::End(_) => SceneKind::End,
            Scene::Screening(_) => SceneKind::Screening,
            Scene::Score(_) => SceneKind::Score,
        }
    }

    /// The scene as the participant page receives it (`docs/WIRE.md`, "Scenes").
    ///
    /// An end scene's `redirect_url` depends on who the participant is, so here it
    /// is always null; use [`Scene::view_for`] or [`EndScene::view`] to send an
    /// end scene.
    pub fn view(&self) -> SceneView {
        match self {
            Scene::Info(s) => SceneView::Info(s.view()),
            Scene::Game(s) => SceneView::Game(s.view()),
            Scene::Survey(s) => SceneView::Survey(s.view()),
            Scene::End(s) => SceneView::End(s.view_without_redirect()),
            Scene::Screening(s) => SceneView::Screening(s.view()),
            // The server fills in the participant's score when it shows it.
            Scene::Score(s) => SceneView::Score(s.view(None, &[])),
        }
    }

    /// The scene as `participant` receives it, with an end scene's redirect
    /// filled in from their ids.
    pub fn view_for(&self, participant: &ExternalIds) -> SceneView {
        match self {
            Scene::End(s) => SceneView::End(s.view(participant)),
            other => other.view(),
        }
    }

    /// [`Scene::view`] as JSON.
    pub fn to_client_json(&self) -> Value {
        to_json(&self.view())
    }

    /// [`Scene::view_for`] as JSON.
    pub fn to_client_json_for(&self, participant: &ExternalIds) -> Value {
        to_json(&self.view_for(participant))
    }

    pub fn as_game(&self) -> Option<&GameScene> {
        match self {
            Scene::Game(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_survey(&self) -> Option<&SurveyScene> {
        match self {
            Scene::Survey(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_info(&self) -> Option<&InfoScene> {
        match self {
            Scene::Info(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_end(&self) -> Option<&EndScene> {
        match self {
            Scene::End(s) => Some(s),
            _ => None,
        }
    }
}

/// A wire view as a JSON value, for callers that still build messages as JSON.
///
/// Cannot fail: the views have string keys only and no fallible `Serialize`.
pub(crate) fn to_json(view: &impl Serialize) -> Value {
    serde_json::to_value(view).unwrap_or_default()
}

/// The `id` and `title` every scene has.
pub(crate) struct Head {
    pub(crate) id: String,
    pub(crate) title: String,
}

/// What a scene may refer to that was read before it: the ids of earlier game
/// scenes (for a score scene) and whether one of them was multiplayer (for
/// `group = "same"`).
#[derive(Default)]
pub(crate) struct Before {
    pub(crate) games: Vec<String>,
    pub(crate) multiplayer: bool,
}

impl Before {
    /// What the file's scenes before position `index` leave behind.
    pub(crate) fn scenes(scenes: &[Scene], index: usize) -> Before {
        let mut before = Before::default();
        for scene in scenes.iter().take(index) {
            before.push(scene);
        }
        before
    }

    fn push(&mut self, scene: &Scene) {
        if let Scene::Game(game) = scene {
            self.games.push(game.id.clone());
            self.multiplayer |= game.is_multiplayer();
        }
    }
}

/// What reading a scene needs besides its table: the names of the file's
/// policies and the environments that exist.
pub(crate) struct Context<'a> {
    pub(crate) policy_names: &'a [String],
    pub(crate) envs: &'a tandem_envs::Catalog,
}

/// Reads the `scene` array of the document root. `file_order_is_a_plan`: some
/// participant sees the scenes in the order written, so it must end with the
/// one end scene (when every condition chooses its own scenes, each
/// condition's choice is checked instead).
pub(crate) fn read_all(
    problems: &mut Problems,
    root: &Table,
    context: &Context,
    file_order_is_a_plan: bool,
) -> Result<Vec<Scene>, Reported> {
    const NEED: &str = "an experiment needs at least one [[scene]], and its last scene \
                        must have kind = \"end\"";
    let Some(field) = root.field("scene") else {
        return Err(problems.report(root.span(), "scene", NEED));
    };
    let tables = field.tables(problems)?;
    if tables.is_empty() {
        return Err(field.report(problems, NEED));
    }

    let mut scenes = Ok(Vec::with_capacity(tables.len()));
    let mut seen_ids: HashMap<String, (usize, Span)> = HashMap::new();
    let mut before = Before::default();
    let mut kinds: Vec<Option<(SceneKind, Field)>> = Vec::with_capacity(tables.len());
    for (index, table) in tables.iter().enumerate() {
        let kind = read_kind(problems, table);
        let head = read_head(problems, table, index, &mut seen_ids);
        let scene = match &kind {
            Ok(kind) => read_body(problems, table, *kind, head, context, &before),
            Err(reported) => Err(*reported),
        };
        if let Ok(scene) = &scene {
            before.push(scene);
        }
        kinds.push(kind.ok().and_then(|k| Some((k, table.field("kind")?))));
        match (&mut scenes, scene) {
            (Ok(scenes), Ok(scene)) => scenes.push(scene),
            (_, Err(reported)) => scenes = Err(reported),
            (Err(_), Ok(_)) => {}
        }
    }
    // When some element was not a table (already reported), positions in `kinds`
    // are not scene positions, so "last" would point at the wrong scene.
    let elements = field.item.as_array().map_or(tables.len(), |a| a.len());
    if elements == tables.len() && file_order_is_a_plan {
        check_end(problems, &kinds)?;
    }
    scenes
}

/// Reads a scene derived from a file scene (a condition's override): its
/// table is the file scene's with some fields replaced, and its id is given.
pub(crate) fn read_derived(
    problems: &mut Problems,
    table: &Table,
    id: String,
    context: &Context,
    before: &Before,
) -> Result<Scene, Reported> {
    let kind = read_kind(problems, table)?;
    let title = table.req_str(problems, "title");
    let head = title.map(|title| Head { id, title });
    read_body(problems, table, kind, head, context, before)
}

/// The fields of a scene of `kind`, once its head is read.
fn read_body(
    problems: &mut Problems,
    table: &Table,
    kind: SceneKind,
    head: Result<Head, Reported>,
    context: &Context,
    before: &Before,
) -> Result<Scene, Reported> {
    deny_unknown(problems, table, kind);
    let (policy_names, envs) = (context.policy_names, context.envs);
    match kind {
        SceneKind::Info => info::read(problems, table, head).map(Scene::Info),
        SceneKind::Game => game::read(
            problems,
            table,
            head,
            policy_names,
            envs,
            before.multiplayer,
        )
        .map(Scene::Game),
        SceneKind::Survey => survey::read(problems, table, head).map(Scene::Survey),
        SceneKind::End => end::read(problems, table, head).map(Scene::End),
        SceneKind::Screening => screening::read(problems, table, head).map(Scene::Screening),
        SceneKind::Score => score::read(problems, table, head, &before.games).map(Scene::Score),
    }
}

fn read_kind(problems: &mut Problems, table: &Table) -> Result<SceneKind, Reported> {
    let names: Vec<&str> = SceneKind::ALL.iter().map(|k| k.name()).collect();
    let Some(field) = table.field("kind") else {
        let hint = format!(": one of {}", names.join(", "));
        return Err(table.missing(problems, "kind", &hint));
    };
    let name = field.string(problems)?;
    SceneKind::from_name(name).ok_or_else(|| {
        field.report(
            problems,
            format!(
                "unknown scene kind {name:?}{}; kinds are {}",
                did_you_mean(name, &names),
                names.join(", ")
            ),
        )
    })
}

fn read_head(
    problems: &mut Problems,
    table: &Table,
    index: usize,
    seen: &mut HashMap<String, (usize, Span)>,
) -> Result<Head, Reported> {
    let id = match table.field("id") {
        None => Err(table.missing(problems, "id", "")),
        Some(field) => field.text(problems).and_then(|id| {
            check_id(problems, &field, &id)?;
            if let Some((first, span)) = seen.get(&id) {
                let (line, _) = problems.lines().position(span.start);
                return Err(field.report(
                    problems,
                    format!(
                        "scene id {id:?} is already used by scene[{first}] (line {line}); \
                         scene ids must be unique"
                    ),
                ));
            }
            seen.insert(id.clone(), (index, field.span.clone()));
            Ok(id)
        }),
    };
    let title = table.req_str(problems, "title");
    Ok(Head {
        id: id?,
        title: title?,
    })
}

/// Reports fields that no scene of this kind has, naming the kind that does.
fn deny_unknown(problems: &mut Problems, table: &Table, kind: SceneKind) {
    let allowed: Vec<&str> = COMMON_FIELDS.iter().chain(kind.fields()).copied().collect();
    let what = format!("{} scenes", kind.name());
    table.deny_unknown(problems, &what, &allowed, |key| {
        let owners: Vec<&str> = SceneKind::ALL
            .into_iter()
            .filter(|k| k.fields().contains(&key))
            .map(|k| k.name())
            .collect();
        (!owners.is_empty()).then(|| {
            format!(
                "only {} scenes have it, and this is {} scene",
                owners.join(" and "),
                article(kind.name())
            )
        })
    });
}

/// The last scene must be an end scene, and no other may be: after an end scene
/// there is nothing a participant could do.
fn check_end(
    problems: &mut Problems,
    kinds: &[Option<(SceneKind, Field)>],
) -> Result<(), Reported> {
    let mut result = Ok(());
    let last = kinds.len().saturating_sub(1);
    for (index, entry) in kinds.iter().enumerate() {
        let Some((kind, field)) = entry else { continue };
        if *kind == SceneKind::End && index != last {
            result = Err(field.report(
                problems,
                format!(
                    "only the last scene may be an end scene, and this is scene {} of {}; \
                     participants cannot go on after an end scene",
                    index + 1,
                    kinds.len()
                ),
            ));
        }
        if *kind != SceneKind::End && index == last {
            result = Err(field.report(
                problems,
                format!(
                    "the last scene must be an end scene (kind = \"end\"), which thanks \
                     participants and gives their completion code or redirect; this one \
                     is {} scene",
                    article(kind.name())
                ),
            ));
        }
    }
    result
}
