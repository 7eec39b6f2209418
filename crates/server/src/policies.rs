//! Checks, before a server takes anyone, that every policy an experiment names
//! can serve the seat that names it.
//!
//! A policy that cannot (an unknown name, an ONNX model whose input does not fit
//! the agent's observations, no scripted agent for the environment) is a
//! configuration error reported at the seat's `file:line:column`, by `tandem
//! check` and at `tandem serve` start-up, never a game that fails mid-study.

use tandem_experiment::{Experiment, Scene};
use tandem_policy::Registry;

/// Every problem found, one line each; `Ok` when every seat's policies fit.
pub fn check(experiment: &Experiment, registry: &Registry) -> Result<(), Vec<String>> {
    let mut problems = Vec::new();
    for (scene_index, seat, policy) in experiment.policy_uses() {
        let Some(Scene::Game(scene)) = experiment.scenes.get(scene_index) else {
            continue;
        };
        if let Err(e) = registry.create(&policy.name, &scene.env_spec, seat.agent) {
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
