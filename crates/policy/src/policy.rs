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
    /// Called once before the first episode, on the policy's own thread when
    /// it has one: the place for slow set-up (starting a process), so that the
    /// game's first action does not wait for it. A failure here is reported
    /// by the first `act`.
    fn prepare(&mut self) {}

    /// Called at the start of every episode with that episode's seed (for
    /// seeded sampling, clearing frame stacks).
    fn reset(&mut self, seed: u64);

    /// The action for this step from this seat's observation.
    fn act(&mut self, obs: &Observation) -> Result<Action, PolicyError>;

    /// Whether the policy learns from [`Transition`]s; the server builds them
    /// only for policies that do.
    fn observes(&self) -> bool {
        false
    }

    /// What followed a step of this seat, for a policy that learns online:
    /// called after every step, whoever chose the action (so a fallback
    /// learns from the participant it stands in for, and a corrected policy
    /// from the correction).
    fn observe(&mut self, _transition: &Transition) -> Result<(), PolicyError> {
        Ok(())
    }
}

/// One step of a seat, as a learning policy sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct Transition {
    /// The observation the action was chosen from.
    pub observation: Observation,
    /// The action the environment got: the policy's own, a participant's, or
    /// a participant's correction.
    pub action: Action,
    pub reward: f64,
    /// The participant's feedback on this step, if they gave any.
    pub feedback: Option<f64>,
    /// The episode ended with this step (terminated or truncated).
    pub done: bool,
}

/// Makes policy instances; shared by all games (e.g. holds a loaded ONNX model).
pub trait PolicyFactory: Send + Sync {
    /// A fresh policy for agent index `agent` of `env`; errors if incompatible
    /// (spaces, shapes, no scripted agent for that env). Called as a game
    /// starts, on the server's async runtime: it must not block.
    fn create(&self, env: &EnvSpec, agent: usize) -> Result<Box<dyn Policy>, PolicyError>;

    /// One line describing it, for logs and `tandem check` output.
    fn describe(&self) -> String;

    /// Whether its policies answer in microseconds and may be called on the
    /// server's runtime. A policy in another process may take milliseconds
    /// or hang, so the server runs it on a thread of its own.
    fn acts_inline(&self) -> bool {
        true
    }

    /// Checks, before anyone plays, that the policy can play agent `agent`
    /// of `env`; may block (start a process, load a model). By default,
    /// makes one and drops it.
    fn check(&self, env: &EnvSpec, agent: usize) -> Result<(), PolicyError> {
        self.create(env, agent).map(drop)
    }
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
