//! The policy registry for an experiment: the built-ins plus every ONNX model
//! its `[policy.NAME]` tables name, loaded once, and checked against the seats
//! that use them.
//!
//! Both `tandem check` and `tandem serve` build it, so a model that is missing,
//! corrupt or the wrong shape for its seat is a configuration error before any
//! participant arrives, never a game that fails mid-study.

use std::sync::Arc;

use tandem_experiment::Experiment;
use tandem_policy::Registry;
use tandem_policy_onnx::OnnxFactory;

/// The registry, or every problem found (one line each, with file and line).
pub fn registry_for(experiment: &Experiment) -> Result<Registry, Vec<String>> {
    let mut registry = Registry::builtin();
    let mut problems = Vec::new();
    for def in &experiment.policies {
        match OnnxFactory::load(&def.onnx) {
            Ok(factory) => registry.insert(&def.name, Arc::new(factory)),
            Err(e) => problems.push(format!("{}: policy {:?}: {e}", def.location, def.name)),
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    tandem_server::policies::check(experiment, &registry)?;
    Ok(registry)
}

/// [`registry_for`], printing every problem to stderr when there are any.
pub fn registry_or_report(experiment: &Experiment) -> Option<Registry> {
    match registry_for(experiment) {
        Ok(registry) => Some(registry),
        Err(problems) => {
            for problem in problems {
                eprintln!("{problem}");
            }
            None
        }
    }
}
