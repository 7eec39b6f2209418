//! Scenes as the participant page receives them (`docs/WIRE.md`, "Scenes").
//!
//! These are views, not the experiment's own types: they hold exactly what the
//! page is shown (HTML already rendered, a redirect already filled in for the
//! participant) and nothing the page must not see, such as seeds, policies or
//! other participants' ids. The experiment crate makes them from its scenes.
//!
//! Optional fields are written as `null` rather than left out, as the page has
//! always received them.

use serde::{Deserialize, Serialize};

/// One scene, tagged by `kind`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum SceneView {
    Info(InfoView),
    Game(GameView),
    Survey(SurveyView),
    End(EndView),
    Screening(ScreeningView),
    Score(ScoreView),
}

impl SceneView {
    /// The scene's id, unique within its experiment.
    pub fn id(&self) -> &str {
        match self {
            SceneView::Info(s) => &s.id,
            SceneView::Game(s) => &s.id,
            SceneView::Survey(s) => &s.id,
            SceneView::End(s) => &s.id,
            SceneView::Screening(s) => &s.id,
            SceneView::Score(s) => &s.id,
        }
    }

    /// The scene's title.
    pub fn title(&self) -> &str {
        match self {
            SceneView::Info(s) => &s.title,
            SceneView::Game(s) => &s.title,
            SceneView::Survey(s) => &s.title,
            SceneView::End(s) => &s.title,
            SceneView::Screening(s) => &s.title,
            SceneView::Score(s) => &s.title,
        }
    }

    /// The `kind` written on the wire.
    pub fn kind(&self) -> &'static str {
        match self {
            SceneView::Info(_) => "info",
            SceneView::Game(_) => "game",
            SceneView::Survey(_) => "survey",
            SceneView::End(_) => "end",
            SceneView::Screening(_) => "screening",
            SceneView::Score(_) => "score",
        }
    }
}

/// A page to read, such as consent or instructions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InfoView {
    pub id: String,
    pub title: String,
    pub html: String,
    /// The label of a box that must be ticked to go on, if any.
    pub checkbox: Option<String>,
    /// The label of the button that goes on.
    pub button: String,
}

/// How frames travel: sprite lists (text) or PNG images (binary).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RenderMode {
    Sprites,
    Pixels,
}

/// The aspect a game draws at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Canvas {
    pub width: u32,
    pub height: u32,
}

/// A game to play.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GameView {
    pub id: String,
    pub title: String,
    pub instructions_html: String,
    /// Ticks per second.
    pub fps: u32,
    pub render: RenderMode,
    pub canvas: Canvas,
    /// Every key name any seat's key map or feedback keys use, so the page can
    /// stop the browser scrolling on them.
    pub keys: Vec<String>,
    pub episodes: Option<u32>,
    pub time_limit_s: Option<u32>,
    /// Whether a `lobby` message comes before the `seat`.
    pub multiplayer: bool,
    /// The environment's agent names.
    pub agents: Vec<String>,
}

/// A page of questions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SurveyView {
    pub id: String,
    pub title: String,
    /// The introduction (may be empty).
    pub html: String,
    pub questions: Vec<QuestionView>,
}

/// One question: the fields every question has, then its kind's own.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QuestionView {
    /// The key of its answer in `submit`.
    pub id: String,
    pub prompt: String,
    pub required: bool,
    #[serde(flatten)]
    pub kind: QuestionKind,
}

/// What kind of answer a question takes, tagged by `kind`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum QuestionKind {
    /// Answered with one of `options`.
    Single { options: Vec<String> },
    /// Answered with an array of distinct `options`.
    Multiple { options: Vec<String> },
    /// Answered with an integer from 1 to `scale`.
    Likert {
        scale: u32,
        low_label: Option<String>,
        high_label: Option<String>,
    },
    /// Answered with a string of at most `max_length` characters.
    Text { multiline: bool, max_length: u32 },
}

/// The last page.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EndView {
    pub id: String,
    pub title: String,
    pub html: String,
    pub completion_code: Option<String>,
    /// Where to send the participant, with their ids filled in; null when the
    /// scene has no redirect (or the view was made for nobody in particular).
    pub redirect_url: Option<String>,
    /// For an MTurk assignment: the form the page posts when the participant
    /// finishes, as MTurk's `ExternalQuestion` expects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mturk_submit: Option<MturkSubmit>,
}

/// A check before the study starts: the page shows `html`, asks for a key
/// press when `keyboard`, and reports with a `screen` message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScreeningView {
    pub id: String,
    pub title: String,
    pub html: String,
    pub keyboard: bool,
    pub min_width: Option<u32>,
    pub min_height: Option<u32>,
}

/// A participant's score in an earlier game against everyone's so far; the
/// page leaves with `advance`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScoreView {
    pub id: String,
    pub title: String,
    pub html: String,
    pub button: String,
    /// Their score; null if they played no complete episode.
    pub score: Option<f64>,
    /// Participants with a score so far, them included.
    pub players: u32,
    /// The share of the others whose score is lower (0 to 1); null when
    /// there are no others or no score.
    pub better_than: Option<f64>,
    pub histogram: Option<ScoreHistogram>,
}

/// Everyone's scores in equal bars from `lo` to `hi`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScoreHistogram {
    pub lo: f64,
    pub hi: f64,
    pub counts: Vec<u32>,
}

/// Where and what an MTurk assignment's page posts at the end: a form with
/// `assignmentId` (and the completion code) to `action`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MturkSubmit {
    /// `{turkSubmitTo}/mturk/externalSubmit`.
    pub action: String,
    pub assignment_id: String,
}
