//! Checks, before a server takes anyone, that every policy an experiment names
//! can serve the seat that names it.
//!
//! A policy that cannot (an unknown name, an ONNX model whose input does not fit
//! the agent's observations, no scripted agent for the environment) is a
//! configuration error reported at the seat's `file:line:column`, by `tandem
//! check` and at `tandem serve` start-up, never a game that fails mid-study.
//! A Python policy is made for real only by [`verify`], which blocks.

use tandem_experiment::{Experiment, Scene};
use tandem_policy::{PolicyError, Registry};

/// Every problem found, one line each; `Ok` when every seat's policies fit.
/// Creates each policy once per seat, which never blocks: fit for a server
/// that is starting.
pub fn check(experiment: &Experiment, registry: &Registry) -> Result<(), Vec<String>> {
    each_use(experiment, |name, env, agent| {
        registry.create(name, env, agent).map(drop)
    })
}

/// [`check`], thoroughly: each policy is made as it would play (a Python
/// policy in a worker started for the purpose), once per policy, environment
/// and agent. Blocks; for `tandem check` and before a server starts.
pub fn verify(experiment: &Experiment, registry: &Registry) -> Result<(), Vec<String>> {
    let mut checked = Vec::new();
    each_use(experiment, |name, env, agent| {
        let key = (name.to_string(), env.id.clone(), agent);
        if checked.contains(&key) {
            return Ok(());
        }
        checked.push(key);
        registry.check(name, env, agent)
    })
}

fn each_use(
    experiment: &Experiment,
    mut fits: impl FnMut(&str, &tandem_env::EnvSpec, usize) -> Result<(), PolicyError>,
) -> Result<(), Vec<String>> {
    let mut problems = Vec::new();
    for (scene_index, seat, policy) in experiment.policy_uses() {
        let Some(Scene::Game(scene)) = experiment.scenes.get(scene_index) else {
            continue;
        };
        if let Err(e) = fits(&policy.name, &scene.env_spec, seat.agent) {
            problems.push(format!(
                "{}: policy {:?} cannot play {} of {}: {e}",
                policy.location, policy.name, seat.agent_name, scene.env
            ));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}
