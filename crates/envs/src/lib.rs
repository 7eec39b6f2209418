//! Tandem's built-in environments: faithful Rust ports of Gymnasium's classic
//! control tasks, two-player games for human–AI studies, scripted agents to
//! play them, and a rasterizer to turn any sprite frame into pixels.
//!
//! The ports match Gymnasium's dynamics, seeding and time limits, so an episode
//! played in Tandem can be replayed in Python and the other way round;
//! `python/tests/test_env_parity.py` holds them to that. Nothing here does I/O,
//! so the crate builds for `wasm32-unknown-unknown`.
//!
//! Layout:
//! - `registry`: `make`, `spec` and `ids`, the built-ins by Gymnasium-style id.
//! - `catalog`: [`Catalog`], the environments an experiment may name at run time:
//!   the built-ins and whatever a caller adds.
//! - `cartpole`: [`CartPole`], Gymnasium's `CartPole-v1`.
//! - `mountain_car`: [`MountainCar`], Gymnasium's `MountainCar-v0`.
//! - `kitchen`: [`Kitchen`], `Kitchen-v0`, a cooperative Overcooked-style kitchen
//!   for two chefs.
//! - `paddles`: [`Paddles`], `Paddles-v0` (Pong for two) and `PaddlesCoop-v0`
//!   (a shared rally).
//! - `scripted`: [`ScriptedAgent`] and [`scripted_agent`], hand-written agents
//!   for every built-in.
//! - `raster`: [`rasterize`], sprites to RGB pixels.
//! - `episode`: step counting, the reset guard and action checks the envs share.
//! - `rng`: NumPy's `SeedSequence` + `PCG64`, so seeds mean what they mean in
//!   Gymnasium.
//! - `screen`: Gymnasium's y-up pixel coordinates to normalized sprite ones.

mod cartpole;
mod catalog;
mod episode;
mod hosted;
mod kitchen;
mod mountain_car;
mod paddles;
mod raster;
mod registry;
mod rng;
mod screen;
mod scripted;

pub use cartpole::CartPole;
pub use catalog::{Catalog, MakeError, NotInCatalog};
pub use hosted::{HostedEnv, HostedSource, hosted_id, is_hosted};
pub use kitchen::Kitchen;
pub use mountain_car::MountainCar;
pub use paddles::{Paddles, PaddlesMode};
pub use raster::rasterize;
pub use registry::{UnknownEnv, ids, make, spec};
pub use scripted::{ScriptedAgent, scripted_agent};
