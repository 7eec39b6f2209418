//! The researcher's controls over a running study: pause and resume
//! admissions, cap the participants, end a running game, close the study.
//!
//! Each is written to the database with a line in the audit log naming the
//! researcher, in one transaction, before it takes effect here, so a restart
//! keeps it and the log never misses a change that happened. Ending a game is
//! the exception: the game's task records the interrupted episode and the
//! end, so the task is told first and the audit line written once it was.

use std::sync::atomic::Ordering;

use axum::Extension;
use axum::extract::{Form, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use tandem_store::ConsoleSession;
use tracing::{error, info};

use super::auth::csrf_refusal;
use super::{page, refused};
use crate::state::AppState;
use crate::studies::Studies;

/// The longest reason kept for ending a game; longer ones are cut.
const MAX_REASON: usize = 200;

/// The study a form names (the first when it names none).
fn study(studies: &Studies, id: &str) -> Option<AppState> {
    studies.chosen(Some(id)).cloned()
}

fn no_such_study() -> Response {
    refused(StatusCode::NOT_FOUND, "No such study on this server.")
}

/// Back to the dashboard of `state`'s study.
fn back_to(state: &AppState) -> Response {
    let id: String = form_urlencoded_component(&state.experiment.id);
    Redirect::to(&format!("/console?study={id}")).into_response()
}

/// A study id as a query value (ids on a server with several studies are
/// letters, digits, `-`, `_` and `.`; a lone study's may be anything).
fn form_urlencoded_component(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn not_written() -> Response {
    page(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Not changed",
        "<p>The database could not be written; nothing changed.</p>",
    )
}

#[derive(serde::Deserialize)]
pub(super) struct Admissions {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    study: String,
    #[serde(default)]
    paused: String,
}

#[derive(serde::Deserialize)]
pub(super) struct Cap {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    study: String,
    #[serde(default)]
    cap: String,
}

/// Sets or clears the participant cap, recorded in the audit log with who did
/// it. A cap below the participants already in admits nobody new; nobody is
/// turned out.
pub(super) async fn participant_cap(
    State(studies): State<Studies>,
    Extension(session): Extension<ConsoleSession>,
    Form(form): Form<Cap>,
) -> Response {
    if let Some(refusal) = csrf_refusal(&session, &form.csrf) {
        return refusal;
    }
    let Some(state) = study(&studies, &form.study) else {
        return no_such_study();
    };
    let cap = match form.cap.trim() {
        "" => None,
        text => match text.parse::<u64>() {
            Ok(cap) => Some(cap),
            Err(_) => {
                return refused(
                    StatusCode::BAD_REQUEST,
                    "The cap is a whole number of participants, or empty for none.",
                );
            }
        },
    };
    if let Err(e) = state
        .store
        .set_participant_cap(&state.experiment.id, cap, &session.user_name)
        .await
    {
        error!(cause = %e, "could not record the participant cap");
        return not_written();
    }
    state.admission.set_cap(cap);
    info!(
        user = session.user_name,
        ?cap,
        "participant cap changed from the console"
    );
    back_to(&state)
}

/// Pauses or resumes admissions, recorded in the audit log with who did it.
pub(super) async fn admissions(
    State(studies): State<Studies>,
    Extension(session): Extension<ConsoleSession>,
    Form(form): Form<Admissions>,
) -> Response {
    if let Some(refusal) = csrf_refusal(&session, &form.csrf) {
        return refusal;
    }
    let Some(state) = study(&studies, &form.study) else {
        return no_such_study();
    };
    let paused = match form.paused.as_str() {
        "true" => true,
        "false" => false,
        _ => {
            return refused(StatusCode::BAD_REQUEST, "paused must be true or false.");
        }
    };
    if let Err(e) = state
        .store
        .set_admissions_paused(&state.experiment.id, paused, &session.user_name)
        .await
    {
        error!(cause = %e, "could not record pausing admissions");
        return not_written();
    }
    state.admissions_paused.store(paused, Ordering::SeqCst);
    info!(
        user = session.user_name,
        paused, "admissions changed from the console"
    );
    back_to(&state)
}

#[derive(serde::Deserialize)]
pub(super) struct EndGame {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    reason: String,
}

/// Ends running game `game_id`: its running episode is recorded as
/// interrupted with the researcher's reason, and its players move on.
pub(super) async fn end_game(
    State(studies): State<Studies>,
    Path(game_id): Path<i64>,
    Extension(session): Extension<ConsoleSession>,
    Form(form): Form<EndGame>,
) -> Response {
    if let Some(refusal) = csrf_refusal(&session, &form.csrf) {
        return refusal;
    }
    let reason = one_line(&form.reason, MAX_REASON);
    let reason = if reason.is_empty() {
        "no reason given".to_string()
    } else {
        reason
    };
    let Some(state) = studies.running(game_id) else {
        return refused(StatusCode::NOT_FOUND, "That game is not running.");
    };
    let detail =
        serde_json::json!({"study": state.experiment.id, "game": game_id, "reason": reason});
    // Told first, audited once it took: the log never records an end that
    // did not happen. The game records the interrupted episode itself.
    let told = format!("{} ({})", reason, session.user_name);
    if !state.placement.end_game(game_id, told) {
        return refused(StatusCode::NOT_FOUND, "That game had already ended.");
    }
    if let Err(e) = state
        .store
        .audit(&session.user_name, "end_game", &detail)
        .await
    {
        error!(cause = %e, game = game_id, "the game was ended but its audit line could not be written");
        return page(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Ended, not audited",
            "<p>The game was ended, but the audit log could not be written.</p>",
        );
    }
    info!(
        user = session.user_name,
        game = game_id,
        "game ended from the console"
    );
    back_to(state)
}

#[derive(serde::Deserialize)]
pub(super) struct Close {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    study: String,
    #[serde(default)]
    confirm: String,
}

/// Closes the study for good: new arrivals see that it has ended; those
/// already in finish. The form must say `confirm=close`.
pub(super) async fn close_study(
    State(studies): State<Studies>,
    Extension(session): Extension<ConsoleSession>,
    Form(form): Form<Close>,
) -> Response {
    if let Some(refusal) = csrf_refusal(&session, &form.csrf) {
        return refusal;
    }
    let Some(state) = study(&studies, &form.study) else {
        return no_such_study();
    };
    if form.confirm != "close" {
        return refused(
            StatusCode::BAD_REQUEST,
            "Type close in the box to close the study.",
        );
    }
    if let Err(e) = state
        .store
        .close_study(&state.experiment.id, &session.user_name)
        .await
    {
        error!(cause = %e, "could not record closing the study");
        return not_written();
    }
    state.study_closed.store(true, Ordering::SeqCst);
    info!(user = session.user_name, "study closed from the console");
    back_to(&state)
}

/// `text` on one line, control characters dropped, at most `max` characters.
fn one_line(text: &str, max: usize) -> String {
    text.chars()
        .map(|c| if c.is_whitespace() { ' ' } else { c })
        .filter(|c| !c.is_control())
        .take(max)
        .collect::<String>()
        .trim()
        .to_string()
}
