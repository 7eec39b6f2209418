//! Where a game's environment runs: inline in the game task, or on a thread of
//! its own.
//!
//! A built-in environment steps and renders in about a microsecond, so the
//! game task calls it directly. Anything else (a Python worker, user code) may
//! take milliseconds or hang; called on the async runtime it would stall every
//! other game sharing the runtime's threads. Such an environment lives on a
//! dedicated OS thread, and the game task awaits its answers over channels, so
//! a slow environment slows only its own game. The catalog says which is which
//! ([`tandem_env::EnvFactory::steps_inline`]).
//!
//! Every call renders too: the game publishes a frame after each reset and
//! step, and one round trip to the thread is cheaper than two.

use std::panic::AssertUnwindSafe;
use std::sync::mpsc as std_mpsc;

use tandem_env::{Action, Env, EnvError, EnvSpec, Frame, Observation, Step};
use tandem_envs::Catalog;
use tokio::sync::oneshot;

use super::GameError;
use super::exit::panic_message;

/// A game's environment, wherever it runs.
pub(super) enum EnvRunner {
    Inline(Box<dyn Env>),
    Hosted(Hosted),
}

/// An environment on its own thread.
pub(super) struct Hosted {
    spec: EnvSpec,
    requests: std_mpsc::Sender<Request>,
}

enum Request {
    Reset(u64, oneshot::Sender<Answer<Vec<Observation>>>),
    Step(Vec<Action>, oneshot::Sender<Answer<(Step, Option<Info>)>>),
}

/// An environment's info (see [`Env::info`]).
pub(super) type Info = serde_json::Map<String, serde_json::Value>;

/// What the thread answers: the call's result and the frame drawn after it.
type Answer<T> = Result<(T, Frame), EnvError>;

impl EnvRunner {
    /// Makes environment `id` from the catalog, on a thread of its own unless
    /// the catalog says it steps inline.
    pub(super) fn make(envs: &Catalog, id: &str) -> Result<EnvRunner, GameError> {
        let factory = envs.get(id).map_err(tandem_envs::MakeError::from)?;
        let env = factory
            .make()
            .map_err(|source| tandem_envs::MakeError::Failed {
                id: id.to_string(),
                source,
            })?;
        if factory.steps_inline() {
            return Ok(EnvRunner::Inline(env));
        }
        let spec = env.spec().clone();
        let (requests, inbox) = std_mpsc::channel();
        std::thread::Builder::new()
            .name(format!("env {id}"))
            .spawn(move || serve(env, inbox))
            .map_err(|e| GameError::EnvStopped(format!("could not start its thread: {e}")))?;
        Ok(EnvRunner::Hosted(Hosted { spec, requests }))
    }

    pub(super) fn spec(&self) -> &EnvSpec {
        match self {
            EnvRunner::Inline(env) => env.spec(),
            EnvRunner::Hosted(hosted) => &hosted.spec,
        }
    }

    /// Starts an episode from `seed`: each agent's first observation, and the
    /// first frame.
    pub(super) async fn reset(
        &mut self,
        seed: u64,
    ) -> Result<(Vec<Observation>, Frame), GameError> {
        match self {
            EnvRunner::Inline(env) => {
                let observations = env.reset(seed).map_err(GameError::Reset)?;
                Ok((observations, env.render()))
            }
            EnvRunner::Hosted(hosted) => {
                let (tx, rx) = oneshot::channel();
                hosted
                    .ask(Request::Reset(seed, tx), rx)
                    .await?
                    .map_err(GameError::Reset)
            }
        }
    }

    /// One joint step, the frame after it, and the environment's info then.
    pub(super) async fn step(
        &mut self,
        actions: &[Action],
    ) -> Result<(Step, Frame, Option<Info>), GameError> {
        match self {
            EnvRunner::Inline(env) => {
                let step = env.step(actions).map_err(GameError::Step)?;
                let info = env.info();
                Ok((step, env.render(), info))
            }
            EnvRunner::Hosted(hosted) => {
                let (tx, rx) = oneshot::channel();
                let ((step, info), frame) = hosted
                    .ask(Request::Step(actions.to_vec(), tx), rx)
                    .await?
                    .map_err(GameError::Step)?;
                Ok((step, frame, info))
            }
        }
    }
}

impl Hosted {
    async fn ask<T>(
        &self,
        request: Request,
        answer: oneshot::Receiver<Answer<T>>,
    ) -> Result<Answer<T>, GameError> {
        let gone = || GameError::EnvStopped("its thread is gone (it panicked; see the log)".into());
        self.requests.send(request).map_err(|_| gone())?;
        answer.await.map_err(|_| gone())
    }
}

/// The environment thread: answers requests until the game drops its sender.
/// A panic in the environment ends the thread; the game sees its channel close.
fn serve(mut env: Box<dyn Env>, inbox: std_mpsc::Receiver<Request>) {
    while let Ok(request) = inbox.recv() {
        let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| match request {
            Request::Reset(seed, reply) => {
                let answer = env.reset(seed).map(|o| (o, env.render()));
                let _ = reply.send(answer);
            }
            Request::Step(actions, reply) => {
                let answer = env
                    .step(&actions)
                    .map(|step| ((step, env.info()), env.render()));
                let _ = reply.send(answer);
            }
        }));
        if let Err(panic) = outcome {
            tracing::error!(
                env = env.spec().id,
                cause = panic_message(&panic),
                "an environment panicked on its thread"
            );
            return;
        }
    }
}
