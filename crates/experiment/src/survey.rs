//! Survey scenes: questions, and the server-side check of a participant's answers.
//!
//! The server is the authority on what counts as an answer, so
//! [`SurveyScene::validate`] re-checks everything the page should already have
//! enforced, and its error messages are written for the participant, who sees them
//! next to the question. Valid answers come back normalized, one per question in
//! question order, ready to record.

use std::collections::{BTreeMap, HashSet};

use serde_json::{Value, json};
use tandem_wire::{QuestionView, SurveyView};

use crate::error::{Problems, Reported};
use crate::markdown;
use crate::reader::{Table, article, check_id};
use crate::scene::Head;
use crate::suggest::did_you_mean;

/// Fields of a survey scene besides `kind`, `id` and `title`.
pub(crate) const FIELDS: &[&str] = &["markdown", "question"];

/// Fields every question has.
const QUESTION_FIELDS: &[&str] = &["id", "prompt", "kind", "required"];

/// The key under which [`SurveyScene::validate`] reports problems that concern no
/// single question. Question ids cannot be `_` (they start with a letter or digit).
pub const GENERAL_ERROR_KEY: &str = "_";

/// A page of questions.
#[derive(Clone, Debug, PartialEq)]
pub struct SurveyScene {
    pub id: String,
    pub title: String,
    /// Optional introduction, as written (empty if none).
    pub markdown: String,
    /// `markdown` rendered once, at load.
    pub html: String,
    pub questions: Vec<Question>,
}

/// One question of a survey.
#[derive(Clone, Debug, PartialEq)]
pub struct Question {
    /// Unique within its survey; the key of the answer.
    pub id: String,
    pub prompt: String,
    /// Whether the survey can be submitted without an answer (default true).
    pub required: bool,
    pub kind: QuestionKind,
}

/// What kind of answer a question takes.
#[derive(Clone, Debug, PartialEq)]
pub enum QuestionKind {
    /// Exactly one of `options`.
    Single { options: Vec<String> },
    /// Any number of distinct `options`.
    Multiple { options: Vec<String> },
    /// An integer from 1 to `scale`.
    Likert {
        scale: u32,
        low_label: Option<String>,
        high_label: Option<String>,
    },
    /// Free text of at most `max_length` characters.
    Text { multiline: bool, max_length: u32 },
}

impl QuestionKind {
    /// The name used for `kind` in the file and on the wire.
    pub fn name(&self) -> &'static str {
        match self {
            QuestionKind::Single { .. } => "single",
            QuestionKind::Multiple { .. } => "multiple",
            QuestionKind::Likert { .. } => "likert",
            QuestionKind::Text { .. } => "text",
        }
    }
}

/// Question kinds and the fields each adds.
const KINDS: &[(&str, &[&str])] = &[
    ("single", &["options"]),
    ("multiple", &["options"]),
    ("likert", &["scale", "low_label", "high_label"]),
    ("text", &["multiline", "max_length"]),
];

impl SurveyScene {
    /// Checks a submitted `answers` object (question id → answer).
    ///
    /// On success, returns one `(question id, answer)` per question, in question
    /// order: options as given, likert answers as integers, text trimmed, and
    /// `null` for an optional question left unanswered (omitted, null, empty
    /// text or, for `multiple`, an empty list). On failure, returns a message per
    /// question id, plus one under [`GENERAL_ERROR_KEY`] for problems that concern
    /// no question (answers not an object, unknown question ids).
    pub fn validate(
        &self,
        answers: &Value,
    ) -> Result<Vec<(String, Value)>, BTreeMap<String, String>> {
        let mut errors = BTreeMap::new();
        let Some(answers) = answers.as_object() else {
            errors.insert(
                GENERAL_ERROR_KEY.to_string(),
                "The answers could not be read. Please reload the page and try again.".to_string(),
            );
            return Err(errors);
        };
        let unknown: Vec<&str> = answers
            .keys()
            .filter(|id| !self.questions.iter().any(|q| &q.id == *id))
            .map(String::as_str)
            .collect();
        if !unknown.is_empty() {
            errors.insert(
                GENERAL_ERROR_KEY.to_string(),
                format!(
                    "Answers were sent for questions this page does not have ({}). \
                     Please reload the page and try again.",
                    unknown.join(", ")
                ),
            );
        }
        let mut normalized = Vec::with_capacity(self.questions.len());
        for question in &self.questions {
            let answer = answers.get(&question.id).unwrap_or(&Value::Null);
            match question.check(answer) {
                Ok(value) => normalized.push((question.id.clone(), value)),
                Err(message) => {
                    errors.insert(question.id.clone(), message.to_string());
                }
            }
        }
        if errors.is_empty() {
            Ok(normalized)
        } else {
            Err(errors)
        }
    }

    /// The scene as the participant page receives it.
    pub fn view(&self) -> SurveyView {
        SurveyView {
            id: self.id.clone(),
            title: self.title.clone(),
            html: self.html.clone(),
            questions: self.questions.iter().map(Question::view).collect(),
        }
    }
}

impl Question {
    /// The normalized answer, or a message for the participant. `Null` is an
    /// unanswered question.
    fn check(&self, answer: &Value) -> Result<Value, String> {
        const REQUIRED: &str = "Please answer this question.";
        let normalized = match (&self.kind, answer) {
            (_, Value::Null) => Value::Null,
            (QuestionKind::Single { options }, Value::String(s)) => {
                if !options.contains(s) {
                    return Err("Please choose one of the options.".into());
                }
                answer.clone()
            }
            (QuestionKind::Single { .. }, _) => {
                return Err("Please choose one of the options.".into());
            }
            (QuestionKind::Multiple { options }, Value::Array(items)) => {
                let mut seen = HashSet::new();
                for item in items {
                    let Some(item) = item.as_str().filter(|s| options.iter().any(|o| o == s))
                    else {
                        return Err("Please choose only from the options shown.".into());
                    };
                    if !seen.insert(item) {
                        return Err("Please choose each option at most once.".into());
                    }
                }
                if items.is_empty() {
                    Value::Null
                } else {
                    answer.clone()
                }
            }
            (QuestionKind::Multiple { .. }, _) => {
                return Err("Please choose from the options shown.".into());
            }
            (QuestionKind::Likert { scale, .. }, Value::Number(n)) => {
                match n.as_i64().filter(|v| (1..=i64::from(*scale)).contains(v)) {
                    Some(v) => json!(v),
                    None => return Err(format!("Please choose a point from 1 to {scale}.")),
                }
            }
            (QuestionKind::Likert { scale, .. }, _) => {
                return Err(format!("Please choose a point from 1 to {scale}."));
            }
            (QuestionKind::Text { max_length, .. }, Value::String(s)) => {
                let length = s.chars().count();
                if length > *max_length as usize {
                    return Err(format!(
                        "Please shorten your answer to at most {max_length} characters \
                         (it has {length})."
                    ));
                }
                let trimmed = s.trim();
                if trimmed.is_empty() {
                    Value::Null
                } else {
                    json!(trimmed)
                }
            }
            (QuestionKind::Text { .. }, _) => {
                return Err("Please answer in text.".into());
            }
        };
        if normalized.is_null() && self.required {
            return Err(REQUIRED.into());
        }
        Ok(normalized)
    }

    /// The question as the participant page receives it.
    pub fn view(&self) -> QuestionView {
        use tandem_wire::QuestionKind as Wire;
        let kind = match &self.kind {
            QuestionKind::Single { options } => Wire::Single {
                options: options.clone(),
            },
            QuestionKind::Multiple { options } => Wire::Multiple {
                options: options.clone(),
            },
            QuestionKind::Likert {
                scale,
                low_label,
                high_label,
            } => Wire::Likert {
                scale: *scale,
                low_label: low_label.clone(),
                high_label: high_label.clone(),
            },
            QuestionKind::Text {
                multiline,
                max_length,
            } => Wire::Text {
                multiline: *multiline,
                max_length: *max_length,
            },
        };
        QuestionView {
            id: self.id.clone(),
            prompt: self.prompt.clone(),
            required: self.required,
            kind,
        }
    }
}

pub(crate) fn read(
    problems: &mut Problems,
    table: &Table,
    head: Result<Head, Reported>,
) -> Result<SurveyScene, Reported> {
    let markdown = table.opt_str(problems, "markdown");
    let questions = read_questions(problems, table);
    let head = head?;
    let markdown = markdown?.unwrap_or_default();
    Ok(SurveyScene {
        id: head.id,
        title: head.title,
        html: markdown::to_html(&markdown),
        markdown,
        questions: questions?,
    })
}

fn read_questions(problems: &mut Problems, table: &Table) -> Result<Vec<Question>, Reported> {
    const NEED: &str = ": a survey needs at least one [[scene.question]]";
    let Some(field) = table.field("question") else {
        return Err(table.missing(problems, "question", NEED));
    };
    let tables = field.tables(problems)?;
    if tables.is_empty() {
        return Err(field.report(problems, NEED.trim_start_matches(": ")));
    }
    let mut seen: HashSet<String> = HashSet::new();
    let mut result = Ok(Vec::with_capacity(tables.len()));
    for table in &tables {
        let question = read_question(problems, table, &mut seen);
        match (&mut result, question) {
            (Ok(questions), Ok(question)) => questions.push(question),
            (_, Err(r)) => result = Err(r),
            (Err(_), Ok(_)) => {}
        }
    }
    result
}

fn read_question(
    problems: &mut Problems,
    table: &Table,
    seen: &mut HashSet<String>,
) -> Result<Question, Reported> {
    let id = match table.field("id") {
        None => Err(table.missing(problems, "id", "")),
        Some(field) => field.text(problems).and_then(|id| {
            check_id(problems, &field, &id)?;
            if !seen.insert(id.clone()) {
                return Err(field.report(
                    problems,
                    format!("question id {id:?} is already used in this survey"),
                ));
            }
            Ok(id)
        }),
    };
    let prompt = table.req_str(problems, "prompt");
    let required = table.opt_bool(problems, "required");

    let names: Vec<&str> = KINDS.iter().map(|(name, _)| *name).collect();
    let kind = match table.field("kind") {
        None => Err(table.missing(problems, "kind", &format!(": one of {}", names.join(", ")))),
        Some(field) => field.string(problems).and_then(|name| {
            KINDS
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(k, fields)| (*k, *fields))
                .ok_or_else(|| {
                    field.report(
                        problems,
                        format!(
                            "unknown question kind {name:?}{}; kinds are {}",
                            did_you_mean(name, &names),
                            names.join(", ")
                        ),
                    )
                })
        }),
    };
    let kind = kind.and_then(|(name, fields)| {
        let allowed: Vec<&str> = QUESTION_FIELDS.iter().chain(fields).copied().collect();
        table.deny_unknown(problems, &format!("{name} questions"), &allowed, |key| {
            let owners: Vec<&str> = KINDS
                .iter()
                .filter(|(_, f)| f.contains(&key))
                .map(|(k, _)| *k)
                .collect();
            (!owners.is_empty()).then(|| {
                format!(
                    "only {} questions have it, and this is a {name} question",
                    owners.join(" and ")
                )
            })
        });
        read_kind(problems, table, name)
    });
    Ok(Question {
        id: id?,
        prompt: prompt?,
        required: required?.unwrap_or(true),
        kind: kind?,
    })
}

fn read_kind(problems: &mut Problems, table: &Table, name: &str) -> Result<QuestionKind, Reported> {
    match name {
        "single" | "multiple" => {
            let options = read_options(problems, table)?;
            Ok(if name == "single" {
                QuestionKind::Single { options }
            } else {
                QuestionKind::Multiple { options }
            })
        }
        "likert" => {
            let scale = table.opt_int(problems, "scale", 2..=11);
            let low_label = table.opt_str(problems, "low_label");
            let high_label = table.opt_str(problems, "high_label");
            Ok(QuestionKind::Likert {
                scale: scale?.and_then(|s| u32::try_from(s).ok()).unwrap_or(7),
                low_label: low_label?,
                high_label: high_label?,
            })
        }
        _ => {
            let multiline = table.opt_bool(problems, "multiline");
            let max_length = table.opt_int(problems, "max_length", 1..=10_000);
            Ok(QuestionKind::Text {
                multiline: multiline?.unwrap_or(false),
                max_length: max_length?
                    .and_then(|s| u32::try_from(s).ok())
                    .unwrap_or(2000),
            })
        }
    }
}

/// At least two options, each non-empty and unique.
fn read_options(problems: &mut Problems, table: &Table) -> Result<Vec<String>, Reported> {
    let Some(field) = table.field("options") else {
        return Err(table.missing(
            problems,
            "options",
            ": the choices, such as options = [\"Yes\", \"No\"]",
        ));
    };
    let array = field.array(problems)?;
    let mut options: Vec<String> = Vec::with_capacity(array.len());
    let mut result = Ok(());
    for value in array.iter() {
        let span = value.span().unwrap_or_else(|| field.span.clone());
        let message = match value.as_str() {
            None => Some(format!(
                "options must be strings, not {}",
                article(value.type_name())
            )),
            Some(s) if s.trim().is_empty() => Some("options must not be empty".to_string()),
            Some(s) if options.iter().any(|o| o == s) => {
                Some(format!("the option {s:?} appears twice"))
            }
            Some(s) => {
                options.push(s.to_string());
                None
            }
        };
        if let Some(message) = message {
            result = Err(problems.report(&span, field.path.clone(), message));
        }
    }
    result?;
    if options.len() < 2 {
        return Err(field.report(problems, "a choice question needs at least two options"));
    }
    Ok(options)
}
