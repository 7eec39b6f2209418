//! Replays an action sequence from a given state and prints the trajectory as
//! JSON: the Rust half of `python/tests/test_env_parity.py`.
//!
//! Input on stdin, one JSON object:
//! `{"env": "CartPole-v1", "seed": 0, "state": [..], "actions": [0, 1, ..]}`
//! (`seed` defaults to 0; without `state` the episode starts where the seed puts
//! it). Output on stdout:
//! `{"initial": [..], "states": [[..], ..], "rewards": [..], "terminated": [..],
//! "truncated": [..]}` where `states[i]` is the observation after step `i`, and
//! stepping stops at the first termination or truncation. Bad input is a message
//! on stderr and exit code 2.

use std::io::Read;
use std::process::ExitCode;

use serde::{Deserialize, Serialize};
use tandem_env::{Action, Env, Observation};
use tandem_envs::{CartPole, MountainCar};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Request {
    env: String,
    #[serde(default)]
    seed: u64,
    state: Option<Vec<f64>>,
    actions: Vec<i64>,
}

#[derive(Serialize)]
struct Trajectory {
    /// The observation the episode starts from (after `state` was applied).
    initial: Vec<f64>,
    states: Vec<Vec<f64>>,
    rewards: Vec<f64>,
    terminated: Vec<bool>,
    truncated: Vec<bool>,
}

fn main() -> ExitCode {
    let mut input = String::new();
    let result = std::io::stdin()
        .read_to_string(&mut input)
        .map_err(|e| format!("cannot read stdin: {e}"))
        .and_then(|_| run(&input));
    match result {
        Ok(output) => {
            println!("{output}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("trajectory: {message}");
            ExitCode::from(2)
        }
    }
}

/// Parses the request, replays it and returns the trajectory's JSON.
fn run(input: &str) -> Result<String, String> {
    let request: Request =
        serde_json::from_str(input).map_err(|e| format!("bad request JSON: {e}"))?;
    let (mut env, initial) = start(&request)?;
    let mut trajectory = Trajectory {
        initial,
        states: vec![],
        rewards: vec![],
        terminated: vec![],
        truncated: vec![],
    };
    for (i, action) in request.actions.iter().enumerate() {
        let step = env
            .step(&[Action::Discrete(*action)])
            .map_err(|e| format!("step {i}: {e}"))?;
        let observation = step.observations.first().ok_or("no observation")?;
        trajectory.states.push(as_f64(observation)?);
        trajectory.rewards.extend(step.rewards.first());
        trajectory.terminated.extend(step.terminated.first());
        trajectory.truncated.extend(step.truncated.first());
        if step.is_done() {
            break;
        }
    }
    serde_json::to_string(&trajectory).map_err(|e| format!("cannot encode output: {e}"))
}

/// The env reset with the request's seed and, if given, moved to its state;
/// with the observation it starts from.
fn start(request: &Request) -> Result<(Box<dyn Env>, Vec<f64>), String> {
    let seed = request.seed;
    let reset_failed = |e| format!("reset failed: {e}");
    match request.env.as_str() {
        CartPole::ID => {
            let mut env = CartPole::new();
            env.reset(seed).map_err(reset_failed)?;
            if let Some(state) = &request.state {
                env.set_state(fixed(state)?);
            }
            let initial = rounded(&env.state());
            Ok((Box::new(env), initial))
        }
        MountainCar::ID => {
            let mut env = MountainCar::new();
            env.reset(seed).map_err(reset_failed)?;
            if let Some(state) = &request.state {
                env.set_state(fixed(state)?);
            }
            let initial = rounded(&env.state());
            Ok((Box::new(env), initial))
        }
        other => Err(format!(
            "unknown env {other:?}; this example knows {} and {}",
            CartPole::ID,
            MountainCar::ID
        )),
    }
}

fn fixed<const N: usize>(state: &[f64]) -> Result<[f64; N], String> {
    state
        .try_into()
        .map_err(|_| format!("\"state\" needs {N} numbers, got {}", state.len()))
}

/// The state as its observation, f32-rounded like every observation.
fn rounded(state: &[f64]) -> Vec<f64> {
    state.iter().map(|v| f64::from(*v as f32)).collect()
}

fn as_f64(observation: &Observation) -> Result<Vec<f64>, String> {
    match observation {
        Observation::F32 { data, .. } => Ok(data.iter().map(|v| f64::from(*v)).collect()),
        other => Err(format!("expected a float observation, got {other:?}")),
    }
}
