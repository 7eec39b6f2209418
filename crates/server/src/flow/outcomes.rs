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

use crate::deferred::Deferred;
use crate::game::GameReport;
use tokio_util::sync::CancellationToken;

use crate::state::AppState;

/// Carries out outcomes until `done` is cancelled: after shutdown, once every
/// game task has ended, so that a game ending as the server stops is still
/// moved on and marked ended. What is queued then is carried out before this
/// returns.
pub async fn run(
    state: AppState,
    mut games: mpsc::UnboundedReceiver<GameReport>,
    mut deferred: mpsc::UnboundedReceiver<Deferred>,
    done: CancellationToken,
) {
    loop {
        tokio::select! {
            biased;
            Some(report) = games.recv() => {
                state.games.tasks.spawn(game_report(state.clone(), report));
            }
            Some(work) = deferred.recv() => {
                state.games.tasks.spawn(carry_out(state.clone(), work));
            }
            () = done.cancelled() => break,
        }
    }
    while let Ok(report) = games.try_recv() {
        state.games.tasks.spawn(game_report(state.clone(), report));
    }
}

async fn carry_out(state: AppState, work: Deferred) {
    match work {
        Deferred::Lobby {
            scene_index,
            decision,
        } => games::carry_out(&state, scene_index, decision).await,
        Deferred::MoveOn {
            participant_id,
            from,
        } => {
            let _ = super::move_on(&state, participant_id, from).await;
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
            // of finding no game (which in a multiplayer scene means the
            // lobby), and holds the game as ending until its end is stored,
            // so nobody starts it again meanwhile.
            for moving in state.placement.game_ended(game_id, generation, &staying) {
                if moving.was_playing
                    && let (Some(notice), Some(socket)) = (&notice, &moving.socket)
                {
                    socket.send(ServerMessage::clone(notice));
                }
                super::leave_game(&state, moving.participant_id, scene_index).await;
            }
            if let Err(e) = state.store.end_game(game_id, &reason).await {
                error!(game = game_id, cause = %e, "could not mark game ended");
            }
            state.placement.game_closed(game_id);
        }
        GameReport::Forfeited {
            game_id,
            scene_index,
            participant_id,
        } => {
            if state.placement.forfeited(game_id, participant_id) {
                super::leave_game(&state, participant_id, scene_index).await;
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
