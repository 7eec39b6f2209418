//! The `scripted` built-in: the hand-written agent `tandem-envs` ships for an
//! environment (a balancing rule for CartPole, say), as a competent partner
//! that needs no model file.
//!
//! Which environments have one is `tandem-envs`' business; for the others,
//! `create` fails, so an experiment naming `scripted` for such an environment
//! is caught when it is checked.

use tandem_env::{Action, EnvSpec, Observation};
use tandem_envs::ScriptedAgent;

use crate::{Policy, PolicyError, PolicyFactory, seat};

/// Makes `scripted` policies.
#[derive(Clone, Copy, Debug, Default)]
pub struct ScriptedFactory;

impl PolicyFactory for ScriptedFactory {
    fn create(&self, env: &EnvSpec, agent: usize) -> Result<Box<dyn Policy>, PolicyError> {
        seat(env, agent)?;
        let scripted = tandem_envs::scripted_agent(&env.id, agent).ok_or_else(|| {
            PolicyError::Incompatible(format!("no scripted agent for {} (agent {agent})", env.id))
        })?;
        Ok(Box::new(ScriptedPolicy(scripted)))
    }

    fn describe(&self) -> String {
        "scripted: the environment's hand-written agent".to_string()
    }
}

struct ScriptedPolicy(Box<dyn ScriptedAgent>);

impl Policy for ScriptedPolicy {
    fn reset(&mut self, seed: u64) {
        self.0.reset(seed);
    }

    fn act(&mut self, obs: &Observation) -> Result<Action, PolicyError> {
        Ok(self.0.act(obs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(id: &str) -> Result<EnvSpec, PolicyError> {
        tandem_envs::spec(id).ok_or_else(|| PolicyError::Incompatible(format!("no env {id}")))
    }

    /// The scripted CartPole agent plays through the policy interface, with
    /// valid actions, deterministically.
    #[test]
    fn wraps_the_environment_agent() -> Result<(), PolicyError> {
        let env_spec = spec("CartPole-v1")?;
        let play = || -> Result<Vec<Action>, PolicyError> {
            let mut policy = ScriptedFactory.create(&env_spec, 0)?;
            let mut env = tandem_envs::make("CartPole-v1")
                .map_err(|e| PolicyError::Incompatible(e.to_string()))?;
            let fail = |e: tandem_env::EnvError| PolicyError::Inference(e.to_string());
            let mut obs = env.reset(5).map_err(fail)?;
            policy.reset(5);
            let mut actions = Vec::new();
            for _ in 0..100 {
                let action = policy.act(&obs[0])?;
                assert!(env_spec.agents[0].action_space.contains(&action));
                actions.push(action.clone());
                let step = env.step(&[action]).map_err(fail)?;
                if step.is_done() {
                    break;
                }
                obs = step.observations;
            }
            Ok(actions)
        };
        assert_eq!(play()?, play()?);
        Ok(())
    }

    /// An environment without a scripted agent, or a seat it does not have, is
    /// an Incompatible error naming the environment.
    #[test]
    fn missing_agent_is_incompatible() -> Result<(), PolicyError> {
        let mut other = spec("CartPole-v1")?;
        other.id = "Unscripted-v0".to_string();
        match ScriptedFactory.create(&other, 0) {
            Err(PolicyError::Incompatible(m)) => assert!(m.contains("Unscripted-v0"), "{m}"),
            Err(e) => panic!("{e}"),
            Ok(_) => panic!("no scripted agent expected"),
        }
        assert!(ScriptedFactory.create(&spec("CartPole-v1")?, 1).is_err());
        Ok(())
    }
}
