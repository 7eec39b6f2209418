//! The environment contract every Tandem game speaks: named agents, Gymnasium-style
//! spaces, seeded resets, joint steps, and frames to draw.
//!
//! This crate does no I/O and starts no threads, so that it builds for
//! `wasm32-unknown-unknown` as well as for the server.
//!
//! Layout:
//! - [`space`]: Discrete, Box and MultiDiscrete spaces and their Gymnasium JSON form.
//! - [`value`]: actions and observations, the values that travel through spaces.
//! - [`frame`]: what `render` returns: RGB pixels or a list of sprites, and sprite diffs.
//! - [`env`]: the [`Env`] trait, its [`EnvSpec`] and the result of a step.
//! - `factory`: [`EnvFactory`], how a catalog makes environments of one id.

mod env;
mod factory;
mod frame;
mod space;
mod value;

pub use env::{AgentSpec, Env, EnvError, EnvSpec, RenderKind, Step, check_actions};
pub use factory::{DefaultKey, EnvFactory};
pub use frame::{Color, Frame, Image, Shape, Sprite, SpriteDiff};
pub use space::{Dtype, Space, SpaceJsonError};
pub use value::{Action, Observation};
