//! Where a seat's policy runs: inline in the game task, or on a thread of its
//! own.
//!
//! Built-in and ONNX policies answer in microseconds, so the game task calls
//! them directly. A policy in a Python worker may take milliseconds or hang
//! until its deadline; called on the async runtime it would stall every game
//! sharing the runtime's threads. Such a policy lives on a dedicated OS thread
//! and the game task awaits its actions over channels, as `env_host` does for
//! environments. The registry says which is which
//! ([`tandem_policy::PolicyFactory::acts_inline`]).
//!
//! Resets and transitions are sent without waiting for an answer: they queue
//! on the thread in order ahead of the next `act`, so a learning policy's
//! `observe` runs while the game waits for its next tick. A failure of either
//! is reported by that next `act`, which is where the seat can fall back.

use std::panic::AssertUnwindSafe;
use std::sync::mpsc as std_mpsc;

use tandem_env::{Action, Observation};
use tandem_policy::{Policy, PolicyError, Transition};
use tokio::sync::oneshot;

use super::exit::panic_message;

/// A seat's policy, wherever it runs.
pub(super) enum PolicyRunner {
    Inline {
        policy: Box<dyn Policy>,
        /// A failed `observe`, reported by the next `act`.
        failure: Option<PolicyError>,
    },
    Hosted(std_mpsc::Sender<Request>),
}

pub(super) enum Request {
    Reset(u64),
    Act(Observation, oneshot::Sender<Result<Action, PolicyError>>),
    Observe(Box<Transition>),
}

impl PolicyRunner {
    /// Runs `policy` inline, or on a thread named after it.
    pub(super) fn start(
        policy: Box<dyn Policy>,
        inline: bool,
        name: &str,
    ) -> Result<PolicyRunner, String> {
        if inline {
            return Ok(PolicyRunner::Inline {
                policy,
                failure: None,
            });
        }
        let (requests, inbox) = std_mpsc::channel();
        std::thread::Builder::new()
            .name(format!("policy {name}"))
            .spawn(move || serve(policy, inbox))
            .map_err(|e| format!("could not start its thread: {e}"))?;
        Ok(PolicyRunner::Hosted(requests))
    }

    pub(super) fn reset(&mut self, seed: u64) {
        match self {
            PolicyRunner::Inline { policy, failure } => {
                *failure = None;
                policy.reset(seed);
            }
            // A thread that is gone is reported by the next act.
            PolicyRunner::Hosted(requests) => {
                let _ = requests.send(Request::Reset(seed));
            }
        }
    }

    pub(super) async fn act(&mut self, obs: &Observation) -> Result<Action, PolicyError> {
        match self {
            PolicyRunner::Inline { policy, failure } => match failure.take() {
                Some(e) => Err(e),
                None => policy.act(obs),
            },
            PolicyRunner::Hosted(requests) => {
                let gone = || {
                    PolicyError::Python(
                        "stopped: its thread is gone (it panicked; see the log)".into(),
                    )
                };
                let (reply, answer) = oneshot::channel();
                requests
                    .send(Request::Act(obs.clone(), reply))
                    .map_err(|_| gone())?;
                answer.await.map_err(|_| gone())?
            }
        }
    }

    /// Whether the policy learns from transitions (a hosted one is asked, so
    /// it may say yes).
    pub(super) fn observes(&self) -> bool {
        match self {
            PolicyRunner::Inline { policy, .. } => policy.observes(),
            PolicyRunner::Hosted(_) => true,
        }
    }

    pub(super) fn observe(&mut self, transition: Transition) {
        match self {
            PolicyRunner::Inline { policy, failure } => {
                if let Err(e) = policy.observe(&transition) {
                    *failure = Some(e);
                }
            }
            PolicyRunner::Hosted(requests) => {
                let _ = requests.send(Request::Observe(Box::new(transition)));
            }
        }
    }
}

/// The policy thread: answers requests until the seat drops its sender. A
/// panic in the policy ends the thread; the seat sees its channel close.
fn serve(mut policy: Box<dyn Policy>, inbox: std_mpsc::Receiver<Request>) {
    // A failed reset or observe, answered to the next act in its place.
    let mut failure: Option<PolicyError> = None;
    // While the game's environment starts: a worker's imports take a second.
    if let Err(panic) = std::panic::catch_unwind(AssertUnwindSafe(|| policy.prepare())) {
        tracing::error!(
            cause = panic_message(&panic),
            "a policy panicked while preparing"
        );
        return;
    }
    while let Ok(request) = inbox.recv() {
        let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| match request {
            Request::Reset(seed) => {
                failure = None;
                policy.reset(seed);
            }
            Request::Observe(transition) => {
                if failure.is_none()
                    && policy.observes()
                    && let Err(e) = policy.observe(&transition)
                {
                    failure = Some(e);
                }
            }
            Request::Act(obs, reply) => {
                let answer = match failure.take() {
                    Some(e) => Err(e),
                    None => policy.act(&obs),
                };
                let _ = reply.send(answer);
            }
        }));
        if let Err(panic) = outcome {
            tracing::error!(
                cause = panic_message(&panic),
                "a policy panicked on its thread"
            );
            return;
        }
    }
}
