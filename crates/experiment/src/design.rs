//! Study design: between-subject conditions, within-subject blocks, and the
//! plan of scenes each participant walks.
//!
//! The file lists each scene once. A `[[condition]]` may replace fields of
//! some scenes (`[condition.override.SCENE]`) and may choose which scenes, in
//! which order, its participants see (`scenes = [...]`). A `[[block]]` shows a
//! run of scenes in a fixed, random or Latin-square order, `repeat` times.
//!
//! Both make scenes the file does not list. A scene with a condition's fields
//! is a scene of its own, `SCENE-CONDITION`, and repetition K > 1 of a block's
//! scene is `SCENE-rK`, so two differently configured or repeated plays never
//! share a scene id in the data (and an export never mixes them), and a
//! participant stands at one scene of their plan at a time. The experiment's
//! `scenes` are therefore a catalogue: the file's scenes first, in file order
//! (a file without a design keeps its indices), then the derived ones.
//!
//! A plan is drawn once per participant, at arrival, from how many earlier
//! participants each condition has ([`Design::assign`]); the caller stores it
//! with them, so assignment stays balanced and plans hold across restarts.

use std::collections::{HashMap, HashSet};

use rand::RngExt;
use rand::seq::SliceRandom;

use crate::error::{Problems, Reported};
use crate::reader::{Field, Table, check_id};
use crate::scene::{self, Before, Context, Scene, SceneKind};
use crate::suggest::did_you_mean;

const CONDITION_FIELDS: &[&str] = &["id", "scenes", "override"];
const BLOCK_FIELDS: &[&str] = &["id", "scenes", "order", "repeat"];

/// Conditions and blocks, resolved to catalogue scenes.
#[derive(Clone, Debug, PartialEq)]
pub struct Design {
    /// At least one; a file without `[[condition]]` has one without an id.
    pub conditions: Vec<Condition>,
    pub blocks: Vec<Block>,
    /// For each catalogue scene, the file scene it derives from (itself for
    /// the file's own).
    pub origins: Vec<usize>,
}

/// A between-subject condition: the scenes its participants walk.
#[derive(Clone, Debug, PartialEq)]
pub struct Condition {
    /// `None` for the one condition of a file that declares none.
    pub id: Option<String>,
    runs: Vec<Run>,
}

/// A stretch of a condition's scenes: one scene, or a block.
#[derive(Clone, Debug, PartialEq)]
enum Run {
    Scene(usize),
    /// `reps[r][m]`: member `m` of the block in repetition `r + 1`.
    Block {
        block: usize,
        reps: Vec<Vec<usize>>,
    },
}

/// A within-subject block.
#[derive(Clone, Debug, PartialEq)]
pub struct Block {
    pub id: String,
    pub order: BlockOrder,
    pub repeat: u32,
    /// The file scenes it holds, as listed.
    pub scenes: Vec<String>,
}

/// How a block's scenes are ordered for each participant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockOrder {
    /// As listed.
    Fixed,
    /// Shuffled anew for each participant and each repetition.
    Random,
    /// Rows of a balanced (Williams) Latin square, in turn within each
    /// condition: every scene at every position equally often, and every
    /// scene directly after every other equally often. The same row for
    /// every repetition.
    LatinSquare,
}

impl BlockOrder {
    const NAMES: [&'static str; 3] = ["fixed", "random", "latin_square"];

    /// The name used for `order` in the file.
    pub fn name(self) -> &'static str {
        match self {
            BlockOrder::Fixed => "fixed",
            BlockOrder::Random => "random",
            BlockOrder::LatinSquare => "latin_square",
        }
    }

    fn from_name(name: &str) -> Option<BlockOrder> {
        match name {
            "fixed" => Some(BlockOrder::Fixed),
            "random" => Some(BlockOrder::Random),
            "latin_square" => Some(BlockOrder::LatinSquare),
            _ => None,
        }
    }
}

/// What a participant is given at arrival.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assignment {
    /// The condition's id (`None` in a file without conditions).
    pub condition: Option<String>,
    /// Catalogue indices, in the order they will be shown.
    pub plan: Vec<usize>,
}

impl Design {
    /// The design of a file without conditions or blocks: its scenes in order.
    pub fn plain(scene_count: usize) -> Design {
        Design {
            conditions: vec![Condition {
                id: None,
                runs: (0..scene_count).map(Run::Scene).collect(),
            }],
            blocks: Vec::new(),
            origins: (0..scene_count).collect(),
        }
    }

    /// How many scenes the file itself lists (the catalogue's first ones).
    pub fn file_scene_count(&self) -> usize {
        file_scenes(&self.origins)
    }

    /// Whether the file declares conditions.
    pub fn has_conditions(&self) -> bool {
        self.conditions.iter().any(|c| c.id.is_some())
    }

    /// The key a condition is counted under: its id, or `""` for the one
    /// condition of a file that declares none.
    pub fn condition_key(condition: Option<&str>) -> &str {
        condition.unwrap_or("")
    }

    /// A plan for a new participant. `counts` holds how many participants
    /// each condition has so far (under [`Design::condition_key`]): the
    /// condition with the fewest is chosen (ties at random), so counts of
    /// *assigned* participants never differ by more than one; within it, a
    /// Latin-square block uses the row after its last participant's.
    pub fn assign(&self, counts: &HashMap<String, u64>, rng: &mut impl rand::Rng) -> Assignment {
        let count = |c: &Condition| {
            counts
                .get(Design::condition_key(c.id.as_deref()))
                .copied()
                .unwrap_or(0)
        };
        let fewest = self.conditions.iter().map(count).min().unwrap_or(0);
        let tied: Vec<usize> = (0..self.conditions.len())
            .filter(|&i| count(&self.conditions[i]) == fewest)
            .collect();
        let chosen = tied
            .get(rng.random_range(0..tied.len().max(1)))
            .copied()
            .unwrap_or(0);
        Assignment {
            condition: self.conditions.get(chosen).and_then(|c| c.id.clone()),
            plan: self.plan(chosen, fewest, rng),
        }
    }

    /// The plan of condition `condition` for its participant number
    /// `ordinal` (0 for the first).
    pub fn plan(&self, condition: usize, ordinal: u64, rng: &mut impl rand::Rng) -> Vec<usize> {
        let Some(condition) = self.conditions.get(condition) else {
            return Vec::new();
        };
        let mut plan = Vec::new();
        for run in &condition.runs {
            match run {
                Run::Scene(index) => plan.push(*index),
                Run::Block { block, reps } => {
                    let order = self.blocks[*block].order;
                    let members = reps.first().map_or(0, Vec::len);
                    let square_row = williams_row(members, ordinal);
                    for rep in reps {
                        let mut positions: Vec<usize> = (0..members).collect();
                        match order {
                            BlockOrder::Fixed => {}
                            BlockOrder::Random => positions.shuffle(rng),
                            BlockOrder::LatinSquare => positions.clone_from(&square_row),
                        }
                        plan.extend(positions.iter().map(|&m| rep[m]));
                    }
                }
            }
        }
        plan
    }
}

/// How many of a catalogue's scenes the file lists: the first ones, each
/// its own origin.
fn file_scenes(origins: &[usize]) -> usize {
    origins
        .iter()
        .enumerate()
        .take_while(|(i, o)| i == *o)
        .count()
}

/// Row `ordinal` (cyclically) of a balanced Latin square of `n` (Williams
/// design: n rows for even n, 2n for odd, the second half reversed).
pub fn williams_row(n: usize, ordinal: u64) -> Vec<usize> {
    if n == 0 {
        return Vec::new();
    }
    // First row: 0, 1, n-1, 2, n-2, ...; row i adds i to each, mod n.
    let mut first = Vec::with_capacity(n);
    let (mut low, mut high) = (0usize, n);
    for j in 0..n {
        if j.is_multiple_of(2) {
            first.push(low);
            low += 1;
        } else {
            high -= 1;
            first.push(high);
        }
    }
    let rows = if n.is_multiple_of(2) { n } else { 2 * n } as u64;
    let row = (ordinal % rows) as usize;
    let mut out: Vec<usize> = first.iter().map(|f| (f + row % n) % n).collect();
    if row >= n {
        out.reverse();
    }
    out
}

/// The id of condition `condition`'s version of scene `scene`.
fn condition_scene_id(scene: &str, condition: &str) -> String {
    format!("{scene}-{condition}")
}

/// The id of repetition `rep` (2 or more) of scene `scene`.
fn repetition_id(scene: &str, rep: u32) -> String {
    format!("{scene}-r{rep}")
}

/// Every scene id a file's design derives, with the file scene it derives
/// from, read leniently from the document (a valid file gives exactly the
/// catalogue's derived scenes): for reading a recorded file without the
/// environments its games name.
pub(crate) fn derived_ids(document: &toml_edit::Table) -> Vec<(String, String)> {
    let mut derived: Vec<(String, String)> = Vec::new();
    let conditions = document
        .get("condition")
        .and_then(|c| c.as_array_of_tables());
    for condition in conditions.iter().flat_map(|c| c.iter()) {
        let Some(id) = condition.get("id").and_then(|i| i.as_str()) else {
            continue;
        };
        let overrides = condition.get("override").and_then(|o| o.as_table_like());
        for (scene, _) in overrides.iter().flat_map(|o| o.iter()) {
            derived.push((scene.to_string(), condition_scene_id(scene, id)));
        }
    }
    let blocks = document.get("block").and_then(|b| b.as_array_of_tables());
    for block in blocks.iter().flat_map(|b| b.iter()) {
        let repeat = block
            .get("repeat")
            .and_then(|r| r.as_integer())
            .unwrap_or(1);
        let members = block.get("scenes").and_then(|s| s.as_array());
        for member in members
            .iter()
            .flat_map(|m| m.iter())
            .filter_map(|m| m.as_str())
        {
            let versions: Vec<String> = std::iter::once(member.to_string())
                .chain(
                    derived
                        .iter()
                        .filter(|(origin, _)| origin == member)
                        .map(|(_, id)| id.clone()),
                )
                .collect();
            for version in versions {
                for rep in 2..=u32::try_from(repeat.clamp(1, 100)).unwrap_or(1) {
                    derived.push((member.to_string(), repetition_id(&version, rep)));
                }
            }
        }
    }
    derived
}

/// Whether every participant sees the file's scenes in the order written:
/// unless the file has conditions and each of them chooses its scenes.
pub(crate) fn file_order_is_a_plan(document: &toml_edit::Table) -> bool {
    let Some(item) = document.get("condition") else {
        return true;
    };
    let tables: Vec<&dyn toml_edit::TableLike> = match item {
        toml_edit::Item::ArrayOfTables(a) => a.iter().map(|t| t as _).collect(),
        toml_edit::Item::Value(toml_edit::Value::Array(a)) => a
            .iter()
            .filter_map(|v| v.as_inline_table().map(|t| t as _))
            .collect(),
        _ => return true,
    };
    tables.is_empty() || tables.iter().any(|t| !t.contains_key("scenes"))
}

/// Reads `[[condition]]` and `[[block]]` against the file's scenes `file`,
/// and returns the catalogue (the file's scenes, then the derived ones) with
/// the design.
pub(crate) fn read(
    problems: &mut Problems,
    root: &Table,
    document: &toml_edit::Table,
    file: Vec<Scene>,
    context: &Context,
) -> Result<(Vec<Scene>, Design), Reported> {
    let mut catalogue = Catalogue {
        origins: (0..file.len()).collect(),
        ids: file.iter().map(|s| s.id().to_string()).collect(),
        scenes: file,
        copies: HashMap::new(),
    };
    let blocks = read_blocks(problems, root, &catalogue.scenes);
    let tables = match root.field("condition") {
        None => Vec::new(),
        Some(field) => field.tables(problems)?,
    };
    let mut result = Ok(());
    let mut conditions = Vec::new();
    let mut condition_ids: HashSet<String> = HashSet::new();
    for table in &tables {
        table.deny_unknown(problems, "a condition", CONDITION_FIELDS, |_| None);
        let id = match table.field("id") {
            None => Err(table.missing(
                problems,
                "id",
                ": the condition's name, such as id = \"easy\"",
            )),
            Some(field) => field.text(problems).and_then(|id| {
                check_id(problems, &field, &id)?;
                if !condition_ids.insert(id.clone()) {
                    return Err(
                        field.report(problems, format!("condition {id:?} is declared twice"))
                    );
                }
                Ok(id)
            }),
        };
        let id = match id {
            Ok(id) => id,
            Err(r) => {
                result = Err(r);
                continue;
            }
        };
        let replaced = match read_overrides(problems, table, document, &id, &mut catalogue, context)
        {
            Ok(replaced) => replaced,
            Err(r) => {
                result = Err(r);
                continue;
            }
        };
        // A group that lasts must meet again at one scene: not at versions
        // that differ by condition.
        for &file_index in replaced.keys() {
            if let Some(game) = catalogue.scenes[file_index].as_game()
                && game.group_same
            {
                result = Err(problems.report(
                    table.span(),
                    table.path().to_string(),
                    format!(
                        "condition {id:?} changes scene {:?}, which has group = \"same\": \
                         members of one group may be in different conditions and would \
                         wait at different versions; change it in no condition",
                        game.id
                    ),
                ));
            }
        }
        let (list, list_field) = match table.field("scenes") {
            None => ((0..catalogue.file_count()).collect(), None),
            Some(field) => {
                match scene_list(problems, &field, &catalogue.scenes, catalogue.file_count()) {
                    Ok(list) => (list, Some(field)),
                    Err(r) => {
                        result = Err(r);
                        continue;
                    }
                }
            }
        };
        if let Some(field) = &list_field
            && let Some(game) = catalogue.scenes[..catalogue.file_count()]
                .iter()
                .filter_map(Scene::as_game)
                .find(|g| g.group_same)
        {
            result = Err(field.report(
                problems,
                format!(
                    "scene {:?} has group = \"same\", so conditions may not choose their \
                     scenes: members of one group may be in different conditions and \
                     would not reach it together",
                    game.id
                ),
            ));
        }
        let list: Vec<usize> = list
            .iter()
            .map(|i| replaced.get(i).copied().unwrap_or(*i))
            .collect();
        let at = Where {
            table,
            field: list_field.as_ref(),
        };
        match runs(problems, &at, &list, &blocks, &mut catalogue) {
            Ok(runs) => {
                if list_field.is_some() {
                    check_plan(problems, &at, &runs, &catalogue);
                }
                conditions.push(Condition { id: Some(id), runs });
            }
            Err(r) => result = Err(r),
        }
    }
    if tables.is_empty() {
        let list: Vec<usize> = (0..catalogue.file_count()).collect();
        let at = Where {
            table: root,
            field: None,
        };
        match runs(problems, &at, &list, &blocks, &mut catalogue) {
            Ok(runs) => conditions.push(Condition { id: None, runs }),
            Err(r) => result = Err(r),
        }
    }
    for block in &blocks {
        check_block_order(problems, block, &catalogue.scenes);
    }
    result?;
    let blocks = blocks.into_iter().map(|b| b.block).collect();
    Ok((
        catalogue.scenes,
        Design {
            conditions,
            blocks,
            origins: catalogue.origins,
        },
    ))
}

/// The scenes read so far, with what each derives from.
struct Catalogue {
    scenes: Vec<Scene>,
    origins: Vec<usize>,
    ids: HashSet<String>,
    /// `(scene, repetition)` → the copy made for it.
    copies: HashMap<(usize, u32), usize>,
}

impl Catalogue {
    fn file_count(&self) -> usize {
        file_scenes(&self.origins)
    }

    fn push(&mut self, scene: Scene, origin: usize) -> usize {
        self.ids.insert(scene.id().to_string());
        self.scenes.push(scene);
        self.origins.push(origin);
        self.scenes.len() - 1
    }

    /// Repetition `rep` (2 or more) of catalogue scene `index`.
    fn copy(&mut self, index: usize, rep: u32) -> Result<usize, String> {
        if let Some(&copy) = self.copies.get(&(index, rep)) {
            return Ok(copy);
        }
        let id = repetition_id(self.scenes[index].id(), rep);
        if self.ids.contains(&id) || id.len() > 64 {
            return Err(id);
        }
        let copy = self.push(self.scenes[index].with_id(id), self.origins[index]);
        self.copies.insert((index, rep), copy);
        Ok(copy)
    }
}

/// Where a condition's problems are reported: its `scenes`, else its table.
struct Where<'a, 'd> {
    table: &'a Table<'d>,
    field: Option<&'a Field<'d>>,
}

impl Where<'_, '_> {
    fn report(&self, problems: &mut Problems, message: String) -> Reported {
        match self.field {
            Some(field) => field.report(problems, message),
            None => problems.report(self.table.span(), self.table.path().to_string(), message),
        }
    }
}

/// `[condition.override.SCENE]` tables: each file scene they name, with the
/// fields given replaced, read as a scene `SCENE-CONDITION`. Returns file
/// scene → its replacement.
fn read_overrides(
    problems: &mut Problems,
    condition: &Table,
    document: &toml_edit::Table,
    condition_id: &str,
    catalogue: &mut Catalogue,
    context: &Context,
) -> Result<HashMap<usize, usize>, Reported> {
    let mut replaced = HashMap::new();
    let Some(field) = condition.field("override") else {
        return Ok(replaced);
    };
    let overrides = field.table(problems)?;
    let file_count = catalogue.file_count();
    let mut result = Ok(());
    for scene_field in overrides.fields() {
        let file_ids: Vec<&str> = catalogue.scenes[..file_count]
            .iter()
            .map(Scene::id)
            .collect();
        let Some(index) = file_ids.iter().position(|id| *id == scene_field.key) else {
            let hint = did_you_mean(scene_field.key, &file_ids);
            result = Err(scene_field.report_key(
                problems,
                format!("no scene has id {:?}{hint}", scene_field.key),
            ));
            continue;
        };
        let Some(fields) = scene_field.item.as_table_like() else {
            result = Err(scene_field.report(
                problems,
                format!(
                    "expected a table of the fields to replace, such as \
                     [condition.override.{}] with fps = 20",
                    scene_field.key
                ),
            ));
            continue;
        };
        let Some(mut built) = file_scene_table(document, index) else {
            continue;
        };
        for (key, item) in fields.iter() {
            if matches!(key, "kind" | "id") {
                let span = item.span().unwrap_or_else(|| scene_field.span.clone());
                result = Err(problems.report(
                    &span,
                    format!("{}.{key}", scene_field.path),
                    "a condition may change a scene's fields but not its kind or id",
                ));
                continue;
            }
            built.insert(key, item.clone());
        }
        let id = condition_scene_id(scene_field.key, condition_id);
        if catalogue.ids.contains(&id) || id.len() > 64 {
            result = Err(scene_field.report_key(
                problems,
                format!(
                    "this condition's version of scene {:?} is called {id:?}, which is \
                     {}; rename the condition or the scene",
                    scene_field.key,
                    if id.len() > 64 {
                        "longer than 64 characters"
                    } else {
                        "another scene's id"
                    }
                ),
            ));
            continue;
        }
        built.insert("id", toml_edit::value(id.clone()));
        let view = Table::built(&built, scene_field.path.clone(), scene_field.span.clone());
        let before = Before::scenes(&catalogue.scenes[..file_count], index);
        match scene::read_derived(problems, &view, id, context, &before) {
            Ok(scene) => {
                let at = catalogue.push(scene, index);
                replaced.insert(index, at);
            }
            Err(r) => result = Err(r),
        }
    }
    result.map(|()| replaced)
}

/// File scene `index`'s table, to put a condition's fields into.
fn file_scene_table(document: &toml_edit::Table, index: usize) -> Option<toml_edit::Table> {
    match document.get("scene")? {
        toml_edit::Item::ArrayOfTables(a) => a.get(index).cloned(),
        toml_edit::Item::Value(toml_edit::Value::Array(a)) => a
            .get(index)?
            .as_inline_table()
            .cloned()
            .map(|t| t.into_table()),
        _ => None,
    }
}

/// A `scenes = [...]` list of file scene ids, each once: their indices.
fn scene_list(
    problems: &mut Problems,
    field: &Field,
    scenes: &[Scene],
    file_count: usize,
) -> Result<Vec<usize>, Reported> {
    let array = field.array(problems)?;
    let ids: Vec<&str> = scenes[..file_count].iter().map(Scene::id).collect();
    let mut list = Vec::new();
    let mut result = Ok(());
    for value in array.iter() {
        let span = value.span().unwrap_or_else(|| field.span.clone());
        let Some(name) = value.as_str() else {
            result =
                Err(problems.report(&span, field.path.clone(), "expected scene ids (strings)"));
            continue;
        };
        match ids.iter().position(|id| *id == name) {
            Some(index) if list.contains(&index) => {
                result = Err(problems.report(
                    &span,
                    field.path.clone(),
                    format!("scene {name:?} is listed twice; to show it again, use a [[block]] with repeat"),
                ));
            }
            Some(index) => list.push(index),
            None => {
                let hint = did_you_mean(name, &ids);
                result = Err(problems.report(
                    &span,
                    field.path.clone(),
                    format!("no scene has id {name:?}{hint}"),
                ));
            }
        }
    }
    if list.is_empty() && result.is_ok() {
        result = Err(field.report(problems, "a condition needs at least its end scene"));
    }
    result.map(|()| list)
}

/// A block as read, with where its scenes were written.
struct BlockRead<'d> {
    block: Block,
    /// The file scenes it holds, as listed.
    members: Vec<usize>,
    field: Field<'d>,
}

fn read_blocks<'d>(
    problems: &mut Problems,
    root: &Table<'d>,
    scenes: &[Scene],
) -> Vec<BlockRead<'d>> {
    let Some(field) = root.field("block") else {
        return Vec::new();
    };
    let Ok(tables) = field.tables(problems) else {
        return Vec::new();
    };
    let ids: Vec<&str> = scenes.iter().map(Scene::id).collect();
    let mut blocks: Vec<BlockRead> = Vec::new();
    for table in &tables {
        table.deny_unknown(problems, "a block", BLOCK_FIELDS, |_| None);
        let id = table.req_str(problems, "id");
        let order = match table.field("order") {
            None => Ok(BlockOrder::Random),
            Some(f) => f.string(problems).and_then(|name| {
                BlockOrder::from_name(name).ok_or_else(|| {
                    f.report(
                        problems,
                        format!(
                            "unknown order {name:?}{}; orders are {}",
                            did_you_mean(name, &BlockOrder::NAMES),
                            BlockOrder::NAMES.join(", ")
                        ),
                    )
                })
            }),
        };
        let repeat = table.opt_int(problems, "repeat", 1..=100);
        let Some(scenes_field) = table.field("scenes") else {
            table.missing(
                problems,
                "scenes",
                ": the ids of the scenes the block shows, such as [\"easy\", \"hard\"]",
            );
            continue;
        };
        let Ok(array) = scenes_field.array(problems) else {
            continue;
        };
        let mut members = Vec::new();
        for value in array.iter() {
            let span = value.span().unwrap_or_else(|| scenes_field.span.clone());
            let name = value.as_str().unwrap_or_default();
            match ids.iter().position(|id| *id == name) {
                None => {
                    let hint = did_you_mean(name, &ids);
                    problems.report(
                        &span,
                        scenes_field.path.clone(),
                        format!("no scene has id {name:?}{hint}"),
                    );
                }
                Some(i) if scenes[i].kind() == SceneKind::End => {
                    problems.report(
                        &span,
                        scenes_field.path.clone(),
                        "an end scene cannot be in a block: nothing follows it",
                    );
                }
                Some(i)
                    if members.contains(&i) || blocks.iter().any(|b| b.members.contains(&i)) =>
                {
                    problems.report(&span, scenes_field.path.clone(), format!("scene {name:?} is already in a block; a scene belongs to one block, once (use repeat to show it again)"));
                }
                Some(i) => members.push(i),
            }
        }
        if members.len() != array.len() {
            continue;
        }
        if members.is_empty() {
            scenes_field.report(problems, "a block needs at least one scene");
            continue;
        }
        let (Ok(id), Ok(order), Ok(repeat)) = (id, order, repeat) else {
            continue;
        };
        blocks.push(BlockRead {
            block: Block {
                id,
                order,
                repeat: repeat.map_or(1, |r| r as u32),
                scenes: members.iter().map(|&i| ids[i].to_string()).collect(),
            },
            members,
            field: scenes_field,
        });
    }
    blocks
}

/// A condition's scenes `list` (catalogue indices, in order) cut into runs:
/// each block's scenes, which must stand together, become one block run.
fn runs(
    problems: &mut Problems,
    at: &Where,
    list: &[usize],
    blocks: &[BlockRead],
    catalogue: &mut Catalogue,
) -> Result<Vec<Run>, Reported> {
    let block_of = |index: usize, catalogue: &Catalogue| {
        blocks
            .iter()
            .position(|b| b.members.contains(&catalogue.origins[index]))
    };
    let mut runs = Vec::new();
    let mut i = 0;
    while i < list.len() {
        let Some(b) = block_of(list[i], catalogue) else {
            runs.push(Run::Scene(list[i]));
            i += 1;
            continue;
        };
        let block = &blocks[b];
        let n = block.members.len();
        let stretch = list.get(i..i + n).unwrap_or(&list[i..]);
        // The block's members in its listed order, from this condition's list.
        let mut first_rep = Vec::with_capacity(n);
        for member in &block.members {
            match stretch.iter().find(|&&s| catalogue.origins[s] == *member) {
                Some(&s) => first_rep.push(s),
                None => {
                    let message = format!(
                        "the scenes of block {:?} ({}) must all be shown, one after another; \
                         here they are not",
                        block.block.id,
                        block.block.scenes.join(", ")
                    );
                    return Err(match at.field {
                        Some(_) => at.report(problems, message),
                        None => block.field.report(problems, message),
                    });
                }
            }
        }
        let mut reps = vec![first_rep.clone()];
        for rep in 2..=block.block.repeat {
            let mut copies = Vec::with_capacity(n);
            for &scene in &first_rep {
                match catalogue.copy(scene, rep) {
                    Ok(copy) => copies.push(copy),
                    Err(id) => {
                        return Err(block.field.report(
                            problems,
                            format!(
                                "repetition {rep} of a scene would be called {id:?}, which is \
                                 another scene's id or too long; rename one"
                            ),
                        ));
                    }
                }
            }
            reps.push(copies);
        }
        runs.push(Run::Block { block: b, reps });
        i += n;
    }
    Ok(runs)
}

/// A block whose order varies may not hold a scene that needs another of
/// the block before it (a score scene and its game), nor a game whose group
/// must meet again (`group = "same"`): members would reach it at different
/// steps.
fn check_block_order(problems: &mut Problems, block: &BlockRead, scenes: &[Scene]) {
    if block.block.order == BlockOrder::Fixed {
        return;
    }
    let order = block.block.order.name();
    for &member in &block.members {
        match &scenes[member] {
            Scene::Score(score) if block.members.iter().any(|&g| scenes[g].id() == score.game) => {
                block.field.report(
                    problems,
                    format!(
                        "score scene {:?} shows game {:?} of the same block, whose order is \
                         {order}: it could come before its game; put the score scene after \
                         the block, or use order = \"fixed\"",
                        score.id, score.game
                    ),
                );
            }
            Scene::Game(game) if game.group_same => {
                block.field.report(
                    problems,
                    format!(
                        "scene {:?} has group = \"same\", and this block's order is {order}: \
                         members of one group would reach it at different times; use order \
                         = \"fixed\" or take it out of the block",
                        game.id
                    ),
                );
            }
            _ => {}
        }
    }
}

/// A condition that chooses its scenes must end with one end scene, and show
/// a score scene's game before it.
fn check_plan(problems: &mut Problems, at: &Where, runs: &[Run], catalogue: &Catalogue) {
    let plan: Vec<usize> = runs
        .iter()
        .flat_map(|run| match run {
            Run::Scene(i) => vec![*i],
            Run::Block { reps, .. } => reps.concat(),
        })
        .collect();
    let ends = plan
        .iter()
        .filter(|&&i| catalogue.scenes[i].kind() == SceneKind::End)
        .count();
    let last_is_end = plan
        .last()
        .is_some_and(|&i| catalogue.scenes[i].kind() == SceneKind::End);
    if !last_is_end || ends != 1 {
        at.report(
            problems,
            "a condition's scenes must end with one end scene, and have no other".to_string(),
        );
    }
    for (position, &index) in plan.iter().enumerate() {
        let Scene::Score(score) = &catalogue.scenes[index] else {
            continue;
        };
        let played = plan[..position].iter().any(|&earlier| {
            let origin = catalogue.origins[earlier];
            catalogue.scenes[origin].id() == score.game
        });
        if !played {
            at.report(
                problems,
                format!(
                    "score scene {:?} shows game {:?}, which this condition does not show \
                     before it",
                    score.id, score.game
                ),
            );
        }
    }
}
