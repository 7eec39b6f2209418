//! Placement: the one owner of where every participant is — their socket,
//! their scene, their place in a lobby queue, their seat in a running game —
//! and the registry of running game tasks.
//!
//! Everything lives in one [`State`] behind one `std::sync::Mutex`, as in
//! tokio's mini-redis `db.rs`: the invariants that span sockets, queues and
//! games ("a participant is in at most one queue or game", "only a current
//! socket is seated") are kept by one piece of code, under one lock, with no
//! lock order to remember. The lock is never held across an `.await`; every
//! operation is a short synchronous transition that returns what the caller
//! must do next (write to the database, spawn a task). Messages to sockets and
//! commands to game tasks are sent *under* the lock (unbounded channels never
//! block), so their order matches the order of the transitions: an attach can
//! never overtake the detach of the same socket.
//!
//! Placement decides; it does no I/O. `flow` carries out the decisions, and
//! game tasks and the lobby report outcomes to `flow`, which brings them here.

mod games;

use games::attach;
mod snapshot;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use tandem_experiment::GameScene;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::connection::{Connection, Outgoing};
use crate::frames::FrameSender;
use crate::game::Command;
use crate::lobby::{self, Decision, Waiter};
use crate::sync::lock;
use tandem_wire::ServerMessage;

pub use games::Seating;
pub use snapshot::{GamePlace, ParticipantPlace, Snapshot, Spot as SpotView};

/// The one owner of placement; see the module docs.
#[derive(Default)]
pub struct Placement {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Every participant the server is tracking: connected, or holding a place
    /// (a queue entry, a seat, a move in progress). An entry with no socket
    /// and a `Free` spot is removed: nothing would be lost by forgetting it.
    participants: HashMap<i64, Place>,
    /// Each multiplayer scene's queue, in arrival order. Invariant: `p` is in
    /// `queues[s]` exactly when `participants[p].spot == Queued { scene: s }`.
    queues: HashMap<usize, Vec<Waiter>>,
    /// Running game tasks by game id. Invariant: a participant whose spot is
    /// `Seated { game_id }` has `game_id` here, and is one of its participants.
    /// The task's command sender lives only here: removing an entry closes the
    /// task's command channel, which is how an idle task is retired.
    games: HashMap<i64, RunningGame>,
    /// Distinguishes a game's tasks when one retires and another starts.
    next_generation: u64,
    /// Games that ended whose end is not yet in the database: the database
    /// still calls them open, so a participant joining one is moved on
    /// instead of starting it again.
    ending: HashSet<i64>,
    /// Set once, when the server starts shutting down: no game starts.
    stopping: bool,
}

struct Place {
    /// Where they were last known to be (steps of their plan only go forward).
    at: At,
    /// Their current socket; a newer socket replaces an older one.
    socket: Option<Connection>,
    spot: Spot,
}

/// A participant's scene: its index in the experiment, and the step of
/// their own plan it is (conditions and blocks order scenes differently for
/// different participants, so only steps say which of two scenes is later).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct At {
    pub scene: usize,
    pub step: usize,
}

impl Place {
    fn go_to(&mut self, at: At) {
        if at.step >= self.at.step {
            self.at = at;
        }
    }
}

/// Where a participant stands beyond their scene.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Spot {
    /// At their scene, in nothing.
    Free,
    /// In the lobby queue of game scene `scene`.
    Queued { scene: usize },
    /// An operation is finding or creating their game: until it ends, nothing
    /// else may place them (a second tab waits for the first one's game).
    Placing { scene: usize },
    /// In a running game's seat, connected or not.
    Seated { game_id: i64 },
    /// Being moved on to the next scene; whoever moves them shows it.
    Moving,
}

struct RunningGame {
    generation: u64,
    scene: usize,
    /// Participant id → agent index, for every human seat with a participant.
    seats: Vec<(i64, usize)>,
    commands: mpsc::UnboundedSender<Command>,
    frames: crate::frames::FrameReceiver,
    started_us: i64,
}

/// What a participant who reached a game scene needs next.
#[derive(Debug, PartialEq, Eq)]
pub enum Join {
    /// Nothing: they are seated (their socket now watches the game), waiting
    /// in its lobby (their socket was told), being placed or moved by another
    /// operation, or this socket is no longer theirs.
    Nothing,
    /// Their spot is now `Placing`: the caller finds or creates their game and
    /// calls [`Placement::seat`] or [`Placement::enqueue`], or [`Placement::release`].
    Claimed,
}

/// The channels of a game task that must be spawned.
pub struct NewTask {
    pub generation: u64,
    pub commands: mpsc::UnboundedReceiver<Command>,
    pub frames: FrameSender,
}

impl Placement {
    /// Registers a participant's new socket. Returns the socket it replaces,
    /// which the caller closes.
    pub fn connect(&self, socket: Connection) -> Option<Connection> {
        let mut state = lock(&self.state);
        let place = state
            .participants
            .entry(socket.participant_id)
            .or_insert(Place {
                at: At::default(),
                socket: None,
                spot: Spot::Free,
            });
        place.socket.replace(socket)
    }

    /// The participant's scene, read from the database, is `at`.
    pub fn at_scene(&self, participant_id: i64, at: At) {
        if let Some(place) = lock(&self.state).participants.get_mut(&participant_id) {
            place.go_to(at);
        }
    }

    /// The current socket of a participant.
    pub fn socket(&self, participant_id: i64) -> Option<Connection> {
        lock(&self.state)
            .participants
            .get(&participant_id)
            .and_then(|p| p.socket.clone())
    }

    /// Whether `connection` is the participant's current socket.
    pub fn is_current(&self, participant_id: i64, connection: u64) -> bool {
        self.socket(participant_id)
            .is_some_and(|s| s.id == connection)
    }

    /// Socket `connection` of a participant closed. Their seat's game is told
    /// (it ignores a socket that is not the one seated). If it was their
    /// current socket, they leave their lobby queue (unless the server is
    /// `stopping`: shutdown closes every wait itself); the wait to close and
    /// its scene are returned (the caller tells the others waiting there).
    pub fn disconnect(
        &self,
        participant_id: i64,
        connection: u64,
        stopping: bool,
    ) -> Option<(usize, Waiter)> {
        let mut state = lock(&self.state);
        let state = &mut *state;
        let place = state.participants.get_mut(&participant_id)?;
        if let Spot::Seated { game_id } = place.spot
            && let Some(game) = state.games.get(&game_id)
        {
            let _ = game.commands.send(Command::Detach {
                participant_id,
                connection,
            });
        }
        if place.socket.as_ref().is_none_or(|s| s.id != connection) {
            return None; // a replaced socket: its successor keeps the place
        }
        place.socket = None;
        let mut left = None;
        if let Spot::Queued { scene } = place.spot
            && !stopping
        {
            place.spot = Spot::Free;
            if let Some(queue) = state.queues.get_mut(&scene)
                && let Some(i) = queue
                    .iter()
                    .position(|w| w.participant_id == participant_id)
            {
                left = Some((scene, queue.remove(i)));
            }
        }
        forget_if_idle(&mut state.participants, participant_id);
        left
    }

    /// A participant whose socket `connection` was shown game scene `scene`
    /// arrives at it. See [`Join`].
    pub fn join(&self, participant_id: i64, connection: u64, at: At, scene: &GameScene) -> Join {
        let scene_index = at.scene;
        let mut state = lock(&self.state);
        let state = &mut *state;
        let Some(place) = state.participants.get_mut(&participant_id) else {
            return Join::Nothing;
        };
        let Some(socket) = place.socket.as_ref().filter(|s| s.id == connection) else {
            return Join::Nothing; // a newer socket joins for itself
        };
        if at.step < place.at.step {
            return Join::Nothing; // a stale read: they have moved past it
        }
        match place.spot {
            Spot::Free => {
                place.spot = Spot::Placing { scene: scene_index };
                Join::Claimed
            }
            Spot::Seated { game_id } => {
                if let Some(game) = state.games.get(&game_id) {
                    attach(game, socket);
                }
                Join::Nothing
            }
            Spot::Queued { scene: queued } => {
                // A second tab or a reconnect keeps the place in the queue.
                if let Some(queue) = state.queues.get(&queued)
                    && let Some(w) = queue.iter().find(|w| w.participant_id == participant_id)
                    && queued == scene_index
                {
                    socket.send(lobby::status(
                        scene_index,
                        scene,
                        queue.len(),
                        w,
                        Instant::now(),
                    ));
                }
                Join::Nothing
            }
            Spot::Placing { .. } | Spot::Moving => Join::Nothing,
        }
    }

    /// Sends `socket` the `scene` message of scene `index`, unless its
    /// participant is known to have moved past it (a scene read from the
    /// database before a move finished): under the lock that records moves,
    /// so the last scene a socket receives is the newest. Returns whether it
    /// was sent. `unwatch`: the scene is no game, so the socket first stops
    /// streaming frames.
    pub fn show(
        &self,
        socket: &Connection,
        step: usize,
        message: ServerMessage,
        unwatch: bool,
    ) -> bool {
        let state = lock(&self.state);
        if state
            .participants
            .get(&socket.participant_id)
            .is_some_and(|place| place.at.step > step)
        {
            return false;
        }
        if unwatch {
            socket.control(Outgoing::Unwatch(None));
        }
        socket.send(message);
        true
    }

    /// The server is stopping: from now on no game task starts.
    pub fn stop(&self) {
        lock(&self.state).stopping = true;
    }

    /// Tells everyone in the queue of `scene_index` its size and their wait.
    pub fn announce(&self, scene_index: usize, scene: &GameScene) {
        let state = lock(&self.state);
        if let Some(queue) = state.queues.get(&scene_index) {
            broadcast(
                &state.participants,
                scene_index,
                scene,
                queue,
                Instant::now(),
            );
        }
    }

    /// Gives up a claim that could not be carried out (the database failed).
    pub fn release(&self, participant_id: i64) {
        let mut state = lock(&self.state);
        if let Some(place) = state.participants.get_mut(&participant_id)
            && matches!(place.spot, Spot::Placing { .. })
        {
            place.spot = Spot::Free;
        }
        forget_if_idle(&mut state.participants, participant_id);
    }

    /// Queues a claimed participant in the lobby of `scene_index`, whose wait
    /// was recorded as `waiter.wait_id`. Everyone in the queue hears its new
    /// size. `false` if they are no longer there to wait (their socket closed
    /// meanwhile): the caller closes the wait.
    pub fn enqueue(&self, scene_index: usize, scene: &GameScene, waiter: Waiter) -> bool {
        let mut state = lock(&self.state);
        let state = &mut *state;
        let participant_id = waiter.participant_id;
        let Some(place) = state.participants.get_mut(&participant_id) else {
            return false;
        };
        if place.spot != (Spot::Placing { scene: scene_index }) {
            return false;
        }
        if place.socket.is_none() {
            place.spot = Spot::Free;
            forget_if_idle(&mut state.participants, participant_id);
            return false;
        }
        place.spot = Spot::Queued { scene: scene_index };
        let queue = state.queues.entry(scene_index).or_default();
        queue.push(waiter);
        broadcast(
            &state.participants,
            scene_index,
            scene,
            queue,
            Instant::now(),
        );
        true
    }

    /// Applies the lobby's rules to the queue of `scene_index` at `now`:
    /// members of formed groups become `Placing`, those who gave up `Moving`.
    /// Everyone still waiting hears the queue's size and their wait when
    /// `announce` is set or the queue changed.
    pub fn decide_lobby(
        &self,
        scene_index: usize,
        scene: &GameScene,
        now: Instant,
        announce: bool,
    ) -> Vec<Decision> {
        let mut state = lock(&self.state);
        let state = &mut *state;
        let Some(queue) = state.queues.get_mut(&scene_index) else {
            return Vec::new();
        };
        let mut decisions = Vec::new();
        while let Some(decision) = lobby::decide(queue, scene, now) {
            let (members, spot) = match &decision {
                Decision::Form { group, .. } => (group, Spot::Placing { scene: scene_index }),
                Decision::NoPartner(gone) => (gone, Spot::Moving),
            };
            for w in members {
                if let Some(place) = state.participants.get_mut(&w.participant_id) {
                    place.spot = spot;
                }
            }
            decisions.push(decision);
        }
        if announce || !decisions.is_empty() {
            broadcast(&state.participants, scene_index, scene, queue, now);
        }
        decisions
    }

    /// A participant's move to scene `scene` is over (whether this mover or
    /// another made it, or it failed): they are free at their scene. Returns
    /// their socket, to show them where they are now.
    pub fn moved(&self, participant_id: i64, to: Option<At>) -> Option<Connection> {
        let mut state = lock(&self.state);
        let place = state.participants.get_mut(&participant_id)?;
        if let Some(at) = to {
            place.go_to(at);
        }
        if place.spot == Spot::Moving {
            place.spot = Spot::Free;
        }
        let socket = place.socket.clone();
        forget_if_idle(&mut state.participants, participant_id);
        socket
    }

    /// How many sockets, running games and waiting participants there are.
    pub fn counts(&self) -> (usize, usize, usize) {
        let state = lock(&self.state);
        let sockets = state
            .participants
            .values()
            .filter(|p| p.socket.is_some())
            .count();
        let waiting = state.queues.values().map(Vec::len).sum();
        (sockets, state.games.len(), waiting)
    }

    /// The ids of every running game.
    pub fn running_games(&self) -> Vec<i64> {
        lock(&self.state).games.keys().copied().collect()
    }

    /// Asks running game `game_id` to end (a researcher's decision, `reason`
    /// theirs). False when no such game runs here.
    pub fn end_game(&self, game_id: i64, reason: String) -> bool {
        let state = lock(&self.state);
        state
            .games
            .get(&game_id)
            .is_some_and(|game| game.commands.send(Command::End { reason }).is_ok())
    }

    /// A receiver of running game `game_id`'s frames, for a researcher who
    /// watches it, with its scene index; `None` when no such game runs here.
    pub fn watch_game(&self, game_id: i64) -> Option<(usize, crate::frames::FrameReceiver)> {
        let state = lock(&self.state);
        let game = state.games.get(&game_id)?;
        Some((game.scene, game.frames.clone()))
    }
}

/// Tells everyone in a queue its size and their own wait.
fn broadcast(
    participants: &HashMap<i64, Place>,
    scene_index: usize,
    scene: &GameScene,
    queue: &[Waiter],
    now: Instant,
) {
    for w in queue {
        if let Some(socket) = socket_of(participants, w.participant_id) {
            socket.send(lobby::status(scene_index, scene, queue.len(), w, now));
        }
    }
}

fn socket_of(participants: &HashMap<i64, Place>, participant: i64) -> Option<Connection> {
    participants
        .get(&participant)
        .and_then(|p| p.socket.clone())
}

/// Drops an entry that holds nothing: no socket, no place.
fn forget_if_idle(participants: &mut HashMap<i64, Place>, participant: i64) {
    if participants
        .get(&participant)
        .is_some_and(|p| p.socket.is_none() && p.spot == Spot::Free)
    {
        participants.remove(&participant);
    }
}
