//! [`EnvFactory`]: how a catalog of environments makes one of a given id.
//!
//! Environments come from several places (compiled-in Rust, Python workers,
//! later others), so the server and the experiment reader see them through this
//! one trait, as policies are seen through `tandem_policy::PolicyFactory`.
//! A factory knows its spec without making an environment, so an experiment
//! file can be checked before anything runs.

use crate::{Env, EnvError, EnvSpec};

/// Makes fresh environments of one id.
pub trait EnvFactory: Send + Sync {
    /// What every environment this factory makes is.
    fn spec(&self) -> &EnvSpec;

    /// A fresh environment, which needs a `reset` before stepping.
    fn make(&self) -> Result<Box<dyn Env>, EnvError>;

    /// Whether `reset`, `step` and `render` are known to return within
    /// microseconds without blocking (pure in-process code). Anything else (an
    /// environment in another process, user code) may take milliseconds or
    /// hang, and the server steps it off its async runtime so that it never
    /// delays another game. The default is the safe answer.
    fn steps_inline(&self) -> bool {
        false
    }

    /// One line for `tandem check`: where this environment comes from.
    fn describe(&self) -> String {
        format!("{} (version {})", self.spec().id, self.spec().version)
    }
}
