//! An environment whose `step` blocks never delays another game: environments
//! from outside the built-ins step on a thread of their own.
//!
//! Two servers share this test's single-threaded runtime. One runs a game of an
//! environment (from the runtime catalog) whose first step blocks until the
//! test opens a gate; the other runs a normal game. While the first step is
//! blocked, the normal game must keep sending frames. Were the blocking step
//! run on the runtime, nothing else could run until the step gave up waiting
//! (after `GIVE_UP`), which the environment records, and the test fails.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use common::{Client, TestServer, WAIT};
use tandem_env::{Action, Env, EnvError, EnvFactory, EnvSpec, Frame, Observation, Step};
use tandem_envs::{CartPole, Catalog};

/// How long the blocked step waits for the gate before giving up on its own.
const GIVE_UP: Duration = Duration::from_secs(5);

/// Holds the first step of every `Gated-v0` environment until opened.
#[derive(Default)]
struct Gate {
    open: Mutex<bool>,
    opened: Condvar,
    /// Steps that started.
    entered: AtomicUsize,
    /// A step gave up waiting: the gate was not opened in time.
    gave_up: AtomicBool,
}

impl Gate {
    fn wait(&self) {
        let open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let (open, timeout) = self
            .opened
            .wait_timeout_while(open, GIVE_UP, |open| !*open)
            .unwrap_or_else(|p| p.into_inner());
        if timeout.timed_out() && !*open {
            self.gave_up.store(true, Ordering::SeqCst);
        }
    }

    fn open(&self) {
        *self.open.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.opened.notify_all();
    }
}

/// CartPole, except that its first step blocks on the gate.
struct Gated {
    inner: CartPole,
    spec: EnvSpec,
    gate: Arc<Gate>,
    steps: u64,
}

impl Env for Gated {
    fn spec(&self) -> &EnvSpec {
        &self.spec
    }

    fn reset(&mut self, seed: u64) -> Result<Vec<Observation>, EnvError> {
        self.inner.reset(seed)
    }

    fn step(&mut self, actions: &[Action]) -> Result<Step, EnvError> {
        self.steps += 1;
        if self.steps == 1 {
            self.gate.entered.fetch_add(1, Ordering::SeqCst);
            self.gate.wait();
        }
        self.inner.step(actions)
    }

    fn render(&self) -> Frame {
        self.inner.render()
    }
}

struct GatedFactory {
    spec: EnvSpec,
    gate: Arc<Gate>,
}

impl EnvFactory for GatedFactory {
    fn spec(&self) -> &EnvSpec {
        &self.spec
    }

    fn make(&self) -> Result<Box<dyn Env>, EnvError> {
        Ok(Box::new(Gated {
            inner: CartPole::new(),
            spec: self.spec.clone(),
            gate: Arc::clone(&self.gate),
            steps: 0,
        }))
    }
}

/// A one-game experiment playing `env` at 30 fps.
fn experiment(env: &str) -> String {
    format!(
        r#"
id = "slow"
title = "Slow"

[[scene]]
kind = "game"
id = "play"
title = "Play"
env = "{env}"
fps = 30
time_limit_s = 600
default_action = 0
[scene.keys]
ArrowLeft = 0
ArrowRight = 1

[[scene]]
kind = "end"
id = "end"
title = "Thanks"
markdown = "Done."
"#
    )
}

/// While one game's environment is stuck in `step`, another game goes on
/// ticking; once the step returns, the stuck game goes on too.
#[tokio::test]
async fn a_blocked_step_does_not_delay_other_games() {
    let dir = tempfile::tempdir().expect("temp dir");
    let gate = Arc::new(Gate::default());
    let mut spec = CartPole::new().spec().clone();
    spec.id = "Gated-v0".to_string();
    let mut envs = Catalog::builtin();
    envs.insert(Arc::new(GatedFactory {
        spec,
        gate: Arc::clone(&gate),
    }));
    let options = tandem_server::Options {
        envs,
        ..tandem_server::Options::default()
    };
    let mut slow = TestServer::start_with_options(
        &experiment("Gated-v0"),
        &dir.path().join("slow.db"),
        options,
    )
    .await;
    let mut normal =
        TestServer::start_at(&experiment("CartPole-v1"), &dir.path().join("normal.db")).await;

    let mut stuck = Client::arrive(&slow, "").await;
    stuck.expect("frame").await; // the reset frame; the first step comes next
    let deadline = tokio::time::Instant::now() + WAIT;
    while gate.entered.load(Ordering::SeqCst) == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the gated game never stepped"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let mut player = Client::arrive(&normal, "").await;
    // Thirty frames, some of them steps (CartPole's episodes are short, so
    // some may be reset frames, at step 0).
    let mut steps = 0;
    for _ in 0..30 {
        let frame = player.expect("frame").await;
        steps += u32::from(frame["step"].as_u64().unwrap_or(0) > 0);
    }
    assert!(steps > 0, "the normal game stepped");
    assert!(
        !gate.gave_up.load(Ordering::SeqCst),
        "the blocked step held up the runtime: the other game's frames came only after it gave up"
    );

    gate.open();
    loop {
        let frame = stuck.expect("frame").await;
        if frame["step"].as_u64().unwrap_or(0) >= 2 {
            break;
        }
    }
    slow.stop().await;
    normal.stop().await;
}

/// CartPole whose `make` panics (a broken plugin, a worker that cannot start).
struct PanickingFactory {
    spec: EnvSpec,
}

impl EnvFactory for PanickingFactory {
    fn spec(&self) -> &EnvSpec {
        &self.spec
    }

    fn make(&self) -> Result<Box<dyn Env>, EnvError> {
        panic!("this environment cannot be made");
    }
}

/// An environment that panics while its game is set up fails that game
/// cleanly: the participant is told, moved on, and the game marked failed,
/// instead of being left seated in a game that no task runs.
#[tokio::test]
async fn a_panic_while_a_game_is_set_up_ends_it_cleanly() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut spec = CartPole::new().spec().clone();
    spec.id = "Broken-v0".to_string();
    let mut envs = Catalog::builtin();
    envs.insert(Arc::new(PanickingFactory { spec }));
    let options = tandem_server::Options {
        envs,
        ..tandem_server::Options::default()
    };
    let mut server =
        TestServer::start_with_options(&experiment("Broken-v0"), &dir.path().join("t.db"), options)
            .await;
    let mut p = Client::arrive(&server, "").await;
    assert_eq!(p.expect_scene().await["scene"]["kind"], "game");
    assert_eq!(p.expect("error").await["code"], "game_failed");
    assert_eq!(p.expect_scene().await["scene"]["kind"], "end");
    server.stop().await;
    let db = server.db().await;
    assert_eq!(
        common::count(
            &db,
            "SELECT COUNT(*) FROM games WHERE end_reason LIKE 'failed: panicked%'"
        )
        .await,
        1
    );
}
