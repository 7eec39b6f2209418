//! ONNX policies for Tandem: a network exported from any training library
//! (SB3, CleanRL, RLlib via `torch.onnx.export`) plays a seat, run in pure Rust
//! by tract, so the server needs no Python and no native runtime.
//!
//! This is the only crate that compiles an inference engine, and tract is the
//! workspace's heaviest dependency, so it stays apart: everything about what
//! the network sees and what its output means (preprocessing, frame skipping,
//! decoding, sampling) lives in the light `tandem-policy`, behind its
//! [`Model`](tandem_policy::Model) trait, and this crate only loads a file and
//! runs tensors through it.
//!
//! Layout:
//! - `model`: [`OnnxModel`], one `.onnx` file loaded, checked and optimized
//!   for a batch of one.
//! - `factory`: [`OnnxFactory`], the [`PolicyFactory`](tandem_policy::PolicyFactory)
//!   that shares one loaded model among every seat that plays it.

mod factory;
mod model;

pub use factory::OnnxFactory;
pub use model::OnnxModel;
