//! AI agents that play a seat in a Tandem game: the [`Policy`] contract the
//! server drives, the built-in policies, and the observation preprocessing and
//! action decoding a neural-network policy needs.
//!
//! Running an actual network lives in `tandem-policy-onnx`, the only crate that
//! pulls in an inference engine (tract, the workspace's heaviest dependency):
//! everything here is light, so the server, the experiment reader and the tests
//! can name policies, check them against environments and play the built-ins
//! without compiling it. A network plugs in through the small [`Model`] trait,
//! and [`ModelPolicy`] does the rest (preprocessing, frame skipping, decoding,
//! seeded sampling), so that logic is tested here without any model file.
//!
//! Layout:
//! - `policy`: the [`Policy`] and [`PolicyFactory`] traits, [`Transition`]
//!   (what a learning policy observes), and [`seat`].
//! - `error`: [`PolicyError`], every way making or running a policy fails.
//! - `registry`: [`Registry`], policies by name, and [`BUILTIN_NAMES`].
//! - `random`, `noop`, `scripted`: the built-in policies.
//! - `config`: [`OnnxSpec`], [`Preprocess`], [`Normalize`], [`Sampling`], the
//!   plain settings the experiment file gives a network policy.
//! - `preprocess`: [`Preprocessor`], raw observation to network input
//!   (max-and-skip, grayscale, resize, scale, normalize, channels, frame stack).
//! - `image`: the pixel operations behind it (grayscale, area resize).
//! - `actions`: action spaces as policies see them (sizes, zero and random actions).
//! - `decode`: [`Decoder`], network output to action (argmax or sampling).
//! - `model`: the [`Model`] trait and [`ModelPolicy`], a network playing a seat,
//!   and [`shape_fits`], when a tensor fits a network's input.
//! - `rng`: the per-episode, per-seat random generator policies sample with.

mod actions;
mod config;
mod decode;
mod error;
mod image;
mod model;
mod noop;
mod policy;
mod preprocess;
mod random;
mod registry;
mod rng;
mod scripted;

pub use config::{Normalize, OnnxSpec, Preprocess, Sampling};
pub use decode::Decoder;
pub use error::PolicyError;
pub use model::{Model, ModelPolicy, shape_fits};
pub use noop::NoopFactory;
pub use policy::{Policy, PolicyFactory, Transition, seat};
pub use preprocess::{ModelInput, Preprocessor, observation_shape};
pub use random::RandomFactory;
pub use registry::{BUILTIN_NAMES, Registry};
pub use scripted::ScriptedFactory;
