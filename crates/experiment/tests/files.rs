//! Loading experiment files: the shipped files parse, and every kind of mistake is
//! reported with the right line, column, field and message.

use std::path::PathBuf;

use serde_json::json;
use tandem_env::Action;
use tandem_experiment::{
    ConfigError, DEFAULT_SOURCE, Problem, RenderMode, Scene, SceneKind, default_experiment, load,
    parse,
};

/// A valid file with one game scene; tests replace parts of it to break it.
const VALID: &str = r#"id = "t"
title = "Test"

[[scene]]
kind = "game"
id = "play"
title = "Play"
env = "CartPole-v1"
episodes = 2
default_action = 0
[scene.keys]
ArrowLeft = 0
ArrowRight = 1

[[scene]]
kind = "end"
id = "end"
title = "Done"
markdown = "Thanks"
"#;

/// The problems `source` produces; panics if it parses.
fn problems_in(source: &str) -> Vec<Problem> {
    match parse(source, "t.toml") {
        Ok(_) => panic!("expected problems, but the file parsed:\n{source}"),
        Err(e) => e.problems().to_vec(),
    }
}

/// `VALID` with `from` replaced by `to` (which must occur).
fn edit(from: &str, to: &str) -> String {
    assert!(VALID.contains(from), "{from:?} is not in VALID");
    VALID.replacen(from, to, 1)
}

/// The 1-based line and column of the first `needle` in `source`.
fn position(source: &str, needle: &str) -> (usize, usize) {
    let offset = source.find(needle).expect("needle in source");
    let before = &source[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// The single problem in `problems`, checked to be at `at` with `field`.
fn only<'p>(problems: &'p [Problem], at: (usize, usize), field: &str) -> &'p Problem {
    assert_eq!(problems.len(), 1, "{problems:#?}");
    let p = &problems[0];
    assert_eq!((p.line, p.column), at, "{p}");
    assert_eq!(p.field, field, "{p}");
    p
}

fn examples_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

/// The built-in experiment parses and has the promised shape.
#[test]
fn default_experiment_parses() {
    let experiment = default_experiment();
    let kinds: Vec<SceneKind> = experiment.scenes.iter().map(Scene::kind).collect();
    assert_eq!(
        kinds,
        [
            SceneKind::Info,
            SceneKind::Info,
            SceneKind::Game,
            SceneKind::Survey,
            SceneKind::End
        ]
    );
    assert_eq!(experiment.source, DEFAULT_SOURCE);
    let consent = experiment.scenes[0].as_info().expect("info");
    assert!(consent.checkbox.is_some());
    let game = experiment.scenes[2].as_game().expect("game");
    assert_eq!(game.env, "CartPole-v1");
    assert_eq!(game.env_spec.id, "CartPole-v1");
    assert_eq!((game.episodes, game.time_limit_s), (Some(3), Some(90)));
    let survey = experiment.scenes[3].as_survey().expect("survey");
    assert!(survey.questions.iter().any(|q| !q.required));
    let end = experiment.scenes[4].as_end().expect("end");
    assert!(end.completion_code.is_some());
}

/// Both example files parse, and use what they are meant to demonstrate.
#[test]
fn example_files_parse() {
    let prolific =
        load(&examples_dir().join("cartpole_prolific.toml")).unwrap_or_else(|e| panic!("{e}"));
    let kinds: Vec<&str> = prolific
        .scenes
        .iter()
        .filter_map(Scene::as_survey)
        .flat_map(|s| &s.questions)
        .map(|q| q.kind.name())
        .collect();
    assert_eq!(kinds, ["likert", "single", "multiple", "text"]);
    let end = prolific.scenes.last().and_then(Scene::as_end).expect("end");
    assert!(end.redirect.is_some() && end.completion_code.is_some());

    let mturk =
        load(&examples_dir().join("mountaincar_mturk.toml")).unwrap_or_else(|e| panic!("{e}"));
    let game = mturk.scenes.iter().find_map(Scene::as_game).expect("game");
    assert_eq!(game.env, "MountainCar-v0");
    assert_eq!((game.episodes, game.time_limit_s), (None, Some(180)));
    assert!(
        game.keymap(0)
            .expect("keys")
            .bindings()
            .iter()
            .any(|b| b.keys.len() == 2)
    );
}

/// A missing file is a read error naming the file, not a panic.
#[test]
fn missing_file_is_a_read_error() {
    let error = load(&examples_dir().join("no-such-file.toml")).unwrap_err();
    assert!(matches!(error, ConfigError::Read { .. }));
    assert!(error.to_string().contains("no-such-file.toml"), "{error}");
}

/// A TOML syntax error is reported at its line and column.
#[test]
fn syntax_error_has_line_and_column() {
    let source = edit("episodes = 2", "episodes = = 2");
    let problems = problems_in(&source);
    let p = only(&problems, (9, 12), "");
    assert_eq!(position(&source, "= 2"), (9, 12));
    assert!(p.to_string().starts_with("t.toml:9:12: "), "{p}");
}

/// An unquoted chord is a syntax error with a hint to quote it.
#[test]
fn unquoted_chord_gets_a_hint() {
    let source = edit("ArrowRight = 1", "ArrowRight+Space = 1");
    let problems = problems_in(&source);
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert_eq!(problems[0].line, 13);
    assert!(
        problems[0]
            .message
            .contains("a chord must be quoted: \"ArrowRight+Space\""),
        "{}",
        problems[0]
    );
}

/// An unknown field points at its key and suggests the field meant.
#[test]
fn unknown_field_has_position_and_suggestion() {
    let source = edit("episodes = 2", "episodes = 2\nfsp = 20");
    let problems = problems_in(&source);
    let p = only(&problems, position(&source, "fsp"), "scene[0].fsp");
    assert!(p.message.contains("did you mean \"fps\"?"), "{p}");

    // A field of another scene kind says which kind has it.
    let source = edit("episodes = 2", "episodes = 2\ncheckbox = \"ok\"");
    let problems = problems_in(&source);
    let p = only(
        &problems,
        position(&source, "checkbox"),
        "scene[0].checkbox",
    );
    assert!(p.message.contains("only info scenes have it"), "{p}");
}

/// An unknown environment lists the known ids, at the value's position.
#[test]
fn unknown_env_lists_known_ids() {
    let source = edit("\"CartPole-v1\"", "\"CartPol-v1\"");
    let problems = problems_in(&source);
    let p = only(
        &problems,
        position(&source, "\"CartPol-v1\""),
        "scene[0].env",
    );
    assert_eq!((p.line, p.column), (8, 7));
    assert!(p.message.contains("did you mean \"CartPole-v1\"?"), "{p}");
    for id in tandem_envs::ids() {
        assert!(p.message.contains(id), "{p}");
    }
}

/// Actions outside the action space are reported where they are written, in the
/// key map and in default_action, together.
#[test]
fn out_of_range_actions_point_at_their_lines() {
    let source = edit("default_action = 0", "default_action = 2").replacen(
        "ArrowRight = 1",
        "ArrowRight = 5",
        1,
    );
    let problems = problems_in(&source);
    assert_eq!(problems.len(), 2, "{problems:#?}");
    let (default, key) = (&problems[0], &problems[1]);
    assert_eq!((default.line, default.column), position(&source, "2\n["));
    assert_eq!(default.field, "scene[0].default_action");
    assert_eq!((key.line, key.column), position(&source, "5\n"));
    assert_eq!((key.line, key.column), (13, 14));
    assert_eq!(key.field, "scene[0].keys.ArrowRight");
    assert!(
        key.message
            .contains("5 is not an action of CartPole-v1: its actions are the integers 0 to 1"),
        "{key}"
    );
    // A value of the wrong shape is reported the same way.
    let problems = problems_in(&edit("ArrowLeft = 0", "ArrowLeft = \"left\""));
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert!(
        problems[0].message.contains("\"left\" is not an action"),
        "{}",
        problems[0]
    );
}

/// A misspelt key name is reported at the key, with the name meant.
#[test]
fn bad_key_name_has_suggestion() {
    let source = edit("ArrowLeft = 0", "arrowleft = 0");
    let problems = problems_in(&source);
    let p = only(&problems, (12, 1), "scene[0].keys.arrowleft");
    assert!(p.message.contains("did you mean \"ArrowLeft\"?"), "{p}");

    let source = edit("ArrowLeft = 0", "\"ArrowLeft+Spce\" = 0");
    let problems = problems_in(&source);
    let p = only(&problems, (12, 1), "scene[0].keys.\"ArrowLeft+Spce\"");
    assert!(p.message.contains("did you mean \"Space\"?"), "{p}");

    // The same keys in another order are the same chord.
    let source = edit(
        "ArrowRight = 1",
        "ArrowRight = 1\n\"ArrowLeft+Space\" = 0\n\"Space+ArrowLeft\" = 1",
    );
    let problems = problems_in(&source);
    let p = only(
        &problems,
        position(&source, "\"Space+ArrowLeft\""),
        "scene[0].keys.\"Space+ArrowLeft\"",
    );
    assert!(p.message.contains("already maps the same keys"), "{p}");
}

/// An experiment whose last scene is not an end scene is refused, at that
/// scene's kind; so is an end scene before the last.
#[test]
fn missing_end_scene() {
    let source = VALID
        .split("\n[[scene]]\nkind = \"end\"")
        .next()
        .expect("split");
    let problems = problems_in(source);
    let p = only(&problems, (5, 8), "scene[0].kind");
    assert!(
        p.message.contains("the last scene must be an end scene"),
        "{p}"
    );

    let end_first = format!(
        "id = \"t\"\ntitle = \"T\"\n[[scene]]\nkind = \"end\"\nid = \"a\"\ntitle = \"A\"\nmarkdown = \"x\"\n{}",
        &VALID[VALID.find("[[scene]]").expect("scene")..]
    );
    let problems = problems_in(&end_first);
    let p = only(&problems, (4, 8), "scene[0].kind");
    assert!(
        p.message
            .contains("only the last scene may be an end scene"),
        "{p}"
    );

    let problems = problems_in("id = \"t\"\ntitle = \"T\"\n");
    let p = only(&problems, (1, 1), "scene");
    assert!(p.message.contains("at least one [[scene]]"), "{p}");
}

/// A repeated scene id is reported at the second use, naming the first.
#[test]
fn duplicate_scene_ids() {
    let source = edit("id = \"end\"", "id = \"play\"");
    let problems = problems_in(&source);
    let p = only(&problems, (17, 6), "scene[1].id");
    assert!(
        p.message.contains("already used by scene[0] (line 6)"),
        "{p}"
    );
}

/// A missing required field points at its table's header.
#[test]
fn missing_field_points_at_the_table() {
    let source = edit("default_action = 0\n", "");
    let problems = problems_in(&source);
    let p = only(&problems, (4, 1), "scene[0].default_action");
    assert!(p.message.contains("missing required field"), "{p}");

    let source = edit("episodes = 2\n", "");
    let problems = problems_in(&source);
    let p = only(&problems, (4, 1), "scene[0].episodes");
    assert!(p.message.contains("episodes, time_limit_s or both"), "{p}");
}

/// Every problem in a file is reported in one go, in file order, and the
/// error displays them as file:line:column: field: message.
#[test]
fn all_problems_are_reported_at_once() {
    let source = edit("id = \"t\"", "id = \"T t\"")
        .replacen("\"CartPole-v1\"", "\"Nope-v0\"", 1)
        .replacen("ArrowLeft = 0", "Left = 0", 1)
        .replacen(
            "markdown = \"Thanks\"",
            "markdown = \"Thanks\"\ncolor = 1",
            1,
        );
    let error = parse(&source, "t.toml").unwrap_err();
    let fields: Vec<&str> = error.problems().iter().map(|p| p.field.as_str()).collect();
    assert_eq!(
        fields,
        ["id", "scene[0].env", "scene[0].keys.Left", "scene[1].color"]
    );
    let text = error.to_string();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert!(
        lines[0].starts_with("t.toml:1:6: id: \"T t\" is not a valid id"),
        "{text}"
    );
    assert!(lines[2].starts_with("t.toml:12:1: scene[0].keys.Left: unknown key name \"Left\" (did you mean \"ArrowLeft\"?)"), "{text}");
}

/// Wrong value types are reported with what was expected.
#[test]
fn wrong_types_say_what_was_expected() {
    let problems = problems_in(&edit("episodes = 2", "episodes = \"two\""));
    let p = only(&problems, (9, 12), "scene[0].episodes");
    assert_eq!(p.message, "expected an integer, found a string");

    let problems = problems_in(&edit("episodes = 2", "episodes = 0"));
    let p = only(&problems, (9, 12), "scene[0].episodes");
    assert_eq!(p.message, "must be between 1 and 10000, not 0");
}

/// Scenes become the JSON docs/WIRE.md describes.
#[test]
fn client_json_matches_the_wire_doc() {
    let experiment = parse(VALID, "t.toml").unwrap_or_else(|e| panic!("{e}"));
    let game = experiment.scenes[0].to_client_json();
    assert_eq!(
        game,
        json!({
            "kind": "game", "id": "play", "title": "Play", "instructions_html": "",
            "fps": 30, "render": "sprites", "canvas": {"width": 600, "height": 400},
            "keys": ["ArrowLeft", "ArrowRight"], "episodes": 2, "time_limit_s": null,
            "multiplayer": false, "agents": ["agent_0"],
        })
    );
    let game = experiment.scenes[0].as_game().expect("game");
    assert_eq!(game.render, RenderMode::Sprites);
    assert_eq!(
        game.keymap(0).map(|k| &k.default_action),
        Some(&Action::Discrete(0))
    );
    assert_eq!(game.max_steps, Some(500));
    assert_eq!(
        game.to_config_json(),
        json!({
            "scene": "play", "env": "CartPole-v1", "env_version": game.env_spec.version,
            "fps": 30, "episodes": 2, "time_limit_s": null, "max_steps": 500,
            "render": "sprites", "seed": null, "humans": 1, "human_timeout_s": null,
            "reconnect_grace_s": 30,
            "seats": [{
                "agent": "agent_0", "human": true, "input": "action", "policy": null,
                "fallback": null, "feedback": [],
                "keys": {
                    "default_action": 0,
                    "keys": [
                        {"chord": "ArrowLeft", "keys": ["ArrowLeft"], "action": 0},
                        {"chord": "ArrowRight", "keys": ["ArrowRight"], "action": 1},
                    ],
                },
            }],
        })
    );

    let end = experiment.scenes[1].to_client_json();
    assert_eq!(
        end,
        json!({"kind": "end", "id": "end", "title": "Done", "html": "<p>Thanks</p>\n",
               "completion_code": null, "redirect_url": null})
    );
    assert_eq!(
        experiment.client_json(),
        json!({"id": "t", "title": "Test"})
    );

    let default = default_experiment();
    let info = default.scenes[0].to_client_json();
    assert_eq!(
        info["checkbox"],
        json!("I have read the above and agree to take part.")
    );
    assert_eq!(info["button"], json!("Start"));
    let survey = default.scenes[3].to_client_json();
    assert_eq!(
        survey["questions"][0],
        json!({"id": "difficulty", "prompt": "How difficult was it to keep the pole upright?",
               "kind": "likert", "required": true, "scale": 7,
               "low_label": "Very easy", "high_label": "Very difficult"})
    );
    assert_eq!(
        survey["questions"][2],
        json!({"id": "comments", "prompt": "Anything else you would like to tell us?",
               "kind": "text", "required": false, "multiline": true, "max_length": 1000})
    );
}

/// Every scene and seat of the shipped files travels as a typed `scene` or
/// `seat` message and comes back unchanged, and the JSON methods the server
/// calls are the views, field for field.
#[test]
fn views_travel_as_wire_messages() {
    use tandem_experiment::ExternalIds;
    use tandem_wire::{SceneMessage, SeatMessage, ServerMessage};

    let ids = ExternalIds {
        participant: "p-1".into(),
        prolific_pid: Some("abc".into()),
        ..ExternalIds::default()
    };
    let mut experiments = vec![default_experiment()];
    for name in [
        "cartpole_prolific",
        "mountaincar_mturk",
        "kitchen_pairs",
        "assisted_cartpole",
    ] {
        let path = examples_dir().join(format!("{name}.toml"));
        experiments.push(load(&path).unwrap_or_else(|e| panic!("{e}")));
    }
    for experiment in &experiments {
        let hello = ServerMessage::hello("p-1", experiment.view());
        assert_eq!(ServerMessage::from_text(&hello.to_text()).ok(), Some(hello));
        assert_eq!(
            serde_json::to_value(experiment.view()).ok(),
            Some(experiment.client_json())
        );
        for (index, scene) in experiment.scenes.iter().enumerate() {
            assert_eq!(
                serde_json::to_value(scene.view()).ok(),
                Some(scene.to_client_json())
            );
            assert_eq!(
                serde_json::to_value(scene.view_for(&ids)).ok(),
                Some(scene.to_client_json_for(&ids))
            );
            let message = ServerMessage::Scene(SceneMessage {
                index,
                count: experiment.scenes.len(),
                step: index,
                scene: scene.view_for(&ids),
            });
            assert_eq!(
                ServerMessage::from_text(&message.to_text()).ok(),
                Some(message)
            );
            for seat in scene.as_game().into_iter().flat_map(|g| &g.seats) {
                assert_eq!(
                    serde_json::to_value(seat.view()).ok(),
                    Some(seat.client_json())
                );
                let message = ServerMessage::Seat(SeatMessage {
                    seat: seat.view(),
                    others: Vec::new(),
                });
                assert_eq!(
                    ServerMessage::from_text(&message.to_text()).ok(),
                    Some(message)
                );
            }
        }
    }
}
