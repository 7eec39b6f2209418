//! What the server's unit tests share: game scenes written as a researcher
//! would write them and read by the real experiment reader, and a server state
//! on a real SQLite file.

use std::sync::Arc;

use tandem_experiment::{Experiment, GameScene, Scene};
use tandem_store::{RecorderConfig, RecorderHandle, Store};
use tokio::sync::watch;

use crate::{AppState, Options};

/// A server state for `experiment` on a fresh database in `dir`, with the
/// stop signal's sender and the recorder's handle (keep both alive).
pub async fn state(
    dir: &tempfile::TempDir,
    experiment: Experiment,
) -> (AppState, watch::Sender<bool>, RecorderHandle) {
    state_with(dir, experiment, Options::default()).await
}

/// [`state`] with its own [`Options`].
pub async fn state_with(
    dir: &tempfile::TempDir,
    experiment: Experiment,
    options: Options,
) -> (AppState, watch::Sender<bool>, RecorderHandle) {
    let path = dir.path().join("t.db");
    let store = match Store::open(&path.display().to_string()).await {
        Ok(store) => store,
        Err(e) => panic!("database: {e}"),
    };
    let stored = store
        .upsert_experiment(&experiment.id, &experiment.title, &experiment.source)
        .await;
    assert!(stored.is_ok(), "the experiment is stored");
    let (recorder, writer) = store.recorder(RecorderConfig::default());
    let (stop, stopped) = watch::channel(false);
    let shared = crate::state::Shared::single(&options);
    let (state, _outcomes) = AppState::new(
        Arc::new(experiment),
        store,
        recorder,
        options,
        0,
        stopped,
        shared,
    );
    (state, stop, writer)
}

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
