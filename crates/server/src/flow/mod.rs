//! The participant's path through the experiment's scenes, and the only ways
//! to move along it.
//!
//! The database holds every participant's current scene; this module reads it,
//! shows it, and moves a participant forward when the current scene is done:
//! an info page acknowledged, a survey answered validly, a game over for them.
//! A message for any scene but the current one is refused, so a browser cannot
//! skip or repeat scenes. Moves are conditional updates in the store, so two
//! racing moves from the same scene advance the participant once.
//!
//! Layout:
//! - this file: showing scenes, info and survey answers, moving on.
//! - `games`: a participant reaching a game scene: their game, a new game, or
//!   the lobby; forming the lobby's groups.
//! - `screening`: a screening scene's decision: on, or screened out.
//! - `outcomes`: the one task that hears what game tasks and the lobby
//!   decided (a game ended, a seat forfeited, a group formed) and carries it out.
//!
//! Where each participant *is* (socket, queue, seat) is placement's to decide;
//! the flow asks it, writes to the database, and shows the result.

mod games;
mod outcomes;
mod screening;

use serde_json::Value;
use tandem_experiment::{ExternalIds, Scene};
use tandem_store::Participant;
use tandem_wire::{ErrorCode, Invalid, SceneMessage, SceneView, ServerMessage};
use tracing::{error, info, warn};

use crate::connection::{Connection, Outgoing};
use crate::placement::At;
use crate::state::AppState;

pub use games::run_lobby_ticker;
pub use outcomes::run as run_outcomes;
pub use screening::{ScreenReport, screen, screening_pings};

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
    pub fn code(&self) -> ErrorCode {
        match self {
            Refusal::WrongScene { .. } => ErrorCode::WrongScene,
            Refusal::WrongKind(_) => ErrorCode::WrongKind,
            Refusal::ConsentRequired => ErrorCode::ConsentRequired,
            Refusal::Storage => ErrorCode::Storage,
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
        turk_submit_to: r.turk_submit_to,
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

/// Where a participant stands: a scene of the experiment, which is step
/// `step` of the `count` scenes of their plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Position {
    pub index: usize,
    pub step: usize,
    pub count: usize,
}

impl Position {
    pub(crate) fn at(&self) -> At {
        At {
            scene: self.index,
            step: self.step,
        }
    }
}

/// The scenes participant `p` is shown, in order (catalogue indices).
pub(crate) fn plan(state: &AppState, p: &Participant) -> Vec<usize> {
    state.experiment.plan_of(p.scene_plan.as_deref())
}

/// Where `p` stands on their plan. A scene their plan no longer has (the
/// file was edited between runs) counts as the plan's last.
fn position(state: &AppState, p: &Participant) -> Position {
    let plan = plan(state, p);
    let count = plan.len();
    let index = usize::try_from(p.scene_index).unwrap_or(0);
    match plan.iter().position(|&i| i == index) {
        Some(step) => Position { index, step, count },
        None => {
            warn!(
                participant = p.id,
                scene = index,
                "scene not in the participant's plan"
            );
            let step = count.saturating_sub(1);
            Position {
                index: plan.get(step).copied().unwrap_or(0),
                step,
                count,
            }
        }
    }
}

/// The scene after `from` on `p`'s plan, if any.
fn next_after(state: &AppState, p: &Participant, from: usize) -> Option<Position> {
    let plan = plan(state, p);
    let step = plan.iter().position(|&i| i == from)? + 1;
    plan.get(step).map(|&index| Position {
        index,
        step,
        count: plan.len(),
    })
}

/// Registers a new socket and shows its participant's current scene. A socket
/// it replaces (a second tab, a refresh) is told and closed.
pub async fn on_connect(state: &AppState, socket: &Connection) {
    // Registered before the scene is read, so that a move finishing meanwhile
    // shows its new scene to this socket rather than to the old one.
    if let Some(old) = state.placement.connect(socket.clone()) {
        info!(
            participant = socket.participant_id,
            "a new socket replaces the old one"
        );
        old.send(ServerMessage::Replaced);
        old.control(Outgoing::Close(tandem_wire::CLOSE_REPLACED, "replaced"));
    }
    let Ok(p) = load(state, socket.participant_id).await else {
        socket.control(Outgoing::Close(
            tandem_wire::CLOSE_UNKNOWN_PARTICIPANT,
            "unknown participant",
        ));
        return;
    };
    state.placement.at_scene(p.id, position(state, &p).at());
    socket.send(ServerMessage::hello(
        p.public_id.clone(),
        state.experiment.view(),
    ));
    show_scene(state, socket, &p).await;
}

/// Sends the participant's current scene to `socket`, and for a game scene
/// seats them in (or queues them for) its game.
async fn show_scene(state: &AppState, socket: &Connection, p: &Participant) {
    let at = position(state, p);
    let index = at.index;
    let Some(scene) = state.experiment.scenes.get(index) else {
        return;
    };
    // A participant screened out, or timed out in a game's lobby, stays at
    // that scene, finished, and sees its early end page.
    let ended_early = p.finished_us.is_some() && !matches!(scene, Scene::End(_));
    let message = if ended_early && matches!(scene, Scene::Screening(_)) {
        early_end_message(state, at, p, EarlyEnding::ScreenedOut)
    } else if ended_early && matches!(scene, Scene::Game(_)) {
        game_end_message(state, at, p).await
    } else if let Scene::Score(score) = scene {
        scene_message(at, SceneView::Score(score_view(state, score, at, p).await))
    } else {
        scene_message(at, scene.view_for(&external_ids(p)))
    };
    let game = matches!(scene, Scene::Game(_));
    if !state.placement.show(socket, at.step, message, !game) {
        return; // read before a move that has shown the newer scene already
    }
    if let Scene::Game(game) = scene
        && !ended_early
    {
        games::join(state, socket, p.id, at.at(), game).await;
    }
}

fn scene_message(at: Position, scene: SceneView) -> ServerMessage {
    ServerMessage::Scene(SceneMessage {
        index: at.index,
        count: at.count,
        step: at.step,
        scene,
    })
}

/// The early ends a participant can meet before the last scene.
#[derive(Clone, Copy, Debug)]
pub(super) enum EarlyEnding {
    /// Failed a screening scene.
    ScreenedOut,
    /// Their game scene's lobby timed out with no partner.
    TimedOut,
    /// Played less actively than their game scene asks.
    NotPassed,
}

/// The page of early end `ending` at `p`'s scene `at`: an end page with
/// the scene's own text, code and redirect.
pub(super) fn early_end_message(
    state: &AppState,
    at: Position,
    p: &Participant,
    ending: EarlyEnding,
) -> ServerMessage {
    let ids = external_ids(p);
    let view = match (state.experiment.scenes.get(at.index), ending) {
        (Some(Scene::Screening(s)), EarlyEnding::ScreenedOut) => Some(s.screened_out_view(&ids)),
        (Some(Scene::Game(g)), EarlyEnding::TimedOut) => g
            .timed_out
            .as_deref()
            .map(|e| e.view(&g.id, "timed-out", &ids)),
        (Some(Scene::Game(g)), EarlyEnding::NotPassed) => g
            .not_passed
            .as_deref()
            .map(|e| e.view(&g.id, "not-passed", &ids)),
        _ => None,
    };
    match view {
        Some(view) => scene_message(at, SceneView::End(view)),
        None => ServerMessage::error(ErrorCode::WrongKind, "this scene has no such ending"),
    }
}

/// Which early end a participant finished at game scene `index` saw: they
/// held a seat there (not passed) or never did (timed out in the lobby).
async fn game_end_message(state: &AppState, at: Position, p: &Participant) -> ServerMessage {
    let seated = state
        .store
        .seated_in_scene(&state.experiment.id, p.id, at.index as u32)
        .await
        .unwrap_or(false);
    let ending = if seated {
        EarlyEnding::NotPassed
    } else {
        EarlyEnding::TimedOut
    };
    early_end_message(state, at, p, ending)
}

/// A participant's game at scene `from` is over for them: they move on, or,
/// when the scene asks for a minimum of active play they did not give, the
/// study ends for them there with its not-passed page and code.
pub async fn leave_game(state: &AppState, participant_id: i64, from: usize) {
    let Some(Scene::Game(game)) = state.experiment.scenes.get(from) else {
        let _ = move_on(state, participant_id, from).await;
        return;
    };
    let (Some(min_active_s), Some(ending)) = (game.min_active_s, &game.not_passed) else {
        let _ = move_on(state, participant_id, from).await;
        return;
    };
    // Their last steps may still be queued in the recorder.
    if let Err(e) = state.recorder.flush().await {
        warn!(cause = %e, "could not flush the recorder before checking active play");
    }
    let active = state
        .store
        .active_steps(&state.experiment.id, participant_id, from as u32)
        .await;
    let active_s = match active {
        Ok(steps) => steps as f64 / f64::from(game.fps.max(1)),
        Err(e) => {
            // Unknown is not failed: nobody loses their pay to a read error.
            error!(participant = participant_id, cause = %e, "could not count active play");
            let _ = move_on(state, participant_id, from).await;
            return;
        }
    };
    if active_s >= f64::from(min_active_s) {
        let _ = move_on(state, participant_id, from).await;
        return;
    }
    info!(
        participant = participant_id,
        active_s, "did not play actively enough to pass"
    );
    state.recorder.record_event(
        Some(participant_id),
        None,
        "not_passed",
        serde_json::json!({"scene": game.id, "active_s": active_s, "required_s": min_active_s}),
    );
    if let Err(e) = state
        .store
        .finish_participant(participant_id, ending.code.as_deref())
        .await
    {
        error!(participant = participant_id, cause = %e, "could not record not passing");
    }
    if let Some(socket) = state.placement.moved(participant_id, None)
        && let Ok(p) = load(state, participant_id).await
    {
        let at = position(state, &p);
        socket.send(early_end_message(state, at, &p, EarlyEnding::NotPassed));
    }
}

/// A score scene for participant `participant_id`: their score in its game
/// against everyone's so far (an empty distribution if it cannot be read).
async fn score_view(
    state: &AppState,
    scene: &tandem_experiment::ScoreScene,
    at: Position,
    p: &Participant,
) -> tandem_wire::ScoreView {
    let participant_id = p.id;
    // The game as this participant's plan has it (a condition's version).
    let game = state
        .experiment
        .score_game(&plan(state, p), at.step)
        .unwrap_or(&scene.game);
    // The game's last episode end may still be queued in the recorder: the
    // participant's own score must be in what is read.
    if let Err(e) = state.recorder.flush().await {
        warn!(cause = %e, "could not flush the recorder before showing a score");
    }
    let scores = match state.store.scene_scores(&state.experiment.id, game).await {
        Ok(scores) => scores,
        Err(e) => {
            error!(cause = %e, "could not read the scores for a score scene");
            Vec::new()
        }
    };
    let own = scores
        .iter()
        .find(|(p, _)| *p == participant_id)
        .map(|(_, s)| *s);
    let all: Vec<f64> = scores.iter().map(|(_, s)| *s).collect();
    scene.view(own, &all)
}

/// Checks that `sent` is the participant's current scene.
async fn current(
    state: &AppState,
    participant_id: i64,
    sent: usize,
) -> Result<Participant, Refusal> {
    let p = load(state, participant_id).await?;
    let current = position(state, &p).index;
    if current != sent {
        return Err(Refusal::WrongScene { current, sent });
    }
    Ok(p)
}

/// `advance` from an info or a score scene.
pub async fn advance_info(
    state: &AppState,
    socket: &Connection,
    scene: usize,
    checked: bool,
) -> Result<(), Refusal> {
    current(state, socket.participant_id, scene).await?;
    match state.experiment.scenes.get(scene) {
        Some(Scene::Info(info)) if info.checkbox.is_some() && !checked => {
            return Err(Refusal::ConsentRequired);
        }
        Some(Scene::Info(_) | Scene::Score(_)) => {}
        _ => return Err(Refusal::WrongKind(scene)),
    }
    move_on(state, socket.participant_id, scene).await
}

/// What became of a survey submission the flow took.
#[derive(Debug, PartialEq, Eq)]
pub enum Submitted {
    /// Stored; the participant moved on.
    Accepted,
    /// Some answers did not pass; the page was told which (`invalid`).
    Rejected,
}

/// `submit` on a survey scene: validated here, whatever the browser checked.
pub async fn submit_survey(
    state: &AppState,
    socket: &Connection,
    scene: usize,
    answers: &Value,
) -> Result<Submitted, Refusal> {
    let p = current(state, socket.participant_id, scene).await?;
    let Some(Scene::Survey(survey)) = state.experiment.scenes.get(scene) else {
        return Err(Refusal::WrongKind(scene));
    };
    let normalized = match survey.validate(answers) {
        Err(errors) => {
            socket.send(ServerMessage::Invalid(Invalid { scene, errors }));
            return Ok(Submitted::Rejected);
        }
        Ok(normalized) => normalized,
    };
    answer_and_move_on(state, &p, (scene, &survey.id), &normalized)
        .await
        .map_err(|e| {
            error!(participant = p.id, cause = %e, "could not save survey answers");
            Refusal::Storage
        })?;
    Ok(Submitted::Accepted)
}

/// Stores `answers` to scene `from` and moves `p` to the next scene of their
/// plan, in one transaction, then shows it. Nothing is stored when `from` is
/// the plan's last scene, or when another socket moved them first.
pub(super) async fn answer_and_move_on(
    state: &AppState,
    p: &Participant,
    (from, from_id): (usize, &str),
    answers: &[(String, Value)],
) -> Result<(), tandem_store::StoreError> {
    let Some(to) = next_after(state, p, from) else {
        return Ok(());
    };
    let Some(next) = state.experiment.scenes.get(to.index) else {
        return Ok(());
    };
    let moved = state
        .store
        .submit_scene(
            p.id,
            (from as u32, from_id),
            answers,
            (to.index as u32, next.id()),
        )
        .await?;
    if moved {
        arrived(state, p.id, to).await;
    }
    Ok(())
}

/// Moves a participant from scene `from` to the next one and shows it to their
/// socket, if connected. Does nothing if they already left `from`. Placement
/// learns the move is over whatever happened, so a participant it marked as
/// moving is never stuck so.
pub async fn move_on(state: &AppState, participant_id: i64, from: usize) -> Result<(), Refusal> {
    let scenes = &state.experiment.scenes;
    let p = match load(state, participant_id).await {
        Ok(p) => p,
        Err(refusal) => {
            state.placement.moved(participant_id, None);
            return Err(refusal);
        }
    };
    let to = next_after(state, &p, from);
    let (Some(from_scene), Some(to), Some(to_scene)) =
        (scenes.get(from), to, to.and_then(|to| scenes.get(to.index)))
    else {
        state.placement.moved(participant_id, None);
        return Ok(());
    };
    let moved = state
        .store
        .enter_scene(
            participant_id,
            Some((from as u32, from_scene.id())),
            (to.index as u32, to_scene.id()),
        )
        .await;
    match moved {
        Ok(true) => {
            arrived(state, participant_id, to).await;
            Ok(())
        }
        Ok(false) => {
            state.placement.moved(participant_id, None);
            Ok(())
        }
        Err(e) => {
            error!(participant = participant_id, cause = %e, "could not record a scene change");
            state.placement.moved(participant_id, None);
            Err(Refusal::Storage)
        }
    }
}

/// What follows a participant's move into scene `to`: an end scene marks them
/// finished, and their socket, if connected, is shown the scene.
async fn arrived(state: &AppState, participant_id: i64, to: Position) {
    let Some(to_scene) = state.experiment.scenes.get(to.index) else {
        return;
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
    if let Some(socket) = state.placement.moved(participant_id, Some(to.at()))
        && let Ok(p) = load(state, participant_id).await
    {
        show_scene(state, &socket, &p).await;
    }
}
