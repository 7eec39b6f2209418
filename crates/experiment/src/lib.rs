//! Tandem experiment files: one TOML file describes an experiment, and this crate
//! turns it into validated, typed scenes or into `file:line:column: field: message`
//! problems a researcher can act on.
//!
//! Layout:
//! - `experiment`: [`Experiment`], [`parse`], [`load`] and the built-in default.
//! - `scene`: the [`Scene`] enum and the checks on the sequence of scenes.
//! - `design`: conditions and blocks, and each participant's plan of scenes.
//! - `info`, `game`, `survey`, `end`: one module per scene kind, each holding its
//!   type, how it is read from the file, and its view for the participant page
//!   (a `tandem_wire` type; the older `*_json` methods serialize the same view).
//! - `seat`: who plays each agent of a game: human (and how their keys count) or
//!   AI, and the view its participant is given.
//! - `hosted`: environments hosted by Python workers: listing them before a
//!   read, and their `env_kwargs`.
//! - `keymap`: compiled key maps, held keys to actions.
//! - `policy`: `[policy.NAME]` tables (ONNX models and their preprocessing).
//! - `keys`: key names and chords for game key maps.
//! - `reader`: typed, span-keeping reads from the TOML document.
//! - `error`: [`ConfigError`] and [`Problem`], with file, line and column.
//! - `markdown`: Markdown to HTML, once, at load.
//! - `suggest`: "did you mean" for misspelt names.
//!
//! The file format is documented by example in `examples/*.toml` at the
//! repository root; `default.toml` beside this crate is the built-in experiment.

mod bonus;
mod design;
mod end;
mod error;
mod experiment;
mod game;
mod hosted;
mod info;
mod keymap;
mod keys;
mod markdown;
mod policy;
mod reader;
mod scene;
mod score;
mod screening;
mod seat;
mod suggest;
mod survey;

pub use bonus::{BonusRule, bonus_of};
pub use design::{Assignment, Block, BlockOrder, Condition, Design, williams_row};
pub use end::{EarlyEnd, EndScene, ExternalIds, Placeholder, RedirectTemplate};
pub use error::{ConfigError, Problem};
pub use experiment::{
    DEFAULT_SOURCE, Experiment, default_experiment, load, load_with, parse, parse_with,
};
pub use game::{
    DEFAULT_HUMAN_TIMEOUT_S, DEFAULT_RECONNECT_GRACE_S, GameScene, RenderMode, episode_seed,
};
pub use hosted::hosted_envs;
pub use info::InfoScene;
pub use keymap::{KeyBinding, KeyMap, Resolved};
pub use keys::key_matches;
pub use policy::{PolicyDef, PolicyKind};
pub use scene::{Scene, SceneKind};
pub use score::ScoreScene;
pub use screening::{BROWSERS, Measured, ScreeningScene, browser_of};
pub use seat::{AiSeat, FeedbackKey, HumanSeat, InputKind, PolicyRef, SeatConfig, SeatRole};
pub use survey::{GENERAL_ERROR_KEY, Question, QuestionKind, SurveyScene};
