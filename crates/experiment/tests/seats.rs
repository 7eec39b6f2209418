//! Seats, lobby settings and `[policy.NAME]` tables: what a valid file means,
//! and each mistake reported at its field with a message that says what to do.

use tandem_env::Action;
use tandem_experiment::{InputKind, Problem, SeatRole, parse};

/// A two-chef kitchen; tests replace parts of it.
const KITCHEN: &str = r#"id = "k"
title = "Kitchen"

[policy.model]
kind = "onnx"
path = "models/m.onnx"
sampling = "sample"
temperature = 0.5
grayscale = true
resize = [84, 84]
frame_stack = 4
max_and_skip = 4
scale = 0.00392

[[scene]]
kind = "game"
id = "cook"
title = "Cook"
env = "Kitchen-v0"
time_limit_s = 60
humans = 2
reconnect_grace_s = 10
default_action = 0
[scene.keys]
ArrowUp = 1
Space = 5

[[scene.seat]]
agent = "chef_0"
human = true
fallback = "scripted"

[[scene.seat]]
agent = "chef_1"
human = true
fallback = "model"

[[scene]]
kind = "end"
id = "end"
title = "Done"
markdown = "Thanks"
"#;

fn edit(from: &str, to: &str) -> String {
    assert!(KITCHEN.contains(from), "{from:?} is not in the file");
    KITCHEN.replacen(from, to, 1)
}

fn problems_in(source: &str) -> Vec<Problem> {
    match parse(source, "dir/k.toml") {
        Ok(_) => panic!("expected problems, but the file parsed:\n{source}"),
        Err(e) => e.problems().to_vec(),
    }
}

/// The one problem of `source`, which must be at `field` and say `says`.
fn one_problem(source: &str, field: &str, says: &str) {
    let problems = problems_in(source);
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert_eq!(problems[0].field, field, "{}", problems[0]);
    assert!(
        problems[0].message.contains(says),
        "{:?} does not say {says:?}",
        problems[0].message
    );
}

/// A valid two-seat file: seats in agent order, shared keys, lobby defaults,
/// the model's settings and its path resolved against the file's folder.
#[test]
fn seats_and_policies_are_read() {
    let e = parse(KITCHEN, "dir/k.toml").unwrap_or_else(|e| panic!("{e}"));
    let game = e.scenes[0].as_game().expect("game");
    assert_eq!(game.seats.len(), 2);
    assert_eq!((game.humans, game.reconnect_grace_s), (2, 10));
    assert_eq!(
        game.human_timeout_s,
        Some(tandem_experiment::DEFAULT_HUMAN_TIMEOUT_S)
    );
    assert!(game.is_multiplayer());
    let chef_1 = game.seats[1].human().expect("human seat");
    assert_eq!(chef_1.input, InputKind::Action);
    assert_eq!(
        chef_1.fallback.as_ref().map(|f| f.name.as_str()),
        Some("model")
    );
    assert!(
        chef_1
            .fallback
            .as_ref()
            .is_some_and(|f| f.location.starts_with("dir/k.toml:"))
    );
    let keys = game.keymap(1).expect("shared keys");
    assert_eq!(
        keys.action_for(&["Space".into()]).action,
        Action::Discrete(5)
    );
    let model = &e.policies[0];
    let onnx = model.onnx().expect("an onnx policy");
    assert_eq!(onnx.path, std::path::Path::new("dir/models/m.onnx"));
    assert_eq!(onnx.preprocess.resize, Some((84, 84)));
    assert_eq!(onnx.preprocess.frame_stack, 4);
    assert_eq!(e.policy_uses().len(), 2);
}

/// An AI seat, and a feedback seat with its default keys.
#[test]
fn ai_and_feedback_seats() {
    let source = edit(
        "agent = \"chef_1\"\nhuman = true\nfallback = \"model\"",
        "agent = \"chef_1\"\nai = \"scripted\"",
    )
    .replace(
        "agent = \"chef_0\"\nhuman = true\nfallback = \"scripted\"",
        "agent = \"chef_0\"\nhuman = true\ninput = \"feedback\"\npolicy = \"random\"",
    )
    .replace("humans = 2\n", "");
    let e = parse(&source, "k.toml").unwrap_or_else(|e| panic!("{e}"));
    let game = e.scenes[0].as_game().expect("game");
    assert_eq!((game.humans, game.human_timeout_s), (1, None));
    assert!(!game.is_multiplayer());
    assert!(matches!(&game.seats[1].role, SeatRole::Ai(ai) if ai.policy.name == "scripted"));
    let feedback = game.seats[0].human().expect("human");
    assert_eq!(feedback.input, InputKind::Feedback);
    let keys: Vec<(&str, f64)> = feedback
        .feedback_keys
        .iter()
        .map(|f| (f.key.as_str(), f.value))
        .collect();
    assert_eq!(keys, [("ArrowUp", 1.0), ("ArrowDown", -1.0)]);
    assert!(feedback.keys.is_none());
}

/// Every seat mistake is reported where it is written.
#[test]
fn seat_mistakes_are_reported_at_their_field() {
    one_problem(
        &edit("fallback = \"model\"", "fallback = \"scriptd\""),
        "scene[0].seat[1].fallback",
        "did you mean \"scripted\"",
    );
    one_problem(
        &edit("agent = \"chef_1\"", "agent = \"chef_2\""),
        "scene[0].seat[1].agent",
        "Kitchen-v0 has no agent \"chef_2\"",
    );
    one_problem(
        &edit("agent = \"chef_1\"", "agent = \"chef_0\""),
        "scene[0].seat[1].agent",
        "already has a seat",
    );
    one_problem(
        &edit(
            "agent = \"chef_1\"\nhuman = true",
            "agent = \"chef_1\"\nhuman = true\nai = \"random\"",
        ),
        "scene[0].seat[1].human",
        "exactly one of human = true or ai",
    );
    one_problem(
        &edit("humans = 2", "humans = 3"),
        "scene[0].humans",
        "only 2 seats have human = true",
    );
    one_problem(
        &edit("fallback = \"scripted\"", "input = \"correction\""),
        "scene[0].seat[0].policy",
        "the policy that acts while the participant gives correction",
    );
    one_problem(
        &edit(
            "fallback = \"scripted\"",
            "input = \"feedback\"\npolicy = \"noop\"\n[scene.seat.feedback]\n\"ArrowUp+Space\" = 1",
        ),
        "scene[0].seat[0].feedback.\"ArrowUp+Space\"",
        "one key, not a chord",
    );
}

/// A multi-agent environment needs its seats; a policy table needs a known
/// kind and may not take a built-in's name.
#[test]
fn missing_seats_and_bad_policy_tables() {
    let no_seats = KITCHEN
        .split("[[scene.seat]]")
        .next()
        .map(|head| format!("{head}[[scene]]\nkind = \"end\"\nid = \"end\"\ntitle = \"Done\"\nmarkdown = \"Thanks\"\n"))
        .expect("head");
    one_problem(
        &no_seats,
        "scene[0].seat",
        "Kitchen-v0 has 2 agents (chef_0, chef_1)",
    );
    one_problem(
        &edit("kind = \"onnx\"", "kind = \"torch\""),
        "policy.model.kind",
        "unknown policy kind \"torch\"",
    );
    one_problem(
        &edit("[policy.model]", "[policy.random]")
            .replace("fallback = \"model\"", "fallback = \"noop\""),
        "policy.random",
        "is a built-in policy",
    );
    one_problem(
        &edit("resize = [84, 84]", "resize = [84]"),
        "policy.model.resize",
        "[height, width]",
    );
}

/// The model policy of [`KITCHEN`] rewritten as a Python one.
fn python_policy(table: &str) -> String {
    let start = KITCHEN.find("[policy.model]").expect("policy table");
    let end = KITCHEN.find("[[scene]]").expect("scene");
    format!("{}{table}\n{}", &KITCHEN[..start], &KITCHEN[end..])
}

/// A Python policy names its factory and may give it keyword arguments.
#[test]
fn python_policies() {
    let e = parse(
        &python_policy(
            "[policy.model]\nkind = \"python\"\nentry = \"my_agents.chefs:Chef\"\n\
             [policy.model.kwargs]\nepsilon = 0.1\nlayers = [64, 64]",
        ),
        "k.toml",
    )
    .expect("valid");
    let tandem_experiment::PolicyKind::Python { entry, kwargs } = &e.policies[0].kind else {
        panic!("a python policy: {:?}", e.policies[0]);
    };
    assert_eq!(entry, "my_agents.chefs:Chef");
    assert_eq!(
        serde_json::Value::Object(kwargs.clone()),
        serde_json::json!({"epsilon": 0.1, "layers": [64, 64]})
    );
    assert!(e.policies[0].onnx().is_none());
}

/// A Python policy without an entry, with a malformed one, or with another
/// kind's fields is reported at the field.
#[test]
fn bad_python_policies() {
    one_problem(
        &python_policy("[policy.model]\nkind = \"python\""),
        "policy.model.entry",
        "missing required field \"entry\"",
    );
    for entry in [
        "my_agents",
        "my_agents:",
        ":Chef",
        "my agents:Chef",
        "a..b:C",
    ] {
        one_problem(
            &python_policy(&format!(
                "[policy.model]\nkind = \"python\"\nentry = {entry:?}"
            )),
            "policy.model.entry",
            "\"module:Factory\"",
        );
    }
    one_problem(
        &python_policy("[policy.model]\nkind = \"python\"\nentry = \"a:B\"\npath = \"m.onnx\""),
        "policy.model.path",
        "it belongs to a policy of kind \"onnx\"",
    );
    one_problem(
        &python_policy("[policy.model]\nkind = \"python\"\nentry = \"a:B\"\nkwargs = 3"),
        "policy.model.kwargs",
        "kwargs is a table of keyword arguments",
    );
    one_problem(
        &edit("kind = \"onnx\"", "kind = \"onnx\"\nentry = \"a:B\""),
        "policy.model.entry",
        "it belongs to a policy of kind \"python\"",
    );
}
