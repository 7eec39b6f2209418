//! A screening scene's decision: the page's report and the round trips the
//! session measured go in; the participant moves on, or is screened out and
//! finished there with the scene's own code and redirect. What was measured
//! is recorded as the scene's responses either way, and a screening out as
//! an event with its reasons.

use serde_json::json;
use tandem_experiment::{Measured, Scene, browser_of};
use tracing::{error, info};

use super::{EarlyEnding, Refusal, answer_and_move_on, current, early_end_message, position};
use crate::connection::Connection;
use crate::state::AppState;

/// What the page reported for a screening scene.
#[derive(Clone, Copy, Debug)]
pub struct ScreenReport {
    pub scene: usize,
    pub width: u32,
    pub height: u32,
    pub key: bool,
}

/// How many round trips screening scene `scene` measures, once it is the
/// participant's current scene.
pub async fn screening_pings(
    state: &AppState,
    socket: &Connection,
    scene: usize,
) -> Result<u32, Refusal> {
    current(state, socket.participant_id, scene).await?;
    match state.experiment.scenes.get(scene) {
        Some(Scene::Screening(s)) => Ok(s.pings),
        _ => Err(Refusal::WrongKind(scene)),
    }
}

/// Decides a screening scene for the participant of `socket`.
pub async fn screen(
    state: &AppState,
    socket: &Connection,
    report: ScreenReport,
    rtts_ms: Vec<f64>,
) -> Result<(), Refusal> {
    let index = report.scene;
    let p = current(state, socket.participant_id, index).await?;
    let Some(Scene::Screening(scene)) = state.experiment.scenes.get(index) else {
        return Err(Refusal::WrongKind(index));
    };
    if p.finished_us.is_some() {
        return Ok(()); // screened out already; their page shows it
    }
    let measured = Measured {
        rtts_ms,
        width: report.width,
        height: report.height,
        key: report.key,
        browser: browser_of(p.user_agent.as_deref().unwrap_or_default()).to_string(),
    };
    let failures = scene.failures(&measured);
    let answers: Vec<(String, serde_json::Value)> = [
        ("rtt_ms", json!(measured.rtts_ms)),
        ("rtt_median_ms", json!(measured.median_rtt_ms())),
        ("window", json!([measured.width, measured.height])),
        ("key", json!(measured.key)),
        ("browser", json!(measured.browser)),
        ("passed", json!(failures.is_empty())),
        ("failures", json!(failures)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let storage = |e: tandem_store::StoreError| {
        error!(participant = p.id, cause = %e, "could not record a screening");
        Refusal::Storage
    };
    if failures.is_empty() {
        return answer_and_move_on(state, &p, (index, &scene.id), &answers)
            .await
            .map_err(storage);
    }
    state
        .store
        .save_responses(p.id, index as u32, &scene.id, &answers)
        .await
        .map_err(storage)?;
    state
        .store
        .finish_participant(p.id, scene.screened_out.code.as_deref())
        .await
        .map_err(storage)?;
    state.recorder.record_event(
        Some(p.id),
        None,
        "screened_out",
        json!({"scene": scene.id, "failures": failures}),
    );
    info!(participant = p.id, reasons = failures.len(), "screened out");
    socket.send(early_end_message(
        state,
        position(state, &p),
        &p,
        EarlyEnding::ScreenedOut,
    ));
    Ok(())
}
