//! [`WorkerEnv`]: a Tandem environment whose every call is a request to a
//! worker process.
//!
//! It runs on its game's environment thread (hosted environments never step
//! inline), so its blocking requests hold up only that game. Any failure (the
//! worker raised, hung past its deadline, died or broke the protocol) drops
//! the worker, which kills it, and fails the call with the reason; the game
//! ends cleanly with that reason recorded. The frame of each reply is kept for
//! `render`, which the game calls right after.

use std::sync::Arc;

use serde_json::{Map, Value, json};
use tandem_env::{
    Action, Env, EnvError, EnvSpec, Frame, Image, Observation, RenderKind, Step, check_actions,
};
use tandem_envs::HostedEnv;

use crate::convert;
use crate::pool::Pool;
use crate::protocol::{Kind, Message};
use crate::worker::{Worker, WorkerError};

/// An environment in a worker.
pub struct WorkerEnv {
    spec: EnvSpec,
    env: Arc<HostedEnv>,
    pool: Arc<Pool>,
    /// Taken from the pool at the first reset, so that making a game never
    /// waits for a worker on the server's runtime.
    worker: Option<Worker>,
    frame: Frame,
    /// The first agent's info from the last reply, if it had one.
    info: Option<Map<String, Value>>,
}

impl WorkerEnv {
    pub fn new(spec: EnvSpec, env: Arc<HostedEnv>, pool: Arc<Pool>) -> WorkerEnv {
        let frame = blank(&spec);
        WorkerEnv {
            spec,
            env,
            pool,
            worker: None,
            frame,
            info: None,
        }
    }

    fn ask(
        &mut self,
        request: &Message,
        expect: Kind,
        what: &'static str,
        deadline: std::time::Duration,
    ) -> Result<Message, EnvError> {
        let worker = match self.worker.as_mut() {
            Some(worker) => worker,
            None => self
                .worker
                .insert(self.pool.take(&self.env).map_err(failed)?),
        };
        let reply = worker.request(request, expect, what, deadline);
        if reply.is_err() {
            // Whatever went wrong, this worker is not trusted again.
            self.worker = None;
        }
        let reply = reply.map_err(failed)?;
        match convert::frame(&reply, &self.spec) {
            Ok(Some(frame)) => self.frame = frame,
            Ok(None) => {}
            Err(e) => {
                self.worker = None;
                return Err(EnvError::Failed(format!(
                    "the Python worker sent a bad frame: {e}"
                )));
            }
        }
        Ok(reply)
    }

    fn broken(&mut self, why: String) -> EnvError {
        self.worker = None;
        EnvError::Failed(format!("the Python worker sent a bad reply: {why}"))
    }
}

fn failed(e: WorkerError) -> EnvError {
    EnvError::Failed(e.to_string())
}

/// A black frame of the spec's size, shown before the first reset.
fn blank(spec: &EnvSpec) -> Frame {
    let (width, height) = match spec.render {
        RenderKind::Pixels { width, height } | RenderKind::Sprites { width, height } => {
            (width, height)
        }
    };
    Frame::Pixels(Image {
        width,
        height,
        rgb: vec![0; width as usize * height as usize * 3],
    })
}

impl Drop for WorkerEnv {
    fn drop(&mut self) {
        // A remote worker goes back to its pool for the next game; a local
        // one ends with its process.
        if let Some(worker) = self.worker.take() {
            self.pool.give_back(worker);
        }
    }
}

impl Env for WorkerEnv {
    fn spec(&self) -> &EnvSpec {
        &self.spec
    }

    fn reset(&mut self, seed: u64) -> Result<Vec<Observation>, EnvError> {
        let deadline = self.pool.config.reset_deadline;
        let request = Message::new(Kind::Reset, json!({"seed": seed}));
        let reply = self.ask(&request, Kind::ResetDone, "reset", deadline)?;
        self.info = first_info(&reply);
        convert::observations(&reply, &self.spec).map_err(|e| self.broken(e))
    }

    fn step(&mut self, actions: &[Action]) -> Result<Step, EnvError> {
        check_actions(&self.spec, actions)?;
        if self.worker.is_none() {
            return Err(EnvError::NeedsReset);
        }
        let deadline = self.pool.config.step_deadline;
        let listed: Vec<Value> = actions.iter().map(convert::action_to_json).collect();
        let request = Message::new(Kind::Step, json!({"actions": listed}));
        let reply = self.ask(&request, Kind::StepDone, "a step", deadline)?;
        self.info = first_info(&reply);
        let agents = self.spec.agents.len();
        let step = (|| {
            Ok::<_, String>(Step {
                observations: convert::observations(&reply, &self.spec)?,
                rewards: convert::per_agent(&reply, "rewards", agents, convert::number)?,
                terminated: convert::per_agent(&reply, "terminated", agents, Value::as_bool)?,
                truncated: convert::per_agent(&reply, "truncated", agents, Value::as_bool)?,
            })
        })();
        step.map_err(|e| self.broken(e))
    }

    fn render(&self) -> Frame {
        self.frame.clone()
    }

    fn info(&self) -> Option<Map<String, Value>> {
        self.info.clone()
    }
}

/// The first agent's info in a reply, when it is a non-empty object.
fn first_info(reply: &Message) -> Option<Map<String, Value>> {
    let infos = reply.header.get("infos")?.as_array()?;
    infos
        .first()?
        .as_object()
        .filter(|i| !i.is_empty())
        .cloned()
}
