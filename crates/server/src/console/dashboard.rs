//! The signed-in page: the study's controls, and a live view of it fed by
//! server-sent events.
//!
//! The page is server-rendered around the controls (plain forms carrying the
//! CSRF token, so they work without script), and `console.js` draws the live
//! parts from one JSON [`overview`] the feed sends every second: a funnel of
//! participants per scene, completions and drop-outs over time, who waits in
//! which lobby and for how long, the running games and who controls each
//! agent, the latest events and episodes. Server-sent events rather than a
//! socket: the feed only goes one way, and `EventSource` reconnects by itself.
//! The feed ends when the login does, so a stolen-then-revoked session does
//! not keep watching.

use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Extension;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::CookieJar;
use futures::Stream;
use serde_json::{Value, json};
use tandem_experiment::{Scene, SeatRole};
use tandem_store::{ConsoleSession, Outcome, now_us};
use tracing::warn;

use super::auth::{login_hash, still_signed_in};
use super::{escape, page_with};
use crate::placement::{GamePlace, SpotView};
use crate::state::AppState;
use crate::studies::Studies;
use crate::sync::stopped;

/// How often the feed sends the overview.
const FEED_PERIOD: Duration = Duration::from_secs(1);
/// How often the feed checks that its login still holds.
const SESSION_CHECK_EVERY: u32 = 10;
/// A participant who has not finished, is not connected and has not moved
/// for this long counts as dropped out.
const QUIET_FOR_US: i64 = 10 * 60 * 1_000_000;
/// At most this many rows of each list.
const RECENT: i64 = 25;
const QUIET_ROWS: i64 = 50_000;
/// Event kinds shown as errors.
const ERROR_KINDS: &[&str] = &["game_failed", "policy_failed", "env_error", "worker_failed"];

/// Which study a console page shows: `?study=ID`, the first by default.
#[derive(serde::Deserialize)]
pub(super) struct Which {
    #[serde(default)]
    study: Option<String>,
}

pub(super) async fn home(
    State(studies): State<Studies>,
    Query(which): Query<Which>,
    Extension(session): Extension<ConsoleSession>,
) -> Response {
    let Some(state) = studies.chosen(which.study.as_deref()) else {
        return page_with(
            StatusCode::NOT_FOUND,
            "No such study",
            "<p>This server runs no study by that id. <a href=\"/console\">The dashboard</a>.</p>",
            None,
        );
    };
    let csrf = escape(&session.csrf);
    let study_field = format!(
        "<input type=\"hidden\" name=\"study\" value=\"{}\">",
        escape(&state.experiment.id)
    );
    let list = study_list(&studies, state);
    let paused = state.admissions_paused.load(Ordering::SeqCst);
    let closed = state.study_closed.load(Ordering::SeqCst);
    let (admissions, toggle, label) = match (closed, paused) {
        (true, _) => ("closed: the study has ended", "true", "Pause admissions"),
        (false, true) => (
            "paused: new arrivals are turned away",
            "false",
            "Resume admissions",
        ),
        (false, false) => ("open", "true", "Pause admissions"),
    };
    let cap_now = state.admission.cap();
    let cap = cap_now.map_or_else(|| "none".to_string(), |c| c.to_string());
    let cap_value = cap_now.map_or_else(String::new, |c| c.to_string());
    let close = if closed {
        String::new()
    } else {
        format!(
            "<form method=\"post\" action=\"/console/close\" class=\"danger\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">{study_field}\
             <label>Type <code>close</code> to close the study for good \
             <input name=\"confirm\" autocomplete=\"off\"></label>\
             <button type=\"submit\">Close the study</button></form>"
        )
    };
    let body = format!(
        "<p>Signed in as <strong id=\"console-user\">{user}</strong>. \
         Study: <strong>{title}</strong> (<code>{id}</code>), link <code>{link}</code>.</p>{list}\
         <section class=\"controls\">\
         <p>Admissions: <strong id=\"admissions\">{admissions}</strong></p>\
         <form method=\"post\" action=\"/console/admissions\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">{study_field}\
         <input type=\"hidden\" name=\"paused\" value=\"{toggle}\">\
         <button type=\"submit\">{label}</button></form>\
         <p>Participants: <strong id=\"participants\">{participants}</strong> \
         (cap: <strong id=\"cap\">{cap}</strong>)</p>\
         <form method=\"post\" action=\"/console/cap\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">{study_field}\
         <label>Cap <input name=\"cap\" inputmode=\"numeric\" value=\"{cap_value}\"></label>\
         <button type=\"submit\">Set the cap</button> (empty: no cap)</form>\
         {close}\
         <form method=\"post\" action=\"/console/logout\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <button type=\"submit\">Log out</button></form></section>\
         <div id=\"live\" data-study=\"{id}\" aria-live=\"polite\">\
         <p id=\"live-status\">Connecting to the live feed…</p>\
         <section><h2>Where participants are</h2><div id=\"funnel\"></div></section>\
         <section><h2>Completions and drop-outs</h2><div id=\"timeline\"></div></section>\
         <section><h2>Lobbies</h2><div id=\"lobbies\"></div></section>\
         <section><h2>Running games</h2><div id=\"games\"></div></section>\
         <section><h2>Game scenes so far</h2><div id=\"game-stats\"></div></section>\
         <section><h2>Recent episodes</h2><div id=\"episodes\"></div></section>\
         <section><h2>Recent events</h2><div id=\"events\"></div></section>\
         </div>",
        user = escape(&session.user_name),
        title = escape(&state.experiment.title),
        id = escape(&state.experiment.id),
        participants = state.admission.participants(),
        link = escape(&state.base_path),
    );
    page_with(StatusCode::OK, "Console", &body, Some("console.js"))
}

/// Every study on this server, with links to their dashboards, when there
/// are several.
fn study_list(studies: &Studies, shown: &AppState) -> String {
    if studies.count() < 2 {
        return String::new();
    }
    let items: String = studies
        .all()
        .map(|s| {
            let id = escape(&s.experiment.id);
            let current = if s.experiment.id == shown.experiment.id {
                " aria-current=\"page\""
            } else {
                ""
            };
            format!(
                "<li><a href=\"/console?study={id}\"{current}>{}</a> (<code>{id}</code>): \
                 {} participants, link <code>{}</code></li>",
                escape(&s.experiment.title),
                s.admission.participants(),
                escape(&s.base_path),
            )
        })
        .collect();
    format!("<nav aria-label=\"Studies\"><ul id=\"studies\">{items}</ul></nav>")
}

/// The live feed: an `overview` event every second while the login holds.
pub(super) async fn live(
    State(studies): State<Studies>,
    Query(which): Query<Which>,
    jar: CookieJar,
) -> Response {
    let Some(state) = studies.chosen(which.study.as_deref()).cloned() else {
        return (StatusCode::NOT_FOUND, "no such study").into_response();
    };
    Sse::new(feed(state, login_hash(&jar)))
        .keep_alive(KeepAlive::default())
        .into_response()
}

fn feed(state: AppState, token_hash: String) -> impl Stream<Item = Result<Event, Infallible>> {
    let mut clock = tokio::time::interval(FEED_PERIOD);
    clock.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let shutdown = state.shutdown.clone();
    futures::stream::unfold(
        (state, token_hash, clock, shutdown, 0u32),
        |(state, hash, mut clock, mut shutdown, sent)| async move {
            // A feed never ends by itself: without this, one open dashboard
            // would hold the server's shutdown until its login expired.
            tokio::select! {
                _ = clock.tick() => {}
                _ = stopped(&mut shutdown) => return None,
            }
            if sent.is_multiple_of(SESSION_CHECK_EVERY)
                && !still_signed_in(&state.store, &hash).await
            {
                return None;
            }
            let event = match overview(&state).await {
                Ok(data) => Event::default().event("overview").data(data.to_string()),
                Err(e) => {
                    warn!(cause = %e, "the dashboard could not read the database");
                    Event::default()
                        .event("trouble")
                        .data("the database could not be read")
                }
            };
            Some((
                Ok(event),
                (state, hash, clock, shutdown, sent.wrapping_add(1)),
            ))
        },
    )
}

/// Everything the dashboard shows, as one JSON value.
pub(super) async fn overview(state: &AppState) -> Result<Value, tandem_store::StoreError> {
    let experiment = &state.experiment;
    let snapshot = state.placement.snapshot();
    let counts = state.store.scene_counts(&experiment.id).await?;
    let mut at = vec![0i64; experiment.scenes.len()];
    let mut finished = 0;
    for c in &counts {
        if let Some(slot) = at.get_mut(c.scene_index as usize) {
            *slot += c.at - c.finished;
        }
        finished += c.finished;
    }
    let connected: std::collections::HashSet<i64> = snapshot
        .participants
        .iter()
        .filter(|p| p.connected)
        .map(|p| p.participant_id)
        .collect();
    let mut reached = vec![0i64; experiment.scenes.len()];
    for (index, n) in state.store.scene_reached(&experiment.id).await? {
        if let Some(slot) = reached.get_mut(index as usize) {
            *slot = n;
        }
    }
    let scenes: Vec<Value> = experiment
        .scenes
        .iter()
        .zip(at.iter().zip(&reached))
        .map(|(scene, (&here, &reached))| {
            json!({"id": scene.id(), "title": scene.title(), "kind": scene.kind().name(),
                   "at": here, "reached": reached})
        })
        .collect();
    let conditions: Vec<Value> = if experiment.design.has_conditions() {
        let counts = state.store.condition_counts(&experiment.id).await?;
        experiment
            .design
            .conditions
            .iter()
            .filter_map(|c| c.id.as_deref())
            .map(|id| {
                let n = counts.iter().find(|(c, _)| c == id).map_or(0, |(_, n)| *n);
                json!({"id": id, "participants": n})
            })
            .collect()
    } else {
        Vec::new()
    };
    let completions = state.store.completions_per_minute(&experiment.id).await?;
    let mut dropouts: Vec<(i64, i64)> = Vec::new();
    let mut quiet = state
        .store
        .quiet_participants(&experiment.id, QUIET_FOR_US, QUIET_ROWS)
        .await?;
    quiet.retain(|(id, _)| !connected.contains(id));
    quiet.sort_by_key(|(_, last)| *last);
    for (_, last) in quiet {
        let minute = last - last.rem_euclid(60_000_000);
        match dropouts.last_mut() {
            Some((m, n)) if *m == minute => *n += 1,
            _ => dropouts.push((minute, 1)),
        }
    }
    let lobbies = lobbies(state, &snapshot.participants);
    let game_stats: Vec<Value> = state
        .store
        .game_scene_stats(&experiment.id)
        .await?
        .into_iter()
        .map(|g| {
            let id = experiment
                .scenes
                .get(g.scene_index as usize)
                .map_or("", |s| s.id());
            let info: serde_json::Map<String, Value> = g
                .info_means
                .iter()
                .map(|(k, v)| (k.clone(), json!(v)))
                .collect();
            json!({"scene": g.scene_index, "scene_id": id, "games": g.games,
                   "episodes": g.complete_episodes, "mean_return": g.mean_return,
                   "mean_steps": g.mean_steps, "mean_play_s": g.mean_play_s,
                   "info": info})
        })
        .collect();
    let games: Vec<Value> = snapshot.games.iter().map(|g| game_view(state, g)).collect();
    let events: Vec<Value> = state
        .store
        .recent_events(&experiment.id, RECENT)
        .await?
        .into_iter()
        .map(|e| {
            let mut detail = e.detail.to_string();
            detail.truncate(detail.floor_char_boundary(300));
            json!({"at_us": e.at_us, "kind": e.kind, "participant": e.participant_id,
                   "game": e.game_id, "detail": detail,
                   "error": ERROR_KINDS.contains(&e.kind.as_str())})
        })
        .collect();
    let episodes: Vec<Value> = state
        .store
        .recent_episodes(&experiment.id, RECENT)
        .await?
        .into_iter()
        .map(|e| {
            let outcome = match &e.outcome {
                None => "running".to_string(),
                Some(Outcome::Complete) => "complete".to_string(),
                Some(Outcome::Interrupted { reason }) => format!("interrupted: {reason}"),
            };
            json!({"id": e.id, "game": e.game_id, "idx": e.idx, "env": e.env_id,
                   "started_us": e.started_us, "steps": e.steps, "outcome": outcome,
                   "return": e.total_return})
        })
        .collect();
    Ok(json!({
        "now_us": now_us(),
        "study": {
            "id": experiment.id, "title": experiment.title,
            "participants": state.admission.participants(),
            "cap": state.admission.cap(),
            "paused": state.admissions_paused.load(Ordering::SeqCst),
            "closed": state.study_closed.load(Ordering::SeqCst),
        },
        "sockets": connected.len(),
        "finished": finished,
        "scenes": scenes,
        "conditions": conditions,
        "completions": completions,
        "dropouts": dropouts,
        "lobbies": lobbies,
        "game_stats": game_stats,
        "games": games,
        "events": events,
        "episodes": episodes,
    }))
}

/// Who waits in each game scene's lobby, longest first.
fn lobbies(state: &AppState, participants: &[crate::placement::ParticipantPlace]) -> Vec<Value> {
    let mut by_scene: std::collections::BTreeMap<usize, Vec<(i64, f64)>> = Default::default();
    for p in participants {
        if let SpotView::Waiting {
            scene, waited_s, ..
        } = p.spot
        {
            by_scene
                .entry(scene)
                .or_default()
                .push((p.participant_id, waited_s));
        }
    }
    by_scene
        .into_iter()
        .map(|(scene, mut waiting)| {
            waiting.sort_by(|a, b| b.1.total_cmp(&a.1));
            let (id, needed) = match state.experiment.scenes.get(scene) {
                Some(Scene::Game(g)) => (g.id.clone(), g.humans),
                _ => (String::new(), 0),
            };
            json!({"scene": scene, "scene_id": id, "needed": needed,
                   "waiting": waiting.iter().map(|(p, s)| json!({"participant": p, "waited_s": s})).collect::<Vec<_>>()})
        })
        .collect()
}

/// A running game for the dashboard and the watch page: its scene and who
/// controls each agent now.
pub(super) fn game_view(state: &AppState, game: &GamePlace) -> Value {
    let scene = match state.experiment.scenes.get(game.scene) {
        Some(Scene::Game(scene)) => scene,
        _ => return json!({"game_id": game.game_id, "scene": game.scene, "seats": []}),
    };
    let seats: Vec<Value> = scene
        .seats
        .iter()
        .map(|seat| {
            let holder = game.seats.iter().find(|(_, agent, _)| *agent == seat.agent);
            let controller = match (&seat.role, holder) {
                (SeatRole::Ai(ai), _) => format!("policy {}", ai.policy.name),
                (SeatRole::Human(_), Some((p, _, true))) => format!("participant {p}"),
                (SeatRole::Human(h), Some((p, _, false))) => match &h.fallback {
                    Some(f) => format!("fallback {} (participant {p} away)", f.name),
                    None => format!("nobody (participant {p} away)"),
                },
                (SeatRole::Human(h), None) => match &h.fallback {
                    Some(f) => format!("fallback {}", f.name),
                    None => "nobody".to_string(),
                },
            };
            json!({"agent": seat.agent, "agent_name": seat.agent_name, "controller": controller})
        })
        .collect();
    json!({"game_id": game.game_id, "scene": game.scene, "scene_id": scene.id,
           "env": scene.env, "started_us": game.started_us, "seats": seats})
}
