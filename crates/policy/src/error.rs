//! Why a policy could not be made or could not act.
//!
//! One enum for every policy, built-in or network, so the server and `tandem
//! check` report them all the same way. Each message says what a researcher has
//! to change: the file, the settings, or which seat the policy is given.

use std::path::PathBuf;

/// Making or running a policy failed.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// A model file is missing, unreadable or corrupt, or has a form Tandem
    /// cannot run (several inputs, non-float input, open sizes).
    #[error("cannot load the policy model {}: {reason}", path.display())]
    Load { path: PathBuf, reason: String },
    /// The policy cannot play this seat: spaces or shapes do not fit, or there
    /// is no scripted agent for the environment.
    #[error("the policy does not fit this seat: {0}")]
    Incompatible(String),
    /// The policy's settings are out of range or contradict each other.
    #[error("invalid policy settings: {0}")]
    Config(String),
    /// Running the model failed, or its output is not an action (NaN, say).
    #[error("policy inference failed: {0}")]
    Inference(String),
    /// A policy in a Python worker could not be made, raised, hung past its
    /// deadline, or its worker died or broke the protocol.
    #[error("the Python policy {0}")]
    Python(String),
    /// No policy has this name.
    #[error("unknown policy {name:?}; known policies: {}", known.join(", "))]
    Unknown { name: String, known: Vec<String> },
}
