//! Watching a running game: a read-only page that shows what its players see,
//! and who controls each agent, live.
//!
//! The page's socket reads the game's frames from the same `watch` channel the
//! players' sockets read, with its own [`FrameEncoder`], so a watcher costs
//! the game nothing (the game never waits for it) and, like a player, a slow
//! watcher skips frames rather than queueing them. Every second it also sends
//! the seats, since a participant leaving hands an agent to its fallback. The
//! page draws with the participant page's own renderer. Nothing the watcher
//! sends is acted on; the socket closes when the game ends or the login does.

use std::time::Duration;

use axum::Extension;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::CookieJar;
use serde_json::json;
use tandem_experiment::Scene;
use tandem_store::ConsoleSession;

use super::auth::{login_hash, still_signed_in};
use super::dashboard::game_view;
use super::{escape, page, page_with};
use crate::frames::{Encoded, FrameEncoder};
use crate::state::AppState;
use crate::studies::Studies;
use crate::sync::stopped;

/// How often the seats are sent, and the login checked.
const SEATS_PERIOD: Duration = Duration::from_secs(1);
const SESSION_CHECK_EVERY: u32 = 10;
/// How long one send to a watcher may take before the watcher is dropped.
const SEND_LIMIT: Duration = Duration::from_secs(5);
/// A watcher sends nothing that matters: anything bigger is refused.
const MAX_WATCHER_MESSAGE: usize = 1024;

/// The scene a page configures its renderer with, as the participant page
/// gets it in its `scene` message.
pub(super) fn scene_json(scene: &tandem_experiment::GameScene) -> serde_json::Value {
    let (width, height) = scene.canvas();
    json!({"title": scene.title, "render": scene.render.name(), "fps": scene.fps,
           "canvas": {"width": width, "height": height}})
}

pub(super) async fn show(
    State(studies): State<Studies>,
    Path(game_id): Path<i64>,
    Extension(session): Extension<ConsoleSession>,
) -> Response {
    let running = studies
        .running(game_id)
        .and_then(|state| Some((state, state.placement.watch_game(game_id)?.0)));
    let Some((state, scene_index)) = running else {
        return page(
            StatusCode::NOT_FOUND,
            "Game not running",
            &format!(
                "<p>Game {game_id} is not running on this server. Its recorded episodes \
                 are listed on the <a href=\"/console\">dashboard</a>.</p>"
            ),
        );
    };
    let Some(Scene::Game(scene)) = state.experiment.scenes.get(scene_index) else {
        return page(
            StatusCode::NOT_FOUND,
            "Game not running",
            "<p>No such game scene.</p>",
        );
    };
    let csrf = escape(&session.csrf);
    let body = format!(
        "<p><a href=\"/console?study={study}\">Dashboard</a> · study <code>{study}</code>, scene <code>{scene_id}</code>, \
         environment <code>{env}</code> · <span id=\"watch-status\">connecting…</span></p>\
         <div id=\"watch\" data-game=\"{game_id}\" data-scene=\"{scene}\">\
         <div id=\"stage\" class=\"stage\"></div>\
         <ul id=\"seats\"></ul></div>\
         <form method=\"post\" action=\"/console/games/{game_id}/end\" class=\"danger\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <label>Reason <input name=\"reason\" maxlength=\"200\"></label>\
         <button type=\"submit\" id=\"end-game\">End this game</button></form>",
        study = escape(&state.experiment.id),
        scene_id = escape(&scene.id),
        env = escape(&scene.env),
        scene = escape(&scene_json(scene).to_string()),
    );
    page_with(
        StatusCode::OK,
        &format!("Game {game_id}"),
        &body,
        Some("console-watch.js"),
    )
}

/// The watcher's socket: the game's frames, and its seats every second.
pub(super) async fn frames(
    State(studies): State<Studies>,
    Path(game_id): Path<i64>,
    jar: CookieJar,
    ws: WebSocketUpgrade,
) -> Response {
    let Some(state) = studies.running(game_id).cloned() else {
        return (StatusCode::NOT_FOUND, "that game is not running").into_response();
    };
    let hash = login_hash(&jar);
    ws.max_message_size(MAX_WATCHER_MESSAGE)
        .max_frame_size(MAX_WATCHER_MESSAGE)
        .read_buffer_size(4 * 1024)
        .on_upgrade(move |socket| stream(socket, state, game_id, hash))
}

async fn stream(mut socket: WebSocket, state: AppState, game_id: i64, token_hash: String) {
    let Some((_, mut frames)) = state.placement.watch_game(game_id) else {
        close(&mut socket, "the game is not running").await;
        return;
    };
    let mut encoder = FrameEncoder::default();
    let mut shutdown = state.shutdown.clone();
    let mut clock = tokio::time::interval(SEATS_PERIOD);
    let mut ticks = 0u32;
    frames.mark_changed();
    loop {
        tokio::select! {
            _ = stopped(&mut shutdown) => {
                close(&mut socket, "the server is stopping").await;
                return;
            }
            changed = frames.changed() => {
                if changed.is_err() {
                    let _ = socket.send(Message::text(json!({"type": "ended"}).to_string())).await;
                    close(&mut socket, "the game ended").await;
                    return;
                }
                let frame = frames.borrow_and_update().clone();
                let Some(frame) = frame else { continue };
                let message = match encoder.encode(&frame, 0) {
                    Encoded::Text(text) => Message::text(text),
                    Encoded::Binary(bytes) => Message::binary(bytes),
                    Encoded::Nothing => continue,
                };
                if !send(&mut socket, message).await {
                    return;
                }
            }
            _ = clock.tick() => {
                ticks = ticks.wrapping_add(1);
                if ticks.is_multiple_of(SESSION_CHECK_EVERY)
                    && !still_signed_in(&state.store, &token_hash).await
                {
                    close(&mut socket, "signed out").await;
                    return;
                }
                let snapshot = state.placement.snapshot();
                let Some(game) = snapshot.games.iter().find(|g| g.game_id == game_id) else {
                    let _ = socket.send(Message::text(json!({"type": "ended"}).to_string())).await;
                    close(&mut socket, "the game ended").await;
                    return;
                };
                let mut view = game_view(&state, game);
                view["type"] = json!("seats");
                if !send(&mut socket, Message::text(view.to_string())).await {
                    return;
                }
            }
            incoming = socket.recv() => match incoming {
                // What a watcher sends is ignored; its socket is read only to
                // see it close.
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return,
                Some(Ok(_)) => {}
            },
        }
    }
}

/// Sends `message`, giving up on a watcher that has not taken it within
/// [`SEND_LIMIT`] (it stopped reading); false when the socket is done.
async fn send(socket: &mut WebSocket, message: Message) -> bool {
    matches!(
        tokio::time::timeout(SEND_LIMIT, socket.send(message)).await,
        Ok(Ok(()))
    )
}

async fn close(socket: &mut WebSocket, reason: &'static str) {
    let _ = socket
        .send(Message::Close(Some(CloseFrame {
            code: 1000,
            reason: Utf8Bytes::from_static(reason),
        })))
        .await;
}
