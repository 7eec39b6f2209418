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
use crate::offer::{Offer, offers_of as worker_offers};
use crate::protocol::{Kind, Message};
use crate::worker::{Worker, WorkerConfig, WorkerError};

/// One environment's warm workers, and how many are being started, so that
/// refills started together do not overshoot.
#[derive(Default)]
struct Warm {
    ready: Vec<Worker>,
    starting: usize,
}

/// Workers, warm per environment.
pub struct Pool {
    pub config: WorkerConfig,
    /// Workers kept ready per environment id.
    pub warm_per_env: usize,
    warm: Mutex<HashMap<String, Warm>>,
    /// Set by [`Pool::close`]: no worker is started or kept warm after it.
    closed: std::sync::atomic::AtomicBool,
    /// Idle workers on other machines, with what each offers.
    remote: Mutex<Vec<(Worker, Vec<Offer>)>>,
    /// Set when remote workers may connect: how long `probe` waits for one
    /// that offers an environment this machine cannot make.
    pub remote_wait: Option<std::time::Duration>,
}

impl Pool {
    /// A pool that also takes workers from other machines (see
    /// `remote::listen`); `probe` waits up to `remote_wait` for one offering
    /// an environment this machine cannot make.
    pub fn with_remote(
        config: WorkerConfig,
        warm_per_env: usize,
        remote_wait: std::time::Duration,
    ) -> Arc<Pool> {
        let mut pool = Pool::new(config, warm_per_env);
        if let Some(pool) = Arc::get_mut(&mut pool) {
            pool.remote_wait = Some(remote_wait);
        }
        pool
    }

    pub fn new(config: WorkerConfig, warm_per_env: usize) -> Arc<Pool> {
        Arc::new(Pool {
            config,
            warm_per_env,
            warm: Mutex::new(HashMap::new()),
            closed: std::sync::atomic::AtomicBool::new(false),
            remote: Mutex::new(Vec::new()),
            remote_wait: None,
        })
    }

    /// Starts a worker, makes `env` in it and says what it is. The worker is
    /// kept warm for the first game.
    pub fn probe(&self, env: &HostedEnv) -> Result<Made, WorkerError> {
        let local = match self.start_with(env) {
            Ok((worker, made)) => {
                if self.warm_per_env > 0 {
                    self.lock()
                        .entry(env.id.clone())
                        .or_default()
                        .ready
                        .push(worker);
                }
                return Ok(made);
            }
            Err(e) => e,
        };
        let Some(wait) = self.remote_wait else {
            return Err(local);
        };
        // This machine cannot make it: a worker elsewhere may.
        let deadline = std::time::Instant::now() + wait;
        loop {
            if let Some(mut worker) = self.take_remote(env) {
                let made = make(&mut worker, env, &self.config);
                if made.is_ok() {
                    self.give_back(worker);
                }
                return made;
            }
            if std::time::Instant::now() >= deadline {
                return Err(WorkerError::Unsupported(format!(
                    "{local}; and no remote worker offering it connected within {} s",
                    wait.as_secs()
                )));
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }

    /// Adds a remote worker that was just greeted, idle.
    pub fn add_remote(&self, worker: Worker, offers: Vec<Offer>) {
        self.remote_lock().push((worker, offers));
    }

    /// Remote workers idle now.
    pub fn remote_count(&self) -> usize {
        self.remote_lock().len()
    }

    /// An idle remote worker offering `env`, if one is connected.
    fn take_remote(&self, env: &HostedEnv) -> Option<Worker> {
        let mut remote = self.remote_lock();
        let index = remote.iter().position(|(_, offers)| {
            offers
                .iter()
                .any(|o| o.source == env.source && o.target == env.target)
        })?;
        Some(remote.swap_remove(index).0)
    }

    /// Returns a remote worker whose game is over: its environment is closed
    /// and it waits for the next. A local one is simply ended (the pool warms
    /// fresh ones, which start clean).
    pub fn give_back(&self, mut worker: Worker) {
        if !worker.is_remote() {
            return;
        }
        let close = Message::new(Kind::Close, json!({}));
        let closed = worker.request(&close, Kind::Closed, "close", self.config.step_deadline);
        if closed.is_ok()
            && let Some(offers) = worker_offers(&worker)
        {
            self.add_remote(worker, offers);
        }
    }

    fn remote_lock(&self) -> std::sync::MutexGuard<'_, Vec<(Worker, Vec<Offer>)>> {
        self.remote.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A worker with `env` made in it: a warm one (and a replacement started
    /// behind it), or a new one.
    pub fn take(self: &Arc<Self>, env: &Arc<HostedEnv>) -> Result<Worker, WorkerError> {
        // Another machine's worker first: it spares this one's cores.
        if let Some(mut worker) = self.take_remote(env) {
            match make(&mut worker, env, &self.config) {
                Ok(_) => return Ok(worker),
                Err(e) => {
                    tracing::warn!(env = env.id, cause = %e, "a remote worker could not make it")
                }
            }
        }
        let warm = self.lock().get_mut(&env.id).and_then(|w| w.ready.pop());
        self.refill(env);
        match warm {
            Some(worker) => Ok(worker),
            None => self.start_with(env).map(|(worker, _)| worker),
        }
    }

    /// Tops up `env`'s warm workers on a thread of its own.
    fn refill(self: &Arc<Self>, env: &Arc<HostedEnv>) {
        let missing = {
            let mut all = self.lock();
            let warm = all.entry(env.id.clone()).or_default();
            let missing = self
                .warm_per_env
                .saturating_sub(warm.ready.len() + warm.starting);
            warm.starting += missing;
            missing
        };
        if missing == 0 || self.is_closed() {
            self.lock().entry(env.id.clone()).or_default().starting -= missing;
            return;
        }
        let pool = Arc::clone(self);
        let id = env.id.clone();
        let env = Arc::clone(env);
        let spawned = std::thread::Builder::new()
            .name("worker warm-up".into())
            .spawn(move || {
                for _ in 0..missing {
                    let started = if pool.is_closed() {
                        None
                    } else {
                        match pool.start_with(&env) {
                            Ok((worker, _)) => Some(worker),
                            Err(e) => {
                                tracing::warn!(env = env.id, cause = %e, "could not warm a worker");
                                None
                            }
                        }
                    };
                    let mut all = pool.lock();
                    let warm = all.entry(env.id.clone()).or_default();
                    warm.starting -= 1;
                    // A worker started as the pool closed is dropped, and so ended.
                    if let Some(worker) = started.filter(|_| !pool.is_closed()) {
                        warm.ready.push(worker);
                    }
                }
            });
        if let Err(e) = spawned {
            tracing::warn!(cause = %e, "could not start a warm-up thread");
            self.lock().entry(id).or_default().starting -= missing;
        }
    }

    fn is_closed(&self) -> bool {
        self.closed.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Ends every idle worker (warm and remote) and starts no more: for a
    /// server that is stopping. Workers playing games end with them.
    pub fn close(&self) {
        self.closed.store(true, std::sync::atomic::Ordering::SeqCst);
        let warm: Vec<Warm> = self.lock().drain().map(|(_, w)| w).collect();
        drop(warm);
        let remote: Vec<_> = self.remote_lock().drain(..).collect();
        drop(remote);
    }

    fn start_with(&self, env: &HostedEnv) -> Result<(Worker, Made), WorkerError> {
        let mut worker = Worker::start(&self.config)?;
        let made = make(&mut worker, env, &self.config)?;
        Ok((worker, made))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Warm>> {
        self.warm.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Workers warm now, over all environments.
    pub fn warm_count(&self) -> usize {
        self.lock().values().map(|w| w.ready.len()).sum()
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
