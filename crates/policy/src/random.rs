//! The `random` built-in: a uniformly random action every step, the usual
//! baseline partner and a stand-in while a trained agent is not ready.
//!
//! Draws come from the per-episode, per-seat generator, so an episode with a
//! random partner replays exactly from its seed.

use rand_chacha::ChaCha8Rng;
use tandem_env::{Action, EnvSpec, Observation};

use crate::actions::ActionSpace;
use crate::rng::episode_rng;
use crate::{Policy, PolicyError, PolicyFactory, seat};

/// Makes `random` policies.
#[derive(Clone, Copy, Debug, Default)]
pub struct RandomFactory;

impl PolicyFactory for RandomFactory {
    fn create(&self, env: &EnvSpec, agent: usize) -> Result<Box<dyn Policy>, PolicyError> {
        let space = ActionSpace::new(&seat(env, agent)?.action_space)?;
        Ok(Box::new(RandomPolicy {
            space,
            agent,
            rng: episode_rng(0, agent),
        }))
    }

    fn describe(&self) -> String {
        "random: uniformly random actions, seeded by the episode seed".to_string()
    }
}

struct RandomPolicy {
    space: ActionSpace,
    agent: usize,
    rng: ChaCha8Rng,
}

impl Policy for RandomPolicy {
    fn reset(&mut self, seed: u64) {
        self.rng = episode_rng(seed, self.agent);
    }

    fn act(&mut self, _obs: &Observation) -> Result<Action, PolicyError> {
        Ok(self.space.sample(&mut self.rng))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn episode(policy: &mut dyn Policy, seed: u64) -> Vec<Action> {
        policy.reset(seed);
        let obs = Observation::vector(vec![0.0; 4]);
        (0..50).filter_map(|_| policy.act(&obs).ok()).collect()
    }

    /// The same seed replays the same actions, all in the space; another seed
    /// plays differently; and both actions turn up.
    #[test]
    fn seeded_and_in_space() -> Result<(), PolicyError> {
        let env = tandem_envs::spec("CartPole-v1")
            .ok_or_else(|| PolicyError::Incompatible("no CartPole".into()))?;
        let mut p = RandomFactory.create(&env, 0)?;
        let a = episode(p.as_mut(), 3);
        assert_eq!(a.len(), 50);
        assert_eq!(a, episode(p.as_mut(), 3));
        assert_ne!(a, episode(p.as_mut(), 4));
        assert!(a.iter().all(|x| env.agents[0].action_space.contains(x)));
        assert!(a.contains(&Action::Discrete(0)) && a.contains(&Action::Discrete(1)));
        Ok(())
    }
}
