//! Running games: one task per game, ticking at the scene's rate.
//!
//! A game task owns its environment and one [`seat::SeatRuntime`] per agent.
//! Each tick every seat chooses an action (a participant's keys, a policy, or
//! a fallback policy standing in), the environment steps, the step goes to the
//! recorder, and the new frame is published into a `watch` channel every seated
//! socket streams from. Nothing in a tick waits for a browser or the database.
//!
//! This module is the registry of running tasks and the ways in: [`join`]
//! seats a participant who reached a game scene (in their open game, in a new
//! single-human game, or in the lobby), and [`start`] hands a formed game to a
//! task. The loop itself is in `task`; seats and how they choose in `seat`.

mod seat;
mod task;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tandem_experiment::{GameScene, Scene};
use tandem_store::{Game, NewGame, Participant, Seat};
use tokio::sync::{mpsc, watch};
use tracing::error;

use crate::frames::PublishedFrame;
use crate::session::{Outgoing, Session};
use crate::state::{AppState, lock};
use crate::wire;

/// How long a game with nobody connected waits before its task retires.
pub const IDLE_LIMIT: Duration = Duration::from_secs(600);

/// The keys a socket holds now, the keys pressed since the game last read them,
/// and the input message that set them.
#[derive(Clone, Debug, Default)]
pub struct SeatInput {
    pub keys: Vec<String>,
    /// Keys that went down since the last tick, in order, even if already
    /// released: a tap shorter than a tick still counts (feedback, chords).
    pub pressed: Vec<String>,
    pub seq: Option<u64>,
    pub frame: Option<u64>,
    pub ts: Option<f64>,
}

/// The most key presses kept between two ticks; more is a stuck key or abuse.
pub const MAX_PRESSED: usize = 32;

impl SeatInput {
    /// Replaces the held keys, remembering the ones that went down.
    pub fn update(&mut self, keys: Vec<String>, seq: u64, frame: Option<u64>, ts: Option<f64>) {
        for key in &keys {
            if !self.keys.contains(key) && self.pressed.len() < MAX_PRESSED {
                self.pressed.push(key.clone());
            }
        }
        self.keys = keys;
        self.seq = Some(seq);
        self.frame = frame;
        self.ts = ts;
    }

    /// A copy for this tick; the presses are handed over and cleared.
    pub fn take(&mut self) -> SeatInput {
        let snapshot = self.clone();
        self.pressed.clear();
        snapshot
    }
}

/// Written by the socket's receive loop, read by the game once per tick.
pub type SharedInput = Arc<Mutex<SeatInput>>;

/// A socket that sits in a seat.
pub(crate) struct Occupant {
    pub(crate) participant_id: i64,
    pub(crate) connection: u64,
    pub(crate) input: SharedInput,
    pub(crate) out: mpsc::UnboundedSender<Outgoing>,
}

impl Occupant {
    pub(crate) fn of(session: &Session) -> Occupant {
        Occupant {
            participant_id: session.participant_id,
            connection: session.connection,
            input: Arc::clone(&session.input),
            out: session.sender(),
        }
    }

    pub(crate) fn send(&self, message: serde_json::Value) {
        let _ = self.out.send(Outgoing::Json(message));
    }
}

pub(crate) enum Command {
    /// A participant's socket takes their seat (first join, reconnect, second tab).
    Attach(Occupant),
    /// The socket `connection` of `participant_id` closed.
    Detach {
        participant_id: i64,
        connection: u64,
    },
}

pub(crate) type FrameSender = watch::Sender<Option<Arc<PublishedFrame>>>;
pub(crate) type FrameReceiver = watch::Receiver<Option<Arc<PublishedFrame>>>;

struct Running {
    /// Distinguishes this task from an earlier one for the same game.
    generation: u64,
    /// Every participant seated in the game, connected or not.
    participants: Vec<i64>,
    commands: mpsc::UnboundedSender<Command>,
    frames: FrameReceiver,
}

/// The registry of running game tasks, and the means to wait for them at shutdown.
pub struct Games {
    running: Mutex<HashMap<i64, Running>>,
    next_generation: std::sync::atomic::AtomicU64,
    /// Every game task holds a clone; shutdown drops this one and waits until
    /// `finished` reports that all clones are gone (mini-redis's shutdown pattern).
    alive: Mutex<Option<mpsc::Sender<()>>>,
    finished: tokio::sync::Mutex<mpsc::Receiver<()>>,
}

impl Default for Games {
    fn default() -> Self {
        let (alive, finished) = mpsc::channel(1);
        Games {
            running: Mutex::new(HashMap::new()),
            next_generation: std::sync::atomic::AtomicU64::new(1),
            alive: Mutex::new(Some(alive)),
            finished: tokio::sync::Mutex::new(finished),
        }
    }
}

impl Games {
    /// Tells the games seating `participant_id` that socket `connection` closed.
    pub fn detach(&self, participant_id: i64, connection: u64) {
        for running in lock(&self.running).values() {
            if running.participants.contains(&participant_id) {
                let _ = running.commands.send(Command::Detach {
                    participant_id,
                    connection,
                });
            }
        }
    }

    /// Whether a running game seats `participant_id`.
    pub fn is_seated(&self, participant_id: i64) -> bool {
        lock(&self.running)
            .values()
            .any(|r| r.participants.contains(&participant_id))
    }

    /// How many game tasks are running.
    pub fn running_count(&self) -> usize {
        lock(&self.running).len()
    }

    /// Waits until every game task has ended, or `limit` passes. New games are
    /// refused from the first call on.
    pub async fn wait_for_all(&self, limit: Duration) -> bool {
        drop(lock(&self.alive).take());
        let mut finished = self.finished.lock().await;
        tokio::time::timeout(limit, finished.recv()).await.is_ok()
    }

    fn remove(&self, game_id: i64, generation: u64) {
        let mut running = lock(&self.running);
        if running
            .get(&game_id)
            .is_some_and(|r| r.generation == generation)
        {
            running.remove(&game_id);
        }
    }

    /// Retires an idle game's task, unless a command arrived meanwhile. Sends
    /// happen under the registry lock, so checking and closing under it loses none.
    fn retire_if_idle(
        &self,
        game_id: i64,
        generation: u64,
        commands: &mut mpsc::UnboundedReceiver<Command>,
    ) -> bool {
        let mut running = lock(&self.running);
        if !commands.is_empty() {
            return false;
        }
        if running
            .get(&game_id)
            .is_some_and(|r| r.generation == generation)
        {
            running.remove(&game_id);
        }
        commands.close();
        true
    }
}

/// Seats a participant who reached game scene `scene_index`: in the game they
/// already hold a seat in, else in a new game (one human) or the lobby (more).
pub async fn join(state: &AppState, session: &Session, p: &Participant, scene_index: usize) {
    let Some(Scene::Game(scene)) = state.experiment.scenes.get(scene_index) else {
        return;
    };
    let game = match state.store.open_game_for(p.id, scene_index as u32).await {
        Ok(Some(game)) => Ok((game, false)),
        Ok(None) if scene.is_multiplayer() => {
            crate::lobby::join(state, session, p, scene_index).await;
            return;
        }
        Ok(None) => create_game(state, scene, scene_index, &[p.id])
            .await
            .map(|game| (game, true)),
        Err(e) => Err(e.to_string()),
    };
    match game {
        Ok((game, fresh)) => start(state, &game, fresh, vec![Occupant::of(session)]),
        Err(cause) => {
            error!(participant = p.id, cause, "could not open a game");
            session.send(wire::error(
                "storage",
                "the game could not start; please reload the page",
            ));
        }
    }
}

/// The seats of a new game of `scene` for `participants` (in lobby order).
///
/// Human seats without a fallback are given out first, since only a person can
/// fill them; human seats left over start with their fallback policy.
pub(crate) fn plan_seats(scene: &GameScene, participants: &[i64]) -> Vec<Seat> {
    let mut order: Vec<usize> = scene.human_seats().map(|s| s.agent).collect();
    order.sort_by_key(|&agent| scene.seats[agent].fallback().is_some());
    let mut seats: Vec<Seat> = scene
        .seats
        .iter()
        .map(|s| Seat {
            agent: s.agent as u32,
            agent_name: s.agent_name.clone(),
            participant_id: None,
            policy: match &s.role {
                tandem_experiment::SeatRole::Ai(ai) => Some(ai.policy.name.clone()),
                tandem_experiment::SeatRole::Human(h) => {
                    h.fallback.as_ref().map(|f| f.name.clone())
                }
            },
        })
        .collect();
    for (&agent, &participant) in order.iter().zip(participants) {
        seats[agent].participant_id = Some(participant);
    }
    seats
}

/// The game record for a new game of `scene`.
pub(crate) fn new_game(state: &AppState, scene: &GameScene, scene_index: usize) -> NewGame {
    let spec = &scene.env_spec;
    NewGame {
        experiment_id: state.experiment.id.clone(),
        scene_index: scene_index as u32,
        scene_id: scene.id.clone(),
        env_id: spec.id.clone(),
        env_version: spec.version,
        spaces: NewGame::spaces_json(spec),
        fps: scene.fps,
        config: scene.to_config_json(),
    }
}

async fn create_game(
    state: &AppState,
    scene: &GameScene,
    scene_index: usize,
    participants: &[i64],
) -> Result<Game, String> {
    let seats = plan_seats(scene, participants);
    let id = state
        .store
        .create_game(&new_game(state, scene, scene_index), &seats)
        .await
        .map_err(|e| e.to_string())?;
    load_game(state, id).await
}

pub(crate) async fn load_game(state: &AppState, id: i64) -> Result<Game, String> {
    match state.store.game(id).await {
        Ok(Some(game)) => Ok(game),
        Ok(None) => Err(format!("game {id} vanished after creation")),
        Err(e) => Err(e.to_string()),
    }
}

/// Seats `occupants` in `game`: hands them to its running task, or starts one.
/// Each occupant's socket is told to stream the game's frames as its agent.
pub(crate) fn start(state: &AppState, game: &Game, fresh: bool, occupants: Vec<Occupant>) {
    let agent_of = |participant: i64| {
        game.seats
            .iter()
            .find(|s| s.participant_id == Some(participant))
            .map(|s| s.agent as usize)
    };
    let watch = |occupant: &Occupant, frames: &FrameReceiver| {
        if let Some(agent) = agent_of(occupant.participant_id) {
            let _ = occupant.out.send(Outgoing::Watch {
                frames: frames.clone(),
                agent,
            });
        }
    };
    let mut running = lock(&state.games.running);
    // A socket that closed while its game was being found or created has
    // already sent its detach (a socket leaves the session table before it
    // detaches, and detaching takes this lock): seating it now would hold the
    // seat for nobody, forever. Checked under the lock, a socket closing later
    // detaches after the attach.
    let mut occupants: Vec<Occupant> = occupants
        .into_iter()
        .filter(|o| {
            state
                .session(o.participant_id)
                .is_some_and(|s| s.connection == o.connection)
        })
        .collect();
    if occupants.is_empty() && !running.contains_key(&game.id) {
        return; // nobody to play: the game starts when someone comes back
    }
    if let Some(r) = running.get(&game.id) {
        let mut rejected = Vec::new();
        for occupant in occupants {
            watch(&occupant, &r.frames);
            if let Err(mpsc::error::SendError(Command::Attach(o))) =
                r.commands.send(Command::Attach(occupant))
            {
                rejected.push(o);
            }
        }
        if rejected.is_empty() {
            return;
        }
        // The task ended without unregistering: start a fresh one below.
        occupants = rejected;
    }
    let Some(alive) = lock(&state.games.alive).clone() else {
        return; // shutting down: no new games
    };
    let generation = state
        .games
        .next_generation
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let (commands_tx, commands_rx) = mpsc::unbounded_channel();
    let (frames_tx, frames_rx) = watch::channel(None);
    for occupant in occupants {
        watch(&occupant, &frames_rx);
        let _ = commands_tx.send(Command::Attach(occupant));
    }
    running.insert(
        game.id,
        Running {
            generation,
            participants: game.seats.iter().filter_map(|s| s.participant_id).collect(),
            commands: commands_tx,
            frames: frames_rx,
        },
    );
    drop(running);
    let setup = task::Setup {
        game: game.clone(),
        generation,
        fresh,
    };
    let state = state.clone();
    tokio::spawn(async move {
        task::run(state, setup, commands_rx, frames_tx).await;
        drop(alive);
    });
}
