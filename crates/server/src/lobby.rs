//! The lobby: participants who reached a multiplayer game scene wait here until
//! enough of them form a game.
//!
//! Each multiplayer scene has one queue, first come first served. As soon as a
//! queue holds the scene's `humans`, the first ones form a game. When the
//! longest wait reaches `human_timeout_s`, the people waiting start a game
//! together with fallback policies in the empty human seats, or, if some empty
//! seat has no fallback, the ones who waited too long are told no partner was
//! found and move on. A ticker sends everyone waiting how many are waiting and
//! for how long, once a second.
//!
//! A participant is in at most one queue entry (a second tab takes over the
//! entry) and is never placed twice: while a group is being written to the
//! database its members are marked as placing, and a reconnect meanwhile waits
//! for the game instead of queueing again. Every wait and every match is
//! recorded (`lobby_waits`, `matches`).

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use tandem_experiment::{GameScene, Scene};
use tandem_store::{MatchReason, NewMatch, Participant};
use tokio::time::Instant;
use tracing::{error, info, warn};

use crate::flow;
use crate::game::{self, Occupant};
use crate::session::Session;
use crate::state::{AppState, lock, now_us, stopped};
use crate::wire;

/// How often everyone waiting hears how long they have waited.
const STATUS_INTERVAL: Duration = Duration::from_secs(1);

/// One participant waiting.
struct Waiter {
    participant_id: i64,
    /// The socket that queued them; only its closing removes them.
    connection: u64,
    wait_id: i64,
    joined: Instant,
    out: tokio::sync::mpsc::UnboundedSender<crate::session::Outgoing>,
}

impl Waiter {
    fn send(&self, message: serde_json::Value) {
        let _ = self.out.send(crate::session::Outgoing::Json(message));
    }
}

/// Every multiplayer scene's queue.
#[derive(Default)]
pub struct Lobby {
    queues: std::sync::Mutex<Queues>,
}

#[derive(Default)]
struct Queues {
    by_scene: HashMap<usize, Vec<Waiter>>,
    /// Participants taken from a queue whose game is being created.
    placing: HashSet<i64>,
}

impl Lobby {
    /// How many participants wait in every lobby together.
    pub fn waiting_total(&self) -> usize {
        lock(&self.queues).by_scene.values().map(Vec::len).sum()
    }
}

/// Queues a participant in the lobby of multiplayer scene `scene_index`.
pub async fn join(state: &AppState, session: &Session, p: &Participant, scene_index: usize) {
    let Some(Scene::Game(scene)) = state.experiment.scenes.get(scene_index) else {
        return;
    };
    {
        let mut queues = lock(&state.lobby.queues);
        if queues.placing.contains(&p.id) {
            return; // their game is being created; `place` seats this socket
        }
        let queue = queues.by_scene.entry(scene_index).or_default();
        let waiting = queue.len();
        if let Some(w) = queue.iter_mut().find(|w| w.participant_id == p.id) {
            // A second tab or a reconnect keeps the place in the queue.
            w.connection = session.connection;
            w.out = session.sender();
            w.send(status(scene_index, scene, waiting, w.joined));
            return;
        }
    }
    let wait_id = match state
        .store
        .open_lobby_wait(p.id, &state.experiment.id, scene_index as u32, now_us())
        .await
    {
        Ok(id) => id,
        Err(e) => {
            error!(participant = p.id, cause = %e, "could not record a lobby wait");
            session.send(wire::error(
                "storage",
                "the lobby could not be joined; please reload the page",
            ));
            return;
        }
    };
    let queued = {
        let mut queues = lock(&state.lobby.queues);
        let placing = queues.placing.contains(&p.id);
        let queue = queues.by_scene.entry(scene_index).or_default();
        // Meanwhile another socket of theirs may have queued, or been placed in
        // a game, and this socket may have closed (its leave already ran).
        let duplicate = queue.iter().any(|w| w.participant_id == p.id)
            || placing
            || state.games.is_seated(p.id)
            || state
                .session(p.id)
                .is_none_or(|s| s.connection != session.connection);
        if !duplicate {
            info!(
                participant = p.id,
                scene = scene_index,
                "waiting in the lobby"
            );
            queue.push(Waiter {
                participant_id: p.id,
                connection: session.connection,
                wait_id,
                joined: Instant::now(),
                out: session.sender(),
            });
            broadcast(scene_index, scene, queue);
        }
        !duplicate
    };
    if !queued {
        let _ = state.store.close_lobby_wait(wait_id, "duplicate").await;
        return;
    }
    form_groups(state, scene_index, scene).await;
}

/// Takes a participant out of every queue when their socket `connection`
/// closes. A socket closing because a newer one replaced it (a second tab, a
/// refresh) hands the place to the newer socket instead: the participant keeps
/// their place in the queue.
pub fn leave(state: &AppState, participant_id: i64, connection: u64) {
    if state.is_shutting_down() {
        // Not leaving: the server is stopping. Shutdown closes open waits.
        return;
    }
    let successor = state
        .session(participant_id)
        .filter(|s| s.connection != connection);
    let mut left = Vec::new();
    {
        let mut queues = lock(&state.lobby.queues);
        for (&scene_index, queue) in queues.by_scene.iter_mut() {
            let Some(i) = queue
                .iter()
                .position(|w| w.participant_id == participant_id && w.connection == connection)
            else {
                continue;
            };
            if let Some(next) = &successor {
                queue[i].connection = next.connection;
                queue[i].out = next.sender();
                continue;
            }
            left.push(queue.remove(i).wait_id);
            if let Some(Scene::Game(scene)) = state.experiment.scenes.get(scene_index) {
                broadcast(scene_index, scene, queue);
            }
        }
    }
    for wait_id in left {
        info!(participant = participant_id, "left the lobby");
        let state = state.clone();
        tokio::spawn(async move {
            if let Err(e) = state.store.close_lobby_wait(wait_id, "left").await {
                warn!(cause = %e, "could not record leaving the lobby");
            }
        });
    }
}

/// Tells everyone waiting how long they have waited, and applies
/// `human_timeout_s`, once a second until shutdown.
pub async fn run_ticker(state: AppState) {
    let mut shutdown = state.shutdown.clone();
    let mut interval = tokio::time::interval(STATUS_INTERVAL);
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = stopped(&mut shutdown) => return,
        }
        for (scene_index, scene) in state.experiment.scenes.iter().enumerate() {
            let Scene::Game(scene) = scene else { continue };
            if !scene.is_multiplayer() {
                continue;
            }
            if let Some(queue) = lock(&state.lobby.queues).by_scene.get(&scene_index) {
                broadcast(scene_index, scene, queue);
            }
            form_groups(&state, scene_index, scene).await;
        }
    }
}

/// What the queue of one scene can do now.
enum Next {
    Nothing,
    Form(Vec<Waiter>, MatchReason),
    /// These waited past the timeout and no game can take them.
    NoPartner(Vec<Waiter>),
}

/// Forms every group the queue allows now.
async fn form_groups(state: &AppState, scene_index: usize, scene: &GameScene) {
    loop {
        let next = {
            let mut queues = lock(&state.lobby.queues);
            let queues = &mut *queues;
            let queue = queues.by_scene.entry(scene_index).or_default();
            let next = decide(queue, scene);
            // Marked until they are seated or moved on, so that a reconnect
            // meanwhile neither queues them again nor loses them.
            if let Next::Form(group, _) | Next::NoPartner(group) = &next {
                queues
                    .placing
                    .extend(group.iter().map(|w| w.participant_id));
                broadcast(scene_index, scene, queue);
            }
            next
        };
        match next {
            Next::Nothing => return,
            Next::Form(group, reason) => {
                if reason == MatchReason::HumanTimeout {
                    for w in &group {
                        timeout_event(state, w, scene_index, "filled_with_fallback").await;
                    }
                }
                place(state, scene_index, scene, group, reason).await;
            }
            Next::NoPartner(gone) => {
                for w in gone {
                    timeout_event(state, &w, scene_index, "no_partner").await;
                    info!(participant = w.participant_id, "no partner found in time");
                    w.send(wire::notice(
                        "no_partner",
                        "No other participant arrived in time, so this game is skipped. \
                         Thank you for waiting; the study continues.",
                    ));
                    if let Err(e) = state.store.close_lobby_wait(w.wait_id, "no_partner").await {
                        warn!(cause = %e, "could not record a lobby timeout");
                    }
                    let _ = flow::move_on(state, w.participant_id, scene_index).await;
                    lock(&state.lobby.queues).placing.remove(&w.participant_id);
                }
            }
        }
    }
}

/// Records that `w`'s wait reached the scene's `human_timeout_s`.
async fn timeout_event(state: &AppState, w: &Waiter, scene_index: usize, outcome: &str) {
    let detail = serde_json::json!({
        "scene": scene_index,
        "waited_s": w.joined.elapsed().as_secs_f64(),
        "outcome": outcome,
    });
    if let Err(e) = state
        .store
        .record_event(Some(w.participant_id), None, "lobby_timeout", detail)
        .await
    {
        warn!(cause = %e, "could not record a lobby timeout");
    }
}

/// The first group the queue can form, first come first served.
fn decide(queue: &mut Vec<Waiter>, scene: &GameScene) -> Next {
    let humans = scene.humans as usize;
    if queue.len() >= humans {
        return Next::Form(queue.drain(..humans).collect(), MatchReason::Full);
    }
    let (Some(timeout), Some(oldest)) = (scene.human_timeout_s, queue.first()) else {
        return Next::Nothing;
    };
    let timeout = Duration::from_secs(u64::from(timeout));
    if oldest.joined.elapsed() < timeout {
        return Next::Nothing;
    }
    // Seats only a person can fill: human seats without a fallback.
    let needed = scene
        .human_seats()
        .filter(|s| s.fallback().is_none())
        .count();
    if queue.len() >= needed.max(1) {
        let group = queue.drain(..queue.len().min(humans)).collect();
        Next::Form(group, MatchReason::HumanTimeout)
    } else {
        let expired = queue
            .iter()
            .take_while(|w| w.joined.elapsed() >= timeout)
            .count();
        Next::NoPartner(queue.drain(..expired).collect())
    }
}

/// Creates the group's game and seats its members.
async fn place(
    state: &AppState,
    scene_index: usize,
    scene: &GameScene,
    group: Vec<Waiter>,
    reason: MatchReason,
) {
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
    let new_game = game::new_game(state, scene, scene_index);
    let created = state
        .store
        .create_match(&NewMatch {
            game: &new_game,
            seats: &seats,
            reason,
            members,
            filled: human_seats - participants.len() as u32,
        })
        .await
        .map_err(|e| e.to_string());
    let game = match created {
        Ok((game_id, _)) => game::load_game(state, game_id).await,
        Err(e) => Err(e),
    };
    let unmark = |state: &AppState| {
        let mut queues = lock(&state.lobby.queues);
        for p in &participants {
            queues.placing.remove(p);
        }
    };
    match game {
        Ok(game) => {
            info!(
                game = game.id,
                ?participants,
                reason = reason.as_str(),
                "lobby formed a game"
            );
            // Seat each member's current socket: it may have been replaced
            // while the game was being written.
            let occupants: Vec<Occupant> = participants
                .iter()
                .filter_map(|&p| state.session(p))
                .map(|s| Occupant::of(&s))
                .collect();
            let seated: Vec<u64> = occupants.iter().map(|o| o.connection).collect();
            game::start(state, &game, true, occupants);
            unmark(state);
            // A socket that connected after the lookup above found them still
            // placing and waited: seat it now (the task treats it as a new tab).
            let late: Vec<Occupant> = participants
                .iter()
                .filter_map(|&p| state.session(p))
                .filter(|s| !seated.contains(&s.connection))
                .map(|s| Occupant::of(&s))
                .collect();
            if !late.is_empty() {
                game::start(state, &game, false, late);
            }
        }
        Err(cause) => {
            unmark(state);
            error!(?participants, cause, "the lobby could not create a game");
            for w in group {
                let message = wire::error(
                    "storage",
                    "the game could not start; please reload the page",
                );
                match state.session(w.participant_id) {
                    Some(session) => session.send(message),
                    None => w.send(message),
                }
                let _ = state.store.close_lobby_wait(w.wait_id, "error").await;
            }
        }
    }
}

/// Sends each waiter the queue's size and their own wait.
fn broadcast(scene_index: usize, scene: &GameScene, queue: &[Waiter]) {
    for w in queue {
        w.send(status(scene_index, scene, queue.len(), w.joined));
    }
}

fn status(
    scene_index: usize,
    scene: &GameScene,
    waiting: usize,
    joined: Instant,
) -> serde_json::Value {
    wire::lobby(
        scene_index,
        waiting,
        scene.humans,
        joined.elapsed().as_secs_f64(),
        scene.human_timeout_s,
    )
}
