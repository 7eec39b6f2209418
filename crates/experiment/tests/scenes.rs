//! What scenes do at run time: resolve held keys to actions, check survey answers
//! and fill redirect templates.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use tandem_env::Action;
use tandem_experiment::{ExternalIds, GameScene, KeyMap, SurveyScene, parse};

/// Wraps scenes in a minimal valid experiment and parses it.
fn scenes(scenes: &str) -> Vec<tandem_experiment::Scene> {
    let source = format!(
        "id = \"t\"\ntitle = \"T\"\n{scenes}\n[[scene]]\nkind = \"end\"\nid = \"zz-end\"\ntitle = \"E\"\nmarkdown = \"x\"\n"
    );
    parse(&source, "t.toml")
        .unwrap_or_else(|e| panic!("{e}\n{source}"))
        .scenes
}

fn mountain_car() -> GameScene {
    let scenes = scenes(
        r#"
[[scene]]
kind = "game"
id = "g"
title = "G"
env = "MountainCar-v0"
time_limit_s = 60
default_action = 1
[scene.keys]
ArrowLeft = 0
ArrowRight = 2
"ArrowLeft+ArrowRight" = 1
Space = 0
"Space+ArrowRight+ArrowLeft" = 2
a = 0
"#,
    );
    scenes[0].as_game().expect("game").clone()
}

/// The key map of the scene's single human seat.
fn keymap(game: &GameScene) -> &KeyMap {
    game.keymap(0).expect("a human seat with keys")
}

fn held(keys: &[&str]) -> Vec<String> {
    keys.iter().map(|k| k.to_string()).collect()
}

/// A chord beats the single keys it contains, and the chord with the most held
/// keys wins.
#[test]
fn chord_beats_single_key() {
    let game = mountain_car();
    let r = keymap(&game).action_for(&held(&["ArrowLeft"]));
    assert_eq!(
        (r.action, r.chord.as_deref()),
        (Action::Discrete(0), Some("ArrowLeft"))
    );
    let r = keymap(&game).action_for(&held(&["ArrowRight", "ArrowLeft"]));
    assert_eq!(
        (r.action, r.chord.as_deref()),
        (Action::Discrete(1), Some("ArrowLeft+ArrowRight"))
    );
    let r = keymap(&game).action_for(&held(&["ArrowLeft", "Space", "ArrowRight"]));
    assert_eq!(
        (r.action, r.chord.as_deref()),
        (Action::Discrete(2), Some("Space+ArrowRight+ArrowLeft"))
    );
    // Equal-sized matches: the first in the file wins.
    let r = keymap(&game).action_for(&held(&["Space", "ArrowRight"]));
    assert_eq!(r.chord.as_deref(), Some("ArrowRight"));
    assert_eq!(
        keymap(&game).key_names(),
        ["ArrowLeft", "ArrowRight", "Space", "a"]
    );
}

/// Keys the map does not use are ignored.
#[test]
fn unmapped_keys_are_ignored() {
    let game = mountain_car();
    let r = keymap(&game).action_for(&held(&["x", "ArrowRight", "Enter"]));
    assert_eq!(
        (r.action, r.chord.as_deref()),
        (Action::Discrete(2), Some("ArrowRight"))
    );
    // A shifted letter and a literal " " match their bindings.
    assert_eq!(
        keymap(&game).action_for(&held(&["A"])).chord.as_deref(),
        Some("a")
    );
    assert_eq!(
        keymap(&game).action_for(&held(&[" "])).chord.as_deref(),
        Some("Space")
    );
}

/// With no binding matched, the default action applies and no chord is named.
#[test]
fn default_action_when_nothing_matches() {
    let game = mountain_car();
    for keys in [&[][..], &["x"][..], &["Enter", "b"][..]] {
        let r = keymap(&game).action_for(&held(keys));
        assert_eq!((r.action, r.chord), (Action::Discrete(1), None));
    }
}

fn survey() -> SurveyScene {
    let scenes = scenes(
        r#"
[[scene]]
kind = "survey"
id = "s"
title = "S"
[[scene.question]]
id = "rate"
kind = "likert"
prompt = "Rate"
scale = 5
[[scene.question]]
id = "pick"
kind = "single"
prompt = "Pick"
options = ["a", "b"]
[[scene.question]]
id = "many"
kind = "multiple"
prompt = "Many"
options = ["x", "y", "z"]
required = false
[[scene.question]]
id = "say"
kind = "text"
prompt = "Say"
max_length = 5
"#,
    );
    scenes[0].as_survey().expect("survey").clone()
}

fn errors(answers: Value) -> BTreeMap<String, String> {
    match survey().validate(&answers) {
        Ok(ok) => panic!("expected errors, got {ok:?}"),
        Err(errors) => errors,
    }
}

/// Valid answers come back normalized, in question order, optional ones null.
#[test]
fn survey_accepts_and_normalizes() {
    let ok = survey()
        .validate(&json!({"say": "  hi ", "pick": "b", "rate": 5}))
        .expect("valid");
    assert_eq!(
        ok,
        vec![
            ("rate".to_string(), json!(5)),
            ("pick".to_string(), json!("b")),
            ("many".to_string(), Value::Null),
            ("say".to_string(), json!("hi")),
        ]
    );
    let ok = survey()
        .validate(&json!({"say": "x", "pick": "a", "rate": 1, "many": ["z", "x"]}))
        .expect("valid");
    assert_eq!(ok[2].1, json!(["z", "x"]));
}

/// Required questions must be answered; null, omitted and blank text all count
/// as unanswered.
#[test]
fn survey_missing_required() {
    let e = errors(json!({"rate": null, "say": "   "}));
    assert_eq!(e.keys().collect::<Vec<_>>(), ["pick", "rate", "say"]);
    assert_eq!(e["pick"], "Please answer this question.");
}

/// Options must be the scene's options, distinct for multiple choice.
#[test]
fn survey_bad_option() {
    let e = errors(json!({"rate": 3, "say": "ok", "pick": "c", "many": ["x", "x"]}));
    assert_eq!(e["pick"], "Please choose one of the options.");
    assert_eq!(e["many"], "Please choose each option at most once.");
    let e = errors(json!({"rate": 3, "say": "ok", "pick": ["a"], "many": ["w"]}));
    assert_eq!(e.keys().collect::<Vec<_>>(), ["many", "pick"]);
}

/// Likert answers are integers from 1 to the scale.
#[test]
fn survey_likert_out_of_range() {
    for bad in [json!(0), json!(6), json!(2.5), json!("3")] {
        let e = errors(json!({"rate": bad, "pick": "a", "say": "ok"}));
        assert_eq!(e["rate"], "Please choose a point from 1 to 5.", "{bad}");
    }
}

/// Text longer than max_length (in characters) is refused.
#[test]
fn survey_text_too_long() {
    let e = errors(json!({"rate": 1, "pick": "a", "say": "sechs!"}));
    assert_eq!(
        e["say"],
        "Please shorten your answer to at most 5 characters (it has 6)."
    );
    // Characters, not bytes.
    assert!(
        survey()
            .validate(&json!({"rate": 1, "pick": "a", "say": "ééééé"}))
            .is_ok()
    );
}

/// Answers to questions the scene does not have, or answers that are not an
/// object, are reported under "_".
#[test]
fn survey_unknown_question() {
    let e = errors(json!({"rate": 1, "pick": "a", "say": "ok", "extra": 1}));
    assert_eq!(e.keys().collect::<Vec<_>>(), ["_"]);
    assert!(e["_"].contains("extra"), "{}", e["_"]);
    let e = errors(json!(["rate"]));
    assert_eq!(e.keys().collect::<Vec<_>>(), ["_"]);
}

/// An experiment with only an end scene with these extra fields.
fn end_scene(fields: &str) -> Result<tandem_experiment::EndScene, tandem_experiment::ConfigError> {
    let source = format!(
        "id = \"t\"\ntitle = \"T\"\n[[scene]]\nkind = \"end\"\nid = \"end\"\ntitle = \"E\"\nmarkdown = \"Bye\"\n{fields}\n"
    );
    let experiment = parse(&source, "t.toml")?;
    Ok(experiment.scenes[0].as_end().expect("end").clone())
}

/// Redirect templates fill each placeholder URL-encoded, and missing ids
/// become empty.
#[test]
fn redirect_is_filled_and_encoded() {
    let end = end_scene(
        "completion_code = \"C 1&2\"\nredirect = \"https://example.org/done?cc={completion_code}&p={participant}&pid={PROLIFIC_PID}&w={workerId}\"",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let ids = ExternalIds {
        participant: "p-1".into(),
        prolific_pid: Some("abc/é=?".into()),
        ..ExternalIds::default()
    };
    let url = "https://example.org/done?cc=C%201%262&p=p-1&pid=abc%2F%C3%A9%3D%3F&w=";
    assert_eq!(end.redirect_url(&ids).as_deref(), Some(url));
    let json = end.client_json(&ids);
    assert_eq!(json["redirect_url"], json!(url));
    assert_eq!(json["completion_code"], json!("C 1&2"));
    let scene = tandem_experiment::Scene::End(end);
    assert_eq!(scene.to_client_json_for(&ids)["redirect_url"], json!(url));
    assert_eq!(scene.to_client_json()["redirect_url"], Value::Null);
}

/// Unknown placeholders, stray braces, non-http URLs and a {completion_code}
/// without a code are refused at load, at the redirect's line and column.
#[test]
fn redirect_template_problems() {
    let cases = [
        (
            "redirect = \"https://x.org/?w={workerID}\"",
            "unknown placeholder {workerID} in the redirect (did you mean \"workerId\"?)",
        ),
        (
            "redirect = \"https://x.org/?w={participant\"",
            "unclosed \"{\"",
        ),
        (
            "redirect = \"https://x.org/?w=participant}\"",
            "unmatched \"}\"",
        ),
        ("redirect = \"javascript:alert(1)\"", "http:// or https://"),
        (
            "redirect = \"https://x.org/?cc={completion_code}\"",
            "has no completion_code",
        ),
    ];
    for (line, expected) in cases {
        let error = end_scene(line).expect_err(line);
        let problems = error.problems();
        assert_eq!(problems.len(), 1, "{error}");
        let p = &problems[0];
        assert_eq!(
            (p.line, p.column, p.field.as_str()),
            (8, 12, "scene[0].redirect"),
            "{p}"
        );
        assert!(p.message.contains(expected), "{p}");
    }
}
