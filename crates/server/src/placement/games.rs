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

/// What became of a [`Placement::seat`].
pub enum Seating {
    /// Seated: their sockets are attached to the game's running task, or
    /// nobody is connected and the game starts when one of them returns.
    Seated,
    /// Seated; the caller spawns the game's task on these channels.
    Start(NewTask),
    /// The game has just ended: the placed are now moving, and the caller
    /// moves them past its scene.
    Ended,
    /// The server is stopping: no game starts; the placed are free again.
    Stopping,
}

/// A participant being moved on from an ended game.
pub struct Moving {
    pub participant_id: i64,
    pub socket: Option<Connection>,
    /// Whether the game still awaited them (rather than having given their
    /// seat to its fallback): only they are told why it ended.
    pub was_playing: bool,
}

impl Placement {
    /// Seats the participants `placed` (claimed, or formed into a group) in
    /// `game` at scene `scene_index`, and attaches the sockets of everyone
    /// seated there who is connected. See [`Seating`] for what the caller
    /// does next.
    pub fn seat(&self, game: &Game, scene_index: usize, placed: &[i64]) -> Seating {
        let mut state = lock(&self.state);
        let state = &mut *state;
        let claimed = |place: &Place| place.spot == (Spot::Placing { scene: scene_index });
        if state.stopping || state.ending.contains(&game.id) {
            let spot = if state.stopping {
                Spot::Free
            } else {
                Spot::Moving
            };
            for participant in placed {
                if let Some(place) = state.participants.get_mut(participant)
                    && claimed(place)
                {
                    place.spot = spot;
                }
                forget_if_idle(&mut state.participants, *participant);
            }
            return if state.stopping {
                Seating::Stopping
            } else {
                Seating::Ended
            };
        }
        let seats: Vec<(i64, usize)> = game
            .seats
            .iter()
            .filter_map(|s| Some((s.participant_id?, s.agent as usize)))
            .collect();
        for &participant in placed {
            if let Some(place) = state.participants.get_mut(&participant)
                && claimed(place)
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
            return Seating::Seated;
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
            return Seating::Seated;
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
        Seating::Start(NewTask {
            generation,
            commands: commands_rx,
            frames: frames_tx,
        })
    }

    /// A game ended for everyone: its task leaves the registry, and everyone
    /// still seated in it is being moved on: the participants the game still
    /// awaited (`staying`), and anyone whose seat it had already given up
    /// (forfeited) whose move is pending. Returns each with their current
    /// socket; the game counts as ending (nobody is seated in it, no task
    /// starts for it) until [`Placement::game_closed`].
    pub fn game_ended(&self, game_id: i64, generation: u64, staying: &[i64]) -> Vec<Moving> {
        let mut state = lock(&self.state);
        let state = &mut *state;
        if state
            .games
            .get(&game_id)
            .is_some_and(|g| g.generation == generation)
        {
            state.games.remove(&game_id);
        }
        state.ending.insert(game_id);
        let still_seated: Vec<i64> = state
            .participants
            .iter()
            .filter(|(p, place)| place.spot == (Spot::Seated { game_id }) && !staying.contains(p))
            .map(|(p, _)| *p)
            .collect();
        let mut moving = Vec::with_capacity(staying.len() + still_seated.len());
        for (participant, was_playing) in staying
            .iter()
            .map(|&p| (p, true))
            .chain(still_seated.into_iter().map(|p| (p, false)))
        {
            if begin_move(&mut state.participants, participant, game_id) {
                moving.push(Moving {
                    participant_id: participant,
                    socket: socket_of(&state.participants, participant),
                    was_playing,
                });
            }
        }
        moving
    }

    /// An ended game is marked ended in the database: forget it.
    pub fn game_closed(&self, game_id: i64) {
        lock(&self.state).ending.remove(&game_id);
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
        // Only players still seated here count: one who forfeited and plays
        // on elsewhere in the study does not keep this game alive.
        let connected = seats.iter().any(|p| {
            state.participants.get(p).is_some_and(|place| {
                place.socket.is_some() && place.spot == (Spot::Seated { game_id })
            })
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
        at: super::At::default(),
        socket: None,
        spot: Spot::Seated { game_id },
    });
    if place.spot != (Spot::Seated { game_id }) {
        return false;
    }
    place.spot = Spot::Moving;
    true
}
