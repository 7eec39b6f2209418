//! The records a game loop hands the [`crate::Recorder`]: an episode's start, its
//! steps (one joint step of every agent at a time) and its end.
//!
//! Plain data in the environment's own types (actions, observations): encoding
//! them for storage is the writer's job, off the game loop.

use tandem_env::{Action, Observation};

use crate::Outcome;

/// The start of an episode.
#[derive(Clone, Debug, PartialEq)]
pub struct EpisodeStart {
    pub game_id: i64,
    /// 0-based index within the game (unique per game).
    pub idx: u32,
    pub seed: u64,
    pub env_id: String,
    pub env_version: u32,
    pub started_us: i64,
    /// One per agent, in the environment's agent order.
    pub agents: Vec<EpisodeAgent>,
}

/// One agent at the start of an episode.
#[derive(Clone, Debug, PartialEq)]
pub struct EpisodeAgent {
    pub agent_name: String,
    /// Who plays the agent: `"participant:12"`, `"policy:random"`.
    pub actor: String,
    /// The observation `reset` returned.
    pub reset_obs: Observation,
}

/// One joint step: what every agent did and got.
#[derive(Clone, Debug, PartialEq)]
pub struct StepRecord {
    pub episode_id: i64,
    /// 1-based: the first step after reset is 1.
    pub t: u32,
    /// When the server applied the step.
    pub server_us: i64,
    /// The tick of the frame published after the step (what pages show of
    /// it, and what an input's `tick` refers to).
    pub tick: Option<u64>,
    /// One per agent, in the environment's agent order.
    pub agents: Vec<AgentStep>,
}

/// One agent's part of a step.
#[derive(Clone, Debug, PartialEq)]
pub struct AgentStep {
    /// The action applied.
    pub action: Action,
    /// Who chose it: `"participant:12"`, `"policy:random"`.
    pub actor: String,
    pub source: ActionSource,
    /// The key chord that matched, such as `"ArrowLeft+Space"`.
    pub keys: Option<String>,
    pub reward: f64,
    pub terminated: bool,
    pub truncated: bool,
    /// The observation after the step (encoded by the writer, not the caller).
    pub obs: Observation,
    /// The sequence number of the input message the action came from.
    pub input_seq: Option<u64>,
    /// The frame the browser showed when the input was made.
    pub client_frame: Option<u64>,
    /// The browser's clock at the input, in milliseconds.
    pub client_ts: Option<f64>,
    /// Scalar feedback the seat's participant gave on this step (input kind
    /// `feedback`), recorded beside the environment's reward.
    pub feedback: Option<f64>,
}

/// How an action was chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActionSource {
    /// Held keys matched a chord in the key map.
    Keys,
    /// No input: the scene's default (no-op) action.
    Default,
    /// An AI policy holding the seat.
    Policy,
    /// An AI policy standing in for a participant who left or stalled.
    Fallback,
    /// A participant's keys overrode the policy acting for their seat (input
    /// kind `correction`).
    Correction,
}

impl ActionSource {
    /// The name stored in `steps.source`.
    pub fn as_str(self) -> &'static str {
        match self {
            ActionSource::Keys => "keys",
            ActionSource::Default => "default",
            ActionSource::Policy => "policy",
            ActionSource::Fallback => "fallback",
            ActionSource::Correction => "correction",
        }
    }
}

/// The end of an episode.
#[derive(Clone, Debug, PartialEq)]
pub struct EpisodeEnd {
    pub ended_us: i64,
    /// Steps taken (the last `t`).
    pub steps: u32,
    pub outcome: Outcome,
    /// Each agent's return, in agent order; their sum is stored as the episode's.
    pub returns: Vec<f64>,
    /// The environment's info after the last step (see `Env::info`), for a
    /// complete episode: its numbers are the game scene's statistics.
    pub final_info: Option<serde_json::Map<String, serde_json::Value>>,
}
