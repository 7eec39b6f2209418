//! A participant reaching a game scene, and the lobby's groups becoming games.
//!
//! A participant shown a game scene is seated in the game they already hold a
//! seat in (a refresh, a restart), else in a new game (one human) or queued in
//! the scene's lobby (more). Placement decides whether this socket may place
//! them at all (a second tab waits for the first one's game); this module does
//! the database work and hands the result back to placement, which seats them.
//!
//! The lobby's decisions (a group formed, a wait given up) are made under
//! placement's lock when someone queues and once a second by the ticker, and
//! carried out by the outcomes task, never inline: a participant moved on from
//! one lobby may reach the next game scene and queue again.

use tandem_experiment::{GameScene, Scene};
use tandem_store::{Game, MatchReason, NewMatch, StoreError, now_us};
use tandem_wire::{ErrorCode, NoticeCode, ServerMessage};
use tokio::time::Instant;
use tracing::{error, info, warn};

use crate::connection::Connection;
use crate::deferred::Deferred;
use crate::game::{self, GameError, Setup};
use crate::lobby::{Decision, STATUS_INTERVAL, Team, Waiter};
use crate::placement::{At, Join, Seating};
use crate::state::AppState;
use crate::sync::stopped;

/// Seats or queues a participant whose `socket` was shown game scene `scene_index`.
pub(super) async fn join(
    state: &AppState,
    socket: &Connection,
    participant_id: i64,
    at: At,
    scene: &GameScene,
) {
    let scene_index = at.scene;
    if state.placement.join(participant_id, socket.id, at, scene) != Join::Claimed {
        return;
    }
    let found = match state
        .store
        .open_game_for(participant_id, scene_index as u32)
        .await
    {
        Ok(found) => found,
        Err(e) => return give_up(state, participant_id, &GameError::Store(e)),
    };
    match found {
        Some(game) => seat(state, &game, scene_index, &[participant_id], false),
        None if scene.is_multiplayer() => queue(state, participant_id, scene_index, scene).await,
        None => match create_game(state, scene, scene_index, participant_id).await {
            Ok(game) => seat(state, &game, scene_index, &[participant_id], true),
            Err(e) => give_up(state, participant_id, &e),
        },
    }
}

/// Seats `placed` in `game`, starting its task if it needs one. A game that
/// has just ended (its end not yet stored) takes nobody: they are moved on,
/// by the outcomes task (inline, this join would recurse into the next).
fn seat(state: &AppState, game: &Game, scene_index: usize, placed: &[i64], fresh: bool) {
    match state.placement.seat(game, scene_index, placed) {
        Seating::Seated | Seating::Stopping => {}
        Seating::Start(task) => {
            let setup = Setup {
                game: game.clone(),
                generation: task.generation,
                fresh,
            };
            game::spawn(&state.games, setup, task.commands, task.frames);
        }
        Seating::Ended => {
            for &participant_id in placed {
                let _ = state.deferred.send(Deferred::MoveOn {
                    participant_id,
                    from: scene_index,
                });
            }
        }
    }
}

/// The database failed while placing a participant: they are free again and
/// told to reload.
fn give_up(state: &AppState, participant_id: i64, cause: &GameError) {
    error!(participant = participant_id, %cause, "could not open a game");
    state.placement.release(participant_id);
    if let Some(socket) = state.placement.socket(participant_id) {
        socket.send(ServerMessage::error(
            ErrorCode::Storage,
            "the game could not start; please reload the page",
        ));
    }
}

async fn create_game(
    state: &AppState,
    scene: &GameScene,
    scene_index: usize,
    participant_id: i64,
) -> Result<Game, GameError> {
    let seats = game::plan_seats(scene, &[participant_id]);
    let new_game = game::new_game(&state.experiment.id, scene, scene_index);
    let id = state.store.create_game(&new_game, &seats).await?;
    load_game(state, id).await
}

async fn load_game(state: &AppState, id: i64) -> Result<Game, GameError> {
    state.store.game(id).await?.ok_or(GameError::Vanished(id))
}

/// Queues a claimed participant in the lobby of `scene_index`, recording the wait.
async fn queue(state: &AppState, participant_id: i64, scene_index: usize, scene: &GameScene) {
    let joined = Instant::now();
    let joined_us = now_us();
    let opened = state
        .store
        .open_lobby_wait(
            participant_id,
            &state.experiment.id,
            scene_index as u32,
            joined_us,
        )
        .await;
    let wait_id = match opened {
        Ok(id) => id,
        Err(e) => {
            error!(participant = participant_id, cause = %e, "could not record a lobby wait");
            state.placement.release(participant_id);
            if let Some(socket) = state.placement.socket(participant_id) {
                socket.send(ServerMessage::error(
                    ErrorCode::Storage,
                    "the lobby could not be joined; please reload the page",
                ));
            }
            return;
        }
    };
    let team = if scene.group_same {
        match state
            .store
            .last_team(&state.experiment.id, participant_id, scene_index as u32)
            .await
        {
            Ok(team) => team.map(|(id, size)| Team { id, size }),
            Err(e) => {
                // Without it they meet strangers: a study still goes on.
                warn!(participant = participant_id, cause = %e, "could not read a participant's group");
                None
            }
        }
    } else {
        None
    };
    let waiter = Waiter {
        participant_id,
        wait_id,
        joined,
        joined_us,
        team,
    };
    if !state.placement.enqueue(scene_index, scene, waiter) {
        // Their socket closed while the wait was being written.
        let _ = state.store.close_lobby_wait(wait_id, "left").await;
        return;
    }
    info!(
        participant = participant_id,
        scene = scene_index,
        "waiting in the lobby"
    );
    decide_lobby(state, scene_index, scene, false);
}

/// Applies the lobby's rules to one queue now and hands what they decide to
/// the outcomes task. `announce`: everyone waiting hears their wait even if
/// nothing changed.
fn decide_lobby(state: &AppState, scene_index: usize, scene: &GameScene, announce: bool) {
    let decisions = state
        .placement
        .decide_lobby(scene_index, scene, Instant::now(), announce);
    for decision in decisions {
        let _ = state.deferred.send(Deferred::Lobby {
            scene_index,
            decision,
        });
    }
}

/// Tells everyone waiting how long they have waited, and applies
/// `human_timeout_s`, once a second until shutdown.
pub async fn run_lobby_ticker(state: AppState) {
    let mut shutdown = state.shutdown.clone();
    let mut interval = tokio::time::interval(STATUS_INTERVAL);
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = stopped(&mut shutdown) => return,
        }
        for (scene_index, scene) in state.experiment.scenes.iter().enumerate() {
            if let Scene::Game(scene) = scene
                && scene.is_multiplayer()
            {
                decide_lobby(&state, scene_index, scene, true);
            }
        }
    }
}

/// Carries out one decision of the lobby of `scene_index`.
pub(super) async fn carry_out(state: &AppState, scene_index: usize, decision: Decision) {
    let Some(Scene::Game(scene)) = state.experiment.scenes.get(scene_index) else {
        return;
    };
    match decision {
        Decision::Form { group, reason } => form(state, scene_index, scene, group, reason).await,
        Decision::NoPartner(gone) => {
            for w in gone {
                no_partner(state, scene_index, scene, w).await;
            }
        }
    }
}

/// Creates a formed group's game and seats its members.
async fn form(
    state: &AppState,
    scene_index: usize,
    scene: &GameScene,
    group: Vec<Waiter>,
    reason: MatchReason,
) {
    if reason == MatchReason::HumanTimeout {
        for w in &group {
            timeout_event(state, w, scene_index, "filled_with_fallback").await;
        }
    }
    let participants: Vec<i64> = group.iter().map(|w| w.participant_id).collect();
    let seats = game::plan_seats(scene, &participants);
    let members: Vec<(i64, u32)> = group
        .iter()
        .filter_map(|w| {
            let seat = seats
                .iter()
                .find(|s| s.participant_id == Some(w.participant_id))?;
            Some((w.wait_id, seat.agent))
        })
        .collect();
    let human_seats = scene.human_seats().count() as u32;
    let new_game = game::new_game(&state.experiment.id, scene, scene_index);
    let created = state
        .store
        .create_match(&NewMatch {
            game: &new_game,
            seats: &seats,
            reason,
            members,
            filled: human_seats.saturating_sub(participants.len() as u32),
        })
        .await;
    let game = match created {
        Ok((game_id, _)) => load_game(state, game_id).await,
        Err(e) => Err(GameError::Store(e)),
    };
    match game {
        Ok(game) => {
            info!(
                game = game.id,
                ?participants,
                reason = reason.as_str(),
                "lobby formed a game"
            );
            seat(state, &game, scene_index, &participants, true);
        }
        Err(cause) => {
            error!(?participants, %cause, "the lobby could not create a game");
            for w in group {
                give_up(state, w.participant_id, &cause);
                let _ = state.store.close_lobby_wait(w.wait_id, "error").await;
            }
        }
    }
}

/// A participant who waited past the timeout with no game to join: they skip
/// the game and go on, or, when the scene has a timed-out ending, the study
/// ends for them there with its own code.
async fn no_partner(state: &AppState, scene_index: usize, scene: &GameScene, w: Waiter) {
    timeout_event(state, &w, scene_index, "no_partner").await;
    info!(participant = w.participant_id, "no partner found in time");
    if let Err(e) = state.store.close_lobby_wait(w.wait_id, "no_partner").await {
        warn!(cause = %e, "could not record a lobby timeout");
    }
    if let Some(ending) = &scene.timed_out {
        let finished = state
            .store
            .finish_participant(w.participant_id, ending.code.as_deref())
            .await;
        if let Err(e) = finished {
            warn!(cause = %e, "could not record a lobby timeout's ending");
        }
        // Free at their scene, finished: their page shows the timed-out end.
        if let Some(socket) = state.placement.moved(w.participant_id, None)
            && let Ok(p) = super::load(state, w.participant_id).await
        {
            socket.send(super::early_end_message(
                state,
                super::position(state, &p),
                &p,
                super::EarlyEnding::TimedOut,
            ));
        }
        return;
    }
    if let Some(socket) = state.placement.socket(w.participant_id) {
        socket.send(ServerMessage::notice(
            NoticeCode::NoPartner,
            "No other participant arrived in time, so this game is skipped. \
             Thank you for waiting; the study continues.",
        ));
    }
    let _ = super::move_on(state, w.participant_id, scene_index).await;
}

/// Records that `w`'s wait reached the scene's `human_timeout_s`.
async fn timeout_event(state: &AppState, w: &Waiter, scene_index: usize, outcome: &str) {
    let detail = serde_json::json!({
        "scene": scene_index,
        "waited_s": w.joined.elapsed().as_secs_f64(),
        "outcome": outcome,
    });
    let recorded: Result<(), StoreError> = state
        .store
        .record_event(Some(w.participant_id), None, "lobby_timeout", detail)
        .await
        .map(|_| ());
    if let Err(e) = recorded {
        warn!(cause = %e, "could not record a lobby timeout");
    }
}
