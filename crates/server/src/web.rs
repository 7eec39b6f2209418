//! The HTTP side: one router with the participant page, its static files, the
//! participant socket, and a health check.
//!
//! `GET /` is where a participant becomes known: it reads Prolific or MTurk ids
//! from the query string, finds or creates the participant, and sets the cookie
//! that the socket later identifies them by. The page and its modules are compiled
//! into the binary, so the server needs no files beside it.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use include_dir::{Dir, include_dir};
use tandem_store::{ExternalKey, NewParticipant, Participant, RecruitIds, StoreError};
use tracing::{error, info, warn};

use crate::session;
use crate::state::AppState;

/// The participant front end, embedded at build time.
static WEB: Dir = include_dir!("$CARGO_MANIFEST_DIR/../../web");

/// The cookie that identifies a participant's browser.
pub const PARTICIPANT_COOKIE: &str = "tandem_participant";

/// External ids longer than this are cut: no real id is this long.
const MAX_ID_LEN: usize = 128;

/// The whole HTTP surface of the server.
pub fn app(state: AppState) -> Router {
    // The page and its modules are text and gzip to about a third: what a
    // participant downloads before the first frame (BENCHMARKS.md, page load).
    let pages = Router::new()
        .route("/", get(participant_page))
        .route("/static/{*path}", get(static_file))
        .layer(tower_http::compression::CompressionLayer::new());
    Router::new()
        .merge(pages)
        .route("/ws", get(participant_socket))
        .route("/healthz", get(|| async { "ok" }))
        .route("/metrics", get(metrics))
        .with_state(state)
}

/// An error inside a handler: logged in full, reported to the browser briefly.
pub struct AppError(String);

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        AppError(format!("database: {e}"))
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        error!(cause = %self.0, "request failed");
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            "Something went wrong on our side. Please reload the page in a moment.",
        )
            .into_response()
    }
}

/// The recruiting platform's ids from the study link's query string.
fn recruit_ids(query: &HashMap<String, String>) -> RecruitIds {
    let get = |key: &str| {
        query
            .get(key)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
            .map(|v| v.chars().take(MAX_ID_LEN).collect::<String>())
    };
    RecruitIds {
        prolific_pid: get("PROLIFIC_PID"),
        study_id: get("STUDY_ID"),
        session_id: get("SESSION_ID"),
        worker_id: get("workerId"),
        assignment_id: get("assignmentId"),
        hit_id: get("hitId"),
    }
}

/// Whether `p` may be the person a link names: a link with a Prolific or MTurk
/// id belongs only to the participant with that id.
fn link_fits(link: &RecruitIds, p: &Participant) -> bool {
    let same = |link: &Option<String>, stored: &Option<String>| link.is_none() || link == stored;
    same(&link.prolific_pid, &p.recruit.prolific_pid) && same(&link.worker_id, &p.recruit.worker_id)
}

async fn participant_page(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    jar: CookieJar,
) -> Result<Response, AppError> {
    if state.is_shutting_down() {
        return Ok((
            StatusCode::SERVICE_UNAVAILABLE,
            "The study server is restarting; please reload in a minute.",
        )
            .into_response());
    }
    let link = recruit_ids(&query);
    let experiment_id = &state.experiment.id;
    let mut participant = None;
    if let Some(cookie) = jar.get(PARTICIPANT_COOKIE) {
        participant = state
            .store
            .participant_by_token(cookie.value())
            .await?
            .filter(|p| &p.experiment_id == experiment_id && link_fits(&link, p));
    }
    if participant.is_none() {
        let key = match (&link.prolific_pid, &link.worker_id) {
            (Some(pid), _) => Some(ExternalKey::Prolific(pid)),
            (None, Some(worker)) => Some(ExternalKey::MTurk(worker)),
            (None, None) => None,
        };
        if let Some(key) = key {
            participant = state
                .store
                .participant_by_external(experiment_id, key)
                .await?;
        }
    }
    let participant = match participant {
        Some(p) => p,
        None => create_participant(&state, link, &headers).await?,
    };
    let cookie = Cookie::build((PARTICIPANT_COOKIE, participant.token.clone()))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .max_age(cookie::time::Duration::days(60))
        .build();
    let page = WEB
        .get_file("index.html")
        .and_then(|f| f.contents_utf8())
        .unwrap_or("<!doctype html><p>The participant page is missing from this build.</p>");
    Ok((
        jar.add(cookie),
        [(header::CACHE_CONTROL, "no-store")],
        Html(page),
    )
        .into_response())
}

async fn create_participant(
    state: &AppState,
    recruit: RecruitIds,
    headers: &HeaderMap,
) -> Result<Participant, AppError> {
    let user_agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.chars().take(512).collect());
    let new = NewParticipant {
        token: uuid::Uuid::new_v4().simple().to_string(),
        public_id: uuid::Uuid::now_v7().to_string(),
        experiment_id: state.experiment.id.clone(),
        recruit,
        user_agent,
    };
    let participant = state.store.create_participant(&new).await?;
    if let Some(first) = state.experiment.scenes.first() {
        state
            .store
            .enter_scene(participant.id, None, (0, first.id()))
            .await?;
    }
    info!(participant = participant.id, public_id = %participant.public_id, "new participant");
    Ok(participant)
}

async fn static_file(axum::extract::Path(path): axum::extract::Path<String>) -> Response {
    let Some(file) = WEB.get_file(&path) else {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    };
    let content_type = match path.rsplit('.').next() {
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("html") => "text/html; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        _ => "application/octet-stream",
    };
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        file.contents(),
    )
        .into_response()
}

async fn participant_socket(
    State(state): State<AppState>,
    jar: CookieJar,
    ws: WebSocketUpgrade,
) -> Response {
    let participant = match jar.get(PARTICIPANT_COOKIE) {
        Some(cookie) => match state.store.participant_by_token(cookie.value()).await {
            Ok(p) => p.filter(|p| p.experiment_id == state.experiment.id),
            Err(e) => {
                error!(cause = %e, "could not look up a participant for a socket");
                None
            }
        },
        None => None,
    };
    // Taken before the upgrade, so a socket over the cap costs no session; it
    // is still upgraded, to be closed with a code the page can act on (a
    // failed upgrade tells a browser nothing).
    let permit = Arc::clone(&state.sockets).try_acquire_owned().ok();
    // tungstenite's default 128 KiB read buffer, zeroed on first use, was most of
    // a session's memory; client messages are small (BENCHMARKS.md, 168 → 39 KB).
    ws.read_buffer_size(4 * 1024)
        .max_message_size(tandem_wire::MAX_CLIENT_MESSAGE)
        .max_frame_size(tandem_wire::MAX_CLIENT_MESSAGE)
        .on_upgrade(move |mut socket| async move {
            let (code, reason) = match (participant, permit) {
                (Some(_), _) if state.is_shutting_down() => {
                    (tandem_wire::CLOSE_RESTART, "server restarting")
                }
                (Some(p), Some(permit)) => return session::run(socket, state, p.id, permit).await,
                (Some(p), None) => {
                    warn!(
                        participant = p.id,
                        limit = state.sockets_limit,
                        "refused a socket: the server holds as many as it may"
                    );
                    (tandem_wire::CLOSE_FULL, "server full")
                }
                (None, _) => {
                    warn!("socket without a known participant");
                    (
                        tandem_wire::CLOSE_UNKNOWN_PARTICIPANT,
                        "unknown participant",
                    )
                }
            };
            let _ = socket
                .send(Message::Close(Some(CloseFrame {
                    code,
                    reason: Utf8Bytes::from_static(reason),
                })))
                .await;
        })
}

/// Live counters as JSON, for `tandem bench` and monitoring: connected sockets,
/// running games, participants waiting in lobbies, steps played by the game
/// loops and the recorder's counts.
/// They hold no participant data.
async fn metrics(State(state): State<AppState>) -> Response {
    let recorder = state.recorder.stats();
    let (sockets, games, waiting) = state.placement.counts();
    axum::Json(serde_json::json!({
        "sessions": sockets,
        "games_running": games,
        "lobby_waiting": waiting,
        "steps_played": state.steps_played(),
        "recorder": {
            "steps_received": recorder.steps_received,
            "steps_written": recorder.steps_written,
            "batches_written": recorder.batches_written,
            "write_errors": recorder.write_errors,
            "steps_dropped": recorder.steps_dropped,
        },
    }))
    .into_response()
}

#[cfg(test)]
#[path = "web_tests.rs"]
mod tests;
