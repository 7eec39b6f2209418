//! The bookkeeping every built-in environment shares: the step count behind
//! Gymnasium's `TimeLimit`, the "reset first" guard, and reading the discrete
//! actions out of a joint action.
//!
//! Gymnasium splits this between the env and its wrappers; here it lives in each
//! env (through [`Episode`]) because a Tandem env is used bare, with no wrappers.

use tandem_env::{Action, EnvError, EnvSpec, check_actions};

/// Where the current episode stands.
#[derive(Clone, Debug)]
pub(crate) struct Episode {
    /// Steps after which the episode is truncated, as in the spec.
    limit: u32,
    steps: u32,
    /// False before the first reset and once the episode has ended: stepping then
    /// is an error rather than Gymnasium's undefined behaviour.
    running: bool,
}

impl Episode {
    pub(crate) fn new(limit: u32) -> Self {
        Episode {
            limit,
            steps: 0,
            running: false,
        }
    }

    /// Begins a new episode.
    pub(crate) fn start(&mut self) {
        self.steps = 0;
        self.running = true;
    }

    pub(crate) fn ensure_running(&self) -> Result<(), EnvError> {
        if self.running {
            Ok(())
        } else {
            Err(EnvError::NeedsReset)
        }
    }

    /// Steps taken in the current episode.
    pub(crate) fn steps(&self) -> u32 {
        self.steps
    }

    /// Counts one step and returns whether it truncates the episode. Both a
    /// termination and a truncation end the episode.
    pub(crate) fn count(&mut self, terminated: bool) -> bool {
        self.steps += 1;
        let truncated = self.steps >= self.limit;
        if terminated || truncated {
            self.running = false;
        }
        truncated
    }
}

/// Checks a joint action against a one-agent spec with a `Discrete` action space
/// and returns the agent's action.
pub(crate) fn single_discrete(spec: &EnvSpec, actions: &[Action]) -> Result<i64, EnvError> {
    check_actions(spec, actions)?;
    match actions {
        [Action::Discrete(a)] => Ok(*a),
        // Unreachable once `check_actions` passed, but an error beats a panic.
        _ => Err(EnvError::InvalidAction {
            agent: 0,
            reason: "expected one discrete action".to_string(),
        }),
    }
}

/// Checks a joint action against a two-agent spec with `Discrete` action spaces
/// and returns both agents' actions, in spec order.
pub(crate) fn discrete_pair(spec: &EnvSpec, actions: &[Action]) -> Result<[i64; 2], EnvError> {
    check_actions(spec, actions)?;
    match actions {
        [Action::Discrete(a), Action::Discrete(b)] => Ok([*a, *b]),
        // Unreachable once `check_actions` passed, but an error beats a panic.
        _ => Err(EnvError::InvalidAction {
            agent: 0,
            reason: "expected two discrete actions".to_string(),
        }),
    }
}
