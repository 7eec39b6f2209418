//! Placement's side of running games: seating participants in a game (and
//! registering its task), and a game's end, forfeits and retirement.
//!
//! Split from `mod.rs` only for length: these are transitions of the same
//! state, under the same lock, with the same rules.

use std::collections::HashMap;

use tandem_store::Game;
use tokio::sync::{mpsc, watch};

use super::{NewTask, Place, Placement, RunningGame, Spot, forget_if_idle, socket_of};
use crate::connection::{Connection, Outgoing};
use crate::game::Command;
use crate::sync::lock;

impl Placement {
    /// Seats the participants `placed` (claimed, or formed into a group) in
    /// `game` at scene `scene_index`, and attaches the sockets of everyone
    /// seated there who is connected. Returns the channels of a task to spawn
    /// when the game has none running and someone is there to play; without
    /// anyone connected the game waits, and starts when one of them returns.
    pub fn seat(&self, game: &Game, scene_index: usize, placed: &[i64]) -> Option<NewTask> {
        let mut state = lock(&self.state);
        let state = &mut *state;
        let seats: Vec<(i64, usize)> = game
            .seats
            .iter()
            .filter_map(|s| Some((s.participant_id?, s.agent as usize)))
            .collect();
        for &participant in placed {
            if let Some(place) = state.participants.get_mut(&participant)
                && place.spot == (Spot::Placing { scene: scene_index })
            {
                place.spot = Spot::Seated { game_id: game.id };
            }
        }
        let seated_sockets = |participants: &HashMap<i64, Place>| -> Vec<Connection> {
            seats
                .iter()
                .filter_map(|(p, _)| participants.get(p))
                .filter(|place| place.spot == (Spot::Seated { game_id: game.id }))
                .filter_map(|place| place.socket.clone())
                .collect()
        };
        if let Some(running) = state.games.get(&game.id) {
            for socket in seated_sockets(&state.participants) {
                if placed.contains(&socket.participant_id) {
                    attach(running, &socket);
                }
            }
            return None;
        }
        let sockets = seated_sockets(&state.participants);
        if sockets.is_empty() {
            // Nobody to play: forget them, so that whoever returns first
            // finds the game again and starts it.
            for (participant, _) in &seats {
                if let Some(place) = state.participants.get_mut(participant)
                    && place.spot == (Spot::Seated { game_id: game.id })
                {
                    place.spot = Spot::Free;
                }
                forget_if_idle(&mut state.participants, *participant);
            }
            return None;
        }
        state.next_generation += 1;
        let generation = state.next_generation;
        let (commands_tx, commands_rx) = mpsc::unbounded_channel();
        let (frames_tx, frames_rx) = watch::channel(None);
        let running = RunningGame {
            generation,
            scene: scene_index,
            seats,
            commands: commands_tx,
            frames: frames_rx,
            started_us: tandem_store::now_us(),
        };
        for socket in &sockets {
            attach(&running, socket);
        }
        state.games.insert(game.id, running);
        Some(NewTask {
            generation,
            commands: commands_rx,
            frames: frames_tx,
        })
    }

    /// A game ended for everyone: its task leaves the registry, and the
    /// participants still seated in it (`staying`) are being moved on.
    /// Returns each of them with their current socket, to tell them why.
    pub fn game_ended(
        &self,
        game_id: i64,
        generation: u64,
        staying: &[i64],
    ) -> Vec<(i64, Option<Connection>)> {
        let mut state = lock(&self.state);
        if state
            .games
            .get(&game_id)
            .is_some_and(|g| g.generation == generation)
        {
            state.games.remove(&game_id);
        }
        let mut moving = Vec::with_capacity(staying.len());
        for &participant in staying {
            if begin_move(&mut state.participants, participant, game_id) {
                moving.push((participant, socket_of(&state.participants, participant)));
            }
        }
        moving
    }

    /// A participant's seat in `game_id` went to its fallback for good: they
    /// are being moved on. `false` if they already left the game.
    pub fn forfeited(&self, game_id: i64, participant_id: i64) -> bool {
        begin_move(&mut lock(&self.state).participants, participant_id, game_id)
    }

    /// Retires an idle game's task if none of its participants is connected:
    /// its entry leaves the registry, which closes the task's commands. The
    /// game stays open in the database and starts again when someone returns.
    pub fn retire_if_idle(&self, game_id: i64, generation: u64) -> bool {
        let mut state = lock(&self.state);
        let state = &mut *state;
        let Some(game) = state
            .games
            .get(&game_id)
            .filter(|g| g.generation == generation)
        else {
            return false;
        };
        let seats: Vec<i64> = game.seats.iter().map(|(p, _)| *p).collect();
        let connected = seats.iter().any(|p| {
            state
                .participants
                .get(p)
                .is_some_and(|place| place.socket.is_some())
        });
        if connected {
            return false;
        }
        state.games.remove(&game_id);
        for participant in seats {
            if let Some(place) = state.participants.get_mut(&participant)
                && place.spot == (Spot::Seated { game_id })
            {
                place.spot = Spot::Free;
            }
            forget_if_idle(&mut state.participants, participant);
        }
        true
    }
}

/// Sends the socket the game's frames and hands it to the game's seat.
pub(super) fn attach(game: &RunningGame, socket: &Connection) {
    let Some(&(_, agent)) = game.seats.iter().find(|(p, _)| *p == socket.participant_id) else {
        return;
    };
    socket.control(Outgoing::Watch {
        frames: game.frames.clone(),
        agent,
    });
    // A task that already ended has reported it; its report moves them on.
    let _ = game.commands.send(Command::Attach(socket.clone()));
}

/// `Seated { game_id }` (or not known here at all) → `Moving`.
pub(super) fn begin_move(
    participants: &mut HashMap<i64, Place>,
    participant: i64,
    game_id: i64,
) -> bool {
    let place = participants.entry(participant).or_insert(Place {
        scene: 0,
        socket: None,
        spot: Spot::Seated { game_id },
    });
    if place.spot != (Spot::Seated { game_id }) {
        return false;
    }
    place.spot = Spot::Moving;
    true
}
