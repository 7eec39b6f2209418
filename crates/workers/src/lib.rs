//! Python environments and policies for Tandem: Gymnasium, PettingZoo and
//! user factories, hosted in worker processes and entered into the
//! environment catalog; and agents written in Python, playing seats.
//!
//! The server never links Python: it starts `python -m tandem.worker` and
//! speaks a small, versioned, length-prefixed binary protocol with it
//! (`docs/WORKER.md`). A worker that crashes, hangs or misbehaves fails only
//! its own game.
//!
//! Layout:
//! - `protocol`: framing, message kinds and arrays; nothing is executed.
//! - `convert`: protocol values to Tandem's spaces, observations and frames.
//! - `worker`: one worker process, requests with deadlines.
//! - `pool`: workers started ahead of need, per environment.
//! - `env`: [`WorkerEnv`], the `Env` whose calls are requests.
//! - `factory`: [`WorkerEnvFactory`] and [`host`], which fills a catalog.
//! - `policy`: [`WorkerPolicyFactory`], `[policy.NAME] kind = "python"`.
//! - `remote`: workers on other machines: the token, the listener.
//! - `offer`: what a remote worker offers.
//! - `package`: the Python package embedded in the binary, written to a cache.

mod convert;
mod env;
mod factory;
mod offer;
mod package;
mod policy;
mod pool;
pub mod protocol;
mod remote;
mod worker;

pub use convert::Made;
pub use env::WorkerEnv;
pub use factory::{WorkerEnvFactory, host};
pub use offer::Offer;
pub use package::default_cache;
pub use policy::{PythonPolicy, WorkerPolicy, WorkerPolicyFactory};
pub use pool::Pool;
pub use remote::{
    HELLO_DEADLINE, MAX_HELLO, MAX_REMOTE, accept as accept_remote, listen as listen_for_remote,
};
pub use worker::{Worker, WorkerConfig, WorkerError, default_python};
