//! The [`Env`] trait: a seeded, deterministic, multi-agent environment.
//!
//! Multi-agent is the base case: a single-player game is an environment with one
//! agent. Agents are addressed by their index in [`EnvSpec::agents`]; every per-agent
//! vector (actions, observations, rewards, flags) is in that order.

use crate::{Action, Frame, Observation, Space};

/// How an environment draws itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RenderKind {
    /// `render` returns [`Frame::Pixels`] of this size.
    Pixels { width: u32, height: u32 },
    /// `render` returns [`Frame::Sprites`], meant for a canvas of this aspect
    /// (width, height in arbitrary units).
    Sprites { width: u32, height: u32 },
}

/// One agent's name and spaces.
#[derive(Clone, Debug, PartialEq)]
pub struct AgentSpec {
    pub name: String,
    pub observation_space: Space,
    pub action_space: Space,
}

/// What an environment is: its registered id and version, its agents, how it draws,
/// and its natural pace.
#[derive(Clone, Debug, PartialEq)]
pub struct EnvSpec {
    /// The registered id, such as `"CartPole-v1"`.
    pub id: String,
    /// Bumped whenever dynamics change, so recorded episodes can be re-simulated
    /// with the version that produced them.
    pub version: u32,
    pub agents: Vec<AgentSpec>,
    pub render: RenderKind,
    /// Frames per second the game is meant to be played at.
    pub fps: u32,
    /// Steps after which an episode is truncated (Gymnasium's `TimeLimit`).
    pub max_episode_steps: Option<u32>,
}

/// The outcome of one joint step, per agent in spec order.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    pub observations: Vec<Observation>,
    pub rewards: Vec<f64>,
    pub terminated: Vec<bool>,
    pub truncated: Vec<bool>,
}

impl Step {
    /// Whether the episode is over for every agent.
    pub fn is_done(&self) -> bool {
        self.terminated
            .iter()
            .zip(&self.truncated)
            .all(|(te, tr)| *te || *tr)
    }
}

/// Why an environment could not reset or step.
#[derive(Debug, thiserror::Error)]
pub enum EnvError {
    /// The caller passed the wrong number of actions or one outside its space.
    #[error("invalid action for agent {agent}: {reason}")]
    InvalidAction { agent: usize, reason: String },
    /// `step` was called before `reset` or after the episode ended.
    #[error("the environment needs a reset before stepping")]
    NeedsReset,
    /// An out-of-process environment failed (worker crashed, protocol error).
    #[error("environment failed: {0}")]
    Failed(String),
}

/// A seeded, deterministic, multi-agent environment.
///
/// Given the same seed and the same actions, an environment must produce the same
/// observations, rewards and flags, bit for bit: recorded episodes are re-simulated
/// from their seed and actions.
pub trait Env: Send {
    /// What this environment is.
    fn spec(&self) -> &EnvSpec;

    /// Starts a new episode from `seed`; returns each agent's first observation.
    fn reset(&mut self, seed: u64) -> Result<Vec<Observation>, EnvError>;

    /// Applies one action per agent.
    fn step(&mut self, actions: &[Action]) -> Result<Step, EnvError>;

    /// Draws the current state.
    fn render(&self) -> Frame;

    /// What the environment says about its state beside the observations
    /// (Gymnasium's `info`; the first agent's, for several): its numbers at
    /// an episode's end become the game scene's statistics. `None` by default.
    fn info(&self) -> Option<serde_json::Map<String, serde_json::Value>> {
        None
    }
}

/// Checks a joint action against the spec: one action per agent, each in its space.
/// Environments call this at the top of `step`.
pub fn check_actions(spec: &EnvSpec, actions: &[Action]) -> Result<(), EnvError> {
    if actions.len() != spec.agents.len() {
        return Err(EnvError::InvalidAction {
            agent: actions.len().min(spec.agents.len()),
            reason: format!(
                "expected {} actions, got {}",
                spec.agents.len(),
                actions.len()
            ),
        });
    }
    for (agent, (action, agent_spec)) in actions.iter().zip(&spec.agents).enumerate() {
        if !agent_spec.action_space.contains(action) {
            return Err(EnvError::InvalidAction {
                agent,
                reason: format!("{action:?} is not in {:?}", agent_spec.action_space),
            });
        }
    }
    Ok(())
}
