//! A game task's life: set up seats and the environment, play (see
//! `episode`), and report how the game ended.
//!
//! A panic in an environment or a policy ends this game as failed (players
//! told and moved on by the flow), never the server or other games. A task
//! stops without a report when the server shuts down (running episodes are
//! recorded as interrupted) or when placement retires it for being idle (the
//! game stays open and starts again when someone returns).

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures::FutureExt;
use serde_json::{Value, json};
use tandem_env::Observation;
use tandem_experiment::{GameScene, Scene};
use tandem_wire::{ErrorCode, NoticeCode, ServerMessage};
use tokio::sync::{mpsc, watch};
use tracing::{error, info};

use super::env_host::EnvRunner;
use super::exit::{GameExit, panic_message};
use super::publish::Publisher;
use super::roster::Roster;
use super::seat::SeatRuntime;
use super::{Command, GameContext, GameError, GameReport, Setup};
use crate::frames::FrameSender;

/// Where in the game something happened, for its event.
#[derive(Clone, Copy)]
pub(super) struct At {
    pub(super) episode_id: Option<i64>,
    pub(super) step: u32,
}

pub(super) const BETWEEN_EPISODES: At = At {
    episode_id: None,
    step: 0,
};

/// One running game.
pub(super) struct GameTask<'a> {
    pub(super) context: &'a GameContext,
    pub(super) scene: &'a GameScene,
    pub(super) game_id: i64,
    pub(super) generation: u64,
    pub(super) scene_index: usize,
    pub(super) roster: Roster,
    pub(super) env: EnvRunner,
    pub(super) commands: mpsc::UnboundedReceiver<Command>,
    pub(super) publisher: Publisher,
    pub(super) shutdown: watch::Receiver<bool>,
    pub(super) deadline_us: Option<i64>,
    /// Each agent's latest observation, what its policies act on.
    pub(super) obs: Vec<Observation>,
    /// Why a researcher ended the game, once they have: the episode loop
    /// stops at its next look.
    pub(super) end_requested: Option<String>,
}

pub(super) async fn run(
    context: Arc<GameContext>,
    setup: Setup,
    commands: mpsc::UnboundedReceiver<Command>,
    frames: FrameSender,
) {
    let game_id = setup.game.id;
    let scene_index = setup.game.scene_index as usize;
    let seated: Vec<i64> = setup
        .game
        .seats
        .iter()
        .filter_map(|s| s.participant_id)
        .collect();
    // Setting up runs user code too (environment and policy factories), so
    // it is inside the catch: every way out of this task but shutdown and
    // retirement ends in a report, and nobody is left seated in a game that
    // no task runs.
    let played = AssertUnwindSafe(async {
        match GameTask::new(&context, &setup, commands, frames) {
            Ok(mut task) => {
                let exit = task.play(setup.fresh).await;
                (exit, task.roster.staying())
            }
            Err(e) => (GameExit::Failed(e), seated.clone()),
        }
    })
    .catch_unwind()
    .await;
    let (exit, staying) = match played {
        Ok(played) => played,
        Err(panic) => (
            GameExit::Failed(GameError::Panicked(panic_message(&panic))),
            seated,
        ),
    };
    let event = |kind: &str, detail: Value| {
        context
            .recorder
            .record_event(None, Some(game_id), kind, detail);
    };
    let (reason, notice) = match exit {
        GameExit::Retired | GameExit::Shutdown => return,
        GameExit::Finished => {
            info!(game = game_id, "game finished");
            ("finished".to_string(), None)
        }
        GameExit::Failed(cause) => {
            error!(game = game_id, %cause, "game failed");
            event("game_failed", json!({"reason": cause.to_string()}));
            let notice = ServerMessage::error(
                ErrorCode::GameFailed,
                "the game stopped because of an error; moving on",
            );
            (format!("failed: {cause}"), Some(Box::new(notice)))
        }
        GameExit::EndedEarly {
            reason,
            code,
            notice,
        } => {
            info!(game = game_id, reason, "game ended early");
            event("game_ended_early", json!({"reason": reason}));
            (reason, Some(Box::new(ServerMessage::notice(code, notice))))
        }
    };
    let _ = context.reports.send(GameReport::Ended {
        game_id,
        generation: setup.generation,
        scene_index,
        staying,
        reason,
        notice,
    });
}

impl<'a> GameTask<'a> {
    fn new(
        context: &'a GameContext,
        setup: &Setup,
        commands: mpsc::UnboundedReceiver<Command>,
        frames: FrameSender,
    ) -> Result<GameTask<'a>, GameError> {
        let scene_index = setup.game.scene_index as usize;
        let Some(Scene::Game(scene)) = context.experiment.scenes.get(scene_index) else {
            return Err(GameError::NotAGameScene(scene_index));
        };
        let seats = scene
            .seats
            .iter()
            .map(|config| {
                let participant = setup
                    .game
                    .seats
                    .iter()
                    .find(|s| s.agent as usize == config.agent)
                    .and_then(|s| s.participant_id);
                SeatRuntime::new(config, participant, &context.policies, &scene.env_spec)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let env = EnvRunner::make(&context.envs, &scene.env)?;
        Ok(GameTask {
            context,
            scene,
            game_id: setup.game.id,
            generation: setup.generation,
            scene_index,
            roster: Roster::new(seats, scene.reconnect_grace_s, frames.subscribe()),
            env,
            commands,
            publisher: Publisher::new(frames, scene, setup.game.id),
            shutdown: context.shutdown.clone(),
            deadline_us: scene
                .time_limit_s
                .map(|s| setup.game.started_us + i64::from(s) * 1_000_000),
            obs: Vec::new(),
            end_requested: None,
        })
    }

    /// Applies an attach or detach, then hands on what it caused.
    pub(super) fn apply(&mut self, command: Command, at: At) {
        match command {
            Command::Attach(socket) => {
                let before_play = self.publisher.tick() == 0;
                self.roster.attach(socket, before_play);
            }
            Command::Detach {
                participant_id,
                connection,
            } => {
                let stopping = self.is_stopping();
                self.roster.detach(participant_id, connection, stopping);
            }
            Command::End { reason } => {
                info!(game = self.game_id, reason, "a researcher ended the game");
                self.event(
                    None,
                    "game_ended_by_researcher",
                    json!({"reason": reason}),
                    at,
                );
                self.end_requested = Some(reason);
            }
        }
        self.hand_on(at);
    }

    /// Ends grace periods that ran out, and hands on what that caused.
    pub(super) fn expire_grace(&mut self, at: At) -> Option<GameExit> {
        let exit = self.roster.expire_grace();
        self.hand_on(at);
        exit
    }

    /// Records the roster's events and reports its forfeits. Events are
    /// queued through the recorder behind the steps they follow.
    fn hand_on(&mut self, at: At) {
        for e in self.roster.take_events() {
            self.event(e.participant, e.kind, e.detail, at);
        }
        for participant_id in self.roster.take_forfeits() {
            let _ = self.context.reports.send(GameReport::Forfeited {
                game_id: self.game_id,
                scene_index: self.scene_index,
                participant_id,
            });
        }
    }

    pub(super) fn event(&self, participant: Option<i64>, kind: &str, mut detail: Value, at: At) {
        if let Some(object) = detail.as_object_mut() {
            object.insert("episode".into(), json!(at.episode_id));
            object.insert("step".into(), json!(at.step));
        }
        self.context
            .recorder
            .record_event(participant, Some(self.game_id), kind, detail);
    }

    pub(super) fn is_stopping(&self) -> bool {
        *self.shutdown.borrow()
    }

    /// How the game ends when a researcher ended it: the reason its running
    /// episode and the game are recorded with, and the exit.
    pub(super) fn ended_by_researcher(&mut self) -> Option<(String, GameExit)> {
        let reason = format!("ended_by_researcher: {}", self.end_requested.take()?);
        let exit = GameExit::EndedEarly {
            reason: reason.clone(),
            code: NoticeCode::EndedByResearcher,
            notice: "The researchers ended this game. Moving on.".to_string(),
        };
        Some((reason, exit))
    }

    /// Why the command channel closed: the server stops, or placement retired
    /// this task.
    pub(super) fn closed(&self) -> GameExit {
        if self.is_stopping() {
            GameExit::Shutdown
        } else {
            GameExit::Retired
        }
    }
}
