//! Every server message, as the participant page receives it today, decodes into
//! the typed message; every typed message encodes to the same JSON and decodes
//! back; and `docs/WIRE.md` lists exactly the types and codes this crate knows.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use tandem_env::{Shape, Sprite};
use tandem_wire::{
    Canvas, ClientMessage, EndView, ErrorCode, ErrorMessage, ExperimentInfo, FeedbackKey,
    GameState, GameStatus, GameView, Hello, InfoView, InputKind, Invalid, LobbyStatus, Notice,
    NoticeCode, OtherSeat, Pong, QuestionKind, QuestionView, RenderMode, SceneMessage, SceneView,
    SeatMessage, SeatView, ServerMessage, SpriteFrame, SurveyView,
};

fn scene(index: usize, view: SceneView) -> ServerMessage {
    ServerMessage::Scene(SceneMessage {
        index,
        count: 5,
        step: index,
        scene: view,
    })
}

/// One message of every documented type (and every scene kind and question
/// kind), each beside its JSON as the server's hand-built constructors wrote it
/// before this crate (keys in the alphabetical order `serde_json::json!` gives).
fn documented() -> Vec<(&'static str, ServerMessage)> {
    vec![
        (
            r#"{"experiment":{"id":"quick","title":"Quick test"},"participant":"4f1c","protocol":1,"type":"hello"}"#,
            ServerMessage::Hello(Hello {
                protocol: 1,
                participant: "4f1c".into(),
                experiment: ExperimentInfo {
                    id: "quick".into(),
                    title: "Quick test".into(),
                },
            }),
        ),
        (
            r#"{"count":5,"index":0,"scene":{"button":"Start","checkbox":"I agree","html":"<p>Do you agree?</p>\n","id":"consent","kind":"info","title":"Consent"},"step":0,"type":"scene"}"#,
            scene(
                0,
                SceneView::Info(InfoView {
                    id: "consent".into(),
                    title: "Consent".into(),
                    html: "<p>Do you agree?</p>\n".into(),
                    checkbox: Some("I agree".into()),
                    button: "Start".into(),
                }),
            ),
        ),
        (
            r#"{"count":5,"index":1,"scene":{"button":"Continue","checkbox":null,"html":"","id":"instructions","kind":"info","title":"Instructions"},"step":1,"type":"scene"}"#,
            scene(
                1,
                SceneView::Info(InfoView {
                    id: "instructions".into(),
                    title: "Instructions".into(),
                    html: String::new(),
                    checkbox: None,
                    button: "Continue".into(),
                }),
            ),
        ),
        (
            r#"{"count":5,"index":2,"scene":{"agents":["chef_0","chef_1"],"canvas":{"height":400,"width":600},"episodes":null,"fps":15,"id":"kitchen","instructions_html":"<p>Cook.</p>\n","keys":["ArrowUp","ArrowDown","Space"],"kind":"game","multiplayer":true,"render":"sprites","time_limit_s":180,"title":"Cook together"},"step":2,"type":"scene"}"#,
            scene(
                2,
                SceneView::Game(GameView {
                    id: "kitchen".into(),
                    title: "Cook together".into(),
                    instructions_html: "<p>Cook.</p>\n".into(),
                    fps: 15,
                    render: RenderMode::Sprites,
                    canvas: Canvas {
                        width: 600,
                        height: 400,
                    },
                    keys: vec!["ArrowUp".into(), "ArrowDown".into(), "Space".into()],
                    episodes: None,
                    time_limit_s: Some(180),
                    multiplayer: true,
                    agents: vec!["chef_0".into(), "chef_1".into()],
                }),
            ),
        ),
        (
            r#"{"count":5,"index":2,"scene":{"agents":["agent_0"],"canvas":{"height":210,"width":160},"episodes":3,"fps":30,"id":"pong","instructions_html":"","keys":[],"kind":"game","multiplayer":false,"render":"pixels","time_limit_s":null,"title":"Pixels"},"step":2,"type":"scene"}"#,
            scene(
                2,
                SceneView::Game(GameView {
                    id: "pong".into(),
                    title: "Pixels".into(),
                    instructions_html: String::new(),
                    fps: 30,
                    render: RenderMode::Pixels,
                    canvas: Canvas {
                        width: 160,
                        height: 210,
                    },
                    keys: Vec::new(),
                    episodes: Some(3),
                    time_limit_s: None,
                    multiplayer: false,
                    agents: vec!["agent_0".into()],
                }),
            ),
        ),
        (
            r#"{"count":5,"index":3,"scene":{"html":"","id":"survey","kind":"survey","questions":[{"high_label":"Very difficult","id":"difficulty","kind":"likert","low_label":null,"prompt":"How hard was it?","required":true,"scale":7},{"id":"hand","kind":"single","options":["left","right"],"prompt":"Which hand?","required":true},{"id":"tried","kind":"multiple","options":["taps","presses"],"prompt":"What did you try?","required":false},{"id":"comments","kind":"text","max_length":1000,"multiline":true,"prompt":"Anything else?","required":false}],"title":"Survey"},"step":3,"type":"scene"}"#,
            scene(
                3,
                SceneView::Survey(SurveyView {
                    id: "survey".into(),
                    title: "Survey".into(),
                    html: String::new(),
                    questions: vec![
                        QuestionView {
                            id: "difficulty".into(),
                            prompt: "How hard was it?".into(),
                            required: true,
                            kind: QuestionKind::Likert {
                                scale: 7,
                                low_label: None,
                                high_label: Some("Very difficult".into()),
                            },
                        },
                        QuestionView {
                            id: "hand".into(),
                            prompt: "Which hand?".into(),
                            required: true,
                            kind: QuestionKind::Single {
                                options: vec!["left".into(), "right".into()],
                            },
                        },
                        QuestionView {
                            id: "tried".into(),
                            prompt: "What did you try?".into(),
                            required: false,
                            kind: QuestionKind::Multiple {
                                options: vec!["taps".into(), "presses".into()],
                            },
                        },
                        QuestionView {
                            id: "comments".into(),
                            prompt: "Anything else?".into(),
                            required: false,
                            kind: QuestionKind::Text {
                                multiline: true,
                                max_length: 1000,
                            },
                        },
                    ],
                }),
            ),
        ),
        (
            r#"{"count":5,"index":4,"scene":{"completion_code":"C0DE42","html":"<p>All done.</p>\n","id":"end","kind":"end","redirect_url":"https://example.org/done?cc=C0DE42&pid=abc","title":"Thank you"},"step":4,"type":"scene"}"#,
            scene(
                4,
                SceneView::End(EndView {
                    id: "end".into(),
                    title: "Thank you".into(),
                    html: "<p>All done.</p>\n".into(),
                    completion_code: Some("C0DE42".into()),
                    redirect_url: Some("https://example.org/done?cc=C0DE42&pid=abc".into()),
                    mturk_submit: None,
                }),
            ),
        ),
        (
            r#"{"errors":{"_":"Answers were sent for questions this page does not have (x).","difficulty":"Please choose a point from 1 to 5."},"scene":3,"type":"invalid"}"#,
            ServerMessage::Invalid(Invalid {
                scene: 3,
                errors: BTreeMap::from([
                    (
                        "_".to_string(),
                        "Answers were sent for questions this page does not have (x).".to_string(),
                    ),
                    (
                        "difficulty".to_string(),
                        "Please choose a point from 1 to 5.".to_string(),
                    ),
                ]),
            }),
        ),
        (
            r#"{"episode":1,"episodes_done":1,"episodes_total":2,"last_return":23.0,"status":"playing","time_left_s":null,"type":"game"}"#,
            ServerMessage::Game(GameStatus {
                status: GameState::Playing,
                episode: 1,
                episodes_done: 1,
                episodes_total: Some(2),
                time_left_s: None,
                last_return: Some(23.0),
            }),
        ),
        (
            r#"{"episode":0,"episodes_done":0,"episodes_total":null,"last_return":null,"status":"waiting","time_left_s":171.25,"type":"game"}"#,
            ServerMessage::Game(GameStatus {
                status: GameState::Waiting,
                episode: 0,
                episodes_done: 0,
                episodes_total: None,
                time_left_s: Some(171.25),
                last_return: None,
            }),
        ),
        (
            r#"{"episode":2,"episodes_done":2,"episodes_total":2,"last_return":9.0,"status":"ended","time_left_s":null,"type":"game"}"#,
            ServerMessage::Game(GameStatus {
                status: GameState::Ended,
                episode: 2,
                episodes_done: 2,
                episodes_total: Some(2),
                time_left_s: None,
                last_return: Some(9.0),
            }),
        ),
        (
            r#"{"needed":2,"scene":2,"timeout_s":120,"type":"lobby","waited_s":3.1,"waiting":1}"#,
            ServerMessage::Lobby(LobbyStatus {
                scene: 2,
                waiting: 1,
                needed: 2,
                waited_s: 3.1,
                timeout_s: Some(120),
            }),
        ),
        (
            r#"{"others":[{"actor":"policy:scripted","agent":0,"agent_name":"chef_0","human":false}],"seat":{"agent":1,"agent_name":"chef_1","feedback":[],"input":"action","keys":["ArrowUp","Space"]},"type":"seat"}"#,
            ServerMessage::Seat(SeatMessage {
                seat: SeatView {
                    agent: 1,
                    agent_name: "chef_1".into(),
                    input: Some(InputKind::Action),
                    keys: vec!["ArrowUp".into(), "Space".into()],
                    feedback: Some(Vec::new()),
                },
                others: vec![OtherSeat {
                    agent: 0,
                    agent_name: "chef_0".into(),
                    human: false,
                    actor: "policy:scripted".into(),
                }],
            }),
        ),
        (
            r#"{"others":[],"seat":{"agent":0,"agent_name":"agent_0","feedback":[{"key":"ArrowUp","value":1.0},{"key":"ArrowDown","value":-1.0}],"input":"feedback","keys":["ArrowUp","ArrowDown"]},"type":"seat"}"#,
            ServerMessage::Seat(SeatMessage {
                seat: SeatView {
                    agent: 0,
                    agent_name: "agent_0".into(),
                    input: Some(InputKind::Feedback),
                    keys: vec!["ArrowUp".into(), "ArrowDown".into()],
                    feedback: Some(vec![
                        FeedbackKey {
                            key: "ArrowUp".into(),
                            value: 1.0,
                        },
                        FeedbackKey {
                            key: "ArrowDown".into(),
                            value: -1.0,
                        },
                    ]),
                },
                others: Vec::new(),
            }),
        ),
        (
            r#"{"code":"partner_left","text":"chef_0's player left.","type":"notice"}"#,
            ServerMessage::Notice(Notice {
                code: NoticeCode::PartnerLeft,
                text: "chef_0's player left.".into(),
            }),
        ),
        (
            r##"{"ack":12,"episode":0,"full":false,"remove":[3],"return":17.0,"reward":1.0,"step":17,"tick":18,"type":"frame","upsert":[{"id":1,"shape":"circle","x":0.25,"y":0.5,"r":0.1,"fill":"#f00"},{"id":2,"shape":"rect","x":0.1,"y":0.2,"w":0.3,"h":0.05,"angle":0.5,"stroke":"#000","line_width":0.01,"z":2}]}"##,
            ServerMessage::Frame(SpriteFrame {
                tick: 18,
                episode: 0,
                step: 17,
                ack: Some(12),
                full: false,
                upsert: vec![
                    Sprite::new(
                        1,
                        Shape::Circle {
                            x: 0.25,
                            y: 0.5,
                            r: 0.1,
                        },
                    )
                    .fill("#f00"),
                    Sprite::new(
                        2,
                        Shape::Rect {
                            x: 0.1,
                            y: 0.2,
                            w: 0.3,
                            h: 0.05,
                            angle: 0.5,
                        },
                    )
                    .stroke("#000", 0.01)
                    .z(2),
                ],
                remove: vec![3],
                reward: 1.0,
                episode_return: 17.0,
            }),
        ),
        (
            r#"{"t":1234.5,"type":"pong"}"#,
            ServerMessage::Pong(Pong { t: json!(1234.5) }),
        ),
        (
            r#"{"id":3,"type":"clock"}"#,
            ServerMessage::Clock(tandem_wire::ClockProbe { id: 3 }),
        ),
        (
            r#"{"code":"wrong_scene","message":"scene 4 is not the current scene (1)","type":"error"}"#,
            ServerMessage::Error(ErrorMessage {
                code: ErrorCode::WrongScene,
                message: "scene 4 is not the current scene (1)".into(),
            }),
        ),
        (r#"{"type":"replaced"}"#, ServerMessage::Replaced),
    ]
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

/// What the page receives today decodes into the typed messages, through
/// `from_text` and through the derived `Deserialize` alike.
#[test]
fn documented_messages_decode() {
    for (text, expected) in documented() {
        match ServerMessage::from_text(text) {
            Ok(message) => assert_eq!(message, expected, "{text}"),
            Err(e) => panic!("{text}: {e}"),
        }
        match serde_json::from_str::<ServerMessage>(text) {
            Ok(message) => assert_eq!(message, expected, "{text}"),
            Err(e) => panic!("{text}: {e}"),
        }
    }
}

/// The typed messages encode to the same JSON the page receives today (key
/// order aside, which JSON does not give meaning to), and decode back.
#[test]
fn messages_round_trip_as_the_same_json() {
    for (text, message) in documented() {
        let encoded = message.to_text();
        assert_eq!(json(&encoded), json(text), "{encoded}");
        assert!(
            encoded.starts_with(&format!(r#"{{"type":"{}""#, message.type_name())),
            "{encoded}"
        );
        match ServerMessage::from_text(&encoded) {
            Ok(back) => assert_eq!(back, message, "{encoded}"),
            Err(e) => panic!("{encoded}: {e}"),
        }
    }
}

/// Every documented type has an example above.
#[test]
fn every_type_has_an_example() {
    let covered: Vec<&str> = documented().iter().map(|(_, m)| m.type_name()).collect();
    for kind in ServerMessage::TYPES {
        assert!(covered.contains(&kind), "no example of {kind}");
    }
}

/// A type this build does not know is `Unknown`, with any fields; codes it
/// does not know are kept; extra fields are ignored.
#[test]
fn newer_messages_are_skippable() {
    for text in [
        r#"{"type":"fireworks"}"#,
        r#"{"type":"fireworks","colour":"red","count":3}"#,
        r#"{"count":3,"type":"unknown"}"#,
    ] {
        assert!(
            matches!(ServerMessage::from_text(text), Ok(ServerMessage::Unknown)),
            "{text}"
        );
    }
    assert_eq!(ServerMessage::Unknown.to_text(), r#"{"type":"unknown"}"#);
    assert!(matches!(
        ServerMessage::from_text(r#"{"type":"notice","code":"meteor","text":"Look up."}"#),
        Ok(ServerMessage::Notice(Notice { code: NoticeCode::Other(code), .. })) if code == "meteor"
    ));
    assert!(matches!(
        ServerMessage::from_text(r#"{"type":"error","code":"teapot","message":"no"}"#),
        Ok(ServerMessage::Error(ErrorMessage { code: ErrorCode::Other(code), .. })) if code == "teapot"
    ));
    assert!(matches!(
        ServerMessage::from_text(r#"{"type":"pong","t":1,"server_time":5}"#),
        Ok(ServerMessage::Pong(Pong { t })) if t == json!(1)
    ));
}

/// Text that is not a message, or a known type with the wrong fields, is an
/// error to skip, never a panic.
#[test]
fn malformed_messages_are_errors() {
    for text in [
        "",
        "not json",
        "[]",
        "{}",
        r#"{"type":3}"#,
        r#"{"type":"hello"}"#,
        r#"{"type":"scene","index":0,"count":1,"scene":{"kind":"maze","id":"m","title":"M"}}"#,
        r#"{"type":"scene","index":0,"count":1}"#,
        r#"{"type":"game","status":"paused","episode":0,"episodes_done":0}"#,
        r#"{"type":"frame","tick":1}"#,
        r#"{"type":"lobby","scene":-1,"waiting":0,"needed":2,"waited_s":0}"#,
    ] {
        assert!(ServerMessage::from_text(text).is_err(), "{text}");
    }
}

/// `hello` carries this build's protocol version.
#[test]
fn hello_has_the_protocol_version() {
    let hello = ServerMessage::hello(
        "p",
        ExperimentInfo {
            id: "e".into(),
            title: "E".into(),
        },
    );
    assert_eq!(
        json(&hello.to_text()),
        json!({"type": "hello", "protocol": tandem_wire::PROTOCOL_VERSION, "participant": "p",
               "experiment": {"id": "e", "title": "E"}})
    );
}

const WIRE_DOC: &str = include_str!("../../../docs/WIRE.md");

/// The first column of the table under `heading`: the message types.
fn table_types(heading: &str) -> Vec<String> {
    let section = WIRE_DOC
        .split_once(heading)
        .map(|(_, rest)| rest)
        .unwrap_or_else(|| panic!("docs/WIRE.md has no {heading:?}"));
    section
        .lines()
        .skip_while(|line| !line.starts_with('|'))
        .take_while(|line| line.starts_with('|'))
        .filter_map(|line| {
            let cell = line.split('|').nth(1)?.trim();
            Some(cell.strip_prefix('`')?.strip_suffix('`')?.to_string())
        })
        .collect()
}

/// The backquoted words after `codes:` in the row of message type `kind`,
/// leaving out the parenthesized remarks between them.
fn listed_codes(kind: &str) -> Vec<String> {
    let row = WIRE_DOC
        .lines()
        .find(|line| line.starts_with(&format!("| `{kind}` |")))
        .unwrap_or_else(|| panic!("docs/WIRE.md has no row for {kind}"));
    let Some((_, codes)) = row.split_once("codes:") else {
        panic!("the {kind} row lists no codes");
    };
    let mut depth = 0;
    let codes: String = codes
        .chars()
        .filter(|&c| {
            match c {
                '(' => depth += 1,
                ')' => depth -= 1,
                _ => return depth == 0,
            }
            false
        })
        .collect();
    codes
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

/// docs/WIRE.md lists exactly the message types and codes this crate knows.
#[test]
fn the_wire_doc_lists_what_the_crate_knows() {
    assert_eq!(table_types("## Server to browser"), ServerMessage::TYPES);
    assert_eq!(
        table_types("## Browser to server"),
        [
            "advance", "submit", "screen", "input", "ping", "shown", "clock", "page"
        ]
    );
    let notices: Vec<&str> = NoticeCode::KNOWN.iter().map(NoticeCode::as_str).collect();
    assert_eq!(listed_codes("notice"), notices);
    let errors: Vec<&str> = ErrorCode::KNOWN.iter().map(ErrorCode::as_str).collect();
    assert_eq!(listed_codes("error"), errors);
    for code in [
        tandem_wire::CLOSE_UNKNOWN_PARTICIPANT,
        tandem_wire::CLOSE_REPLACED,
        tandem_wire::CLOSE_SILENT,
        tandem_wire::CLOSE_RESTART,
        tandem_wire::CLOSE_POLICY,
        tandem_wire::CLOSE_FULL,
        tandem_wire::CLOSE_PROTOCOL,
        tandem_wire::CLOSE_INVALID_DATA,
        tandem_wire::CLOSE_TOO_BIG,
        tandem_wire::CLOSE_NORMAL,
    ] {
        assert!(
            WIRE_DOC.contains(&format!("{code} (")),
            "docs/WIRE.md does not explain close code {code}"
        );
    }
    assert!(WIRE_DOC.contains("256 KiB") && tandem_wire::MAX_CLIENT_MESSAGE == 256 * 1024);
}

/// The browser's messages, built with the crate, are what the page sends.
#[test]
fn client_messages_are_the_pages() {
    let input = ClientMessage::Input(tandem_wire::Input {
        seq: 1,
        frame: Some(60),
        ts: Some(1000.5),
        tick: None,
        keys: vec!["ArrowLeft".into()],
    });
    assert_eq!(
        json(&input.to_text()),
        json!({"type": "input", "seq": 1, "frame": 60, "ts": 1000.5, "keys": ["ArrowLeft"]})
    );
    assert_eq!(ClientMessage::parse(&input.to_text()), input);
}
