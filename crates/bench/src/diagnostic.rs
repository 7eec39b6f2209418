//! Diagnostic environments, for measuring the server rather than for studies.
//!
//! `tandem serve --diagnostic-envs` adds them to its catalog (the bench starts
//! its child server so), and the `slow` scenario plays one:
//! [`SLOW_FIRST_ID`] is MountainCar-v0, except that the first game made of it
//! steps in [`SLOW_STEP`] (a blocking sleep, as a hung or heavy Python
//! environment would), and every later game steps at full speed. With 51
//! sessions that is one slow game beside 50 normal ones; the report counts the
//! sessions that got under 99 % of their frames, which should be the slow one
//! alone.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tandem_env::{Action, Env, EnvError, EnvFactory, EnvSpec, Frame, Observation, Step};
use tandem_envs::{Catalog, MountainCar};

/// The id of the environment whose first game is slow.
pub const SLOW_FIRST_ID: &str = "Bench-SlowFirst-MountainCar-v0";

/// How long each step of the slow game takes.
pub const SLOW_STEP: Duration = Duration::from_millis(50);

/// The built-in catalog plus the diagnostic environments.
pub fn catalog_with_diagnostics() -> Catalog {
    let mut catalog = Catalog::builtin();
    for factory in diagnostic_envs() {
        catalog.insert(factory);
    }
    catalog
}

/// Every diagnostic environment.
pub fn diagnostic_envs() -> Vec<Arc<dyn EnvFactory>> {
    let mut spec = MountainCar::new().spec().clone();
    spec.id = SLOW_FIRST_ID.to_string();
    vec![Arc::new(SlowFirst {
        spec,
        made_slow: AtomicBool::new(false),
    })]
}

struct SlowFirst {
    spec: EnvSpec,
    /// Whether the slow game was made already.
    made_slow: AtomicBool,
}

impl EnvFactory for SlowFirst {
    fn spec(&self) -> &EnvSpec {
        &self.spec
    }

    fn make(&self) -> Result<Box<dyn Env>, EnvError> {
        let first = !self.made_slow.swap(true, Ordering::SeqCst);
        Ok(Box::new(Delayed {
            inner: MountainCar::new(),
            spec: self.spec.clone(),
            delay: first.then_some(SLOW_STEP),
        }))
    }

    fn describe(&self) -> String {
        format!(
            "{} (diagnostic: MountainCar-v0; the first game steps in {} ms)",
            self.spec.id,
            SLOW_STEP.as_millis()
        )
    }
}

/// MountainCar, each step taking at least `delay`.
struct Delayed {
    inner: MountainCar,
    spec: EnvSpec,
    delay: Option<Duration>,
}

impl Env for Delayed {
    fn spec(&self) -> &EnvSpec {
        &self.spec
    }

    fn reset(&mut self, seed: u64) -> Result<Vec<Observation>, EnvError> {
        self.inner.reset(seed)
    }

    fn step(&mut self, actions: &[Action]) -> Result<Step, EnvError> {
        if let Some(delay) = self.delay {
            std::thread::sleep(delay);
        }
        self.inner.step(actions)
    }

    fn render(&self) -> Frame {
        self.inner.render()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Only the first game made is slow; both run off the async runtime.
    #[test]
    fn only_the_first_game_is_slow() {
        let catalog = catalog_with_diagnostics();
        let factory = match catalog.get(SLOW_FIRST_ID) {
            Ok(f) => Arc::clone(f),
            Err(e) => panic!("{e}"),
        };
        assert!(!factory.steps_inline());
        let time_step = |env: &mut Box<dyn Env>| {
            let _ = env.reset(1);
            let started = std::time::Instant::now();
            let _ = env.step(&[Action::Discrete(1)]);
            started.elapsed()
        };
        let mut first = factory.make().unwrap_or_else(|e| panic!("{e}"));
        let mut second = factory.make().unwrap_or_else(|e| panic!("{e}"));
        assert!(time_step(&mut first) >= SLOW_STEP);
        assert!(time_step(&mut second) < SLOW_STEP);
    }
}
