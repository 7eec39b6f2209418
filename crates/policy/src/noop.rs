//! The `noop` built-in: the same "do nothing" action every step, for a seat
//! that must be filled but should not influence the game.
//!
//! "Nothing" is the space's first choice (action 0 for a plain `Discrete`,
//! which Atari games map to NOOP) or zeros clipped into a box's bounds.

use tandem_env::{Action, EnvSpec, Observation};

use crate::actions::ActionSpace;
use crate::{Policy, PolicyError, PolicyFactory, seat};

/// Makes `noop` policies.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoopFactory;

impl PolicyFactory for NoopFactory {
    fn create(&self, env: &EnvSpec, agent: usize) -> Result<Box<dyn Policy>, PolicyError> {
        let space = ActionSpace::new(&seat(env, agent)?.action_space)?;
        Ok(Box::new(NoopPolicy(space.zero())))
    }

    fn describe(&self) -> String {
        "noop: the first discrete choice, or zeros clipped into the bounds, every step".to_string()
    }
}

struct NoopPolicy(Action);

impl Policy for NoopPolicy {
    fn reset(&mut self, _seed: u64) {}

    fn act(&mut self, _obs: &Observation) -> Result<Action, PolicyError> {
        Ok(self.0.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn always_the_zero_action() -> Result<(), PolicyError> {
        let env = tandem_envs::spec("MountainCar-v0")
            .ok_or_else(|| PolicyError::Incompatible("no MountainCar".into()))?;
        let mut p = NoopFactory.create(&env, 0)?;
        p.reset(1);
        let obs = Observation::vector(vec![0.0, 0.0]);
        assert_eq!(p.act(&obs)?, Action::Discrete(0));
        assert_eq!(p.act(&obs)?, Action::Discrete(0));
        Ok(())
    }
}
