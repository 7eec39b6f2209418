//! The contract between the server and an AI agent: a [`PolicyFactory`] per
//! named policy, shared by every game, and a [`Policy`] instance per seat.
//!
//! The split exists because what is expensive (a loaded, optimized network) is
//! shared and immutable, while what is per game (frame stacks, the sampling
//! generator, an action being repeated) must not leak between seats or games.

use tandem_env::{Action, AgentSpec, EnvSpec, Observation};

use crate::PolicyError;

/// An AI agent that plays one seat: one instance per seat per game.
pub trait Policy: Send {
    /// Called at the start of every episode with that episode's seed (for
    /// seeded sampling, clearing frame stacks).
    fn reset(&mut self, seed: u64);

    /// The action for this step from this seat's observation.
    fn act(&mut self, obs: &Observation) -> Result<Action, PolicyError>;
}

/// Makes policy instances; shared by all games (e.g. holds a loaded ONNX model).
pub trait PolicyFactory: Send + Sync {
    /// A fresh policy for agent index `agent` of `env`; errors if incompatible
    /// (spaces, shapes, no scripted agent for that env).
    fn create(&self, env: &EnvSpec, agent: usize) -> Result<Box<dyn Policy>, PolicyError>;

    /// One line describing it, for logs and `tandem check` output.
    fn describe(&self) -> String;
}

/// The spec of agent `agent` of `env`, or an error naming the seats there are,
/// which every factory checks first.
pub fn seat(env: &EnvSpec, agent: usize) -> Result<&AgentSpec, PolicyError> {
    env.agents.get(agent).ok_or_else(|| {
        PolicyError::Incompatible(format!(
            "{} has {} agent(s), so there is no agent {agent}",
            env.id,
            env.agents.len()
        ))
    })
}
