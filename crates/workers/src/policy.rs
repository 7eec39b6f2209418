//! Python policies: `[policy.NAME] kind = "python"`, an agent a researcher
//! wrote in Python, played in a worker process of its own.
//!
//! [`WorkerPolicyFactory::create`] is called as a game starts, on the server's
//! runtime, so it only describes the seat; the worker is started by
//! `prepare`, which the server calls on the policy's own thread as soon as
//! the game starts (the factory says it does not act inline). Every later call is one request
//! with a deadline. Any failure (the policy raised, hung, its worker died or
//! broke the protocol) ends the worker and fails the call with the reason;
//! the seat's fallback takes over, as for any failed policy.
//!
//! [`WorkerPolicyFactory::check`] makes the policy for real, in a worker
//! started for the purpose, so `tandem check` and `tandem serve` report a
//! missing module or a refused space before anyone plays.

use std::sync::Arc;

use serde_json::{Map, Value, json};
use tandem_env::{Action, EnvSpec, Observation, Space};
use tandem_policy::{Policy, PolicyError, PolicyFactory, Transition, seat};

use crate::convert;
use crate::protocol::{Kind, Message};
use crate::worker::{Worker, WorkerConfig, WorkerError};

/// A `[policy.NAME]` table of kind `python`: the factory to call and its
/// keyword arguments.
#[derive(Clone, Debug, PartialEq)]
pub struct PythonPolicy {
    /// `module:Factory`, imported by name in the worker.
    pub entry: String,
    pub kwargs: Map<String, Value>,
}

/// Makes [`WorkerPolicy`]s of one `[policy.NAME]` table.
pub struct WorkerPolicyFactory {
    policy: PythonPolicy,
    config: Arc<WorkerConfig>,
}

impl WorkerPolicyFactory {
    pub fn new(policy: PythonPolicy, config: Arc<WorkerConfig>) -> WorkerPolicyFactory {
        WorkerPolicyFactory { policy, config }
    }

    /// The `policy` request for agent `agent` of `env`.
    fn request(&self, env: &EnvSpec, agent: usize) -> Result<(Message, Space), PolicyError> {
        let spec = seat(env, agent)?;
        let message = Message::new(
            Kind::Policy,
            json!({
                "entry": self.policy.entry,
                "kwargs": Value::Object(self.policy.kwargs.clone()),
                "agent": spec.name,
                "observation_space": spec.observation_space.to_json(),
                "action_space": spec.action_space.to_json(),
            }),
        );
        Ok((message, spec.action_space.clone()))
    }
}

impl PolicyFactory for WorkerPolicyFactory {
    fn create(&self, env: &EnvSpec, agent: usize) -> Result<Box<dyn Policy>, PolicyError> {
        let (make, action_space) = self.request(env, agent)?;
        Ok(Box::new(WorkerPolicy {
            make,
            action_space,
            config: Arc::clone(&self.config),
            worker: None,
            observes: false,
            failure: None,
        }))
    }

    fn describe(&self) -> String {
        format!("python {} (in a Python worker)", self.policy.entry)
    }

    fn acts_inline(&self) -> bool {
        false
    }

    fn check(&self, env: &EnvSpec, agent: usize) -> Result<(), PolicyError> {
        let (make, _) = self.request(env, agent)?;
        start_with(&self.config, &make).map(drop)
    }
}

/// Starts a worker and makes the policy `make` describes in it; also whether
/// the policy has `observe`.
fn start_with(config: &WorkerConfig, make: &Message) -> Result<(Worker, bool), PolicyError> {
    let mut worker = Worker::start(config).map_err(|e| python("could not start", e))?;
    let reply = worker
        .request(make, Kind::PolicyReady, "policy", config.start_deadline)
        .map_err(|e| python("could not be made", e))?;
    let observes = reply
        .header
        .get("observes")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    Ok((worker, observes))
}

fn python(doing: &str, e: WorkerError) -> PolicyError {
    PolicyError::Python(match e {
        WorkerError::Raised { last_line, .. } => format!("{doing}: it raised {last_line}"),
        WorkerError::Unsupported(why) => format!("{doing}: {why}"),
        other => format!("{doing}: {other}"),
    })
}

/// One seat's Python policy. Blocking: it runs on the seat's policy thread.
pub struct WorkerPolicy {
    make: Message,
    action_space: Space,
    config: Arc<WorkerConfig>,
    /// Started by the first call; dropped (and so ended) on any failure.
    worker: Option<Worker>,
    /// The policy has an `observe` method.
    observes: bool,
    /// A failure of a call that returns nothing (`reset`), reported by the
    /// next `act`.
    failure: Option<PolicyError>,
}

impl WorkerPolicy {
    /// The request's reply, starting the worker and making the policy first
    /// if need be. Any failure drops the worker: it is not trusted again.
    fn ask(
        &mut self,
        request: &Message,
        expect: Kind,
        what: &'static str,
    ) -> Result<Message, PolicyError> {
        if let Some(failure) = self.failure.take() {
            return Err(failure);
        }
        let worker = match self.worker.as_mut() {
            Some(worker) => worker,
            None => {
                let (worker, observes) = start_with(&self.config, &self.make)?;
                self.observes = observes;
                self.worker.insert(worker)
            }
        };
        let deadline = match expect {
            Kind::PolicyResetDone => self.config.reset_deadline,
            _ => self.config.step_deadline,
        };
        worker
            .request(request, expect, what, deadline)
            .map_err(|e| {
                self.worker = None;
                python(&format!("failed in {what}"), e)
            })
    }
}

impl Policy for WorkerPolicy {
    /// Starts the worker and makes the policy, so the first act finds it ready.
    fn prepare(&mut self) {
        if self.worker.is_some() || self.failure.is_some() {
            return;
        }
        match start_with(&self.config, &self.make) {
            Ok((worker, observes)) => {
                self.observes = observes;
                self.worker = Some(worker);
            }
            Err(e) => self.failure = Some(e),
        }
    }

    fn reset(&mut self, seed: u64) {
        let request = Message::new(Kind::PolicyReset, json!({"seed": seed}));
        if let Err(e) = self.ask(&request, Kind::PolicyResetDone, "reset") {
            self.failure = Some(e);
        }
    }

    fn act(&mut self, obs: &Observation) -> Result<Action, PolicyError> {
        let request = Message::with_arrays(
            Kind::Act,
            json!({"observation": {"$array": 0}}),
            vec![convert::observation_array(obs)],
        );
        let reply = self.ask(&request, Kind::Acted, "act")?;
        let action = reply.header.get("action").unwrap_or(&Value::Null);
        convert::action_in(action, &self.action_space).ok_or_else(|| {
            self.worker = None;
            PolicyError::Python(format!(
                "act returned {}, which is not an action of {}",
                convert::short_json(action),
                self.action_space.to_json()
            ))
        })
    }

    fn observes(&self) -> bool {
        // Known only once the worker made it: until then, assume it does.
        self.observes || self.worker.is_none()
    }

    fn observe(&mut self, transition: &Transition) -> Result<(), PolicyError> {
        if self.worker.is_some() && !self.observes {
            return Ok(());
        }
        let request = Message::with_arrays(
            Kind::Observe,
            json!({
                "observation": {"$array": 0},
                "action": convert::action_to_json(&transition.action),
                "reward": convert::json_number(transition.reward),
                "feedback": transition.feedback.map(convert::json_number),
                "done": transition.done,
            }),
            vec![convert::observation_array(&transition.observation)],
        );
        self.ask(&request, Kind::Observed, "observe").map(drop)
    }
}
