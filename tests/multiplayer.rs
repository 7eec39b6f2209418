//! Multiplayer over real WebSockets against a real SQLite file: the lobby's
//! rules, fallback takeover and reconnection, games ending for everyone, and
//! who is recorded as choosing each action.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use common::{Client, TestServer, count, eventually};
use serde_json::{Value, json};
use tandem_env::{Action, EnvSpec, Observation};
use tandem_policy::{Policy, PolicyError, PolicyFactory, Registry};

/// A two-chef kitchen with `seat_extra` added to both human seats, and scene
/// settings `settings` (grace, timeout, humans).
fn kitchen(settings: &str, seat_extra: &str) -> String {
    format!(
        r#"
id = "mp"
title = "Multiplayer"

[[scene]]
kind = "game"
id = "kitchen"
title = "Kitchen"
env = "Kitchen-v0"
fps = 30
time_limit_s = 600
default_action = 0
{settings}
[scene.keys]
ArrowUp = 1
ArrowDown = 2
ArrowLeft = 3
ArrowRight = 4
Space = 5

[[scene.seat]]
agent = "chef_0"
human = true
{seat_extra}

[[scene.seat]]
agent = "chef_1"
human = true
{seat_extra}

[[scene]]
kind = "end"
id = "end"
title = "Thanks"
markdown = "Done."
completion_code = "MP"
"#
    )
}

/// Skips messages until a `lobby` message, and returns it.
async fn lobby(c: &mut Client) -> Value {
    c.expect("lobby").await
}

/// The agent index of the seat a client was given.
async fn seat(c: &mut Client) -> i64 {
    let m = c.expect("seat").await;
    m["seat"]["agent"].as_i64().expect("agent index")
}

/// Two participants who arrive form one game with a seat each; each step
/// records both agents, each chosen by its own participant; the match and both
/// waits are stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_arrivals_form_a_game_and_each_plays_their_seat() {
    let dir = tempfile::tempdir().unwrap();
    let exp = kitchen("human_timeout_s = 600", "fallback = \"scripted\"");
    let mut server = TestServer::start_at(&exp, &dir.path().join("t.db")).await;
    let mut a = Client::arrive(&server, "").await;
    let first = lobby(&mut a).await;
    assert_eq!(
        (first["waiting"].as_i64(), first["needed"].as_i64()),
        (Some(1), Some(2))
    );
    let mut b = Client::arrive(&server, "").await;
    let (seat_a, seat_b) = (seat(&mut a).await, seat(&mut b).await);
    assert_ne!(seat_a, seat_b);
    a.hold(&["ArrowRight"]).await;
    b.hold(&["ArrowLeft"]).await;
    for _ in 0..15 {
        a.expect("frame").await;
        b.expect("frame").await;
    }
    server.stop().await;
    let db = server.db().await;
    assert_eq!(count(&db, "SELECT COUNT(*) FROM games").await, 1);
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) FROM matches WHERE reason = 'full' AND humans = 2 AND filled = 0"
        )
        .await,
        1
    );
    assert_eq!(count(&db, "SELECT COUNT(*) FROM lobby_waits WHERE outcome = 'matched' AND agent IS NOT NULL AND left_us >= joined_us").await, 2);
    assert_eq!(
        count(&db, "SELECT COUNT(DISTINCT participant_id) FROM game_seats").await,
        2
    );
    // Each agent's keyed steps are its own participant's.
    assert!(
        count(
            &db,
            "SELECT COUNT(*) FROM steps s JOIN game_seats g ON g.agent = s.agent
                         WHERE s.source = 'keys' AND s.actor = 'participant:' || g.participant_id"
        )
        .await
            > 0
    );
    assert_eq!(count(&db, "SELECT COUNT(*) FROM steps s JOIN game_seats g ON g.agent = s.agent
                           WHERE s.actor LIKE 'participant:%' AND s.actor != 'participant:' || g.participant_id").await, 0);
    assert!(count(&db, "SELECT COUNT(*) FROM steps WHERE keys = 'ArrowRight'").await > 0);
    assert!(count(&db, "SELECT COUNT(*) FROM steps WHERE keys = 'ArrowLeft'").await > 0);
}

/// Closing the tab in the lobby leaves the queue; a second tab does not take a
/// second place; a game that has started never takes a stranger.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lobby_keeps_one_place_per_person_and_games_take_no_strangers() {
    let dir = tempfile::tempdir().unwrap();
    let exp = kitchen("human_timeout_s = 600", "fallback = \"scripted\"");
    let mut server = TestServer::start_at(&exp, &dir.path().join("t.db")).await;

    let mut gone = Client::arrive(&server, "").await;
    lobby(&mut gone).await;
    drop(gone);
    let db = server.db().await;
    assert_eq!(
        eventually(
            &db,
            "SELECT COUNT(*) FROM lobby_waits WHERE outcome = 'left'"
        )
        .await,
        1
    );

    let mut a = Client::arrive(&server, "").await;
    assert_eq!(
        lobby(&mut a).await["waiting"],
        1,
        "the one who left is not waiting"
    );
    let mut a2 = Client::connect(&server, &a.cookie).await;
    assert_eq!(
        lobby(&mut a2).await["waiting"],
        1,
        "a second tab keeps one place"
    );
    assert_eq!(a.expect("closed").await["code"], 4002);

    let mut b = Client::arrive(&server, "").await;
    seat(&mut a2).await;
    seat(&mut b).await;
    let mut c = Client::arrive(&server, "").await;
    let waiting = lobby(&mut c).await;
    assert_eq!(
        waiting["waiting"], 1,
        "the latecomer waits for a new group: {waiting}"
    );
    // Still waiting after the running game has played on.
    for _ in 0..30 {
        b.expect("frame").await;
    }
    assert_eq!(lobby(&mut c).await["waiting"], 1);
    server.stop().await;
    assert_eq!(count(&db, "SELECT COUNT(*) FROM games").await, 1);
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) FROM game_seats WHERE participant_id IS NOT NULL"
        )
        .await,
        2
    );
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) FROM lobby_waits WHERE outcome = 'matched'"
        )
        .await,
        2
    );
    assert_eq!(count(&db, "SELECT COUNT(*) FROM lobby_waits").await, 4);
}

/// After `human_timeout_s`, a lone participant plays with the fallback policy
/// in the empty seat, recorded as such.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lone_participant_is_matched_with_ai_after_the_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let exp = kitchen("human_timeout_s = 1", "fallback = \"scripted\"");
    let mut server = TestServer::start_at(&exp, &dir.path().join("t.db")).await;
    let mut a = Client::arrive(&server, "").await;
    assert_eq!(lobby(&mut a).await["timeout_s"], 1);
    let mine = seat(&mut a).await;
    for _ in 0..30 {
        a.expect("frame").await;
    }
    server.stop().await;
    let db = server.db().await;
    assert_eq!(count(&db, "SELECT COUNT(*) FROM matches WHERE reason = 'human_timeout' AND humans = 1 AND filled = 1").await, 1);
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) FROM events WHERE kind = 'lobby_timeout'
                           AND json_extract(detail, '$.outcome') = 'filled_with_fallback'"
        )
        .await,
        1
    );
    let fallback_agent: i64 = sqlx::query_scalar(
        "SELECT DISTINCT agent FROM steps WHERE source = 'fallback' AND actor = 'policy:scripted'",
    )
    .fetch_one(&db)
    .await
    .unwrap();
    assert_ne!(fallback_agent, mine);
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) FROM game_seats WHERE participant_id IS NULL AND policy = 'scripted'"
        )
        .await,
        1
    );
}

/// With no fallback to fill the empty seat, the timeout tells the participant
/// no partner came and moves them on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_fallback_the_timeout_moves_the_participant_on() {
    let dir = tempfile::tempdir().unwrap();
    let exp = kitchen("human_timeout_s = 1", "");
    let mut server = TestServer::start_at(&exp, &dir.path().join("t.db")).await;
    let mut a = Client::arrive(&server, "").await;
    lobby(&mut a).await;
    assert_eq!(a.expect("notice").await["code"], "no_partner");
    assert_eq!(a.expect_scene().await["scene"]["kind"], "end");
    server.stop().await;
    let db = server.db().await;
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) FROM lobby_waits WHERE outcome = 'no_partner'"
        )
        .await,
        1
    );
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) FROM events WHERE kind = 'lobby_timeout'"
        )
        .await,
        1
    );
    assert_eq!(count(&db, "SELECT COUNT(*) FROM games").await, 0);
}

/// When a participant leaves, the fallback takes their seat within a tick and
/// the other keeps playing; back within the grace period, they get it back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fallback_takes_over_and_a_returning_participant_gets_the_seat_back() {
    let dir = tempfile::tempdir().unwrap();
    let exp = kitchen("reconnect_grace_s = 30", "fallback = \"scripted\"");
    let mut server = TestServer::start_at(&exp, &dir.path().join("t.db")).await;
    let mut a = Client::arrive(&server, "").await;
    let mut b = Client::arrive(&server, "").await;
    let seat_a = seat(&mut a).await;
    seat(&mut b).await;
    b.expect("frame").await;
    let cookie = a.cookie.clone();
    drop(a);
    assert_eq!(b.expect("notice").await["code"], "partner_left");
    // The game goes on for b: frames keep coming from the same episode.
    let before = b.expect("frame").await;
    for _ in 0..20 {
        b.expect("frame").await;
    }
    let after = b.expect("frame").await;
    assert_eq!(before["episode"], after["episode"], "no interruption");
    let mut a = Client::connect(&server, &cookie).await;
    assert_eq!(seat(&mut a).await, seat_a, "the same seat back");
    assert_eq!(b.expect("notice").await["code"], "partner_back");
    a.hold(&["ArrowUp"]).await;
    for _ in 0..10 {
        a.expect("frame").await;
    }
    server.stop().await;
    let db = server.db().await;
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT kind, detail FROM events WHERE kind IN ('disconnected', 'reconnected', 'seat_change') ORDER BY id",
    )
    .fetch_all(&db)
    .await
    .unwrap();
    let kinds: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    let takeover = kinds.iter().position(|k| *k == "seat_change");
    assert!(
        kinds.contains(&"disconnected") && kinds.contains(&"reconnected"),
        "{kinds:?}"
    );
    let detail: Value = serde_json::from_str(&rows[takeover.unwrap()].1).unwrap();
    assert_eq!(detail["to"], "policy:scripted");
    assert_eq!(detail["reason"], "takeover");
    assert!(count(&db, "SELECT COUNT(*) FROM steps WHERE source = 'fallback'").await > 0);
    // Before and after the absence the seat's own participant acted.
    assert!(count(&db, "SELECT COUNT(*) FROM steps WHERE keys = 'ArrowUp'").await > 0);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM episodes WHERE outcome = 'interrupted' AND reason = 'disconnected'").await, 0);
}

/// With no fallback, a participant who does not return within the grace
/// period ends the game for everyone, who are told why and move on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_fallback_a_partner_who_stays_away_ends_the_game() {
    let dir = tempfile::tempdir().unwrap();
    let exp = kitchen("reconnect_grace_s = 1", "");
    let mut server = TestServer::start_at(&exp, &dir.path().join("t.db")).await;
    let mut a = Client::arrive(&server, "").await;
    let mut b = Client::arrive(&server, "").await;
    seat(&mut a).await;
    seat(&mut b).await;
    b.expect("frame").await;
    drop(a);
    assert_eq!(b.expect("notice").await["code"], "partner_left");
    let game = b.expect("game").await;
    assert_eq!(
        game["status"], "waiting",
        "paused while the partner may return"
    );
    assert_eq!(b.expect("notice").await["code"], "partner_did_not_return");
    assert_eq!(b.expect_scene().await["scene"]["kind"], "end");
    server.stop().await;
    let db = server.db().await;
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) FROM games WHERE end_reason LIKE 'participant_left%'"
        )
        .await,
        1
    );
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) FROM events WHERE kind = 'grace_expired'"
        )
        .await,
        1
    );
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) FROM episodes WHERE reason = 'disconnected'"
        )
        .await,
        1
    );
    // Both participants moved on past the game.
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) FROM participants WHERE scene_index = 1"
        )
        .await,
        2
    );
}

/// A CartPole scene where an AI acts and the participant's keys count as
/// `input`.
fn assisted(input: &str, policy: &str, extra: &str) -> String {
    format!(
        r#"
id = "assist"
title = "Assisted"

[[scene]]
kind = "game"
id = "play"
title = "Play"
env = "CartPole-v1"
fps = 30
time_limit_s = 600
max_steps = 10000
seed = 3

[[scene.seat]]
human = true
input = "{input}"
policy = "{policy}"
{extra}

[[scene]]
kind = "end"
id = "end"
title = "Thanks"
markdown = "Done."
"#
    )
}

/// Correction: the policy acts until a mapped key is held; then the key's
/// action is applied and recorded as a correction by the participant.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrections_override_the_policy_and_are_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let exp = assisted(
        "correction",
        "scripted",
        "default_action = 0\n[scene.seat.keys]\nArrowLeft = 0\nArrowRight = 1",
    );
    let mut server = TestServer::start_at(&exp, &dir.path().join("t.db")).await;
    let mut p = Client::arrive(&server, "").await;
    assert_eq!(p.expect("seat").await["seat"]["input"], "correction");
    for _ in 0..10 {
        p.expect("frame").await;
    }
    p.hold(&["ArrowLeft"]).await;
    for _ in 0..10 {
        p.expect("frame").await;
    }
    p.hold(&[]).await;
    for _ in 0..10 {
        p.expect("frame").await;
    }
    server.stop().await;
    let db = server.db().await;
    assert!(count(&db, "SELECT COUNT(*) FROM steps WHERE source = 'policy' AND actor = 'policy:scripted' AND keys IS NULL").await >= 10);
    assert!(
        count(
            &db,
            "SELECT COUNT(*) FROM steps WHERE source = 'correction' AND actor LIKE 'participant:%'
                         AND keys = 'ArrowLeft' AND action = '0' AND input_seq IS NOT NULL"
        )
        .await
            > 0
    );
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) FROM steps WHERE source = 'keys' OR source = 'default'"
        )
        .await,
        0
    );
}

/// Feedback: the policy acts throughout; each press of a feedback key is
/// recorded once, with its value, beside the environment's reward.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feedback_presses_are_recorded_beside_the_reward() {
    let dir = tempfile::tempdir().unwrap();
    let exp = assisted(
        "feedback",
        "scripted",
        "[scene.seat.feedback]\nArrowUp = 1\nArrowDown = -0.5",
    );
    let mut server = TestServer::start_at(&exp, &dir.path().join("t.db")).await;
    let mut p = Client::arrive(&server, "").await;
    let seat = p.expect("seat").await;
    assert_eq!(seat["seat"]["keys"], json!(["ArrowUp", "ArrowDown"]));
    p.expect("frame").await;
    // A press held for many ticks counts once; a second press counts again.
    p.hold(&["ArrowUp"]).await;
    for _ in 0..5 {
        p.expect("frame").await;
    }
    p.hold(&[]).await;
    p.hold(&["ArrowDown"]).await;
    p.hold(&[]).await;
    for _ in 0..5 {
        p.expect("frame").await;
    }
    server.stop().await;
    let db = server.db().await;
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM steps WHERE feedback = 1.0").await,
        1
    );
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM steps WHERE feedback = -0.5").await,
        1
    );
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) FROM steps WHERE actor != 'policy:scripted'"
        )
        .await,
        0
    );
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM steps WHERE reward = 1.0").await,
        count(&db, "SELECT COUNT(*) FROM steps").await
    );
}

/// A policy that goes wrong after a number of actions, as a model might on an
/// input it cannot handle: it errors, or (`out_of_range`) returns an action
/// outside the action space.
struct Flaky {
    after: u32,
    out_of_range: bool,
    acted: Arc<AtomicU32>,
}

impl Policy for Flaky {
    fn reset(&mut self, _seed: u64) {}
    fn act(&mut self, _obs: &Observation) -> Result<Action, PolicyError> {
        match self.acted.fetch_add(1, Ordering::SeqCst) >= self.after {
            false => Ok(Action::Discrete(0)),
            true if self.out_of_range => Ok(Action::Discrete(99)),
            true => Err(PolicyError::Inference("tensor shape changed".into())),
        }
    }
}

struct FlakyFactory(u32, bool);

impl PolicyFactory for FlakyFactory {
    fn create(&self, _env: &EnvSpec, _agent: usize) -> Result<Box<dyn Policy>, PolicyError> {
        Ok(Box::new(Flaky {
            after: self.0,
            out_of_range: self.1,
            acted: Arc::new(AtomicU32::new(0)),
        }))
    }
    fn describe(&self) -> String {
        "fails after a while".into()
    }
}

/// `[policy.flaky]` in a file, to be replaced by [`FlakyFactory`] in the registry.
const FLAKY_TABLE: &str = "[policy.flaky]\nkind = \"onnx\"\npath = \"unused.onnx\"\n";

/// An AI seat whose policy fails mid-game (an error, or an action outside the
/// space) is taken over by its fallback, with an event; without a fallback the
/// game ends cleanly and the flow goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_policy_is_replaced_or_ends_the_game_cleanly() {
    for (fallback, ends, out_of_range) in [
        ("fallback = \"noop\"", false, false),
        ("fallback = \"noop\"", false, true),
        ("", true, false),
        ("", true, true),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let exp = format!(
            "{}\n{FLAKY_TABLE}",
            kitchen("", "").replace(
                "[[scene.seat]]\nagent = \"chef_1\"\nhuman = true\n",
                &format!("[[scene.seat]]\nagent = \"chef_1\"\nai = \"flaky\"\n{fallback}\n"),
            )
        );
        let mut registry = Registry::builtin();
        registry.insert("flaky", Arc::new(FlakyFactory(5, out_of_range)));
        let mut server = TestServer::start_with(&exp, &dir.path().join("t.db"), registry).await;
        let mut a = Client::arrive(&server, "").await;
        seat(&mut a).await;
        if ends {
            assert_eq!(a.expect("notice").await["code"], "policy_failed");
            assert_eq!(a.expect_scene().await["scene"]["kind"], "end");
        } else {
            for _ in 0..30 {
                a.expect("frame").await;
            }
        }
        server.stop().await;
        let db = server.db().await;
        assert_eq!(
            count(
                &db,
                "SELECT COUNT(*) FROM events WHERE kind = 'policy_failed'"
            )
            .await,
            1
        );
        if ends {
            assert_eq!(
                count(
                    &db,
                    "SELECT COUNT(*) FROM games WHERE end_reason LIKE 'policy_failed%'"
                )
                .await,
                1
            );
            assert_eq!(
                count(
                    &db,
                    "SELECT COUNT(*) FROM episodes WHERE reason = 'policy_failed'"
                )
                .await,
                1
            );
        } else {
            assert!(count(&db, "SELECT COUNT(*) FROM steps WHERE agent = 1 AND source = 'fallback' AND actor = 'policy:noop'").await > 0);
            assert_eq!(
                count(
                    &db,
                    "SELECT COUNT(*) FROM steps WHERE agent = 1 AND source = 'policy'"
                )
                .await,
                5
            );
        }
    }
}

/// An ONNX model (the example CartPole network, through tract) plays a seat
/// in a real game: every step is the model's, and greedy play balances.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_onnx_model_plays_a_seat() {
    let dir = tempfile::tempdir().unwrap();
    let model = std::fs::canonicalize("examples/models/cartpole_mlp.onnx").expect("example model");
    let exp = format!(
        "{}\n[policy.balancer]\nkind = \"onnx\"\npath = \"{}\"\n",
        assisted("feedback", "balancer", ""),
        model.display()
    );
    let experiment = tandem_experiment::parse(&exp, "t.toml").expect("parses");
    let mut registry = Registry::builtin();
    for def in &experiment.policies {
        let onnx = def.onnx().expect("an onnx policy");
        let factory = tandem_policy_onnx::OnnxFactory::load(onnx).expect("model loads");
        registry.insert(&def.name, Arc::new(factory));
    }
    let mut server = TestServer::start_with(&exp, &dir.path().join("t.db"), registry).await;
    let mut p = Client::arrive(&server, "").await;
    p.expect("seat").await;
    while p.expect("frame").await["step"].as_u64() < Some(60) {}
    server.stop().await;
    let db = server.db().await;
    let steps = count(&db, "SELECT COUNT(*) FROM steps").await;
    assert!(steps >= 60, "{steps} steps");
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) FROM steps WHERE actor = 'policy:balancer' AND source = 'policy'"
        )
        .await,
        steps
    );
    // Greedy play keeps the pole up: no episode ended by falling in 60 steps.
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) FROM episodes WHERE outcome = 'complete'"
        )
        .await,
        0
    );
}

/// Participants still waiting when the server stops have their waits closed
/// as `server_shutdown`, not as having left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_lobby_waits() {
    let dir = tempfile::tempdir().unwrap();
    let exp = kitchen("human_timeout_s = 600", "fallback = \"scripted\"");
    let mut server = TestServer::start_at(&exp, &dir.path().join("t.db")).await;
    let mut a = Client::arrive(&server, "").await;
    lobby(&mut a).await;
    server.stop().await;
    let db = server.db().await;
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM lobby_waits WHERE outcome = 'server_shutdown' AND left_us IS NOT NULL").await,
        1
    );
}

/// A lobby that times out with no partner, in a scene with a timed-out
/// ending, ends the study for the participant there with its own code and
/// redirect (Prolific's "timed out"), also after a reconnect; no game starts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lobby_timeout_can_end_the_study_with_its_own_code() {
    let dir = tempfile::tempdir().unwrap();
    let exp = kitchen(
        "human_timeout_s = 1\ntimed_out_code = \"T1MED-0UT\"\n\
         timed_out_redirect = \"https://app.prolific.com/submissions/complete?cc={completion_code}\"",
        "",
    );
    let mut server = TestServer::start_at(&exp, &dir.path().join("timeout.db")).await;
    let mut alone = Client::arrive(&server, "?PROLIFIC_PID=alone").await;
    let first = alone.expect_scene().await;
    assert_eq!(first["scene"]["kind"], "game");
    let out = alone.expect_scene().await;
    assert_eq!(out["scene"]["kind"], "end", "{out}");
    assert_eq!(out["scene"]["id"], "kitchen-timed-out");
    assert_eq!(out["scene"]["completion_code"], "T1MED-0UT");
    assert_eq!(
        out["scene"]["redirect_url"],
        "https://app.prolific.com/submissions/complete?cc=T1MED-0UT"
    );
    let cookie = alone.cookie.clone();
    drop(alone);
    let mut back = Client::connect(&server, &cookie).await;
    let again = back.expect_scene().await;
    assert_eq!(again["scene"]["id"], "kitchen-timed-out", "{again}");
    server.stop().await;
    let db = server.db().await;
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM participants WHERE completion_code = 'T1MED-0UT' AND finished_us IS NOT NULL").await,
        1
    );
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM games").await,
        0,
        "no game started"
    );
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) FROM lobby_waits WHERE outcome = 'no_partner'"
        )
        .await,
        1
    );
}

/// `group = "same"`: the pairs that cooked together in the first kitchen
/// cook together again in the second, whatever order they arrive in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_that_last_are_seated_together_again() {
    let dir = tempfile::tempdir().unwrap();
    let study = r#"
id = "teams"
title = "Teams"

[[scene]]
kind = "game"
id = "first"
title = "First kitchen"
env = "Kitchen-v0"
fps = 30
time_limit_s = 2
default_action = 0
human_timeout_s = 60
[scene.keys]
Space = 5
[[scene.seat]]
agent = "chef_0"
human = true
[[scene.seat]]
agent = "chef_1"
human = true

[[scene]]
kind = "game"
id = "second"
title = "Second kitchen"
env = "Kitchen-v0"
fps = 30
time_limit_s = 2
default_action = 0
human_timeout_s = 60
group = "same"
[scene.keys]
Space = 5
[[scene.seat]]
agent = "chef_0"
human = true
[[scene.seat]]
agent = "chef_1"
human = true

[[scene]]
kind = "end"
id = "end"
title = "Thanks"
markdown = "Done."
"#;
    let mut server = TestServer::start_at(study, &dir.path().join("teams.db")).await;
    let mut players = Vec::new();
    for name in ["A", "B", "C", "D"] {
        let mut client = Client::arrive(&server, &format!("?PROLIFIC_PID={name}")).await;
        players.push(tokio::spawn(async move {
            loop {
                if client.expect_scene().await["scene"]["kind"] == "end" {
                    return;
                }
            }
        }));
    }
    for player in players {
        player.await.expect("every player reaches the end");
    }
    server.stop().await;
    let db = server.db().await;
    let pairs: Vec<(i64, String)> = sqlx::query_as(
        "SELECT g.scene_index, group_concat(p.prolific_pid, '') FROM
           (SELECT s.game_id, s.participant_id FROM game_seats s ORDER BY s.participant_id) s
         JOIN games g ON g.id = s.game_id JOIN participants p ON p.id = s.participant_id
         GROUP BY g.id ORDER BY g.scene_index, 2",
    )
    .fetch_all(&db)
    .await
    .expect("the games");
    let first: Vec<&str> = pairs
        .iter()
        .filter(|(s, _)| *s == 0)
        .map(|(_, p)| p.as_str())
        .collect();
    let second: Vec<&str> = pairs
        .iter()
        .filter(|(s, _)| *s == 1)
        .map(|(_, p)| p.as_str())
        .collect();
    assert_eq!(first.len(), 2, "{pairs:?}");
    assert_eq!(first, second, "the same pairs again: {pairs:?}");
}
