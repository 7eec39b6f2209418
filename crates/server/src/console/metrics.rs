//! `/metrics` in Prometheus' text format: sockets, participants by scene,
//! games, lobbies, tick lag and frame-send histograms, the recorder's queue
//! and flush latency, and (from the binary) the Python worker pool.
//!
//! Nothing here names a participant, but the numbers still describe a live
//! study, so they are not public: a scraper sends the token the server was
//! started with (`Authorization: Bearer …`, compared in constant time); a
//! researcher's browser reads `/console/metrics` with its login.

use std::fmt::Write;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::CookieJar;
use tracing::{error, warn};

use super::auth::{same, session_of};
use crate::studies::Studies;

const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// `GET /metrics`: for a scraper with the token, or a console login.
pub async fn public(
    State(studies): State<Studies>,
    headers: HeaderMap,
    jar: CookieJar,
) -> Response {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let token_ok = match (&studies.first().metrics_token, bearer) {
        (Some(token), Some(given)) => same(given, token),
        _ => false,
    };
    if !token_ok && session_of(studies.store(), &jar).await.is_none() {
        if bearer.is_some() {
            warn!("a /metrics request with a wrong token was refused");
        }
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            "/metrics needs the token given to `tandem serve --metrics-token`, \
             or a console login.\n",
        )
            .into_response();
    }
    signed_in(State(studies)).await
}

/// `GET /console/metrics`, behind the console's guard.
pub(super) async fn signed_in(State(studies): State<Studies>) -> Response {
    match render(&studies).await {
        Ok(text) => ([(header::CONTENT_TYPE, TEXT_FORMAT)], text).into_response(),
        Err(e) => {
            error!(cause = %e, "could not read the database for /metrics");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the database could not be read\n",
            )
                .into_response()
        }
    }
}

fn gauge(out: &mut String, name: &str, help: &str, value: impl std::fmt::Display) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
    );
}

fn counter(out: &mut String, name: &str, help: &str, value: u64) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
    );
}

/// A label value with `\`, `"` and newlines escaped, as the format asks.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The whole text, every study's figures summed, participants per study and
/// scene.
pub async fn render(studies: &Studies) -> Result<String, tandem_store::StoreError> {
    let mut out = String::with_capacity(4096);
    let (mut sockets, mut games, mut waiting, mut steps_played) = (0, 0, 0, 0);
    for state in studies.all() {
        let (s, g, w) = state.placement.counts();
        sockets += s;
        games += g;
        waiting += w;
        steps_played += state.steps_played();
    }
    gauge(
        &mut out,
        "tandem_sockets",
        "Open participant sockets.",
        sockets,
    );
    gauge(&mut out, "tandem_games_running", "Running games.", games);
    gauge(
        &mut out,
        "tandem_lobby_waiting",
        "Participants waiting in lobbies.",
        waiting,
    );
    let _ = writeln!(
        out,
        "# HELP tandem_participants Participants by study and current scene (finished ones apart).\n\
         # TYPE tandem_participants gauge"
    );
    let mut finished_lines = String::new();
    for state in studies.all() {
        let experiment = &state.experiment;
        let counts = state.store.scene_counts(&experiment.id).await?;
        let study = label(&experiment.id);
        for (index, scene) in experiment.scenes.iter().enumerate() {
            let here: i64 = counts
                .iter()
                .filter(|c| c.scene_index as usize == index)
                .map(|c| c.at - c.finished)
                .sum();
            let scene = label(scene.id());
            let _ = writeln!(
                out,
                "tandem_participants{{study=\"{study}\",scene=\"{scene}\"}} {here}"
            );
        }
        let finished: i64 = counts.iter().map(|c| c.finished).sum();
        let _ = writeln!(
            finished_lines,
            "tandem_participants_finished{{study=\"{study}\"}} {finished}"
        );
    }
    let _ = write!(
        out,
        "# HELP tandem_participants_finished Participants who finished, by study.\n\
         # TYPE tandem_participants_finished gauge\n{finished_lines}"
    );
    let state = studies.first();
    counter(
        &mut out,
        "tandem_steps_played_total",
        "Steps the game loops played.",
        steps_played,
    );
    let telemetry = &state.games.telemetry;
    telemetry.tick_lag.write(
        &mut out,
        "tandem_tick_lag_seconds",
        "How long after its scheduled time each game tick ran.",
    );
    telemetry.frame_send.write(
        &mut out,
        "tandem_frame_send_seconds",
        "Time to encode a frame and hand it to its participant's socket.",
    );
    let r = state.recorder.stats();
    counter(
        &mut out,
        "tandem_recorder_steps_received_total",
        "Steps handed to the recorder.",
        r.steps_received,
    );
    counter(
        &mut out,
        "tandem_recorder_steps_written_total",
        "Steps committed to the database.",
        r.steps_written,
    );
    counter(
        &mut out,
        "tandem_recorder_batches_written_total",
        "Commits that held at least one step.",
        r.batches_written,
    );
    counter(
        &mut out,
        "tandem_recorder_steps_dropped_total",
        "Steps lost (see the log for why).",
        r.steps_dropped,
    );
    counter(
        &mut out,
        "tandem_recorder_write_errors_total",
        "Commits that failed and were retried.",
        r.write_errors,
    );
    gauge(
        &mut out,
        "tandem_recorder_queue_steps",
        "Steps received and not yet written or dropped.",
        r.steps_received
            .saturating_sub(r.steps_written + r.steps_dropped),
    );
    let _ = writeln!(
        out,
        "# HELP tandem_recorder_flush_seconds Time each recorder commit took.\n\
         # TYPE tandem_recorder_flush_seconds summary\n\
         tandem_recorder_flush_seconds_sum {}\n\
         tandem_recorder_flush_seconds_count {}",
        r.commit_us as f64 / 1e6,
        r.commits
    );
    if let Some(extra) = &state.extra_metrics {
        (extra.0)(&mut out);
    }
    Ok(out)
}
