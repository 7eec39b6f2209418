//! The HTTP side: one router with the participant page (see `arrival`), its
//! static files, the participant socket, the console, `/metrics` and a
//! health check.
//!
//! The page and its modules are compiled into the binary, so the server needs
//! no files beside it.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocketUpgrade};
use axum::response::Response;
use axum::routing::get;
use axum_extra::extract::cookie::CookieJar;
use tracing::{error, warn};

use crate::arrival::{self, PARTICIPANT_COOKIE};
use crate::assets;
use crate::headers;
use crate::session;
use crate::state::AppState;

/// The whole HTTP surface of the server.
pub fn app(state: AppState) -> Router {
    // The page and its modules are text and gzip to about a third: what a
    // participant downloads before the first frame (BENCHMARKS.md, page load).
    let pages = Router::new()
        .route("/", get(arrival::participant_page))
        .route("/static/{*path}", get(assets::static_file))
        .layer(tower_http::compression::CompressionLayer::new());
    Router::new()
        .merge(pages)
        .merge(crate::console::router(&state))
        .route("/ws", get(participant_socket))
        .route("/healthz", get(|| async { "ok" }))
        .route("/metrics", get(crate::console::metrics::public))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            headers::add,
        ))
        .with_state(state)
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

#[cfg(test)]
#[path = "web_tests.rs"]
mod tests;
