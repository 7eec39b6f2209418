//! Python environments through real workers (the project's `.venv`, which
//! `./scripts/test` creates with Gymnasium): a hosted CartPole-v1 follows the
//! built-in one step for step, and a worker that exits, hangs, raises or
//! writes garbage fails only its own environment, with the reason, and the
//! next environment of the same id plays normally.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Map;
use tandem_env::{Action, EnvError, Observation};
use tandem_envs::{Catalog, HostedEnv};
use tandem_workers::Pool;

mod support;

/// A pool on the project's virtual environment, with the fault
/// environments importable and a short step deadline.
fn pool() -> Arc<Pool> {
    let mut config = support::config();
    config.python = support::venv_python();
    config.python_path = vec![PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/envs")];
    config.step_deadline = Duration::from_millis(500);
    Pool::new(config, 1)
}

fn hosted(env: &str) -> HostedEnv {
    match HostedEnv::parse(env, Map::new()) {
        Some(Ok(env)) => env,
        other => panic!("{env}: {other:?}"),
    }
}

fn host(pool: &Arc<Pool>, env: &str) -> Catalog {
    let mut catalog = Catalog::empty();
    tandem_workers::host(&mut catalog, pool, &[hosted(env)]);
    if let Some(why) = catalog.unavailable(env) {
        panic!("{env} could not be hosted: {why}");
    }
    catalog
}

fn floats(observation: &Observation) -> Vec<f32> {
    match observation {
        Observation::F32 { data, .. } => data.clone(),
        other => panic!("not floats: {other:?}"),
    }
}

#[test]
fn hosted_cartpole_follows_the_builtin_one() {
    let pool = pool();
    let catalog = host(&pool, "gymnasium:CartPole-v1");
    let spec = catalog.spec("gymnasium:CartPole-v1").cloned();
    let builtin_spec = tandem_envs::spec("CartPole-v1");
    assert_eq!(
        spec.as_ref()
            .map(|s| (&s.agents[0].action_space, s.max_episode_steps)),
        builtin_spec
            .as_ref()
            .map(|s| (&s.agents[0].action_space, s.max_episode_steps))
    );
    let mut hosted = catalog
        .make("gymnasium:CartPole-v1")
        .unwrap_or_else(|e| panic!("{e}"));
    let mut builtin = tandem_envs::make("CartPole-v1").unwrap_or_else(|e| panic!("{e}"));
    let mut steps = 0;
    for seed in [0u64, 7, 12345] {
        let (a, b) = (hosted.reset(seed), builtin.reset(seed));
        let (a, b) = (
            a.unwrap_or_else(|e| panic!("{e}")),
            b.unwrap_or_else(|e| panic!("{e}")),
        );
        close(&floats(&a[0]), &floats(&b[0]));
        for i in 0..600u32 {
            let action = [Action::Discrete(i64::from((i * 7 + seed as u32) % 3 % 2))];
            let a = hosted.step(&action).unwrap_or_else(|e| panic!("{e}"));
            let b = builtin.step(&action).unwrap_or_else(|e| panic!("{e}"));
            steps += 1;
            close(&floats(&a.observations[0]), &floats(&b.observations[0]));
            assert_eq!(
                (&a.rewards, &a.terminated, &a.truncated),
                (&b.rewards, &b.terminated, &b.truncated),
                "seed {seed} step {i}"
            );
            if a.is_done() {
                break;
            }
        }
    }
    assert!(steps > 30, "{steps} steps compared");
    match hosted.render() {
        tandem_env::Frame::Pixels(image) => assert_eq!((image.width, image.height), (600, 400)),
        other => panic!("not pixels: {other:?}"),
    }
}

fn close(a: &[f32], b: &[f32]) {
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        assert!((x - y).abs() <= 1e-5, "{a:?} vs {b:?}");
    }
}

/// Plays `env` until its third step fails; returns the error and how long
/// the failing step took.
fn fail(catalog: &Catalog, env: &str) -> (String, Duration) {
    let mut made = catalog.make(env).unwrap_or_else(|e| panic!("{e}"));
    made.reset(1).unwrap_or_else(|e| panic!("{e}"));
    for _ in 0..2 {
        made.step(&[Action::Discrete(0)])
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let started = Instant::now();
    let failed = made.step(&[Action::Discrete(0)]);
    let took = started.elapsed();
    match failed {
        Err(EnvError::Failed(why)) => (why, took),
        other => panic!("{env}: the third step should fail, got {other:?}"),
    }
}

#[test]
fn a_failing_worker_fails_only_its_environment() {
    let pool = pool();
    let cases = [
        ("python:fault_envs:exiting", "exited"),
        (
            "python:fault_envs:hanging",
            "did not answer a step within 0.5 s",
        ),
        (
            "python:fault_envs:raising",
            "ValueError: the pole broke on purpose",
        ),
        ("python:fault_envs:garbage", "broke the protocol"),
    ];
    for (env, expected) in cases {
        let catalog = host(&pool, env);
        let (why, took) = fail(&catalog, env);
        eprintln!("{env}: {why} (after {took:?})");
        assert!(why.contains(expected), "{env}: {why}");
        assert!(took < Duration::from_secs(5), "{env} took {took:?}");
        // The next environment of the same id plays normally.
        let mut next = catalog.make(env).unwrap_or_else(|e| panic!("{e}"));
        next.reset(2)
            .unwrap_or_else(|e| panic!("{env} after a fault: {e}"));
        for _ in 0..2 {
            next.step(&[Action::Discrete(1)])
                .unwrap_or_else(|e| panic!("{env} after a fault: {e}"));
        }
    }
    let exiting = host(&pool, "python:fault_envs:exiting");
    let (why, _) = fail(&exiting, "python:fault_envs:exiting");
    assert!(
        why.contains("exiting on purpose"),
        "the worker's last words are kept: {why}"
    );
}

/// An environment that writes bytes that are not UTF-8 and a 100 kB line to
/// stderr keeps playing: the server drains what it cannot read as text.
#[test]
fn a_noisy_environment_keeps_playing() {
    let pool = pool();
    let catalog = host(&pool, "python:fault_envs:noisy");
    let mut made = catalog
        .make("python:fault_envs:noisy")
        .unwrap_or_else(|e| panic!("{e}"));
    made.reset(1).unwrap_or_else(|e| panic!("{e}"));
    for step in 0..20 {
        made.step(&[Action::Discrete(0)])
            .unwrap_or_else(|e| panic!("step {step}: {e}"));
    }
}

#[test]
fn what_cannot_be_hosted_is_explained() {
    let pool = pool();
    let mut catalog = Catalog::empty();
    let envs = [
        hosted("gymnasium:NoSuchEnv-v0"),
        hosted("python:fault_envs:no_such_function"),
        hosted("python:no_such_module:make"),
    ];
    tandem_workers::host(&mut catalog, &pool, &envs);
    for env in &envs {
        let why = catalog
            .unavailable(&env.id)
            .unwrap_or_else(|| panic!("{} was hosted", env.id));
        eprintln!("{}: {why}", env.id);
        assert!(why.len() < 600, "{why}");
    }
    assert!(
        catalog
            .unavailable("gymnasium:NoSuchEnv-v0")
            .is_some_and(|w| w.contains("NoSuchEnv"))
    );
    assert!(
        catalog
            .unavailable("python:no_such_module:make")
            .is_some_and(|w| w.contains("no_such_module"))
    );
}

#[test]
fn a_wrong_interpreter_is_a_clear_error() {
    let mut config = support::config();
    config.python = PathBuf::from("/no/such/python");
    let pool = Pool::new(config, 0);
    let mut catalog = Catalog::empty();
    tandem_workers::host(&mut catalog, &pool, &[hosted("gymnasium:CartPole-v1")]);
    let why = catalog
        .unavailable("gymnasium:CartPole-v1")
        .unwrap_or_default();
    assert!(
        why.contains("could not start the Python worker (/no/such/python)"),
        "{why}"
    );
}
