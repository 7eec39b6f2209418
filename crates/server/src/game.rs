//! Running games: one task per game, ticking at the scene's rate.
//!
//! A game task owns its environment. Each tick it reads the latest keys its seat
//! holds, maps them to an action through the scene's key map, steps the
//! environment, hands the step to the recorder, and publishes the new frame into a
//! `watch` channel that the seated socket streams from. Nothing in a tick waits
//! for a browser or for the database.
//!
//! A game outlives sockets: when its participant disconnects, the running episode
//! is recorded as interrupted and the game pauses until they come back (a page
//! refresh, a reconnect after a network blip), then starts a new episode. A game
//! paused for [`IDLE_LIMIT`] retires its task; the game stays open in the
//! database, so a participant returning later still resumes it. On shutdown the
//! running episode is recorded as interrupted and the game stays open too.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use tandem_env::{Env, Frame};
use tandem_experiment::{GameScene, RenderMode, Scene};
use tandem_store::{
    ActionSource, AgentStep, EpisodeAgent, EpisodeEnd, EpisodeStart, NewGame, Outcome, Participant,
    Seat, StepRecord,
};
use tokio::sync::{mpsc, watch};
use tokio::time::MissedTickBehavior;
use tracing::{error, info, warn};

use crate::flow;
use crate::frames::{FrameContent, PublishedFrame, encode_png};
use crate::session::{Outgoing, Session};
use crate::state::{AppState, lock, now_us, stopped};
use crate::wire;

/// How long a game waits for its participant to come back before its task retires.
pub const IDLE_LIMIT: Duration = Duration::from_secs(600);

/// The keys a socket holds now, and the input message that set them.
#[derive(Clone, Debug, Default)]
pub struct SeatInput {
    pub keys: Vec<String>,
    pub seq: Option<u64>,
    pub frame: Option<u64>,
    pub ts: Option<f64>,
}

/// Written by the socket's receive loop, read by the game once per tick.
pub type SharedInput = Arc<Mutex<SeatInput>>;

/// The socket sitting in a seat.
struct Occupant {
    participant_id: i64,
    connection: u64,
    input: SharedInput,
    out: mpsc::UnboundedSender<Outgoing>,
}

impl Occupant {
    fn send(&self, message: serde_json::Value) {
        let _ = self.out.send(Outgoing::Json(message));
    }
}

enum Command {
    /// A socket takes the seat (first join, reconnect, second tab).
    Attach(Occupant),
    /// The socket `connection` closed.
    Detach { connection: u64 },
}

type FrameSender = watch::Sender<Option<Arc<PublishedFrame>>>;
type FrameReceiver = watch::Receiver<Option<Arc<PublishedFrame>>>;

struct Running {
    /// Distinguishes this task from an earlier one for the same game.
    generation: u64,
    participant_id: i64,
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
    /// Tells the game seating `participant_id` that socket `connection` closed.
    pub fn detach(&self, participant_id: i64, connection: u64) {
        for running in lock(&self.running).values() {
            if running.participant_id == participant_id {
                let _ = running.commands.send(Command::Detach { connection });
            }
        }
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

    /// Retires a paused game's task, unless a socket attached meanwhile. Sends
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

/// Seats a participant's socket in the game of scene `scene_index`: the game they
/// already have open there, or a new one.
pub async fn join(state: &AppState, session: &Session, p: &Participant, scene_index: usize) {
    let Some(Scene::Game(scene)) = state.experiment.scenes.get(scene_index) else {
        return;
    };
    let game = match state.store.open_game_for(p.id, scene_index as u32).await {
        Ok(Some(game)) => Ok((game, false)),
        Ok(None) => create_game(state, scene, p.id, scene_index)
            .await
            .map(|game| (game, true)),
        Err(e) => Err(e.to_string()),
    };
    let (game, fresh) = match game {
        Ok(game) => game,
        Err(cause) => {
            error!(participant = p.id, cause, "could not open a game");
            session.send(wire::error(
                "storage",
                "the game could not start; please reload the page",
            ));
            return;
        }
    };
    let occupant = Occupant {
        participant_id: p.id,
        connection: session.connection,
        input: Arc::clone(&session.input),
        out: session.sender(),
    };
    let mut running = lock(&state.games.running);
    let occupant = match running.get(&game.id) {
        Some(r) => match r.commands.send(Command::Attach(occupant)) {
            Ok(()) => {
                session.control(Outgoing::Watch {
                    frames: r.frames.clone(),
                    agent: 0,
                });
                return;
            }
            // The task ended without unregistering: start a fresh one below.
            Err(mpsc::error::SendError(Command::Attach(occupant))) => occupant,
            Err(_) => return,
        },
        None => occupant,
    };
    let Some(alive) = lock(&state.games.alive).clone() else {
        return; // shutting down: no new games
    };
    let generation = state
        .games
        .next_generation
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let (commands_tx, commands_rx) = mpsc::unbounded_channel();
    let (frames_tx, frames_rx) = watch::channel(None);
    let _ = commands_tx.send(Command::Attach(occupant));
    running.insert(
        game.id,
        Running {
            generation,
            participant_id: p.id,
            commands: commands_tx,
            frames: frames_rx.clone(),
        },
    );
    drop(running);
    session.control(Outgoing::Watch {
        frames: frames_rx,
        agent: 0,
    });
    let setup = Setup {
        game_id: game.id,
        generation,
        scene_index,
        participant_id: p.id,
        started_us: game.started_us,
        fresh,
    };
    let state = state.clone();
    tokio::spawn(async move {
        run(state, setup, commands_rx, frames_tx).await;
        drop(alive);
    });
}

async fn create_game(
    state: &AppState,
    scene: &GameScene,
    participant_id: i64,
    scene_index: usize,
) -> Result<tandem_store::Game, String> {
    let spec = &scene.env_spec;
    let new_game = NewGame {
        experiment_id: state.experiment.id.clone(),
        scene_index: scene_index as u32,
        scene_id: scene.id.clone(),
        env_id: spec.id.clone(),
        env_version: spec.version,
        spaces: NewGame::spaces_json(spec),
        fps: scene.fps,
        config: scene.to_config_json(),
    };
    let seats: Vec<Seat> = spec
        .agents
        .iter()
        .enumerate()
        .map(|(i, a)| Seat {
            agent: i as u32,
            agent_name: a.name.clone(),
            participant_id: (i == 0).then_some(participant_id),
            policy: None,
        })
        .collect();
    let id = state
        .store
        .create_game(&new_game, &seats)
        .await
        .map_err(|e| e.to_string())?;
    match state.store.game(id).await {
        Ok(Some(game)) => Ok(game),
        Ok(None) => Err(format!("game {id} vanished after creation")),
        Err(e) => Err(e.to_string()),
    }
}

struct Setup {
    /// True for a game created just now: it has no episodes yet, so there is
    /// nothing to count in the database before the first one.
    fresh: bool,
    game_id: i64,
    generation: u64,
    scene_index: usize,
    participant_id: i64,
    started_us: i64,
}

/// How a game task ended.
enum GameExit {
    Finished,
    Failed(String),
    Shutdown,
    Retired,
}

/// How an episode ended.
enum EpisodeExit {
    Complete {
        time_up: bool,
        total: f64,
    },
    /// A socket took the seat or left it; the episode was interrupted.
    SeatChanged(Option<Occupant>),
    Shutdown,
    Failed(String),
}

async fn run(
    state: AppState,
    setup: Setup,
    mut commands: mpsc::UnboundedReceiver<Command>,
    frames: FrameSender,
) {
    let Some(Scene::Game(scene)) = state.experiment.scenes.get(setup.scene_index) else {
        return;
    };
    let exit = match tandem_envs::make(&scene.env) {
        Ok(mut env) => play(&state, &setup, scene, env.as_mut(), &mut commands, &frames).await,
        Err(e) => GameExit::Failed(e.to_string()),
    };
    if !matches!(exit, GameExit::Retired) {
        state.games.remove(setup.game_id, setup.generation);
    }
    let game_id = setup.game_id;
    match exit {
        GameExit::Finished => {
            info!(
                game = game_id,
                participant = setup.participant_id,
                "game finished"
            );
            if let Err(e) = state.store.end_game(game_id, "finished").await {
                error!(game = game_id, cause = %e, "could not mark game finished");
            }
            let _ = flow::move_on(&state, setup.participant_id, setup.scene_index).await;
        }
        GameExit::Failed(reason) => {
            error!(game = game_id, reason, "game failed");
            let _ = state
                .store
                .record_event(
                    Some(setup.participant_id),
                    Some(game_id),
                    "game_failed",
                    json!({"reason": reason}),
                )
                .await;
            if let Err(e) = state
                .store
                .end_game(game_id, &format!("failed: {reason}"))
                .await
            {
                error!(game = game_id, cause = %e, "could not mark game failed");
            }
            if let Some(session) = state.session(setup.participant_id) {
                session.send(wire::error(
                    "game_failed",
                    "the game stopped because of an error; moving on",
                ));
            }
            let _ = flow::move_on(&state, setup.participant_id, setup.scene_index).await;
        }
        GameExit::Shutdown | GameExit::Retired => {}
    }
}

/// Plays episodes until the scene's episode count or time limit is reached.
async fn play(
    state: &AppState,
    setup: &Setup,
    scene: &GameScene,
    env: &mut dyn Env,
    commands: &mut mpsc::UnboundedReceiver<Command>,
    frames: &FrameSender,
) -> GameExit {
    let (mut done, mut next_index) = if setup.fresh {
        (0, 0)
    } else {
        // A resumed game: episode ends are written in batches, so commit any
        // still queued for it (a task that retired moments ago) before counting.
        // Waiting here is fine for a participant coming back, and only for them;
        // a new game must not wait behind the recorder's backlog.
        if let Err(e) = state.recorder.flush().await {
            return GameExit::Failed(format!("recorder: {e}"));
        }
        match (
            state.store.episodes_completed(setup.game_id).await,
            state.store.next_episode_index(setup.game_id).await,
        ) {
            (Ok(done), Ok(next)) => (done, next),
            (Err(e), _) | (_, Err(e)) => return GameExit::Failed(format!("database: {e}")),
        }
    };
    let deadline_us = scene
        .time_limit_s
        .map(|s| setup.started_us + i64::from(s) * 1_000_000);
    let mut shutdown = state.shutdown.clone();
    let mut occupant: Option<Occupant> = None;
    let mut tick = 0u64;
    let mut last_return = None;
    loop {
        let time_up = deadline_us.is_some_and(|d| now_us() >= d);
        if time_up || scene.episodes.is_some_and(|n| done >= n) {
            return GameExit::Finished;
        }
        let Some(seated) = occupant.take() else {
            tokio::select! {
                command = commands.recv() => match command {
                    Some(Command::Attach(o)) => occupant = Some(o),
                    Some(Command::Detach { .. }) => {}
                    None => return GameExit::Shutdown,
                },
                _ = stopped(&mut shutdown) => return GameExit::Shutdown,
                _ = tokio::time::sleep(IDLE_LIMIT) => {
                    if state.games.retire_if_idle(setup.game_id, setup.generation, commands) {
                        return GameExit::Retired;
                    }
                }
            }
            continue;
        };
        seated.send(status(
            scene,
            "playing",
            next_index,
            done,
            deadline_us,
            last_return,
        ));
        let ctx = EpisodeContext {
            state,
            scene,
            game_id: setup.game_id,
            index: next_index,
            deadline_us,
        };
        let exit = ctx
            .play_episode(env, &seated, commands, frames, &mut shutdown, &mut tick)
            .await;
        next_index += 1;
        match exit {
            EpisodeExit::Complete { time_up, total } => {
                done += 1;
                last_return = Some(total);
                let finished = time_up || scene.episodes.is_some_and(|n| done >= n);
                // Leave the episode's last frame on screen for one tick: the next
                // reset frame would otherwise replace it before any socket sent
                // it, and participants would never see the pole fall.
                if !finished {
                    tokio::time::sleep(tick_period(scene)).await;
                }
                let state_name = if finished { "ended" } else { "playing" };
                seated.send(status(
                    scene,
                    state_name,
                    next_index,
                    done,
                    deadline_us,
                    last_return,
                ));
                occupant = Some(seated);
            }
            EpisodeExit::SeatChanged(new) => {
                // Whoever sits next must not be shown the interrupted episode's
                // last frame as if it were the new one.
                frames.send_replace(None);
                occupant = new;
            }
            EpisodeExit::Shutdown => return GameExit::Shutdown,
            EpisodeExit::Failed(reason) => return GameExit::Failed(reason),
        }
    }
}

/// The time between two ticks of a scene's game.
fn tick_period(scene: &GameScene) -> Duration {
    Duration::from_secs_f64(1.0 / f64::from(scene.fps.max(1)))
}

/// The `game` status message for the heads-up display.
fn status(
    scene: &GameScene,
    status: &str,
    episode: u32,
    done: u32,
    deadline_us: Option<i64>,
    last_return: Option<f64>,
) -> serde_json::Value {
    let time_left = deadline_us.map(|d| ((d - now_us()).max(0) as f64) / 1e6);
    json!({
        "type": "game",
        "status": status,
        "episode": episode,
        "episodes_done": done,
        "episodes_total": scene.episodes,
        "time_left_s": time_left,
        "last_return": last_return,
    })
}

/// A seed for episode `index` of `game_id`: derived from the scene's base seed
/// when it has one (so a study's episodes are reproducible), else random. Either
/// way it is recorded with the episode.
fn episode_seed(base: Option<u64>, game_id: i64, index: u32) -> u64 {
    match base {
        Some(base) => tandem_experiment::episode_seed(base, game_id as u64, u64::from(index)),
        None => rand::random::<u64>() >> 1,
    }
}

struct EpisodeContext<'a> {
    state: &'a AppState,
    scene: &'a GameScene,
    game_id: i64,
    index: u32,
    deadline_us: Option<i64>,
}

impl EpisodeContext<'_> {
    async fn play_episode(
        &self,
        env: &mut dyn Env,
        occupant: &Occupant,
        commands: &mut mpsc::UnboundedReceiver<Command>,
        frames: &FrameSender,
        shutdown: &mut watch::Receiver<bool>,
        tick: &mut u64,
    ) -> EpisodeExit {
        let recorder = &self.state.recorder;
        let seed = episode_seed(self.scene.seed, self.game_id, self.index);
        let observations = match env.reset(seed) {
            Ok(o) => o,
            Err(e) => return EpisodeExit::Failed(format!("reset: {e}")),
        };
        let spec = env.spec().clone();
        let actor = format!("participant:{}", occupant.participant_id);
        let agents = spec
            .agents
            .iter()
            .zip(observations)
            .map(|(a, obs)| EpisodeAgent {
                agent_name: a.name.clone(),
                actor: actor.clone(),
                reset_obs: obs,
            })
            .collect();
        let started = EpisodeStart {
            game_id: self.game_id,
            idx: self.index,
            seed,
            env_id: spec.id.clone(),
            env_version: spec.version,
            started_us: now_us(),
            agents,
        };
        let episode_id = match recorder.start_episode(started).await {
            Ok(id) => id,
            Err(e) => return EpisodeExit::Failed(format!("recorder: {e}")),
        };
        let agent_count = spec.agents.len();
        let mut returns = vec![0.0; agent_count];
        let mut rewards = vec![0.0; agent_count];
        let mut acks = vec![None; agent_count];
        let max_steps = self.scene.max_steps.or(spec.max_episode_steps);
        let mut t: u32 = 0;
        self.publish(env, frames, tick, t, &acks, &rewards, &returns);

        let end = |outcome: Outcome, t: u32, returns: &[f64]| EpisodeEnd {
            ended_us: now_us(),
            steps: t,
            outcome,
            returns: returns.to_vec(),
        };
        let interrupted = |reason: &str| Outcome::Interrupted {
            reason: reason.to_string(),
        };

        let mut clock = tokio::time::interval(tick_period(self.scene));
        // A late tick is skipped, not made up in a burst: real time never turns
        // into fast-forward either.
        clock.set_missed_tick_behavior(MissedTickBehavior::Skip);
        clock.tick().await;
        loop {
            tokio::select! {
                biased;
                _ = stopped(shutdown) => {
                    // Queued: the recorder's final flush at shutdown writes it.
                    let _ = recorder.record_episode_end(episode_id, end(interrupted("server_shutdown"), t, &returns));
                    return EpisodeExit::Shutdown;
                }
                command = commands.recv() => {
                    let (reason, exit) = match command {
                        Some(Command::Attach(new)) => ("reconnected", EpisodeExit::SeatChanged(Some(new))),
                        Some(Command::Detach { connection }) if connection == occupant.connection => {
                            ("disconnected", EpisodeExit::SeatChanged(None))
                        }
                        Some(Command::Detach { .. }) => continue,
                        None => ("game_closed", EpisodeExit::Shutdown),
                    };
                    info!(game = self.game_id, episode = episode_id, reason, "episode interrupted");
                    // Queued behind the episode's steps, like every boundary: a
                    // crowd leaving at once must not queue up commits.
                    let _ = recorder.record_episode_end(episode_id, end(interrupted(reason), t, &returns));
                    recorder.record_event(
                        Some(occupant.participant_id), Some(self.game_id), reason,
                        json!({"episode": episode_id, "step": t}));
                    return exit;
                }
                _ = clock.tick() => {}
            }

            let input = lock(&occupant.input).clone();
            let resolved = self.scene.action_for(&input.keys);
            let step = match env.step(std::slice::from_ref(&resolved.action)) {
                Ok(step) => step,
                Err(e) => {
                    warn!(game = self.game_id, cause = %e, "environment step failed");
                    let _ = recorder
                        .record_episode_end(episode_id, end(interrupted("env_error"), t, &returns));
                    return EpisodeExit::Failed(format!("step: {e}"));
                }
            };
            t += 1;
            let server_us = now_us();
            let time_up = self.deadline_us.is_some_and(|d| server_us >= d);
            let capped = max_steps.is_some_and(|m| t >= m);
            let mut done = true;
            let mut agents = Vec::with_capacity(agent_count);
            for (i, obs) in step.observations.into_iter().enumerate() {
                let terminated = step.terminated.get(i).copied().unwrap_or(false);
                let truncated = step.truncated.get(i).copied().unwrap_or(false)
                    || ((time_up || capped) && !terminated);
                done &= terminated || truncated;
                let reward = step.rewards.get(i).copied().unwrap_or(0.0);
                rewards[i] = reward;
                returns[i] += reward;
                acks[i] = input.seq;
                agents.push(AgentStep {
                    action: resolved.action.clone(),
                    actor: actor.clone(),
                    source: if resolved.chord.is_some() {
                        ActionSource::Keys
                    } else {
                        ActionSource::Default
                    },
                    keys: resolved.chord.clone(),
                    reward,
                    terminated,
                    truncated,
                    obs,
                    input_seq: input.seq,
                    client_frame: input.frame,
                    client_ts: input.ts,
                });
            }
            self.state
                .steps_played
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            recorder.record_step(StepRecord {
                episode_id,
                t,
                server_us,
                agents,
            });
            self.publish(env, frames, tick, t, &acks, &rewards, &returns);
            if done {
                let total = returns.iter().sum();
                // Queued behind the steps, not awaited: a game never waits for the
                // disk between episodes.
                if let Err(e) =
                    recorder.record_episode_end(episode_id, end(Outcome::Complete, t, &returns))
                {
                    error!(game = self.game_id, cause = %e, "could not end episode");
                }
                return EpisodeExit::Complete { time_up, total };
            }
        }
    }

    /// Renders the environment and publishes the frame to every viewer.
    #[allow(clippy::too_many_arguments)]
    fn publish(
        &self,
        env: &dyn Env,
        frames: &FrameSender,
        tick: &mut u64,
        step: u32,
        acks: &[Option<u64>],
        rewards: &[f64],
        returns: &[f64],
    ) {
        *tick += 1;
        let content = match (env.render(), self.scene.render) {
            (Frame::Sprites(sprites), RenderMode::Sprites) => Ok(FrameContent::Sprites(sprites)),
            (Frame::Sprites(sprites), RenderMode::Pixels) => {
                let (width, height) = self.scene.canvas();
                let image = tandem_envs::rasterize(&sprites, width, height, [255, 255, 255]);
                png_content(&image)
            }
            (Frame::Pixels(image), _) => png_content(&image),
        };
        let content = match content {
            Ok(content) => content,
            Err(e) => {
                warn!(game = self.game_id, cause = %e, "could not encode a frame");
                return;
            }
        };
        frames.send_replace(Some(Arc::new(PublishedFrame {
            tick: *tick,
            episode: self.index,
            step,
            acks: acks.to_vec(),
            rewards: rewards.to_vec(),
            returns: returns.to_vec(),
            content,
        })));
    }
}

fn png_content(image: &tandem_env::Image) -> Result<FrameContent, png::EncodingError> {
    Ok(FrameContent::Png {
        width: image.width,
        height: image.height,
        png: encode_png(image)?,
    })
}
