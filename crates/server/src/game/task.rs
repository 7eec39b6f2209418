//! The game task: episodes, seats changing hands, and how a game ends.
//!
//! The task plays while at least one participant is connected and no seat is
//! waiting for a participant that nothing else can play for. A participant who
//! leaves is replaced by their seat's fallback within one tick; without one the
//! running episode is recorded as interrupted and the game pauses. A participant
//! back within the scene's grace period gets the seat back. After it, the
//! fallback keeps the seat and the participant moves on; with no fallback and
//! other people playing, the game ends for everyone with an explanation. A game
//! nobody is connected to stays paused (its task retires after [`IDLE_LIMIT`];
//! the game stays open and resumes when someone returns).
//!
//! Every change of who acts for a seat is a `seat_change` event; disconnects,
//! reconnects, expired grace periods and failed policies are events too, all
//! queued through the recorder behind the steps they follow.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use serde_json::{Value, json};
use tandem_env::{Env, Frame, Observation};
use tandem_experiment::{GameScene, RenderMode, Scene};
use tandem_store::{AgentStep, EpisodeAgent, EpisodeEnd, EpisodeStart, Game, Outcome, StepRecord};
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, MissedTickBehavior};
use tracing::{error, info, warn};

use super::seat::SeatRuntime;
use super::{Command, FrameSender, IDLE_LIMIT, Occupant};
use crate::flow;
use crate::frames::{FrameContent, PublishedFrame, encode_png};
use crate::session::Outgoing;
use crate::state::{AppState, now_us, stopped};
use crate::wire;

pub(crate) struct Setup {
    pub(crate) game: Game,
    pub(crate) generation: u64,
    /// True for a game created just now: it has no episodes yet, so there is
    /// nothing to count in the database before the first one.
    pub(crate) fresh: bool,
}

/// How a game task ended.
enum GameExit {
    Finished,
    /// Ended early for everyone: `reason` is stored, `notice` shown.
    EndedEarly {
        reason: String,
        code: &'static str,
        notice: String,
    },
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
    /// The game cannot go on playing now (a participant left with no fallback,
    /// or nobody is connected); the episode was interrupted.
    Paused,
    Ended(GameExit),
}

pub(crate) async fn run(
    state: AppState,
    setup: Setup,
    commands: mpsc::UnboundedReceiver<Command>,
    frames: FrameSender,
) {
    let scene_index = setup.game.scene_index as usize;
    let Some(Scene::Game(scene)) = state.experiment.scenes.get(scene_index) else {
        return;
    };
    let game_id = setup.game.id;
    let seats: Result<Vec<SeatRuntime>, String> = scene
        .seats
        .iter()
        .map(|config| {
            let participant = setup
                .game
                .seats
                .iter()
                .find(|s| s.agent as usize == config.agent)
                .and_then(|s| s.participant_id);
            SeatRuntime::new(config, participant, &state.policies, &scene.env_spec)
        })
        .collect();
    let env = tandem_envs::make(&scene.env).map_err(|e| e.to_string());
    let participants: Vec<i64> = setup
        .game
        .seats
        .iter()
        .filter_map(|s| s.participant_id)
        .collect();
    // The command receiver lives until the game leaves the registry, so that a
    // socket attaching meanwhile reaches this (ending) task instead of making
    // `start` think the task died and start another for the same game.
    let (exit, seats, _commands) = match (seats, env) {
        (Ok(seats), Ok(env)) => {
            let mut task = GameTask {
                deadline_us: scene
                    .time_limit_s
                    .map(|s| setup.game.started_us + i64::from(s) * 1_000_000),
                shutdown: state.shutdown.clone(),
                state: &state,
                scene,
                game_id,
                generation: setup.generation,
                scene_index,
                seats,
                env,
                commands,
                frames,
                tick: 0,
                idle_since: Instant::now(),
                obs: Vec::new(),
            };
            // A panic in an environment or a policy ends this game as failed
            // (players told and moved on), never the server or other games.
            let exit = match AssertUnwindSafe(task.play(setup.fresh))
                .catch_unwind()
                .await
            {
                Ok(exit) => exit,
                Err(panic) => GameExit::Failed(format!("panicked: {}", panic_message(&panic))),
            };
            (exit, task.seats, task.commands)
        }
        (Err(e), _) | (_, Err(e)) => (GameExit::Failed(e), Vec::new(), commands),
    };
    // Participants who forfeited their seat have moved on already.
    let staying: Vec<i64> = if seats.is_empty() {
        participants
    } else {
        seats
            .iter()
            .filter(|s| s.is_awaited())
            .filter_map(|s| s.participant_id)
            .collect()
    };
    let (reason, notice) = match exit {
        GameExit::Retired => return,
        GameExit::Shutdown => {
            state.games.remove(game_id, setup.generation);
            return;
        }
        GameExit::Finished => {
            info!(game = game_id, "game finished");
            ("finished".to_string(), None)
        }
        GameExit::Failed(reason) => {
            error!(game = game_id, reason, "game failed");
            state.recorder.record_event(
                None,
                Some(game_id),
                "game_failed",
                json!({"reason": reason}),
            );
            let notice = wire::error(
                "game_failed",
                "the game stopped because of an error; moving on",
            );
            (format!("failed: {reason}"), Some(notice))
        }
        GameExit::EndedEarly {
            reason,
            code,
            notice,
        } => {
            info!(game = game_id, reason, "game ended early");
            state.recorder.record_event(
                None,
                Some(game_id),
                "game_ended_early",
                json!({"reason": reason}),
            );
            (reason, Some(wire::notice(code, &notice)))
        }
    };
    // Everyone moves on before the game is marked ended and leaves the
    // registry: until then a reconnect finds this game (and is ignored by it)
    // rather than no game, which in a multiplayer scene would mean the lobby.
    for participant in staying {
        if let (Some(notice), Some(session)) = (&notice, state.session(participant)) {
            session.send(notice.clone());
        }
        let _ = flow::move_on(&state, participant, scene_index).await;
    }
    if let Err(e) = state.store.end_game(game_id, &reason).await {
        error!(game = game_id, cause = %e, "could not mark game ended");
    }
    state.games.remove(game_id, setup.generation);
}

/// The message of a caught panic, when it has one.
fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".to_string())
}

struct GameTask<'a> {
    state: &'a AppState,
    scene: &'a GameScene,
    game_id: i64,
    generation: u64,
    scene_index: usize,
    seats: Vec<SeatRuntime>,
    env: Box<dyn Env>,
    commands: mpsc::UnboundedReceiver<Command>,
    frames: FrameSender,
    shutdown: watch::Receiver<bool>,
    deadline_us: Option<i64>,
    tick: u64,
    /// Since when no socket has been attached.
    idle_since: Instant,
    /// Each agent's latest observation, what its policies act on.
    obs: Vec<Observation>,
}

/// Where in the game a seat change happened, for its event.
#[derive(Clone, Copy)]
struct At {
    episode_id: Option<i64>,
    step: u32,
}

const BETWEEN_EPISODES: At = At {
    episode_id: None,
    step: 0,
};

impl GameTask<'_> {
    /// Plays episodes until the scene's episode count or time limit is reached.
    async fn play(&mut self, fresh: bool) -> GameExit {
        let (mut done, mut next_index) = if fresh {
            (0, 0)
        } else {
            // A resumed game: episode ends are written in batches, so commit any
            // still queued for it (a task that retired moments ago) before
            // counting. Only a game coming back waits here, never a new one.
            if let Err(e) = self.state.recorder.flush().await {
                return GameExit::Failed(format!("recorder: {e}"));
            }
            let store = &self.state.store;
            match (
                store.episodes_completed(self.game_id).await,
                store.next_episode_index(self.game_id).await,
            ) {
                (Ok(done), Ok(next)) => (done, next),
                (Err(e), _) | (_, Err(e)) => return GameExit::Failed(format!("database: {e}")),
            }
        };
        let mut last_return = None;
        let mut waiting_shown = false;
        loop {
            let time_up = self.deadline_us.is_some_and(|d| now_us() >= d);
            if time_up || self.scene.episodes.is_some_and(|n| done >= n) {
                return GameExit::Finished;
            }
            while let Ok(command) = self.commands.try_recv() {
                self.apply(command, BETWEEN_EPISODES);
            }
            if let Some(exit) = self.check_grace(BETWEEN_EPISODES) {
                return exit;
            }
            if !self.is_ready() {
                if !waiting_shown {
                    self.broadcast(self.status("waiting", next_index, done, last_return));
                    waiting_shown = true;
                }
                let wake = self.next_wake();
                tokio::select! {
                    command = self.commands.recv() => match command {
                        Some(command) => self.apply(command, BETWEEN_EPISODES),
                        None => return GameExit::Shutdown,
                    },
                    _ = stopped(&mut self.shutdown) => return GameExit::Shutdown,
                    _ = tokio::time::sleep_until(wake) => {
                        let nobody = self.seats.iter().all(|s| s.occupant.is_none());
                        if nobody
                            && self.idle_since.elapsed() >= IDLE_LIMIT
                            && self.state.games.retire_if_idle(self.game_id, self.generation, &mut self.commands)
                        {
                            return GameExit::Retired;
                        }
                    }
                }
                continue;
            }
            waiting_shown = false;
            self.broadcast(self.status("playing", next_index, done, last_return));
            let exit = self.play_episode(next_index).await;
            next_index += 1;
            match exit {
                EpisodeExit::Complete { time_up, total } => {
                    done += 1;
                    last_return = Some(total);
                    let finished = time_up || self.scene.episodes.is_some_and(|n| done >= n);
                    // Leave the episode's last frame on screen for one tick: the
                    // next reset frame would otherwise replace it before any
                    // socket sent it, and nobody would see the pole fall.
                    if !finished {
                        tokio::time::sleep(tick_period(self.scene)).await;
                    }
                    let name = if finished { "ended" } else { "playing" };
                    self.broadcast(self.status(name, next_index, done, last_return));
                }
                EpisodeExit::Paused => {
                    // Whoever plays next must not be shown the interrupted
                    // episode's last frame as if it were the new one.
                    self.frames.send_replace(None);
                }
                EpisodeExit::Ended(exit) => return exit,
            }
        }
    }

    /// Whether the game can play now: someone is connected, and every seat has
    /// someone or something to play it.
    fn is_ready(&self) -> bool {
        self.seats.iter().any(|s| s.present().is_some())
            && !self.seats.iter().any(SeatRuntime::blocks_play)
    }

    /// When a paused game must look again: the first grace period to expire,
    /// the time limit, or the idle limit.
    fn next_wake(&self) -> Instant {
        let grace = self.grace();
        let mut wake = self.idle_since + IDLE_LIMIT;
        for seat in &self.seats {
            if let (true, None, Some(since)) = (seat.is_awaited(), &seat.occupant, seat.away_since)
            {
                wake = wake.min(since + grace);
            }
        }
        if let Some(deadline) = self.deadline_us {
            let left = Duration::from_micros((deadline - now_us()).max(0) as u64);
            wake = wake.min(Instant::now() + left);
        }
        // Never spin: a deadline already passed is handled by the caller's loop.
        wake.max(Instant::now() + Duration::from_millis(10))
    }

    /// Applies an attach or detach.
    fn apply(&mut self, command: Command, at: At) {
        match command {
            Command::Attach(occupant) => self.attach(occupant, at),
            Command::Detach {
                participant_id,
                connection,
            } => self.detach(participant_id, connection, at),
        }
    }

    fn attach(&mut self, occupant: Occupant, at: At) {
        let participant = occupant.participant_id;
        let Some(index) = self
            .seats
            .iter()
            .position(|s| s.participant_id == Some(participant) && s.is_awaited())
        else {
            // No longer seated here: their seat went to its fallback for good.
            // Moving them on (again: it is guarded) shows them the next scene
            // even if the first move was lost.
            let _ = occupant.out.send(Outgoing::Unwatch);
            if self
                .seats
                .iter()
                .any(|s| s.participant_id == Some(participant))
            {
                self.move_on_later(participant);
            }
            return;
        };
        let first_join = self.tick == 0 && !self.seats[index].attached_once;
        let seat = &mut self.seats[index];
        let returning = seat.occupant.is_none();
        let before = seat.actor();
        seat.occupant = Some(occupant);
        seat.away_since = None;
        seat.attached_once = true;
        // Arriving before anything was played is joining, not a seat change.
        if returning && !first_join {
            let after = seat.actor();
            let name = seat.name().to_string();
            self.event(
                Some(participant),
                "reconnected",
                json!({"agent": index, "agent_name": name}),
                at,
            );
            self.seat_change(index, &before, &after, "participant_joined", at);
            self.notify_others(index, "partner_back", &format!("{name}'s player is back."));
        }
        let seat = &self.seats[index];
        if let Some(o) = seat.present() {
            o.send(wire::seat(seat.config.client_json(), self.others(index)));
        }
    }

    fn detach(&mut self, participant_id: i64, connection: u64, at: At) {
        let Some(index) = self.seats.iter().position(|s| {
            s.participant_id == Some(participant_id)
                && s.occupant
                    .as_ref()
                    .is_some_and(|o| o.connection == connection)
        }) else {
            return; // an old socket closing after a newer one took the seat
        };
        if self.state.is_shutting_down() {
            // Sockets close because the server stops, not because anyone left:
            // nothing to record or tell, and the game stops right after.
            self.seats[index].occupant = None;
            return;
        }
        let grace = self.scene.reconnect_grace_s;
        let seat = &mut self.seats[index];
        let before = seat.actor();
        seat.occupant = None;
        seat.away_since = Some(Instant::now());
        let after = seat.actor();
        let has_fallback = seat.has_fallback();
        let name = seat.name().to_string();
        if self.seats.iter().all(|s| s.occupant.is_none()) {
            self.idle_since = Instant::now();
        }
        self.event(
            Some(participant_id),
            "disconnected",
            json!({"agent": index, "agent_name": name, "grace_s": grace}),
            at,
        );
        if before != after {
            self.seat_change(index, &before, &after, "takeover", at);
        }
        let text = if has_fallback {
            format!("{name}'s player left; an AI plays for them until they return.")
        } else {
            format!("{name}'s player disconnected; waiting up to {grace} s for them to return.")
        };
        self.notify_others(index, "partner_left", &text);
    }

    /// Moves a participant who no longer plays here past this scene, without
    /// the tick waiting for the database.
    fn move_on_later(&self, participant: i64) {
        let state = self.state.clone();
        let scene_index = self.scene_index;
        tokio::spawn(async move {
            let _ = flow::move_on(&state, participant, scene_index).await;
        });
    }

    /// How long a participant who left may take to come back.
    fn grace(&self) -> Duration {
        Duration::from_secs(u64::from(self.scene.reconnect_grace_s))
    }

    /// Ends grace periods that ran out. Returns how the game ends, if it must.
    fn check_grace(&mut self, at: At) -> Option<GameExit> {
        let grace = self.grace();
        let expired: Vec<usize> = self
            .seats
            .iter()
            .enumerate()
            .filter(|(_, s)| {
                s.is_awaited()
                    && s.occupant.is_none()
                    && s.away_since.is_some_and(|t| t.elapsed() >= grace)
            })
            .map(|(i, _)| i)
            .collect();
        for index in expired {
            let seat = &self.seats[index];
            let name = seat.name().to_string();
            let participant = seat.participant_id;
            if seat.has_fallback() {
                self.seats[index].forfeited = true;
                self.event(
                    participant,
                    "grace_expired",
                    json!({"agent": index, "agent_name": name, "seat": "fallback"}),
                    at,
                );
                self.notify_others(
                    index,
                    "partner_gone",
                    &format!("{name}'s player did not come back; the AI keeps playing for them."),
                );
                if let Some(participant) = participant {
                    // They are gone for good: when they return, the flow shows
                    // them the next scene instead of this game.
                    self.move_on_later(participant);
                }
            } else if self.seats.iter().any(|s| s.present().is_some()) {
                self.event(
                    participant,
                    "grace_expired",
                    json!({"agent": index, "agent_name": name, "seat": "empty"}),
                    at,
                );
                return Some(GameExit::EndedEarly {
                    reason: format!("participant_left: {name}"),
                    code: "partner_did_not_return",
                    notice: format!(
                        "{name}'s player left and did not come back, so this game has ended. \
                         Thank you for playing; the study continues."
                    ),
                });
            }
        }
        if !self.seats.iter().any(SeatRuntime::is_awaited) {
            return Some(GameExit::EndedEarly {
                reason: "abandoned".to_string(),
                code: "abandoned",
                notice: "Every player left, so this game has ended.".to_string(),
            });
        }
        None
    }

    /// The other seats, as the `seat` message describes them.
    fn others(&self, index: usize) -> Vec<Value> {
        self.seats
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != index)
            .map(|(_, s)| {
                json!({
                    "agent": s.agent(),
                    "agent_name": s.name(),
                    "human": s.is_awaited(),
                    "actor": s.actor(),
                })
            })
            .collect()
    }

    fn notify_others(&self, index: usize, code: &str, text: &str) {
        for (i, seat) in self.seats.iter().enumerate() {
            if i != index
                && let Some(o) = seat.present()
            {
                o.send(wire::notice(code, text));
            }
        }
    }

    fn broadcast(&self, message: Value) {
        for seat in &self.seats {
            if let Some(o) = seat.present() {
                o.send(message.clone());
            }
        }
    }

    fn event(&self, participant: Option<i64>, kind: &str, mut detail: Value, at: At) {
        if let Some(object) = detail.as_object_mut() {
            object.insert("episode".into(), json!(at.episode_id));
            object.insert("step".into(), json!(at.step));
        }
        self.state
            .recorder
            .record_event(participant, Some(self.game_id), kind, detail);
    }

    fn seat_change(&self, index: usize, from: &str, to: &str, reason: &str, at: At) {
        if from == to {
            return;
        }
        let participant = self.seats[index].participant_id;
        self.event(
            participant,
            "seat_change",
            json!({
                "agent": index,
                "agent_name": self.seats[index].name(),
                "from": from,
                "to": to,
                "reason": reason,
            }),
            at,
        );
    }

    /// The `game` status message for the heads-up display.
    fn status(&self, status: &str, episode: u32, done: u32, last_return: Option<f64>) -> Value {
        let time_left = self
            .deadline_us
            .map(|d| ((d - now_us()).max(0) as f64) / 1e6);
        json!({
            "type": "game",
            "status": status,
            "episode": episode,
            "episodes_done": done,
            "episodes_total": self.scene.episodes,
            "time_left_s": time_left,
            "last_return": last_return,
        })
    }

    async fn play_episode(&mut self, index: u32) -> EpisodeExit {
        let recorder = self.state.recorder.clone();
        let seed = episode_seed(self.scene.seed, self.game_id, index);
        let observations = match self.env.reset(seed) {
            Ok(o) => o,
            Err(e) => return EpisodeExit::Ended(GameExit::Failed(format!("reset: {e}"))),
        };
        for seat in &mut self.seats {
            seat.reset(seed);
        }
        let spec = self.env.spec().clone();
        let agents = spec
            .agents
            .iter()
            .zip(&observations)
            .zip(&self.seats)
            .map(|((a, obs), seat)| EpisodeAgent {
                agent_name: a.name.clone(),
                actor: seat.actor(),
                reset_obs: obs.clone(),
            })
            .collect();
        self.obs = observations;
        let started = EpisodeStart {
            game_id: self.game_id,
            idx: index,
            seed,
            env_id: spec.id.clone(),
            env_version: spec.version,
            started_us: now_us(),
            agents,
        };
        let episode_id = match recorder.start_episode(started).await {
            Ok(id) => id,
            Err(e) => return EpisodeExit::Ended(GameExit::Failed(format!("recorder: {e}"))),
        };
        let agent_count = spec.agents.len();
        let mut returns = vec![0.0; agent_count];
        let mut rewards = vec![0.0; agent_count];
        let mut acks = vec![None; agent_count];
        let max_steps = self.scene.max_steps.or(spec.max_episode_steps);
        let mut t: u32 = 0;
        self.publish(index, t, &acks, &rewards, &returns);

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
            let at = At {
                episode_id: Some(episode_id),
                step: t,
            };
            tokio::select! {
                biased;
                _ = stopped(&mut self.shutdown) => {
                    // Queued: the recorder's final flush at shutdown writes it.
                    let _ = recorder.record_episode_end(episode_id, end(interrupted("server_shutdown"), t, &returns));
                    return EpisodeExit::Ended(GameExit::Shutdown);
                }
                command = self.commands.recv() => {
                    let Some(command) = command else {
                        let _ = recorder.record_episode_end(episode_id, end(interrupted("game_closed"), t, &returns));
                        return EpisodeExit::Ended(GameExit::Shutdown);
                    };
                    self.apply(command, at);
                    if self.state.is_shutting_down() {
                        let _ = recorder.record_episode_end(episode_id, end(interrupted("server_shutdown"), t, &returns));
                        return EpisodeExit::Ended(GameExit::Shutdown);
                    }
                    if !self.is_ready() {
                        info!(game = self.game_id, episode = episode_id, "episode interrupted: a seat has nobody to play it");
                        // Queued behind the episode's steps, like every
                        // boundary: a crowd leaving at once must not queue
                        // up commits.
                        let _ = recorder.record_episode_end(episode_id, end(interrupted("disconnected"), t, &returns));
                        return EpisodeExit::Paused;
                    }
                    continue;
                }
                _ = clock.tick() => {}
            }
            if let Some(exit) = self.check_grace(at) {
                let _ = recorder.record_episode_end(
                    episode_id,
                    end(interrupted("game_ended_early"), t, &returns),
                );
                return EpisodeExit::Ended(exit);
            }

            let mut choices = Vec::with_capacity(agent_count);
            for index in 0..self.seats.len() {
                let agent = self.seats[index].agent();
                let choice = match self.obs.get(agent) {
                    Some(obs) => self.seats[index].choose(obs),
                    None => Err(format!("no observation for agent {agent}")),
                };
                let choice = match choice {
                    Ok(choice) => choice,
                    Err(reason) => {
                        warn!(game = self.game_id, reason, "a seat could not act");
                        self.event(
                            None,
                            "policy_failed",
                            json!({"agent": agent, "reason": reason, "replaced_by": null}),
                            at,
                        );
                        let _ = recorder.record_episode_end(
                            episode_id,
                            end(interrupted("policy_failed"), t, &returns),
                        );
                        return EpisodeExit::Ended(GameExit::EndedEarly {
                            reason: format!("policy_failed: {reason}"),
                            code: "policy_failed",
                            notice:
                                "An AI player in this game stopped working, so the game has ended. \
                                     Thank you for playing; the study continues."
                                    .to_string(),
                        });
                    }
                };
                if let Some((policy, reason)) = &choice.replaced {
                    warn!(
                        game = self.game_id,
                        policy, reason, "a policy failed; its fallback takes over"
                    );
                    self.event(None, "policy_failed", json!({"agent": agent, "policy": policy, "reason": reason, "replaced_by": choice.actor}), at);
                    self.seat_change(
                        index,
                        &format!("policy:{policy}"),
                        &choice.actor,
                        "policy_failed",
                        at,
                    );
                }
                choices.push(choice);
            }
            let actions: Vec<_> = choices.iter().map(|c| c.action.clone()).collect();
            let step = match self.env.step(&actions) {
                Ok(step) => step,
                Err(e) => {
                    warn!(game = self.game_id, cause = %e, "environment step failed");
                    let _ = recorder
                        .record_episode_end(episode_id, end(interrupted("env_error"), t, &returns));
                    return EpisodeExit::Ended(GameExit::Failed(format!("step: {e}")));
                }
            };
            t += 1;
            let server_us = now_us();
            let time_up = self.deadline_us.is_some_and(|d| server_us >= d);
            let capped = max_steps.is_some_and(|m| t >= m);
            let mut done = true;
            let mut agents = Vec::with_capacity(agent_count);
            for ((i, obs), choice) in step.observations.into_iter().enumerate().zip(choices) {
                let terminated = step.terminated.get(i).copied().unwrap_or(false);
                let truncated = step.truncated.get(i).copied().unwrap_or(false)
                    || ((time_up || capped) && !terminated);
                done &= terminated || truncated;
                let reward = step.rewards.get(i).copied().unwrap_or(0.0);
                rewards[i] = reward;
                returns[i] += reward;
                if choice.input_seq.is_some() {
                    acks[i] = choice.input_seq;
                }
                if let Some(slot) = self.obs.get_mut(i) {
                    *slot = obs.clone();
                }
                agents.push(AgentStep {
                    action: choice.action,
                    actor: choice.actor,
                    source: choice.source,
                    keys: choice.keys,
                    reward,
                    terminated,
                    truncated,
                    obs,
                    input_seq: choice.input_seq,
                    client_frame: choice.client_frame,
                    client_ts: choice.client_ts,
                    feedback: choice.feedback,
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
            self.publish(index, t, &acks, &rewards, &returns);
            if done {
                let total = returns.iter().sum();
                // Queued behind the steps, not awaited: a game never waits for
                // the disk between episodes.
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
    fn publish(
        &mut self,
        episode: u32,
        step: u32,
        acks: &[Option<u64>],
        rewards: &[f64],
        returns: &[f64],
    ) {
        self.tick += 1;
        let content = match (self.env.render(), self.scene.render) {
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
        self.frames.send_replace(Some(Arc::new(PublishedFrame {
            tick: self.tick,
            episode,
            step,
            acks: acks.to_vec(),
            rewards: rewards.to_vec(),
            returns: returns.to_vec(),
            content,
        })));
    }
}

/// The time between two ticks of a scene's game.
fn tick_period(scene: &GameScene) -> Duration {
    Duration::from_secs_f64(1.0 / f64::from(scene.fps.max(1)))
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

fn png_content(image: &tandem_env::Image) -> Result<FrameContent, png::EncodingError> {
    Ok(FrameContent::Png {
        width: image.width,
        height: image.height,
        png: encode_png(image)?,
    })
}
