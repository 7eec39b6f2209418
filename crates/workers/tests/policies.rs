//! Python policies through real workers (the project's `.venv`): a policy
//! acts on the observations it is given and learns from transitions; one
//! that hangs past the step deadline or answers an action outside its space
//! fails with the reason, in about the deadline, never hanging its caller.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Map, json};
use tandem_env::{Action, Observation};
use tandem_policy::{PolicyFactory, Transition};
use tandem_workers::{PythonPolicy, WorkerPolicyFactory};

mod support;

fn factory(entry: &str, kwargs: serde_json::Value) -> WorkerPolicyFactory {
    let mut config = support::config();
    config.python = support::venv_python();
    config.python_path = vec![PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/envs")];
    config.step_deadline = Duration::from_millis(500);
    let kwargs = match kwargs {
        serde_json::Value::Object(map) => map,
        _ => Map::new(),
    };
    WorkerPolicyFactory::new(
        PythonPolicy {
            entry: entry.to_string(),
            kwargs,
        },
        Arc::new(config),
    )
}

fn cartpole() -> tandem_env::EnvSpec {
    tandem_envs::spec("CartPole-v1").expect("CartPole-v1 is built in")
}

#[test]
fn a_python_policy_acts_and_observes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let log = dir.path().join("log.jsonl");
    let factory = factory("agents:Learner", json!({"log": log}));
    assert!(!factory.acts_inline());
    factory
        .check(&cartpole(), 0)
        .expect("the policy can be made");
    let mut policy = factory.create(&cartpole(), 0).expect("created");
    let made = |log: &std::path::Path| {
        std::fs::read_to_string(log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("made"))
            .count()
    };
    let before = made(&log); // check() made one too
    policy.prepare();
    assert_eq!(
        made(&log),
        before + 1,
        "prepare starts the worker and makes the policy"
    );
    policy.reset(7);
    // The learner pushes toward where the pole falls: angle + 0.5 * angular velocity.
    let right = Observation::vector(vec![0.0, 0.0, 0.1, 0.0]);
    let left = Observation::vector(vec![0.0, 0.0, -0.1, 0.1]);
    assert_eq!(policy.act(&right).expect("acts"), Action::Discrete(1));
    assert_eq!(policy.act(&left).expect("acts"), Action::Discrete(0));
    assert!(policy.observes());
    policy
        .observe(&Transition {
            observation: left,
            action: Action::Discrete(1),
            reward: 1.0,
            feedback: Some(-0.5),
            done: true,
        })
        .expect("observes");
    drop(policy);
    let text = std::fs::read_to_string(&log).expect("log written");
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON"))
        .collect();
    let lines: Vec<&serde_json::Value> = lines.iter().filter(|l| l.get("made").is_none()).collect();
    assert_eq!(*lines[0], json!({"reset": 7}));
    assert_eq!(
        *lines[1],
        json!({"observation": [0.0, 0.0, -0.1, 0.1], "action": 1, "reward": 1.0, "feedback": -0.5, "done": true})
    );
}

#[test]
fn a_hanging_or_misbehaving_policy_fails_with_the_reason() {
    let obs = Observation::vector(vec![0.0; 4]);
    let mut sleeper = factory("agents:Sleeper", json!({}))
        .create(&cartpole(), 0)
        .expect("created");
    assert_eq!(sleeper.act(&obs).expect("first act"), Action::Discrete(1));
    let started = Instant::now();
    let hung = sleeper.act(&obs).expect_err("hangs");
    let waited = started.elapsed();
    eprintln!("a hanging policy failed after {waited:?}: {hung}");
    assert!(
        hung.to_string().contains("did not answer act within 0.5 s"),
        "{hung}"
    );
    assert!(waited < Duration::from_secs(5), "{waited:?}");

    let mut outsider = factory("agents:Outsider", json!({}))
        .create(&cartpole(), 0)
        .expect("created");
    let outside = outsider.act(&obs).expect_err("outside the space");
    assert!(outside.to_string().contains("act returned 2"), "{outside}");

    // A missing agent is refused by create; a missing factory by check.
    assert!(
        factory("agents:Learner", json!({}))
            .create(&cartpole(), 1)
            .is_err()
    );
    let missing = factory("agents:Nobody", json!({}))
        .check(&cartpole(), 0)
        .expect_err("no such factory");
    assert!(
        missing.to_string().contains("agents has no Nobody"),
        "{missing}"
    );
}
