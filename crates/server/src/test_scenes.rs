//! Game scenes for the server's unit tests, written as a researcher would
//! write them and read by the real experiment reader.

use tandem_experiment::{GameScene, Scene};

/// A two-chef kitchen (time limit 600 s) with scene settings `settings` and
/// the seat tables `seats`.
pub fn kitchen(settings: &str, seats: &str) -> GameScene {
    let text = format!(
        r#"
id = "t"
title = "t"
[[scene]]
kind = "game"
id = "k"
title = "k"
env = "Kitchen-v0"
time_limit_s = 600
default_action = 0
{settings}
[scene.keys]
ArrowUp = 1
{seats}
[[scene]]
kind = "end"
id = "end"
title = "end"
markdown = "x"
"#
    );
    match tandem_experiment::parse(&text, "t.toml").map(|e| e.scenes.into_iter().next()) {
        Ok(Some(Scene::Game(game))) => game,
        other => panic!("not a game scene: {other:?}"),
    }
}

/// Both chefs' seats human, each with the lines `extra` (a fallback, say).
pub fn two_humans(extra: &str) -> String {
    format!(
        r#"
[[scene.seat]]
agent = "chef_0"
human = true
{extra}
[[scene.seat]]
agent = "chef_1"
human = true
{extra}
"#
    )
}
