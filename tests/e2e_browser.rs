//! End to end in a real browser: headless Chromium (Debian's `/usr/bin/chromium`),
//! driven over the DevTools protocol with chromiumoxide, opens the participant page
//! and walks consent → instructions → a sprite game → a pixel game → survey → end
//! with clicks, typing and held keys, as a participant would. Then the database
//! must hold what the browser did.
//!
//! Two more tests play the two-chef kitchen: two participants in two browsers
//! (two profiles, so two cookies) meet in the lobby and cook together, then one
//! closes the tab and the scripted fallback takes over while the other plays
//! on; and a lone participant is matched with the AI after `human_timeout_s`.
//!
//! The page exposes its state for this test on the DOM: `body[data-scene,
//! data-scene-id, data-connected, data-lobby, data-agent]`, `#lobby[data-waiting]`,
//! `#notice[data-code]` and the game canvas's `data-frames`, `data-tick` and
//! `data-ack` (see web/app.js, web/party.js and web/renderer.js).

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use chromiumoxide::browser::{Browser, BrowserConfig};
use chromiumoxide::cdp::browser_protocol::input::{DispatchKeyEventParams, DispatchKeyEventType};
use chromiumoxide::cdp::js_protocol::runtime::EvaluateParams;
use chromiumoxide::{Element, Page};
use common::{TestServer, count};
use futures::StreamExt;
use serde_json::Value;
use tempfile::TempDir;
use tokio::task::JoinHandle;

/// Where Debian's chromium package puts the browser.
const CHROMIUM: &str = "/usr/bin/chromium";

/// How long any one wait on the page may take before the test fails. Generous:
/// a loaded two-core machine runs the server, the browser and the compiler.
const WAIT: Duration = Duration::from_secs(20);

/// Between two polls of the page.
const POLL: Duration = Duration::from_millis(50);

/// How long a key is held down.
const HOLD: Duration = Duration::from_millis(1000);

const COMPLETION_CODE: &str = "E2E-BR0WSER";

/// Consent, instructions, two games (CartPole drawn as sprites, MountainCar as
/// pixels), a survey and the end.
///
/// Both games end on a time limit, so they last as long on a slow machine as on
/// a fast one and leave room to hold a key. CartPole cannot end on one episode:
/// a held key (or the default action) tips the pole over in about nine steps, a
/// third of a second. MountainCar's episode would end at `max_steps`, but pixel
/// frames are slow to encode in an unoptimized build (about 90 ms each), which
/// stretches a step count from seconds to tens of seconds.
const EXPERIMENT: &str = r#"
id = "e2e-browser"
title = "Browser test"

[[scene]]
kind = "info"
id = "consent"
title = "Consent"
markdown = "Do you agree to take part?"
checkbox = "I agree"

[[scene]]
kind = "info"
id = "instructions"
title = "Instructions"
markdown = "Use the **arrow keys**."
button = "Start"

[[scene]]
kind = "game"
id = "cartpole"
title = "Balance the pole"
env = "CartPole-v1"
fps = 30
time_limit_s = 6
max_steps = 90
default_action = 0
instructions = "Keep the pole up."
[scene.keys]
ArrowLeft = 0
ArrowRight = 1

[[scene]]
kind = "game"
id = "mountaincar"
title = "Drive up the hill"
env = "MountainCar-v0"
render = "pixels"
fps = 30
episodes = 1
time_limit_s = 5
default_action = 1
instructions = "Rock the car."
[scene.keys]
ArrowLeft = 0
ArrowRight = 2

[[scene]]
kind = "survey"
id = "survey"
title = "Survey"
[[scene.question]]
id = "difficulty"
prompt = "How hard was it?"
kind = "likert"
scale = 5
low_label = "easy"
high_label = "hard"
[[scene.question]]
id = "hand"
prompt = "Which hand did you use?"
kind = "single"
options = ["left", "right"]
[[scene.question]]
id = "comments"
prompt = "Anything else?"
kind = "text"
required = false

[[scene]]
kind = "end"
id = "end"
title = "Thank you"
markdown = "All done."
completion_code = "E2E-BR0WSER"
"#;

/// JavaScript: how many distinct colours the game canvas holds (1 when blank),
/// read after two animation frames so that the newest frame has been painted.
const CANVAS_COLOURS: &str = "(async () => { \
    await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))); \
    const c = document.getElementById('game-canvas'); \
    if (!c || !c.width || !c.height) return 0; \
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; \
    const seen = new Set(); \
    for (let i = 0; i < d.length; i += 4) seen.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]); \
    return seen.size; })()";

/// JavaScript: the game canvas as a PNG data URL (compared, never decoded).
const CANVAS_IMAGE: &str = "document.getElementById('game-canvas').toDataURL()";

/// JavaScript: the canvas's frame counter.
const FRAMES: &str = "Number(document.getElementById('game-canvas')?.dataset.frames || 0)";

/// JavaScript: the highest input the last drawn frame acknowledged (-1 for none).
const ACK: &str = "(() => { const a = document.getElementById('game-canvas')?.dataset.ack; \
    return a ? Number(a) : -1; })()";

/// A participant in headless Chromium plays the whole flow with the mouse and the
/// keyboard, and everything the browser did is in the database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_plays_start_to_finish_and_everything_is_recorded() {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let mut server = TestServer::start_at(EXPERIMENT, &dir.path().join("e2e.db")).await;
    let mut chromium = Chromium::launch().await;
    eprintln!("[{:>5.1?}] browser launched", started.elapsed());

    let page = chromium
        .browser
        .new_page(server.url("/?PROLIFIC_PID=e2e-browser&STUDY_ID=s&SESSION_ID=x"))
        .await
        .expect("the participant page opens");

    // Consent: the button waits for the box.
    wait_for(&page, "the consent scene", "document.body.dataset.scene === 'info' \
        && document.body.dataset.sceneId === 'consent' && document.body.dataset.connected === 'true'")
    .await;
    assert!(
        eval_bool(&page, "document.getElementById('advance').disabled").await,
        "Continue is disabled until the consent box is ticked"
    );
    click(&page, "#consent-checkbox").await;
    wait_for(
        &page,
        "Continue to be enabled by the ticked box",
        "document.getElementById('consent-checkbox').checked \
         && !document.getElementById('advance').disabled",
    )
    .await;
    click(&page, "#advance").await;
    wait_for(
        &page,
        "the instructions",
        "document.body.dataset.sceneId === 'instructions'",
    )
    .await;
    click(&page, "#advance").await;
    eprintln!(
        "[{:>5.1?}] consent and instructions done",
        started.elapsed()
    );

    // The sprite game: frames arrive and are drawn, a held key is acknowledged.
    wait_for(
        &page,
        "the CartPole game to draw",
        &format!(
            "(async () => document.body.dataset.scene === 'game' \
             && document.body.dataset.sceneId === 'cartpole' \
             && {FRAMES} > 0 && (await {CANVAS_COLOURS}) > 1)()"
        ),
    )
    .await;
    assert_eq!(
        eval_i64(&page, ACK).await,
        -1,
        "no input is acknowledged before a key is pressed"
    );
    let image_before = eval_string(&page, CANVAS_IMAGE).await;
    let frames_before = eval_i64(&page, FRAMES).await;
    hold_key(&page, Key::RIGHT, HOLD, || async {}).await;
    wait_for(
        &page,
        "a CartPole frame to acknowledge the held key",
        &format!("{ACK} >= 1"),
    )
    .await;
    let (scene_id, image_after, frames_after) = (
        eval_string(&page, "document.body.dataset.sceneId").await,
        eval_string(&page, CANVAS_IMAGE).await,
        eval_i64(&page, FRAMES).await,
    );
    assert_eq!(
        scene_id, "cartpole",
        "the CartPole game was still on while its checks ran (its time limit is too short for this machine?)"
    );
    assert_ne!(
        image_before, image_after,
        "the canvas changed while ArrowRight was held"
    );
    assert!(
        frames_after > frames_before,
        "frames kept coming: {frames_before} then {frames_after}"
    );
    eprintln!(
        "[{:>5.1?}] CartPole: {} frames drawn during the hold",
        started.elapsed(),
        frames_after - frames_before
    );

    // The game ends by itself and the pixel game follows.
    wait_for(
        &page,
        "the MountainCar game to draw",
        &format!(
            "(async () => document.body.dataset.scene === 'game' \
             && document.body.dataset.sceneId === 'mountaincar' \
             && {FRAMES} > 0 && (await {CANVAS_COLOURS}) > 1)()"
        ),
    )
    .await;
    let colours = eval_i64(&page, CANVAS_COLOURS).await;
    assert!(
        colours > 1,
        "the pixel frame is not blank ({colours} colours)"
    );
    let image_before = eval_string(&page, CANVAS_IMAGE).await;
    let ack_before = eval_i64(&page, ACK).await;
    let frames_before = eval_i64(&page, FRAMES).await;
    // Read the canvas while the key is still down.
    let (image_held, ack_held, frames_held) = hold_key(&page, Key::LEFT, HOLD, || async {
        wait_for(
            &page,
            "a MountainCar frame to acknowledge the held key",
            &format!("{ACK} > {ack_before}"),
        )
        .await;
        (
            eval_string(&page, CANVAS_IMAGE).await,
            eval_i64(&page, ACK).await,
            eval_i64(&page, FRAMES).await,
        )
    })
    .await;
    assert_eq!(
        eval_string(&page, "document.body.dataset.sceneId").await,
        "mountaincar",
        "the MountainCar game was still on while its checks ran"
    );
    assert_ne!(
        image_before, image_held,
        "the pixel canvas changed while ArrowLeft was held"
    );
    assert!(ack_held > ack_before, "ack {ack_before} then {ack_held}");
    assert!(frames_held > frames_before);
    eprintln!(
        "[{:>5.1?}] MountainCar: {} pixel frames decoded during the hold",
        started.elapsed(),
        frames_held - frames_before
    );

    // The survey: a missing required answer is shown as an error on the page.
    wait_for(
        &page,
        "the survey",
        "document.body.dataset.scene === 'survey'",
    )
    .await;
    click(&page, "input[name='q-difficulty'][value='4']").await;
    click(&page, "#submit").await;
    wait_for(
        &page,
        "the missing answer to be flagged",
        "document.querySelector(\"input[name='q-hand'][aria-invalid='true']\") !== null \
         && [...document.querySelectorAll('.field-error')].some((e) => !e.hidden && e.textContent.trim() !== '') \
         && document.querySelector('[role=alert]')?.textContent.trim() !== ''",
    )
    .await;
    assert!(
        eval_bool(
            &page,
            "document.querySelector(\"input[name='q-difficulty'][aria-invalid]\") === null \
             && document.querySelector(\"input[name='q-difficulty'][value='4']\").checked"
        )
        .await,
        "the answered question is not flagged and keeps its answer"
    );
    assert_eq!(
        eval_string(&page, "document.body.dataset.scene").await,
        "survey",
        "an invalid answer stays on the survey"
    );
    click(&page, "input[name='q-hand'][value='right']").await;
    click(&page, "input[name='q-comments']")
        .await
        .type_str("fun in a browser")
        .await
        .expect("typing into the comments");
    assert_eq!(
        eval_string(
            &page,
            "document.querySelector(\"input[name='q-comments']\").value"
        )
        .await,
        "fun in a browser"
    );
    wait_for(
        &page,
        "Submit to be enabled again",
        "!document.getElementById('submit').disabled",
    )
    .await;
    click(&page, "#submit").await;

    // The end: the completion code is shown.
    wait_for(
        &page,
        "the end scene",
        "document.body.dataset.scene === 'end' && document.getElementById('completion-code') !== null",
    )
    .await;
    assert_eq!(
        eval_string(
            &page,
            "document.getElementById('completion-code').textContent"
        )
        .await,
        COMPLETION_CODE
    );
    eprintln!("[{:>5.1?}] survey and end done", started.elapsed());

    chromium.close().await;
    server.stop().await;
    eprintln!(
        "[{:>5.1?}] browser closed, server stopped",
        started.elapsed()
    );

    check_database(&server).await;
    eprintln!("[{:>5.1?}] database checked", started.elapsed());
}

/// What the browser did, as the database recorded it.
async fn check_database(server: &TestServer) {
    let db = server.db().await;
    let (pid, study, session, scene_index, code, finished, agent): (
        String,
        String,
        String,
        i64,
        Option<String>,
        Option<i64>,
        Option<String>,
    ) = sqlx::query_as(
        "SELECT prolific_pid, study_id, session_id, scene_index, completion_code, finished_us, \
         user_agent FROM participants",
    )
    .fetch_one(&db)
    .await
    .expect("exactly one participant");
    assert_eq!(count(&db, "SELECT COUNT(*) FROM participants").await, 1);
    assert_eq!(
        (pid.as_str(), study.as_str(), session.as_str()),
        ("e2e-browser", "s", "x")
    );
    assert_eq!(scene_index, 5, "the participant stands at the end scene");
    assert_eq!(code.as_deref(), Some(COMPLETION_CODE));
    assert!(finished.is_some(), "the participant is marked finished");
    let agent = agent.unwrap_or_default();
    assert!(agent.contains("Chrome"), "user agent recorded: {agent:?}");

    let entered: Vec<String> = sqlx::query_scalar(
        "SELECT scene_id FROM scene_events WHERE event = 'entered' ORDER BY scene_index, id",
    )
    .fetch_all(&db)
    .await
    .unwrap();
    assert_eq!(
        entered,
        [
            "consent",
            "instructions",
            "cartpole",
            "mountaincar",
            "survey",
            "end"
        ]
    );
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) FROM scene_events WHERE event = 'left'"
        )
        .await,
        5
    );

    // Only the accepted submission is recorded.
    let answers: Vec<(String, String)> =
        sqlx::query_as("SELECT question_id, answer FROM responses ORDER BY question_id")
            .fetch_all(&db)
            .await
            .unwrap();
    assert_eq!(
        answers,
        [
            ("comments".to_string(), "\"fun in a browser\"".to_string()),
            ("difficulty".to_string(), "4".to_string()),
            ("hand".to_string(), "\"right\"".to_string()),
        ]
    );

    // Both games ended by themselves, every episode complete and every step stored.
    let games: Vec<(String, String, Option<String>)> = sqlx::query_as(
        "SELECT scene_id, env_id, end_reason FROM games WHERE ended_us IS NOT NULL ORDER BY scene_index",
    )
    .fetch_all(&db)
    .await
    .unwrap();
    assert_eq!(
        games,
        [
            (
                "cartpole".to_string(),
                "CartPole-v1".to_string(),
                Some("finished".to_string())
            ),
            (
                "mountaincar".to_string(),
                "MountainCar-v0".to_string(),
                Some("finished".to_string())
            ),
        ]
    );
    assert_eq!(count(&db, "SELECT COUNT(*) FROM games").await, 2);
    assert!(
        count(
            &db,
            "SELECT COUNT(*) FROM episodes WHERE env_id = 'CartPole-v1'"
        )
        .await
            >= 1
    );
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) FROM episodes WHERE env_id = 'MountainCar-v0'"
        )
        .await,
        1
    );
    let unfinished: Vec<(i64, Option<String>, Option<String>)> = sqlx::query_as(
        "SELECT id, outcome, reason FROM episodes WHERE outcome IS NOT 'complete' OR steps IS NULL",
    )
    .fetch_all(&db)
    .await
    .unwrap();
    assert!(
        unfinished.is_empty(),
        "every episode is complete: {unfinished:?}"
    );
    assert!(
        count(
            &db,
            "SELECT steps FROM episodes WHERE env_id = 'MountainCar-v0'"
        )
        .await
            > 1,
        "MountainCar's one episode ran until the time limit"
    );
    let promised = count(&db, "SELECT SUM(steps) FROM episodes").await;
    let stored = count(&db, "SELECT COUNT(*) FROM steps").await;
    assert_eq!(promised, stored, "every step of every episode is stored");

    // The held keys drove steps, with the browser's frame and time of the input.
    let right = count(
        &db,
        "SELECT COUNT(*) FROM steps s JOIN episodes e ON e.id = s.episode_id \
         WHERE e.env_id = 'CartPole-v1' AND s.keys = 'ArrowRight' AND s.source = 'keys' \
         AND s.action = '1' AND s.input_seq IS NOT NULL \
         AND s.client_frame IS NOT NULL AND s.client_ts IS NOT NULL",
    )
    .await;
    assert!(
        right > 0,
        "CartPole steps driven by ArrowRight were recorded"
    );
    let left = count(
        &db,
        "SELECT COUNT(*) FROM steps s JOIN episodes e ON e.id = s.episode_id \
         WHERE e.env_id = 'MountainCar-v0' AND s.keys = 'ArrowLeft' AND s.source = 'keys' \
         AND s.action = '0' AND s.input_seq IS NOT NULL \
         AND s.client_frame IS NOT NULL AND s.client_ts IS NOT NULL",
    )
    .await;
    assert!(
        left > 0,
        "MountainCar steps driven by ArrowLeft were recorded"
    );
    // Keys were held only for a moment: most steps took the default action.
    assert!(
        count(
            &db,
            "SELECT COUNT(*) FROM steps WHERE source = 'default' AND keys IS NULL"
        )
        .await
            > 0
    );
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) FROM steps s JOIN episodes e ON e.id = s.episode_id \
             WHERE e.env_id = 'CartPole-v1' AND s.keys = 'ArrowLeft'"
        )
        .await,
        0,
        "no key the test did not press in CartPole"
    );
    eprintln!("database: {stored} steps, {right} driven by ArrowRight, {left} by ArrowLeft");
}

/// A headless Chromium with a fresh profile. Dropping it (a failed assertion)
/// kills the browser: chromiumoxide spawns it with tokio's `kill_on_drop`.
struct Chromium {
    browser: Browser,
    handler: JoinHandle<()>,
    _profile: TempDir,
}

impl Chromium {
    async fn launch() -> Chromium {
        Chromium::launch_with(&[]).await
    }

    /// [`Chromium::launch`] with more command-line switches (no leading `--`).
    async fn launch_with(extra: &[&str]) -> Chromium {
        assert!(
            Path::new(CHROMIUM).exists(),
            "{CHROMIUM} is missing: the browser test needs Debian's chromium package; \
             ./scripts/test installs it (or: sudo apt-get install chromium)"
        );
        let profile = tempfile::tempdir().expect("a profile directory");
        let config = BrowserConfig::builder()
            .chrome_executable(CHROMIUM)
            .new_headless_mode()
            .no_sandbox()
            .user_data_dir(profile.path())
            .launch_timeout(Duration::from_secs(60))
            .request_timeout(Duration::from_secs(30))
            // chromiumoxide adds the leading "--".
            .args(
                [
                    "disable-gpu",
                    "disable-background-networking",
                    "disable-component-update",
                    "disable-sync",
                    "no-first-run",
                ]
                .iter()
                .chain(extra)
                .copied(),
            )
            .build()
            .expect("browser configuration");
        let (browser, mut handler) = Browser::launch(config)
            .await
            .unwrap_or_else(|e| panic!("{CHROMIUM} starts: {e}"));
        let handler = tokio::spawn(async move {
            while let Some(event) = handler.next().await {
                if let Err(e) = event {
                    eprintln!("chromium connection ended: {e}");
                    break;
                }
            }
        });
        Chromium {
            browser,
            handler,
            _profile: profile,
        }
    }

    /// Closes the browser and waits for it to exit (killing it if it does not).
    async fn close(&mut self) {
        let closed = tokio::time::timeout(Duration::from_secs(10), self.browser.close()).await;
        let exited = match closed {
            Ok(Ok(_)) => tokio::time::timeout(Duration::from_secs(10), self.browser.wait())
                .await
                .is_ok_and(|r| r.is_ok()),
            _ => false,
        };
        if !exited {
            eprintln!("chromium did not close cleanly; killing it");
            let _ = self.browser.kill().await;
        }
    }
}

impl Drop for Chromium {
    fn drop(&mut self) {
        // The browser itself is killed when `browser` drops; the handler ends with
        // its connection, but do not leave it behind if the runtime outlives us.
        self.handler.abort();
    }
}

/// A key as the DevTools protocol dispatches it.
#[derive(Clone, Copy)]
struct Key {
    key: &'static str,
    virtual_code: i64,
}

impl Key {
    const LEFT: Key = Key {
        key: "ArrowLeft",
        virtual_code: 37,
    };
    const RIGHT: Key = Key {
        key: "ArrowRight",
        virtual_code: 39,
    };
    const UP: Key = Key {
        key: "ArrowUp",
        virtual_code: 38,
    };
    const SPACE: Key = Key {
        key: " ",
        virtual_code: 32,
    };
    const D: Key = Key {
        key: "d",
        virtual_code: 68,
    };
}

async fn key_event(page: &Page, key: Key, kind: DispatchKeyEventType) {
    let event = DispatchKeyEventParams::builder()
        .r#type(kind.clone())
        .key(key.key)
        .code(key.key)
        .windows_virtual_key_code(key.virtual_code)
        .native_virtual_key_code(key.virtual_code)
        .build()
        .expect("key event");
    page.execute(event)
        .await
        .unwrap_or_else(|e| panic!("dispatching {} {:?}: {e}", key.key, kind));
}

/// Holds `key` down for at least `hold`, running `during` while it is down, and
/// returns what `during` returned. The key is released before returning.
async fn hold_key<F, Fut, T>(page: &Page, key: Key, hold: Duration, during: F) -> T
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = T>,
{
    key_event(page, key, DispatchKeyEventType::RawKeyDown).await;
    let pressed = Instant::now();
    tokio::time::sleep(hold).await;
    let result = during().await;
    let held = pressed.elapsed();
    key_event(page, key, DispatchKeyEventType::KeyUp).await;
    eprintln!("held {} for {held:.1?}", key.key);
    result
}

/// Clicks the element `selector` finds (after scrolling it into view).
async fn click(page: &Page, selector: &str) -> Element {
    let element = match page.find_element(selector).await {
        Ok(element) => element,
        Err(e) => panic!("no element {selector}: {e}\n{}", describe(page).await),
    };
    element
        .click()
        .await
        .unwrap_or_else(|e| panic!("clicking {selector}: {e}"));
    element
}

/// Evaluates a JavaScript expression and returns its value as JSON.
async fn eval(page: &Page, js: &str) -> Value {
    try_eval(page, js)
        .await
        .unwrap_or_else(|e| panic!("evaluating {js}: {e}"))
}

async fn eval_bool(page: &Page, js: &str) -> bool {
    let value = eval(page, js).await;
    value
        .as_bool()
        .unwrap_or_else(|| panic!("{js} is a boolean, not {value}"))
}

async fn eval_i64(page: &Page, js: &str) -> i64 {
    let value = eval(page, js).await;
    value
        .as_i64()
        .unwrap_or_else(|| panic!("{js} is an integer, not {value}"))
}

async fn eval_string(page: &Page, js: &str) -> String {
    match eval(page, js).await {
        Value::String(s) => s,
        other => panic!("{js} is a string, not {other}"),
    }
}

async fn try_eval(page: &Page, js: &str) -> Result<Value, String> {
    let params = EvaluateParams::builder()
        .expression(js)
        .return_by_value(true)
        .await_promise(true)
        .build()
        .map_err(|e| e.to_string())?;
    let result = page
        .evaluate_expression(params)
        .await
        .map_err(|e| e.to_string())?;
    Ok(result.value().cloned().unwrap_or(Value::Null))
}

/// Polls the page until the JavaScript condition `js` is true, or fails after
/// [`WAIT`] with what the page shows.
async fn wait_for(page: &Page, what: &str, js: &str) {
    let deadline = Instant::now() + WAIT;
    let mut last = String::new();
    loop {
        match try_eval(page, js).await {
            Ok(Value::Bool(true)) => return,
            Ok(_) => {}
            Err(e) => last = e,
        }
        if Instant::now() >= deadline {
            panic!(
                "waited {WAIT:?} for {what}\ncondition: {js}\nlast error: {last}\n{}",
                describe(page).await
            );
        }
        tokio::time::sleep(POLL).await;
    }
}

/// What the page shows, for failure messages.
async fn describe(page: &Page) -> String {
    let js = "JSON.stringify({ \
        body: { ...document.body.dataset }, \
        canvas: { ...(document.getElementById('game-canvas')?.dataset || {}) }, \
        banner: document.getElementById('banner')?.hidden ? null : document.getElementById('banner')?.textContent, \
        notice: [...document.querySelectorAll('[role=alert]')].map((e) => e.textContent), \
        text: document.getElementById('app')?.innerText.slice(0, 500) })";
    match try_eval(page, js).await {
        Ok(Value::String(state)) => format!("page state: {state}"),
        Ok(other) => format!("page state: {other}"),
        Err(e) => format!("(page state unavailable: {e})"),
    }
}

/// An experiment that opens on its game, for the page-load measurement.
const GAME_FIRST: &str = r#"
id = "first-frame"
title = "First frame"

[[scene]]
kind = "game"
id = "play"
title = "Play"
env = "CartPole-v1"
fps = 30
time_limit_s = 60
default_action = 0
instructions = "Keep the pole up."
[scene.keys]
ArrowLeft = 0
ArrowRight = 1

[[scene]]
kind = "end"
id = "end"
title = "Done"
markdown = "Thanks."
"#;

/// The participant page of a game-first experiment loads and draws its first
/// frame; prints what it transferred before that frame and when the frame came
/// (issue 3's page-load figures: a measurement, not a timed assertion).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_load_bytes_and_first_frame_are_measured() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = TestServer::start_at(GAME_FIRST, &dir.path().join("load.db")).await;
    let mut chromium = Chromium::launch().await;
    // A warm-up load, so that the browser's own start-up is not in the figure.
    let warm = chromium
        .browser
        .new_page("about:blank")
        .await
        .expect("blank page");
    let _ = warm.close().await;
    let page = chromium
        .browser
        .new_page(server.url("/?PROLIFIC_PID=first-frame"))
        .await
        .expect("the participant page opens");
    wait_for(&page, "the first frame", &format!("{FRAMES} > 0")).await;
    let first_frame_ms: f64 = eval_string(
        &page,
        "document.getElementById('game-canvas').dataset.firstFrameMs",
    )
    .await
    .parse()
    .expect("the page stamps its first frame");
    // Bytes over HTTP: the document and every resource (headers included), all
    // of it loaded before the socket could deliver a frame.
    let http_bytes = eval_i64(
        &page,
        "performance.getEntriesByType('navigation').concat(performance.getEntriesByType('resource'))\
         .reduce((n, e) => n + (e.transferSize || 0), 0)",
    )
    .await;
    eprintln!(
        "page load: {http_bytes} bytes over HTTP before the first frame (goal ≤ 100 KB); \
         first frame {first_frame_ms:.1} ms after navigation (goal ≤ 300 ms on loopback)"
    );
    assert!(http_bytes > 0, "the page was transferred");
    assert!(first_frame_ms > 0.0);
    chromium.close().await;
    server.stop().await;
}

/// The kitchen for two, with the scripted chef as every seat's fallback.
fn kitchen(human_timeout_s: u32) -> String {
    format!(
        r#"
id = "e2e-kitchen"
title = "Kitchen"

[[scene]]
kind = "game"
id = "kitchen"
title = "Cook together"
env = "Kitchen-v0"
fps = 8
time_limit_s = 120
human_timeout_s = {human_timeout_s}
reconnect_grace_s = 60
default_action = 0
instructions = "Arrow keys move; Space picks up and puts down."
[scene.keys]
ArrowUp = 1
ArrowDown = 2
ArrowLeft = 3
ArrowRight = 4
Space = 5

[[scene.seat]]
agent = "chef_0"
human = true
fallback = "scripted"

[[scene.seat]]
agent = "chef_1"
human = true
fallback = "scripted"

[[scene]]
kind = "end"
id = "end"
title = "Done"
markdown = "Thanks."
completion_code = "KITCHEN"
"#
    )
}

/// Waits until the canvas has drawn `more` frames beyond what it had.
async fn frames_advance(page: &Page, what: &str, more: i64) {
    let now = eval_i64(page, FRAMES).await;
    wait_for(page, what, &format!("{FRAMES} >= {}", now + more)).await;
}

/// Two participants in two browsers meet in the lobby and cook together, each
/// steering their own chef; one closes the tab, the scripted chef takes their
/// seat within a tick, and the other keeps playing, told what happened.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_browsers_cook_together_and_the_fallback_takes_over() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = TestServer::start_at(&kitchen(600), &dir.path().join("kitchen.db")).await;
    let mut first = Chromium::launch().await;
    let mut second = Chromium::launch().await;

    let a = first
        .browser
        .new_page(server.url("/?PROLIFIC_PID=cook-a"))
        .await
        .expect("the first participant's page opens");
    wait_for(
        &a,
        "the first participant to wait in the lobby",
        "document.body.dataset.lobby === 'waiting' \
         && document.getElementById('lobby').dataset.waiting === '1' \
         && !document.getElementById('lobby').hidden",
    )
    .await;
    let b = second
        .browser
        .new_page(server.url("/?PROLIFIC_PID=cook-b"))
        .await
        .expect("the second participant's page opens");
    for page in [&a, &b] {
        wait_for(
            page,
            "both to be seated and drawing the kitchen",
            &format!(
                "document.body.dataset.lobby === 'seated' \
                 && document.getElementById('lobby').hidden && {FRAMES} > 2"
            ),
        )
        .await;
    }
    let agent_a = eval_string(&a, "document.body.dataset.agent").await;
    let agent_b = eval_string(&b, "document.body.dataset.agent").await;
    assert_ne!(agent_a, agent_b, "each has their own chef");

    // Each steers their own chef at the same time.
    let b_keys = hold_key(&b, Key::LEFT, HOLD, || async {});
    let a_keys = hold_key(&a, Key::UP, HOLD, || async {});
    tokio::join!(a_keys, b_keys);
    frames_advance(&b, "the game to go on", 4).await;

    // A closes the tab: B is told, and the game goes on with the fallback.
    a.close().await.expect("the first tab closes");
    wait_for(
        &b,
        "the notice that the partner left",
        "document.getElementById('notice')?.dataset.code === 'partner_left' \
         && !document.getElementById('notice').hidden",
    )
    .await;
    frames_advance(&b, "the game to go on without the partner", 16).await;
    hold_key(&b, Key::RIGHT, HOLD, || async {}).await;
    frames_advance(&b, "more play", 4).await;
    first.close().await;
    second.close().await;
    server.stop().await;

    let db = server.db().await;
    let agent_a: i64 = agent_a.parse().expect("agent index");
    let by_agent = |sql: &str| {
        sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(
            sql.replace("{a}", &agent_a.to_string()),
        ))
    };
    let keyed_by_a: i64 = by_agent(
        "SELECT COUNT(*) FROM steps s JOIN game_seats g ON g.agent = s.agent
         WHERE s.agent = {a} AND s.keys = 'ArrowUp' AND s.actor = 'participant:' || g.participant_id",
    )
    .fetch_one(&db)
    .await
    .unwrap();
    assert!(keyed_by_a > 0, "A's held key moved A's chef");
    let fallback: i64 = by_agent(
        "SELECT COUNT(*) FROM steps WHERE agent = {a} AND source = 'fallback' AND actor = 'policy:scripted'",
    )
    .fetch_one(&db)
    .await
    .unwrap();
    assert!(
        fallback >= 16,
        "the fallback played A's seat: {fallback} steps"
    );
    assert!(count(&db, "SELECT COUNT(*) FROM steps WHERE keys = 'ArrowLeft'").await > 0);
    assert!(
        count(
            &db,
            "SELECT COUNT(*) FROM steps WHERE keys = 'ArrowRight' AND actor LIKE 'participant:%'"
        )
        .await
            > 0
    );
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM matches WHERE reason = 'full'").await,
        1
    );
    let takeovers: i64 = by_agent(
        "SELECT COUNT(*) FROM events WHERE kind = 'seat_change'
         AND json_extract(detail, '$.agent') = {a} AND json_extract(detail, '$.reason') = 'takeover'
         AND json_extract(detail, '$.to') = 'policy:scripted'",
    )
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(takeovers, 1, "one takeover of A's seat");
    // The takeover did not interrupt the episode: A's keys and the fallback
    // acted in the same one.
    let shared: i64 = by_agent(
        "SELECT COUNT(DISTINCT s.episode_id) FROM steps s WHERE s.agent = {a} AND s.source = 'keys'
         AND s.episode_id IN (SELECT episode_id FROM steps WHERE agent = {a} AND source = 'fallback')",
    )
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(
        shared, 1,
        "one episode played by A and then by the fallback"
    );
}

/// A lone participant waits in the lobby, sees how long, and after
/// `human_timeout_s` plays with the scripted chef in the empty seat.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lone_browser_is_matched_with_the_ai_after_the_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = TestServer::start_at(&kitchen(3), &dir.path().join("alone.db")).await;
    let mut chromium = Chromium::launch().await;
    let page = chromium
        .browser
        .new_page(server.url("/?PROLIFIC_PID=alone"))
        .await
        .expect("the page opens");
    wait_for(
        &page,
        "the lobby with its countdown",
        "document.body.dataset.lobby === 'waiting' \
         && document.getElementById('lobby').innerText.includes('with an AI partner')",
    )
    .await;
    wait_for(
        &page,
        "the game with an AI partner",
        &format!(
            "document.body.dataset.lobby === 'seated' && {FRAMES} > 2 \
             && document.getElementById('seat').innerText.includes('an AI')"
        ),
    )
    .await;
    hold_key(&page, Key::UP, HOLD, || async {}).await;
    frames_advance(&page, "play with the AI", 8).await;
    chromium.close().await;
    server.stop().await;
    let db = server.db().await;
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) FROM matches WHERE reason = 'human_timeout' AND filled = 1"
        )
        .await,
        1
    );
    let waited_us = count(
        &db,
        "SELECT MAX(left_us - joined_us) FROM lobby_waits WHERE outcome = 'matched'",
    )
    .await;
    assert!(
        waited_us >= 3_000_000,
        "waited {waited_us} µs, at least the timeout"
    );
    assert!(
        count(
            &db,
            "SELECT COUNT(*) FROM steps WHERE source = 'fallback' AND actor = 'policy:scripted'"
        )
        .await
            > 8
    );
    assert!(
        count(
            &db,
            "SELECT COUNT(*) FROM steps WHERE keys = 'ArrowUp' AND actor LIKE 'participant:%'"
        )
        .await
            > 0
    );
}

/// Atari through a Python worker, with no key table: the scene uses
/// Breakout's own `get_keys_to_action()` (Space fires, a and d move).
const BREAKOUT: &str = r#"
id = "breakout"
title = "Breakout"

[[scene]]
kind = "game"
id = "breakout"
title = "Breakout"
env = "gymnasium:ALE/Breakout-v5"
fps = 60
time_limit_s = 600
instructions = "Space serves the ball; a and d move the paddle."

[[scene]]
kind = "end"
id = "end"
title = "Done"
markdown = "Thanks."
"#;

/// Headless Chromium plays `ALE/Breakout-v5` through a worker at 60 fps with
/// its default key map; the steps, with the keys that chose them and their
/// observations, are recorded. Prints the frame rate the page drew.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_plays_breakout_through_a_python_worker() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = repo.join(".venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: ./scripts/test creates it",
        python.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let mut config = tandem_workers::WorkerConfig::install(dir.path()).expect("package written");
    config.python = python;
    let pool = tandem_workers::Pool::new(config, 1);
    let mut envs = tandem_envs::Catalog::builtin();
    tandem_workers::host(&mut envs, &pool, &tandem_experiment::hosted_envs(BREAKOUT));
    let options = tandem_server::Options {
        envs,
        ..tandem_server::Options::default()
    };
    let mut server =
        TestServer::start_with_options(BREAKOUT, &dir.path().join("breakout.db"), options).await;
    let mut chromium = Chromium::launch().await;
    let page = chromium
        .browser
        .new_page(server.url("/?PROLIFIC_PID=breakout"))
        .await
        .expect("the participant page opens");
    wait_for(&page, "the first frame", &format!("{FRAMES} > 0")).await;
    let before = eval_i64(&page, FRAMES).await;
    let started = Instant::now();
    key_event(&page, Key::SPACE, DispatchKeyEventType::RawKeyDown).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    key_event(&page, Key::SPACE, DispatchKeyEventType::KeyUp).await;
    hold_key(&page, Key::D, Duration::from_millis(1500), || async {}).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let drawn = eval_i64(&page, FRAMES).await - before;
    let fps = drawn as f64 / started.elapsed().as_secs_f64();
    eprintln!(
        "Breakout through a worker: the page drew {drawn} frames, {fps:.1} per second (scene fps 60)"
    );
    // The picture the page rebuilt from whole frames and deltas, exactly.
    let digest = eval(
        &page,
        "document.getElementById('game-canvas').pixelDigest()",
    )
    .await;
    chromium.close().await;
    server.stop().await;

    let db = server.db().await;
    let tick = digest["tick"]
        .as_i64()
        .expect("the page holds a pixel frame");
    let (episode, t): (i64, i64) =
        sqlx::query_as("SELECT episode_id, t FROM steps WHERE tick = ? AND agent = 0")
            .bind(tick)
            .fetch_one(&db)
            .await
            .expect("the step that made the page's frame was recorded");
    let store = tandem_store::Store::open_to_read(server.db_path.to_str().unwrap())
        .await
        .unwrap();
    let steps = store.steps_for_episode(episode).await.unwrap();
    let step = steps
        .iter()
        .find(|s| i64::from(s.t) == t)
        .expect("the step");
    let tandem_env::Observation::U8 { data, .. } = &step.obs else {
        panic!("Breakout observes pixels");
    };
    let fnv1a = data.iter().fold(0x811c_9dc5u32, |h, &b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    assert_eq!(
        digest["fnv1a"].as_u64(),
        Some(u64::from(fnv1a)),
        "the page's picture at tick {tick} is the recorded observation, byte for byte"
    );
    let steps = count(&db, "SELECT COUNT(*) FROM steps").await;
    let fired = count(&db, "SELECT COUNT(*) FROM steps WHERE keys = 'Space'").await;
    let moved = count(&db, "SELECT COUNT(*) FROM steps WHERE keys = 'd'").await;
    let observed = count(&db, "SELECT COUNT(*) FROM steps WHERE length(obs) > 0").await;
    eprintln!(
        "recorded {steps} steps: {fired} with Space held, {moved} with d held, {observed} with observations"
    );
    assert!(
        fired > 0 && moved > 30,
        "the default key map chose the actions"
    );
    assert_eq!(observed, steps, "every step has its observation");
    // Breakout's map: Space is FIRE (1), d is RIGHT (2).
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) FROM steps WHERE keys = 'd' AND action != '2'"
        )
        .await,
        0
    );
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) FROM steps WHERE keys = 'Space' AND action != '1'"
        )
        .await,
        0
    );
}

/// An `inputs` row: keys, tick, game, page time, server time, episode.
type InputRow = (
    String,
    Option<i64>,
    Option<i64>,
    Option<f64>,
    i64,
    Option<i64>,
);

/// One long MountainCar game, straight away: for the input-timing test.
const TIMING_EXPERIMENT: &str = r#"
id = "e2e-timing"
title = "Timing"

[[scene]]
kind = "game"
id = "drive"
title = "Drive"
env = "MountainCar-v0"
render = "sprites"
fps = 30
time_limit_s = 120
default_action = 1
[scene.keys]
ArrowLeft = 0
ArrowRight = 2

[[scene]]
kind = "end"
id = "end"
title = "Done"
markdown = "Thanks."
"#;

/// A known pattern of key presses in a real browser is recorded input by
/// input, each with the tick of the frame on screen, the page's clock and the
/// server's; the page reports when frames were drawn, answers clock probes,
/// and reports losing and regaining focus.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_input_timing_is_recorded_to_the_frame() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = TestServer::start_at(TIMING_EXPERIMENT, &dir.path().join("timing.db")).await;
    let mut chromium = Chromium::launch().await;
    let page = chromium
        .browser
        .new_page(server.url("/?PROLIFIC_PID=e2e-timing"))
        .await
        .expect("the participant page opens");
    wait_for(
        &page,
        "the game to draw",
        &format!("document.body.dataset.sceneId === 'drive' && {FRAMES} > 10"),
    )
    .await;
    let pattern = [
        (Key::RIGHT, Duration::from_millis(300)),
        (Key::LEFT, Duration::from_millis(300)),
        (Key::RIGHT, Duration::from_millis(60)),
    ];
    for (key, hold) in pattern {
        hold_key(&page, key, hold, || async {}).await;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    eval(
        &page,
        "window.dispatchEvent(new Event('blur')); window.dispatchEvent(new Event('focus')); true",
    )
    .await;
    // Two `shown` reports' worth and the page's third clock probe, then leave.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    chromium.close().await;
    server.stop().await;

    let db = server.db().await;
    let inputs: Vec<InputRow> = sqlx::query_as(
        "SELECT i.keys, i.tick, i.game_id, i.client_ts, i.server_us, i.episode_id
         FROM inputs i JOIN participants p ON p.id = i.participant_id
         WHERE p.prolific_pid = 'e2e-timing' ORDER BY i.id",
    )
    .fetch_all(&db)
    .await
    .expect("inputs");
    // The key sets in order, repeats (the page re-sends held keys) collapsed.
    let mut sets: Vec<&str> = Vec::new();
    for (keys, ..) in &inputs {
        if sets.last() != Some(&keys.as_str()) {
            sets.push(keys);
        }
    }
    while sets.first() == Some(&"[]") {
        sets.remove(0);
    }
    eprintln!("{} input rows; key sets in order: {sets:?}", inputs.len());
    assert_eq!(
        sets,
        [
            "[\"ArrowRight\"]",
            "[]",
            "[\"ArrowLeft\"]",
            "[]",
            "[\"ArrowRight\"]",
            "[]"
        ]
    );
    let pressed: Vec<_> = inputs.iter().filter(|i| i.0 != "[]").collect();
    assert!(
        pressed
            .iter()
            .all(|i| i.1.is_some() && i.2.is_some() && i.3.is_some() && i.5.is_some()),
        "every press has a tick, a game, an episode and the page's time: {pressed:?}"
    );
    let recorded_ticks: Vec<i64> =
        sqlx::query_scalar("SELECT tick FROM steps WHERE tick IS NOT NULL")
            .fetch_all(&db)
            .await
            .expect("step ticks");
    assert!(
        pressed
            .iter()
            .filter_map(|i| i.1)
            .all(|t| recorded_ticks.contains(&t)),
        "each press names the tick of a recorded step's frame"
    );
    let ticks: Vec<i64> = inputs.iter().filter_map(|i| i.1).collect();
    assert!(
        ticks.windows(2).all(|w| w[0] <= w[1]),
        "ticks on screen never go back: {ticks:?}"
    );
    assert!(
        inputs.windows(2).all(|w| w[0].4 <= w[1].4),
        "server times in order"
    );

    let displays: Vec<(i64, f64, i64)> =
        sqlx::query_as("SELECT tick, client_ts, server_us FROM frame_displays ORDER BY id")
            .fetch_all(&db)
            .await
            .expect("displays");
    assert!(
        displays.len() >= 30,
        "{} frames reported shown",
        displays.len()
    );
    assert!(
        displays
            .windows(2)
            .all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1),
        "drawn ticks rise, and so does the page's clock"
    );
    // The estimate to trust is the one with the shortest round trip.
    let clocks: Vec<(i64, i64)> =
        sqlx::query_as("SELECT rtt_us, offset_us FROM clock_samples ORDER BY rtt_us")
            .fetch_all(&db)
            .await
            .expect("clock samples");
    assert!(
        clocks.len() >= 2,
        "the page answered the clock probes: {clocks:?}"
    );
    assert!(
        clocks.iter().all(|(rtt, _)| *rtt > 0 && *rtt < 1_000_000),
        "{clocks:?}"
    );
    // With the clock offset, the page's draw times become server times: the
    // display delay after the step that made the frame.
    let offset = clocks[0].1;
    let delays: Vec<i64> = {
        let steps: Vec<(i64, i64)> =
            sqlx::query_as("SELECT tick, server_us FROM steps WHERE tick IS NOT NULL")
                .fetch_all(&db)
                .await
                .expect("steps");
        displays
            .iter()
            .filter_map(|(tick, shown_ms, _)| {
                let (_, stepped_us) = steps.iter().find(|(t, _)| t == tick)?;
                Some((*shown_ms * 1000.0) as i64 + offset - stepped_us)
            })
            .collect()
    };
    let mut sorted = delays.clone();
    sorted.sort_unstable();
    let median = sorted.get(sorted.len() / 2).copied().unwrap_or_default();
    eprintln!(
        "{} frames shown, {} clock samples (rtt {} µs, offset {} µs); step-to-screen delay \
         median {median} µs over {} frames",
        displays.len(),
        clocks.len(),
        clocks[0].0,
        offset,
        delays.len()
    );
    assert!(!delays.is_empty(), "drawn ticks match recorded steps");
    // A frame is drawn after its step, within a second; the clock estimate is
    // good to half its round trip.
    let resolution = clocks[0].0 / 2 + 5_000;
    assert!(
        median > -resolution && median < 1_000_000,
        "median delay {median} µs (clock resolution ±{resolution} µs)"
    );

    let page_states: Vec<String> = sqlx::query_scalar(
        "SELECT json_extract(detail, '$.state') FROM events WHERE kind = 'page' ORDER BY id",
    )
    .fetch_all(&db)
    .await
    .expect("page events");
    assert!(
        page_states.windows(2).any(|w| w == ["blur", "focus"]),
        "{page_states:?}"
    );
}

/// A game that lasts until someone ends it, then the end.
const CONSOLE_EXPERIMENT: &str = r#"
id = "e2e-console"
title = "Console test"

[[scene]]
kind = "game"
id = "drive"
title = "Drive up the hill"
env = "MountainCar-v0"
fps = 30
time_limit_s = 120
default_action = 1
instructions = "Rock the car."
[scene.keys]
ArrowLeft = 0
ArrowRight = 2

[[scene]]
kind = "end"
id = "end"
title = "Thank you"
markdown = "All done."
completion_code = "E2E-C0NSOLE"
"#;

/// A researcher in one browser logs in, sees a participant (in another
/// browser) arrive on the live dashboard without reloading, watches their
/// game, ends it with a reason, then replays the interrupted episode and
/// scrubs through it. The participant's flow moves on to the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn researcher_watches_ends_and_replays_a_game() {
    let dir = tempfile::tempdir().unwrap();
    let db_path = dir.path().join("console.db");
    {
        let store = tandem_store::Store::open(db_path.to_str().unwrap())
            .await
            .unwrap();
        let hash = tandem_server::accounts::hash_password("a long enough passphrase").unwrap();
        store.add_console_user("ada", &hash).await.unwrap();
    }
    let mut server = TestServer::start_at(CONSOLE_EXPERIMENT, &db_path).await;
    let mut researcher = Chromium::launch().await;
    let mut participant = Chromium::launch().await;

    let console = researcher
        .browser
        .new_page(server.url("/console/login"))
        .await
        .expect("the login page opens");
    eval(
        &console,
        "document.querySelector('input[name=name]').value = 'ada'; \
         document.querySelector('input[name=password]').value = 'a long enough passphrase'; \
         document.querySelector('form').submit(); true",
    )
    .await;
    wait_for(
        &console,
        "the live dashboard",
        "document.getElementById('live-status')?.dataset.state === 'live'",
    )
    .await;
    assert_eq!(
        eval_string(
            &console,
            "document.getElementById('participants').textContent"
        )
        .await,
        "0"
    );

    let play = participant
        .browser
        .new_page(server.url("/?PROLIFIC_PID=e2e-console"))
        .await
        .expect("the participant page opens");
    wait_for(&play, "the game to draw", &format!("{FRAMES} > 10")).await;
    // The dashboard sees them arrive and their game start, without a reload.
    wait_for(
        &console,
        "the participant and their game on the dashboard",
        "document.getElementById('participants').textContent === '1' \
         && !!document.querySelector('#games .watch-link')",
    )
    .await;
    let seats = eval_string(&console, "document.getElementById('games').textContent").await;
    assert!(seats.contains("participant"), "{seats}");

    eval(
        &console,
        "document.querySelector('#games .watch-link').click(); true",
    )
    .await;
    wait_for(
        &console,
        "the watched game's frames",
        &format!(
            "{FRAMES} > 10 && document.getElementById('seats').textContent.includes('participant')"
        ),
    )
    .await;
    let colours = eval_i64(&console, CANVAS_COLOURS).await;
    assert!(colours > 1, "the watched game is drawn ({colours} colours)");

    eval(
        &console,
        "document.querySelector('input[name=reason]').value = 'stuck car'; \
         document.getElementById('end-game').click(); true",
    )
    .await;
    wait_for(
        &play,
        "the participant to move on",
        "document.body.dataset.sceneId === 'end'",
    )
    .await;
    wait_for(
        &console,
        "the dashboard again, with the interrupted episode",
        "[...document.querySelectorAll('#episodes tr')].some((r) => r.textContent.includes('ended_by_researcher'))",
    )
    .await;

    let db = server.db().await;
    let (episode_id, reason, steps): (i64, String, i64) = sqlx::query_as(
        "SELECT id, reason, steps FROM episodes WHERE outcome = 'interrupted' ORDER BY id DESC LIMIT 1",
    )
    .fetch_one(&db)
    .await
    .expect("an interrupted episode");
    assert_eq!(reason, "ended_by_researcher: stuck car (ada)");
    assert!(steps > 5, "{steps} steps");
    let audited = count(
        &db,
        "SELECT COUNT(*) FROM console_audit WHERE user_name = 'ada' AND action = 'end_game'",
    )
    .await;
    assert_eq!(audited, 1);
    let game_reason: String =
        sqlx::query_scalar("SELECT end_reason FROM games ORDER BY id DESC LIMIT 1")
            .fetch_one(&db)
            .await
            .expect("the game's end");
    assert_eq!(game_reason, "ended_by_researcher: stuck car (ada)");

    eval(
        &console,
        &format!("location.href = '/console/episodes/{episode_id}'; true"),
    )
    .await;
    wait_for(
        &console,
        "the replay to load",
        "document.getElementById('replay')?.dataset.ready === 'true'",
    )
    .await;
    let scrub_max = eval_i64(&console, "Number(document.getElementById('scrub').max)").await;
    assert_eq!(scrub_max, steps, "one scrub position per recorded step");
    let first = eval_string(&console, &format!("(async () => {{ await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))); return {CANVAS_IMAGE}; }})()")).await;
    let to_end = "(() => { const s = document.getElementById('scrub'); s.value = s.max; \
                  s.dispatchEvent(new Event('input')); return document.getElementById('replay').dataset.step; })()";
    assert_eq!(eval_string(&console, to_end).await, steps.to_string());
    let last = eval_string(&console, &format!("(async () => {{ await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))); return {CANVAS_IMAGE}; }})()")).await;
    assert_ne!(first, last, "scrubbing moves the car");
    let detail = eval_string(
        &console,
        "document.getElementById('step-detail').textContent",
    )
    .await;
    assert!(
        detail.contains("participant")
            && (detail.contains("keys") || detail.contains("default action")),
        "the step's chooser and why: {detail}"
    );
    // Playing advances from the start at the chosen speed.
    eval(
        &console,
        "(() => { const s = document.getElementById('scrub'); s.value = 0; s.dispatchEvent(new Event('input')); \
         document.getElementById('speed').value = '4'; document.getElementById('play').click(); return true; })()",
    )
    .await;
    wait_for(
        &console,
        "the replay to play",
        "Number(document.getElementById('replay').dataset.step) > 10",
    )
    .await;

    researcher.close().await;
    participant.close().await;
    server.stop().await;
}

/// On a server with two studies, the page at `/s/ID/` opens its own study's
/// socket (beside it, not `/ws`) and plays that study's game.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_plays_one_of_two_studies() {
    let dir = tempfile::tempdir().unwrap();
    let other = CONSOLE_EXPERIMENT
        .replace("id = \"e2e-console\"", "id = \"other\"")
        .replace("id = \"drive\"", "id = \"other-drive\"");
    let mut server =
        TestServer::start_studies(&[&other, CONSOLE_EXPERIMENT], &dir.path().join("two.db")).await;
    let mut chromium = Chromium::launch().await;
    let page = chromium
        .browser
        .new_page(server.url("/s/e2e-console/?PROLIFIC_PID=two-studies"))
        .await
        .expect("the study page opens");
    wait_for(
        &page,
        "this study's game to draw",
        &format!("document.body.dataset.sceneId === 'drive' && {FRAMES} > 5"),
    )
    .await;
    chromium.close().await;
    server.stop().await;
    let db = server.db().await;
    let joined = count(
        &db,
        "SELECT COUNT(*) FROM participants WHERE experiment_id = 'e2e-console' AND prolific_pid = 'two-studies'",
    )
    .await;
    assert_eq!(joined, 1);
    let elsewhere = count(
        &db,
        "SELECT COUNT(*) FROM participants WHERE experiment_id = 'other'",
    )
    .await;
    assert_eq!(elsewhere, 0);
}

/// An MTurk HIT as a worker sees it: a page on another site (here
/// `localhost`, the study on `127.0.0.1`) frames the study with MTurk's link,
/// in a browser that blocks third-party cookies. The worker plays it through
/// to the end, and the page posts the assignment to `turkSubmitTo` as MTurk's
/// ExternalQuestion expects.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mturk_hit_in_a_cross_site_frame_is_completed_and_submitted() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().unwrap();
    let framing = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let framing_origin = format!("http://localhost:{}", framing.local_addr().unwrap().port());
    let options = tandem_server::Options {
        frame_ancestors: vec![framing_origin.clone()],
        mturk_submit_to: vec![framing_origin.clone()],
        ..tandem_server::Options::default()
    };
    let mut server =
        TestServer::start_with_options(MTURK_EXPERIMENT, &dir.path().join("hit.db"), options).await;
    let link = format!(
        "{}/?workerId=W7&assignmentId=A7&hitId=H7&turkSubmitTo={}",
        server.url(""),
        framing_origin.replace(':', "%3A").replace('/', "%2F")
    );
    // MTurk's side: the HIT page with the study in a frame, and the endpoint
    // the assignment is posted to.
    let (posted_tx, posted_rx) = tokio::sync::oneshot::channel::<String>();
    let hit_page = format!(
        "<!doctype html><title>HIT</title><iframe id=\"hit\" src=\"{link}\" \
         style=\"width:900px;height:700px\"></iframe>"
    );
    let mturk = tokio::spawn(async move {
        let mut posted_tx = Some(posted_tx);
        loop {
            let Ok((mut stream, _)) = framing.accept().await else {
                return;
            };
            let mut request = Vec::new();
            let mut buf = [0u8; 4096];
            // Headers, then as much body as Content-Length says.
            loop {
                let n = stream.read(&mut buf).await.unwrap_or(0);
                if n == 0 {
                    break;
                }
                request.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&request).to_string();
                if let Some(end) = text.find("\r\n\r\n") {
                    let length = text[..end]
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    if request.len() >= end + 4 + length {
                        break;
                    }
                }
            }
            let text = String::from_utf8_lossy(&request).to_string();
            let body = if text.starts_with("POST /mturk/externalSubmit") {
                if let Some(tx) = posted_tx.take() {
                    let form = text
                        .split("\r\n\r\n")
                        .nth(1)
                        .unwrap_or_default()
                        .to_string();
                    let _ = tx.send(form);
                }
                "<!doctype html><p id=\"submitted\">Submitted</p>".to_string()
            } else {
                hit_page.clone()
            };
            let response = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(response.as_bytes()).await;
        }
    });

    let mut chromium = Chromium::launch_with(&["test-third-party-cookie-phaseout"]).await;
    let _page = chromium
        .browser
        .new_page(format!("{framing_origin}/"))
        .await
        .expect("the HIT page opens");
    let form = tokio::time::timeout(Duration::from_secs(40), posted_rx)
        .await
        .expect("the assignment is posted within 40 s")
        .expect("posted");
    assert!(form.contains("assignmentId=A7"), "{form}");
    assert!(form.contains("completion_code=HIT-D0NE"), "{form}");
    chromium.close().await;
    mturk.abort();
    server.stop().await;

    let db = server.db().await;
    let participants = count(&db, "SELECT COUNT(*) FROM participants").await;
    assert_eq!(
        participants, 1,
        "one worker, one participant, even cookie-less"
    );
    let finished = count(
        &db,
        "SELECT COUNT(*) FROM participants WHERE worker_id = 'W7' AND finished_us IS NOT NULL",
    )
    .await;
    assert_eq!(finished, 1);
    let steps = count(&db, "SELECT COUNT(*) FROM steps").await;
    assert!(
        steps > 10,
        "the game was played in the frame ({steps} steps)"
    );
}

/// A short game that needs no keys, then the end: the HIT plays itself.
const MTURK_EXPERIMENT: &str = r#"
id = "e2e-mturk"
title = "MTurk test"

[[scene]]
kind = "game"
id = "drive"
title = "Drive"
env = "MountainCar-v0"
fps = 30
time_limit_s = 2
default_action = 1
instructions = "Watch."
[scene.keys]
ArrowLeft = 0
ArrowRight = 2

[[scene]]
kind = "end"
id = "end"
title = "Thanks"
markdown = "Done."
completion_code = "HIT-D0NE"
"#;

/// A screening scene in a real browser: the page asks for a key, a key
/// pressed on the (DevTools) keyboard is a trusted event, the server
/// measures the round trip and the window passes, and the study goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_passes_screening_with_a_key_press() {
    const STUDY: &str = r#"
id = "e2e-screening"
title = "Screening test"

[[scene]]
kind = "screening"
id = "check"
title = "Checking your setup"
max_rtt_ms = 500
pings = 3
min_width = 300
min_height = 200
keyboard = true

[[scene]]
kind = "info"
id = "welcome"
title = "Welcome"
markdown = "You passed."

[[scene]]
kind = "end"
id = "end"
title = "Thanks"
markdown = "Done."
"#;
    let dir = tempfile::tempdir().unwrap();
    let mut server = TestServer::start_at(STUDY, &dir.path().join("screening.db")).await;
    let mut chromium = Chromium::launch().await;
    let page = chromium
        .browser
        .new_page(server.url("/?PROLIFIC_PID=e2e-screen"))
        .await
        .expect("the page opens");
    wait_for(
        &page,
        "the screening scene to ask for a key",
        "document.body.dataset.sceneId === 'check' && !!document.getElementById('press-a-key')",
    )
    .await;
    key_event(&page, Key::D, DispatchKeyEventType::KeyDown).await;
    key_event(&page, Key::D, DispatchKeyEventType::KeyUp).await;
    wait_for(
        &page,
        "the study to go on",
        "document.body.dataset.sceneId === 'welcome'",
    )
    .await;
    chromium.close().await;
    server.stop().await;
    let db = server.db().await;
    let passed: String =
        sqlx::query_scalar("SELECT answer FROM responses WHERE question_id = 'passed'")
            .fetch_one(&db)
            .await
            .expect("the screening was recorded");
    assert_eq!(passed, "true");
    let key: String = sqlx::query_scalar("SELECT answer FROM responses WHERE question_id = 'key'")
        .fetch_one(&db)
        .await
        .expect("the key press was recorded");
    assert_eq!(key, "true");
}
