//! Where each participant stands, and the only ways to move on.
//!
//! The database holds every participant's current scene; this module reads it,
//! shows it, and moves a participant forward when the current scene is done: an
//! info page acknowledged, a survey answered validly, a game finished. A message for
//! any scene but the current one is refused, so a browser cannot skip or repeat
//! scenes. Moves are conditional updates in the store, so two racing moves from the
//! same scene advance the participant once.

use std::future::Future;
use std::pin::Pin;

use serde_json::Value;
use tandem_experiment::{ExternalIds, Scene};
use tandem_store::Participant;
use tracing::{error, info};

use crate::game;
use crate::session::{Outgoing, Session};
use crate::state::AppState;
use crate::wire;

/// Why a message from the browser was refused.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error("this is scene {current}, not scene {sent}")]
    WrongScene { current: usize, sent: usize },
    #[error("scene {0} does not take this message")]
    WrongKind(usize),
    #[error("please tick the box to continue")]
    ConsentRequired,
    #[error("the server could not save this; please try again")]
    Storage,
}

impl Refusal {
    /// The machine-readable code sent in the `error` message.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::WrongScene { .. } => "wrong_scene",
            Refusal::WrongKind(_) => "wrong_kind",
            Refusal::ConsentRequired => "consent_required",
            Refusal::Storage => "storage",
        }
    }
}

/// The external ids an end scene may fill into its redirect URL.
pub fn external_ids(p: &Participant) -> ExternalIds {
    let r = p.recruit.clone();
    ExternalIds {
        participant: p.public_id.clone(),
        prolific_pid: r.prolific_pid,
        study_id: r.study_id,
        session_id: r.session_id,
        worker_id: r.worker_id,
        assignment_id: r.assignment_id,
        hit_id: r.hit_id,
    }
}

async fn load(state: &AppState, participant_id: i64) -> Result<Participant, Refusal> {
    match state.store.participant_by_id(participant_id).await {
        Ok(Some(p)) => Ok(p),
        Ok(None) => {
            error!(
                participant = participant_id,
                "participant vanished from the database"
            );
            Err(Refusal::Storage)
        }
        Err(e) => {
            error!(participant = participant_id, cause = %e, "could not read participant");
            Err(Refusal::Storage)
        }
    }
}

/// The scene index a participant stands at, clamped to the experiment (an
/// experiment file edited between runs may have fewer scenes).
fn current_index(state: &AppState, p: &Participant) -> usize {
    let count = state.experiment.scenes.len();
    usize::try_from(p.scene_index)
        .unwrap_or(0)
        .min(count.saturating_sub(1))
}

/// Greets a new socket and shows its participant's current scene.
pub async fn on_connect(state: &AppState, session: &Session) {
    let Ok(p) = load(state, session.participant_id).await else {
        session.control(Outgoing::Close(
            wire::CLOSE_UNKNOWN_PARTICIPANT,
            "unknown participant",
        ));
        return;
    };
    session.send(wire::hello(
        &p.public_id,
        &state.experiment.id,
        &state.experiment.title,
    ));
    show_scene(state, session, &p).await;
}

/// Sends the participant's current scene to their socket, joining its game if it
/// is a game scene.
async fn show_scene(state: &AppState, session: &Session, p: &Participant) {
    let index = current_index(state, p);
    let scenes = &state.experiment.scenes;
    let Some(scene) = scenes.get(index) else {
        return;
    };
    let json = match scene {
        Scene::End(end) => end.client_json(&external_ids(p)),
        other => other.to_client_json(),
    };
    if !matches!(scene, Scene::Game(_)) {
        session.control(Outgoing::Unwatch);
    }
    session.send(wire::scene(index, scenes.len(), json));
    if let Scene::Game(_) = scene {
        game::join(state, session, p, index).await;
    }
}

/// Checks that `sent` is the participant's current scene.
async fn current(state: &AppState, session: &Session, sent: usize) -> Result<Participant, Refusal> {
    let p = load(state, session.participant_id).await?;
    let current = current_index(state, &p);
    if current != sent {
        return Err(Refusal::WrongScene { current, sent });
    }
    Ok(p)
}

/// `advance` from an info scene.
pub async fn advance_info(
    state: &AppState,
    session: &Session,
    scene: usize,
    checked: bool,
) -> Result<(), Refusal> {
    current(state, session, scene).await?;
    let Some(Scene::Info(info)) = state.experiment.scenes.get(scene) else {
        return Err(Refusal::WrongKind(scene));
    };
    if info.checkbox.is_some() && !checked {
        return Err(Refusal::ConsentRequired);
    }
    move_on(state, session.participant_id, scene).await
}

/// `submit` on a survey scene: validated here, whatever the browser checked.
pub async fn submit_survey(
    state: &AppState,
    session: &Session,
    scene: usize,
    answers: &Value,
) -> Result<(), Refusal> {
    let p = current(state, session, scene).await?;
    let Some(Scene::Survey(survey)) = state.experiment.scenes.get(scene) else {
        return Err(Refusal::WrongKind(scene));
    };
    match survey.validate(answers) {
        Err(errors) => {
            session.send(wire::invalid(scene, &errors));
            Ok(())
        }
        Ok(normalized) => {
            let Some(next) = state.experiment.scenes.get(scene + 1) else {
                return Ok(());
            };
            let moved = state
                .store
                .submit_scene(
                    p.id,
                    (scene as u32, &survey.id),
                    &normalized,
                    ((scene + 1) as u32, next.id()),
                )
                .await
                .map_err(|e| {
                    error!(participant = p.id, cause = %e, "could not save survey answers");
                    Refusal::Storage
                })?;
            if moved {
                arrived(state, p.id, scene + 1).await?;
            }
            Ok(())
        }
    }
}

/// Moves a participant from scene `from` to the next one and shows it to their
/// socket, if connected. Does nothing if they already left `from`.
///
/// Returns a boxed `Send` future rather than being an `async fn`: a finished game
/// moves its participant on, which may start the next game, whose task may move
/// them on again. The compiler cannot prove such a cycle of opaque futures `Send`;
/// one concrete type in the cycle settles it.
pub fn move_on(
    state: &AppState,
    participant_id: i64,
    from: usize,
) -> Pin<Box<dyn Future<Output = Result<(), Refusal>> + Send + '_>> {
    Box::pin(async move {
        let scenes = &state.experiment.scenes;
        let to = from + 1;
        let (Some(from_scene), Some(to_scene)) = (scenes.get(from), scenes.get(to)) else {
            return Ok(());
        };
        let moved = state
            .store
            .enter_scene(
                participant_id,
                Some((from as u32, from_scene.id())),
                (to as u32, to_scene.id()),
            )
            .await
            .map_err(|e| {
                error!(participant = participant_id, cause = %e, "could not record a scene change");
                Refusal::Storage
            })?;
        if moved {
            arrived(state, participant_id, to).await?;
        }
        Ok(())
    })
}

/// What follows a participant's move into scene `to`: an end scene marks them
/// finished, and their socket, if connected, is shown the scene.
async fn arrived(state: &AppState, participant_id: i64, to: usize) -> Result<(), Refusal> {
    let Some(to_scene) = state.experiment.scenes.get(to) else {
        return Ok(());
    };
    info!(
        participant = participant_id,
        scene = to_scene.id(),
        "entered scene"
    );
    if let Scene::End(end) = to_scene
        && let Err(e) = state
            .store
            .finish_participant(participant_id, end.completion_code.as_deref())
            .await
    {
        error!(participant = participant_id, cause = %e, "could not mark participant finished");
    }
    if let Some(session) = state.session(participant_id) {
        let p = load(state, participant_id).await?;
        show_scene(state, &session, &p).await;
    }
    Ok(())
}
