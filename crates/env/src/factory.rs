//! [`EnvFactory`]: how a catalog of environments makes one of a given id.
//!
//! Environments come from several places (compiled-in Rust, Python workers,
//! later others), so the server and the experiment reader see them through this
//! one trait, as policies are seen through `tandem_policy::PolicyFactory`.
//! A factory knows its spec without making an environment, so an experiment
//! file can be checked before anything runs.

use crate::{Action, Env, EnvError, EnvSpec};

/// One entry of an environment's own key map: when all of `keys` are held
/// (named as the browser's `KeyboardEvent.key`, `"Space"` for the space bar),
/// play `action`. Gymnasium environments give theirs with
/// `get_keys_to_action()`; a scene without a key table uses it.
#[derive(Clone, Debug, PartialEq)]
pub struct DefaultKey {
    pub keys: Vec<String>,
    pub action: Action,
}

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

    /// The environment's own key map for its first agent, if it has one; a
    /// game scene that names no keys uses it, with the first action of the
    /// space as the action while nothing is held (Gymnasium's NOOP).
    fn default_keys(&self) -> Option<&[DefaultKey]> {
        None
    }

    /// One line for `tandem check`: where this environment comes from.
    fn describe(&self) -> String {
        format!("{} (version {})", self.spec().id, self.spec().version)
    }
}
