//! The HTTP side: one router with the participant page (see `arrival`), its
//! static files, the participant socket, the console, `/metrics` and a
//! health check.
//!
//! The page and its modules are compiled into the binary, so the server needs
//! no files beside it.

use std::sync::Arc;

use axum::Router;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocketUpgrade};
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum_extra::extract::cookie::CookieJar;
use tower_http::compression::CompressionLayer;
use tracing::{error, warn};

use crate::arrival;
use crate::assets;
use crate::headers;
use crate::session;
use crate::state::AppState;
use crate::studies::Studies;

/// The whole HTTP surface of a server with one study, served at `/`.
pub fn app(state: AppState) -> Router {
    app_for(&Studies::new(state, Vec::new()))
}

/// The whole HTTP surface of a server with `studies`: each study's page and
/// socket at `/s/ID/` (a lone study at `/` too), the shared static files, the
/// console and `/metrics`.
pub fn app_for(studies: &Studies) -> Router {
    let lone = studies.count() == 1;
    let mut router = Router::new()
        .route(
            "/static/{*path}",
            get(assets::static_file).layer(CompressionLayer::new()),
        )
        .route("/healthz", get(|| async { "ok" }));
    for study in studies.all() {
        router = router.merge(study_routes(study.clone(), lone));
    }
    let shared: Router<Studies> =
        crate::console::router(studies).route("/metrics", get(crate::console::metrics::public));
    router
        .merge(shared.with_state(studies.clone()))
        .layer(axum::middleware::from_fn_with_state(
            studies.first().clone(),
            headers::add,
        ))
}

/// One study's participant page and socket.
fn study_routes(state: AppState, lone: bool) -> Router {
    // The page and its modules are text and gzip to about a third: what a
    // participant downloads before the first frame (BENCHMARKS.md, page load).
    let page = || get(arrival::participant_page).layer(CompressionLayer::new());
    let id = &state.experiment.id;
    let mut router = Router::new()
        .route(&format!("/s/{id}/"), page())
        .route(&format!("/s/{id}/ws"), get(participant_socket))
        .route(&format!("/s/{id}"), get(to_study_folder));
    if lone {
        router = router
            .route("/", page())
            .route("/ws", get(participant_socket));
    }
    router.with_state(state)
}

/// `/s/ID` → `/s/ID/` with the same query, so that the page's relative
/// socket address resolves inside the study.
async fn to_study_folder(State(state): State<AppState>, RawQuery(query): RawQuery) -> Response {
    let folder = format!("/s/{}/", state.experiment.id);
    let to = match query {
        Some(q) => format!("{folder}?{q}"),
        None => folder,
    };
    Redirect::permanent(&to).into_response()
}

/// The participant of this study whose token is `token`; with `mturk_only`,
/// only an MTurk participant.
async fn lookup(
    state: &AppState,
    token: &str,
    mturk_only: bool,
) -> Option<tandem_store::Participant> {
    match state.store.participant_by_token(token).await {
        Ok(p) => p.filter(|p| {
            p.experiment_id == state.experiment.id && (!mturk_only || p.recruit.worker_id.is_some())
        }),
        Err(e) => {
            error!(cause = %e, "could not look up a participant for a socket");
            None
        }
    }
}

/// The longest key a socket request may carry (tokens are 32 hex digits).
const MAX_KEY_LEN: usize = 64;

/// The subprotocol a page offers with its key, and the prefix of the one
/// that carries the key (see `web/socket.js`).
const PROTOCOL: &str = "tandem.v1";
const KEY_PROTOCOL: &str = "tandem.key.";
/// Offered by a page that cannot inflate pixel deltas (no
/// `DecompressionStream("deflate-raw")`): it is sent whole frames only.
const WHOLE_PIXELS_PROTOCOL: &str = "tandem.whole-pixels";

/// An MTurk participant's key from the handshake's subprotocols, offered by a
/// page that had no cookie to send.
fn key_of(headers: &HeaderMap) -> Option<String> {
    offered(headers).find_map(|p| p.strip_prefix(KEY_PROTOCOL).map(str::to_string))
}

/// The subprotocols a handshake offers.
fn offered(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
}

async fn participant_socket(
    State(state): State<AppState>,
    headers: HeaderMap,
    jar: CookieJar,
    ws: WebSocketUpgrade,
) -> Response {
    // A valid cookie decides; a key (from a page that had no cookie to send)
    // opens only an MTurk participant's socket: nobody else's page is given one.
    let by_cookie = match jar.get(&state.cookie_name) {
        Some(cookie) => lookup(&state, cookie.value(), false).await,
        None => None,
    };
    let participant = match (by_cookie, key_of(&headers)) {
        (Some(p), _) => Some(p),
        (None, Some(key)) if !key.is_empty() && key.len() <= MAX_KEY_LEN => {
            lookup(&state, &key, true).await
        }
        (None, _) => None,
    };
    // Taken before the upgrade, so a socket over the cap costs no session; it
    // is still upgraded, to be closed with a code the page can act on (a
    // failed upgrade tells a browser nothing).
    let permit = Arc::clone(&state.sockets).try_acquire_owned().ok();
    let encoder = if offered(&headers).any(|p| p == WHOLE_PIXELS_PROTOCOL) {
        crate::frames::FrameEncoder::whole_pixels()
    } else {
        crate::frames::FrameEncoder::default()
    };
    // tungstenite's default 128 KiB read buffer, zeroed on first use, was most of
    // a session's memory; client messages are small (BENCHMARKS.md, 168 → 39 KB).
    // A page that offered subprotocols gets `tandem.v1` back, as browsers
    // require; one that offered none gets none.
    ws.protocols([PROTOCOL])
        .read_buffer_size(4 * 1024)
        .max_message_size(tandem_wire::MAX_CLIENT_MESSAGE)
        .max_frame_size(tandem_wire::MAX_CLIENT_MESSAGE)
        .on_upgrade(move |mut socket| async move {
            let (code, reason) = match (participant, permit) {
                (Some(_), _) if state.is_shutting_down() => {
                    (tandem_wire::CLOSE_RESTART, "server restarting")
                }
                (Some(p), Some(permit)) => {
                    return session::run(socket, state, p.id, permit, encoder).await;
                }
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

#[cfg(test)]
#[path = "web_tests.rs"]
mod tests;
