//! End scenes: the last page, with a completion code and an optional redirect back
//! to the recruiting platform.
//!
//! Platforms such as Prolific and MTurk identify a participant with query
//! parameters on the study link and expect them back at a URL that carries a code
//! or their ids. The `redirect` template names those values as `{placeholders}`;
//! it is parsed and checked at load (an unknown placeholder is a typo that would
//! otherwise strand every participant) and filled per participant, URL-encoded.

use serde_json::Value;
use tandem_wire::{EndView, MturkSubmit, SceneView};

use crate::error::{Problems, Reported};
use crate::markdown;
use crate::reader::{Field, Table};
use crate::scene::Head;
use crate::suggest::did_you_mean;

/// Fields of an end scene besides `kind`, `id` and `title`.
pub(crate) const FIELDS: &[&str] = &["markdown", "completion_code", "redirect"];

/// Who a participant is, as far as a redirect needs to know: Tandem's public id
/// and the ids the recruiting platform passed on the study link. A missing id
/// fills its placeholder with the empty string.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExternalIds {
    /// Tandem's public participant id (`{participant}`).
    pub participant: String,
    /// Prolific's `PROLIFIC_PID`.
    pub prolific_pid: Option<String>,
    /// Prolific's `STUDY_ID`.
    pub study_id: Option<String>,
    /// Prolific's `SESSION_ID`.
    pub session_id: Option<String>,
    /// MTurk's `workerId`.
    pub worker_id: Option<String>,
    /// MTurk's `assignmentId`.
    pub assignment_id: Option<String>,
    /// MTurk's `hitId`.
    pub hit_id: Option<String>,
    /// MTurk's `turkSubmitTo` (an origin the server allows): with an
    /// assignment id, the end page posts the assignment there.
    pub turk_submit_to: Option<String>,
}

/// A value a redirect template can name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placeholder {
    CompletionCode,
    Participant,
    ProlificPid,
    StudyId,
    SessionId,
    WorkerId,
    AssignmentId,
    HitId,
}

impl Placeholder {
    const ALL: [Placeholder; 8] = [
        Placeholder::CompletionCode,
        Placeholder::Participant,
        Placeholder::ProlificPid,
        Placeholder::StudyId,
        Placeholder::SessionId,
        Placeholder::WorkerId,
        Placeholder::AssignmentId,
        Placeholder::HitId,
    ];

    /// The name written between braces; the platform ids keep the platforms'
    /// own spelling, so a template reads like the URL it produces.
    pub fn name(self) -> &'static str {
        match self {
            Placeholder::CompletionCode => "completion_code",
            Placeholder::Participant => "participant",
            Placeholder::ProlificPid => "PROLIFIC_PID",
            Placeholder::StudyId => "STUDY_ID",
            Placeholder::SessionId => "SESSION_ID",
            Placeholder::WorkerId => "workerId",
            Placeholder::AssignmentId => "assignmentId",
            Placeholder::HitId => "hitId",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        Placeholder::ALL.into_iter().find(|p| p.name() == name)
    }
}

/// A piece of a parsed redirect template.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Text(String),
    Value(Placeholder),
}

/// A parsed redirect template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedirectTemplate {
    /// As written in the file.
    source: String,
    parts: Vec<Part>,
}

impl RedirectTemplate {
    /// The template as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// The URL for one participant: each placeholder replaced by its
    /// percent-encoded value (empty when the participant has no such id).
    pub fn fill(&self, completion_code: Option<&str>, ids: &ExternalIds) -> String {
        let mut url = String::with_capacity(self.source.len() + 32);
        for part in &self.parts {
            match part {
                Part::Text(text) => url.push_str(text),
                Part::Value(placeholder) => {
                    let value = match placeholder {
                        Placeholder::CompletionCode => completion_code,
                        Placeholder::Participant => Some(ids.participant.as_str()),
                        Placeholder::ProlificPid => ids.prolific_pid.as_deref(),
                        Placeholder::StudyId => ids.study_id.as_deref(),
                        Placeholder::SessionId => ids.session_id.as_deref(),
                        Placeholder::WorkerId => ids.worker_id.as_deref(),
                        Placeholder::AssignmentId => ids.assignment_id.as_deref(),
                        Placeholder::HitId => ids.hit_id.as_deref(),
                    };
                    percent_encode(value.unwrap_or(""), &mut url);
                }
            }
        }
        url
    }

    pub(crate) fn uses(&self, placeholder: Placeholder) -> bool {
        self.parts.contains(&Part::Value(placeholder))
    }
}

/// The last page.
#[derive(Clone, Debug, PartialEq)]
pub struct EndScene {
    pub id: String,
    pub title: String,
    pub markdown: String,
    /// `markdown` rendered once, at load.
    pub html: String,
    /// The code participants give the platform to prove they finished.
    pub completion_code: Option<String>,
    /// Where to send participants, if anywhere.
    pub redirect: Option<RedirectTemplate>,
}

impl EndScene {
    /// The redirect URL for this participant, if the scene has one.
    pub fn redirect_url(&self, ids: &ExternalIds) -> Option<String> {
        self.redirect
            .as_ref()
            .map(|r| r.fill(self.completion_code.as_deref(), ids))
    }

    /// The scene as this participant's page receives it, redirect filled in.
    pub fn view(&self, ids: &ExternalIds) -> EndView {
        let mturk_submit = match (&ids.turk_submit_to, &ids.assignment_id) {
            (Some(origin), Some(assignment_id)) => Some(MturkSubmit {
                action: format!("{}/mturk/externalSubmit", origin.trim_end_matches('/')),
                assignment_id: assignment_id.clone(),
            }),
            _ => None,
        };
        EndView {
            redirect_url: self.redirect_url(ids),
            mturk_submit,
            ..self.view_without_redirect()
        }
    }

    /// The scene as nobody in particular receives it: `redirect_url` is null.
    pub(crate) fn view_without_redirect(&self) -> EndView {
        EndView {
            id: self.id.clone(),
            title: self.title.clone(),
            html: self.html.clone(),
            completion_code: self.completion_code.clone(),
            redirect_url: None,
            mturk_submit: None,
        }
    }

    /// [`EndScene::view`] as JSON.
    pub fn client_json(&self, ids: &ExternalIds) -> Value {
        crate::scene::to_json(&SceneView::End(self.view(ids)))
    }
}

pub(crate) fn read(
    problems: &mut Problems,
    table: &Table,
    head: Result<Head, Reported>,
) -> Result<EndScene, Reported> {
    let markdown = table.req_str(problems, "markdown");
    let completion_code = table.opt_str(problems, "completion_code");
    let redirect_field = table.field("redirect");
    let redirect = match &redirect_field {
        None => Ok(None),
        Some(field) => read_redirect(problems, field).map(Some),
    };
    let redirect = match (redirect, &completion_code, &redirect_field) {
        (Ok(Some(template)), Ok(None), Some(field))
            if template.uses(Placeholder::CompletionCode) =>
        {
            Err(field.report(
                problems,
                "the redirect uses {completion_code}, but this scene has no completion_code",
            ))
        }
        (redirect, _, _) => redirect,
    };
    let head = head?;
    let markdown = markdown?;
    Ok(EndScene {
        id: head.id,
        title: head.title,
        html: markdown::to_html(&markdown),
        markdown,
        completion_code: completion_code?,
        redirect: redirect?,
    })
}

pub(crate) fn read_redirect(
    problems: &mut Problems,
    field: &Field,
) -> Result<RedirectTemplate, Reported> {
    let source = field.text(problems)?;
    let lower = source.to_ascii_lowercase();
    if !(lower.starts_with("https://") || lower.starts_with("http://")) {
        return Err(field.report(
            problems,
            format!("the redirect must be an http:// or https:// URL, not {source:?}"),
        ));
    }
    parse_template(&source)
        .map(|parts| RedirectTemplate {
            source: source.clone(),
            parts,
        })
        .map_err(|message| field.report(problems, message))
}

/// Splits a template into text and placeholders. Braces have no other use in a
/// URL (they must be percent-encoded there), so there is no escape syntax.
fn parse_template(template: &str) -> Result<Vec<Part>, String> {
    let names: Vec<&str> = Placeholder::ALL.iter().map(|p| p.name()).collect();
    let mut parts = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find(['{', '}']) {
        if rest[open..].starts_with('}') {
            return Err(format!(
                "unmatched \"}}\" in the redirect after {:?}",
                &template[..template.len() - rest.len() + open]
            ));
        }
        if open > 0 {
            parts.push(Part::Text(rest[..open].to_string()));
        }
        let after = &rest[open + 1..];
        let close = after
            .find(['{', '}'])
            .filter(|&close| after[close..].starts_with('}'))
            .ok_or_else(|| format!("unclosed \"{{\" in the redirect at {:?}", &rest[open..]))?;
        let name = &after[..close];
        let placeholder = Placeholder::from_name(name).ok_or_else(|| {
            let all: Vec<String> = names.iter().map(|n| format!("{{{n}}}")).collect();
            format!(
                "unknown placeholder {{{name}}} in the redirect{}; placeholders are {}",
                did_you_mean(name, &names),
                all.join(", ")
            )
        })?;
        parts.push(Part::Value(placeholder));
        rest = &after[close + 1..];
    }
    if !rest.is_empty() {
        parts.push(Part::Text(rest.to_string()));
    }
    Ok(parts)
}

/// Appends `value` percent-encoded: everything but RFC 3986 unreserved characters.
fn percent_encode(value: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0x0f)]));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Templates split into text and placeholders; stray braces are refused.
    #[test]
    fn templates_parse() {
        assert_eq!(
            parse_template("https://x/?a={participant}&b=1"),
            Ok(vec![
                Part::Text("https://x/?a=".into()),
                Part::Value(Placeholder::Participant),
                Part::Text("&b=1".into()),
            ])
        );
        assert!(parse_template("https://x/{participant").is_err());
        assert!(parse_template("https://x/participant}").is_err());
        assert!(parse_template("https://x/{{participant}}").is_err());
        let err = parse_template("https://x/{workerID}").unwrap_err();
        assert!(err.contains("did you mean \"workerId\"?"), "{err}");
    }

    /// Values are percent-encoded byte by byte, UTF-8 included.
    #[test]
    fn values_are_percent_encoded() {
        let mut out = String::new();
        percent_encode("a b&c=d/é~", &mut out);
        assert_eq!(out, "a%20b%26c%3Dd%2F%C3%A9~");
    }
}

/// An end before the end: the page a participant sees when the study stops
/// for them early (screened out, or timed out in a lobby), with its own text,
/// code and redirect, as Prolific's separate completion codes expect.
#[derive(Clone, Debug, PartialEq)]
pub struct EarlyEnd {
    pub html: String,
    pub code: Option<String>,
    pub redirect: Option<RedirectTemplate>,
}

impl EarlyEnd {
    /// The end page for participant `ids`, with the id `scene_id-suffix`.
    pub fn view(&self, scene_id: &str, suffix: &str, ids: &ExternalIds) -> EndView {
        EndView {
            id: format!("{scene_id}-{suffix}"),
            title: "Thank you".to_string(),
            html: self.html.clone(),
            completion_code: self.code.clone(),
            redirect_url: self
                .redirect
                .as_ref()
                .map(|r| r.fill(self.code.as_deref(), ids)),
            mturk_submit: None,
        }
    }
}

/// Reads `{prefix}_markdown`, `{prefix}_code` and `{prefix}_redirect`; `None`
/// when none is given, unless `always` (then `default_text` stands in).
pub(crate) fn read_early_end(
    problems: &mut Problems,
    table: &Table,
    prefix: &str,
    default_text: &str,
    always: bool,
) -> Result<Option<EarlyEnd>, Reported> {
    let markdown_key = format!("{prefix}_markdown");
    let code_key = format!("{prefix}_code");
    let redirect_key = format!("{prefix}_redirect");
    let text = table.opt_str(problems, &markdown_key);
    let code = table.opt_str(problems, &code_key);
    let redirect = match table.field(&redirect_key) {
        None => Ok(None),
        Some(field) => read_redirect(problems, &field).and_then(|template| {
            if template.uses(Placeholder::CompletionCode) && !matches!(code, Ok(Some(_))) {
                Err(field.report(
                    problems,
                    format!(
                        "{redirect_key} uses {{completion_code}}, but the scene has no {code_key}"
                    ),
                ))
            } else {
                Ok(Some(template))
            }
        }),
    };
    let (text, code, redirect) = (text?, code?, redirect?);
    if !always && text.is_none() && code.is_none() && redirect.is_none() {
        return Ok(None);
    }
    Ok(Some(EarlyEnd {
        html: markdown::to_html(text.as_deref().unwrap_or(default_text)),
        code,
        redirect,
    }))
}
