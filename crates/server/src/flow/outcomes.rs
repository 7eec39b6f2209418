//! The one task that hears outcomes — from game tasks (a game ended, a seat
//! forfeited, a game idle) and from the lobby (a group formed, a wait given
//! up) — and carries each out.
//!
//! Game tasks and the lobby never call back into the flow: they report here
//! over channels, so the server's modules import one way only. Each outcome
//! is carried out in a task of its own, because carrying one out writes to the
//! database and may take a while (a crowd's games ending at once must not wait
//! in line behind each other), and may lead anywhere in the flow (a
//! participant moved on may reach the next game scene and queue again). Those
//! tasks are tracked with the game tasks, so shutdown waits for them too.

use tokio::sync::mpsc;
use tracing::{error, info};

use super::games;
use tandem_wire::ServerMessage;

use crate::game::GameReport;
use crate::lobby::LobbyDecision;
use crate::state::AppState;
use crate::sync::stopped;

/// Carries out outcomes until shutdown.
pub async fn run(
    state: AppState,
    mut games: mpsc::UnboundedReceiver<GameReport>,
    mut lobby: mpsc::UnboundedReceiver<LobbyDecision>,
) {
    let mut shutdown = state.shutdown.clone();
    loop {
        tokio::select! {
            Some(report) = games.recv() => {
                state.games.tasks.spawn(game_report(state.clone(), report));
            }
            Some(decision) = lobby.recv() => {
                state.games.tasks.spawn(games::carry_out(state.clone(), decision));
            }
            _ = stopped(&mut shutdown) => return,
        }
    }
}

async fn game_report(state: AppState, report: GameReport) {
    match report {
        GameReport::Ended {
            game_id,
            generation,
            scene_index,
            staying,
            reason,
            notice,
        } => {
            // Placement marks them as moving before the game leaves the
            // registry, so a reconnect meanwhile waits for the move instead
            // of finding no game (which in a multiplayer scene means the lobby).
            for (participant, socket) in state.placement.game_ended(game_id, generation, &staying) {
                if let (Some(notice), Some(socket)) = (&notice, &socket) {
                    socket.send(ServerMessage::clone(notice));
                }
                let _ = super::move_on(&state, participant, scene_index).await;
            }
            if let Err(e) = state.store.end_game(game_id, &reason).await {
                error!(game = game_id, cause = %e, "could not mark game ended");
            }
        }
        GameReport::Forfeited {
            game_id,
            scene_index,
            participant_id,
        } => {
            if state.placement.forfeited(game_id, participant_id) {
                let _ = super::move_on(&state, participant_id, scene_index).await;
            }
        }
        GameReport::Idle {
            game_id,
            generation,
        } => {
            if state.placement.retire_if_idle(game_id, generation) {
                info!(game = game_id, "an idle game's task retired");
            }
        }
    }
}
