//! Running games: one task per game, ticking at the scene's rate.
//!
//! A game task owns its environment and one seat per agent. Each tick every
//! seat chooses an action (a participant's keys, a policy, or a fallback
//! policy standing in), the environment steps, the step goes to the recorder,
//! and the new frame is published into a `watch` channel every seated socket
//! streams from. Nothing in a tick waits for a browser or the database.
//!
//! A task is handed narrow handles ([`GameContext`]), never the server's whole
//! state, and it does not decide where anyone goes: it takes [`Command`]s
//! (sockets attaching and detaching) from placement and reports outcomes
//! ([`GameReport`]: the game ended and how, a seat was forfeited, the game is
//! idle) to the flow, which moves participants on. So arrows point one way.
//!
//! Layout:
//! - `task`: the task's life: setup, catching panics, the report at its end.
//! - `episode`: the episode loop: clock, choices, step, record.
//! - `roster`: who sits where: attach, detach, grace periods, notices, events.
//! - `publish`: rendering, encoding and fanning out frames; status messages.
//! - `seat`: one agent's seat and how it chooses an action.
//! - `env_host`: stepping an environment inline, or on its own thread when it
//!   may be slow or block.
//! - `exit`: how a task ends (`GameExit`), and a caught panic's message.
//! - `error`: [`GameError`].

mod env_host;
mod episode;
mod error;
mod exit;
mod policy_host;
mod publish;
mod roster;
mod seat;
mod task;

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use tandem_envs::Catalog;
use tandem_experiment::{Experiment, GameScene, SeatRole};
use tandem_policy::Registry;
use tandem_store::{Game, NewGame, Recorder, Seat, Store};
use tandem_wire::ServerMessage;
use tokio::sync::{mpsc, watch};
use tokio_util::task::TaskTracker;

use crate::connection::Connection;
use crate::frames::FrameSender;

pub use error::GameError;

/// How long a game with nobody connected waits before its task retires.
pub const IDLE_LIMIT: Duration = Duration::from_secs(600);

/// What placement tells a game task.
pub enum Command {
    /// A participant's socket takes their seat (first join, reconnect, second tab).
    Attach(Connection),
    /// The socket `connection` of `participant_id` closed.
    Detach {
        participant_id: i64,
        connection: u64,
    },
    /// A researcher ended the game from the console: its running episode is
    /// recorded as interrupted with `reason`, and everyone moves on.
    End { reason: String },
}

/// What a game task tells the flow.
#[derive(Debug)]
pub enum GameReport {
    /// The game is over for everyone. `staying` are the participants still
    /// seated in it, who now move past its scene, after seeing `notice`.
    Ended {
        game_id: i64,
        generation: u64,
        scene_index: usize,
        staying: Vec<i64>,
        /// Stored as the game's end reason.
        reason: String,
        notice: Option<Box<ServerMessage>>,
    },
    /// A participant stayed away past the grace period and their seat's
    /// fallback keeps it: they move past the game's scene now.
    Forfeited {
        game_id: i64,
        scene_index: usize,
        participant_id: i64,
    },
    /// Nobody has been connected for [`IDLE_LIMIT`]: the task may retire.
    Idle { game_id: i64, generation: u64 },
}

/// The handles every game task gets.
pub struct GameContext {
    pub experiment: Arc<Experiment>,
    pub store: Store,
    pub recorder: Recorder,
    pub policies: Registry,
    pub envs: Catalog,
    pub reports: mpsc::UnboundedSender<GameReport>,
    /// Flips to `true` once, when the server starts shutting down.
    pub shutdown: watch::Receiver<bool>,
    /// Steps played by every game, for comparison with steps recorded.
    pub steps_played: Arc<AtomicU64>,
    /// Every game task, so shutdown can wait for them to record their ends.
    pub tasks: TaskTracker,
    /// Latency histograms for `/metrics`.
    pub telemetry: Arc<crate::telemetry::Telemetry>,
}

/// What a game task starts from.
pub struct Setup {
    pub game: Game,
    pub generation: u64,
    /// True for a game created just now: it has no episodes yet, so there is
    /// nothing to count in the database before the first one.
    pub fresh: bool,
}

/// Starts a game's task on channels placement registered for it.
pub fn spawn(
    context: &Arc<GameContext>,
    setup: Setup,
    commands: mpsc::UnboundedReceiver<Command>,
    frames: FrameSender,
) {
    let context = Arc::clone(context);
    let tasks = context.tasks.clone();
    tasks.spawn(task::run(context, setup, commands, frames));
}

/// The seats of a new game of `scene` for `participants` (in lobby order).
///
/// Human seats without a fallback are given out first, since only a person can
/// fill them; human seats left over start with their fallback policy.
pub fn plan_seats(scene: &GameScene, participants: &[i64]) -> Vec<Seat> {
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
                SeatRole::Ai(ai) => Some(ai.policy.name.clone()),
                SeatRole::Human(h) => h.fallback.as_ref().map(|f| f.name.clone()),
            },
        })
        .collect();
    for (&agent, &participant) in order.iter().zip(participants) {
        seats[agent].participant_id = Some(participant);
    }
    seats
}

/// The game record for a new game of `scene`.
pub fn new_game(experiment_id: &str, scene: &GameScene, scene_index: usize) -> NewGame {
    let spec = &scene.env_spec;
    NewGame {
        experiment_id: experiment_id.to_string(),
        scene_index: scene_index as u32,
        scene_id: scene.id.clone(),
        env_id: spec.id.clone(),
        env_version: spec.version,
        spaces: NewGame::spaces_json(spec),
        fps: scene.fps,
        config: scene.to_config_json(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scene(seats: &str) -> GameScene {
        crate::test_support::kitchen("", seats)
    }

    /// A human seat without a fallback is filled first; the one left over
    /// plays its fallback; an AI seat keeps its policy.
    #[test]
    fn seats_without_fallback_are_filled_first() {
        let scene = scene(
            r#"
[[scene.seat]]
agent = "chef_0"
human = true
fallback = "scripted"
[[scene.seat]]
agent = "chef_1"
human = true
"#,
        );
        let seats = plan_seats(&scene, &[7]);
        assert_eq!(seats[0].participant_id, None);
        assert_eq!(seats[0].policy.as_deref(), Some("scripted"));
        assert_eq!(seats[1].participant_id, Some(7));
        assert_eq!(seats[1].policy, None);

        let both = plan_seats(&scene, &[7, 8]);
        assert_eq!(both[1].participant_id, Some(7));
        assert_eq!(both[0].participant_id, Some(8));
    }

    /// AI seats never take a participant, whatever the group's size.
    #[test]
    fn ai_seats_keep_their_policy() {
        let scene = scene(
            r#"
[[scene.seat]]
agent = "chef_0"
human = true
[[scene.seat]]
agent = "chef_1"
ai = "random"
"#,
        );
        let seats = plan_seats(&scene, &[1, 2]);
        assert_eq!(seats[0].participant_id, Some(1));
        assert_eq!(seats[1].participant_id, None);
        assert_eq!(seats[1].policy.as_deref(), Some("random"));
    }
}
