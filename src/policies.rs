//! The policy registry for an experiment: the built-ins, every ONNX model its
//! `[policy.NAME]` tables name (loaded once), and every Python policy (made
//! once in a worker to check it), each checked against the seats that use it.
//!
//! Both `tandem check` and `tandem serve` build it, so a model that is missing,
//! corrupt or the wrong shape for its seat, or a Python agent that does not
//! import or refuses its seat's spaces, is a configuration error before any
//! participant arrives, never a game that fails mid-study.

use std::path::Path;
use std::sync::Arc;

use tandem_experiment::{Experiment, PolicyKind};
use tandem_policy::Registry;
use tandem_policy_onnx::OnnxFactory;
use tandem_workers::{PythonPolicy, WorkerPolicyFactory};

use crate::python_envs::{WorkerArgs, worker_config};

/// The registry, or every problem found (one line each, with file and line).
/// `file` is the experiment's (Python policies are imported from beside it).
pub fn registry_for(
    experiment: &Experiment,
    file: Option<&Path>,
    workers: &WorkerArgs,
) -> Result<Registry, Vec<String>> {
    let mut registry = Registry::builtin();
    let mut problems = Vec::new();
    let python_policies = experiment
        .policies
        .iter()
        .filter(|d| matches!(d.kind, PolicyKind::Python { .. }))
        .count();
    let config = if python_policies == 0 {
        None
    } else {
        match worker_config(file, workers) {
            Ok(config) => {
                eprintln!(
                    "starting Python workers ({}) to check {python_policies} polic{}…",
                    config.python.display(),
                    if python_policies == 1 { "y" } else { "ies" }
                );
                Some(Arc::new(config))
            }
            Err(e) => return Err(vec![format!("{e:#}")]),
        }
    };
    for def in &experiment.policies {
        match (&def.kind, &config) {
            (PolicyKind::Onnx(spec), _) => match OnnxFactory::load(spec) {
                Ok(factory) => registry.insert(&def.name, Arc::new(factory)),
                Err(e) => problems.push(format!("{}: policy {:?}: {e}", def.location, def.name)),
            },
            (PolicyKind::Python { entry, kwargs }, Some(config)) => {
                let policy = PythonPolicy {
                    entry: entry.clone(),
                    kwargs: kwargs.clone(),
                };
                let factory = WorkerPolicyFactory::new(policy, Arc::clone(config));
                registry.insert(&def.name, Arc::new(factory));
            }
            (PolicyKind::Python { .. }, None) => {}
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    tandem_server::policies::verify(experiment, &registry)?;
    Ok(registry)
}

/// [`registry_for`], printing every problem to stderr when there are any.
pub fn registry_or_report(
    experiment: &Experiment,
    file: Option<&Path>,
    workers: &WorkerArgs,
) -> Option<Registry> {
    match registry_for(experiment, file, workers) {
        Ok(registry) => Some(registry),
        Err(problems) => {
            for problem in problems {
                eprintln!("{problem}");
            }
            None
        }
    }
}
