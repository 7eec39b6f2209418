//! The local worker pool: workers started ahead of need, one environment made
//! in each, so that a game starts without waiting for Python to import.
//!
//! Pre-warming is per environment id, because making the environment (loading
//! an Atari ROM, say) is most of a worker's start-up. When a game takes a warm
//! worker, a thread starts its replacement; a game that finds none warm starts
//! its own, on its environment thread, never on the server's runtime.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use tandem_envs::HostedEnv;

use crate::convert::{self, Made};
use crate::protocol::{Kind, Message};
use crate::worker::{Worker, WorkerConfig, WorkerError};

/// Workers, warm per environment.
pub struct Pool {
    pub config: WorkerConfig,
    /// Workers kept ready per environment id.
    pub warm_per_env: usize,
    warm: Mutex<HashMap<String, Vec<Worker>>>,
}

impl Pool {
    pub fn new(config: WorkerConfig, warm_per_env: usize) -> Arc<Pool> {
        Arc::new(Pool {
            config,
            warm_per_env,
            warm: Mutex::new(HashMap::new()),
        })
    }

    /// Starts a worker, makes `env` in it and says what it is. The worker is
    /// kept warm for the first game.
    pub fn probe(&self, env: &HostedEnv) -> Result<Made, WorkerError> {
        let (worker, made) = self.start_with(env)?;
        if self.warm_per_env > 0 {
            self.lock().entry(env.id.clone()).or_default().push(worker);
        }
        Ok(made)
    }

    /// A worker with `env` made in it: a warm one (and a replacement started
    /// behind it), or a new one.
    pub fn take(self: &Arc<Self>, env: &Arc<HostedEnv>) -> Result<Worker, WorkerError> {
        let warm = self.lock().get_mut(&env.id).and_then(Vec::pop);
        self.refill(env);
        match warm {
            Some(worker) => Ok(worker),
            None => self.start_with(env).map(|(worker, _)| worker),
        }
    }

    /// Tops up `env`'s warm workers on a thread of its own.
    fn refill(self: &Arc<Self>, env: &Arc<HostedEnv>) {
        let pool = Arc::clone(self);
        let env = Arc::clone(env);
        let spawned = std::thread::Builder::new()
            .name("worker warm-up".into())
            .spawn(move || {
                let missing = {
                    let warm = pool.lock();
                    pool.warm_per_env
                        .saturating_sub(warm.get(&env.id).map_or(0, Vec::len))
                };
                for _ in 0..missing {
                    match pool.start_with(&env) {
                        Ok((worker, _)) => {
                            pool.lock().entry(env.id.clone()).or_default().push(worker)
                        }
                        Err(e) => {
                            tracing::warn!(env = env.id, cause = %e, "could not warm a worker");
                            return;
                        }
                    }
                }
            });
        if let Err(e) = spawned {
            tracing::warn!(cause = %e, "could not start a warm-up thread");
        }
    }

    fn start_with(&self, env: &HostedEnv) -> Result<(Worker, Made), WorkerError> {
        let mut worker = Worker::start(&self.config)?;
        let made = make(&mut worker, env, &self.config)?;
        Ok((worker, made))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<Worker>>> {
        self.warm.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Workers warm now, over all environments.
    pub fn warm_count(&self) -> usize {
        self.lock().values().map(Vec::len).sum()
    }
}

/// Asks `worker` to make `env`.
pub fn make(
    worker: &mut Worker,
    env: &HostedEnv,
    config: &WorkerConfig,
) -> Result<Made, WorkerError> {
    let request = Message::new(
        Kind::Make,
        json!({
            "source": env.source.name(),
            "target": env.target,
            "kwargs": Value::Object(env.kwargs.clone()),
        }),
    );
    let reply = worker.request(&request, Kind::Made, "make", config.start_deadline)?;
    convert::made(&env.id, &reply).map_err(WorkerError::Protocol)
}
