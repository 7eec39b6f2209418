//! Built-in environments by id, the way `gymnasium.make` finds them.
//!
//! A static table rather than a runtime registry: the set of built-in envs is
//! fixed at compile time, and there is no module-level mutable state to share.

use tandem_env::{Env, EnvSpec};

use crate::{CartPole, Kitchen, MountainCar, Paddles, PaddlesMode};

/// The id of every built-in environment, in the order `make` knows them.
static IDS: [&str; 5] = [
    CartPole::ID,
    MountainCar::ID,
    Kitchen::ID,
    Paddles::ID,
    Paddles::COOP_ID,
];

/// `make` was given an id that names no built-in environment.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown environment {id:?}; known ids: {}", IDS.join(", "))]
pub struct UnknownEnv {
    /// The id that was asked for.
    pub id: String,
}

/// A fresh environment, which needs a `reset` before stepping.
pub fn make(id: &str) -> Result<Box<dyn Env>, UnknownEnv> {
    match id {
        CartPole::ID => Ok(Box::new(CartPole::new())),
        MountainCar::ID => Ok(Box::new(MountainCar::new())),
        Kitchen::ID => Ok(Box::new(Kitchen::new())),
        Paddles::ID => Ok(Box::new(Paddles::new(PaddlesMode::Competitive))),
        Paddles::COOP_ID => Ok(Box::new(Paddles::new(PaddlesMode::Cooperative))),
        _ => Err(UnknownEnv { id: id.to_string() }),
    }
}

/// The spec of a built-in environment, if `id` names one.
pub fn spec(id: &str) -> Option<EnvSpec> {
    make(id).ok().map(|env| env.spec().clone())
}

/// The ids `make` accepts.
pub fn ids() -> &'static [&'static str] {
    &IDS
}
