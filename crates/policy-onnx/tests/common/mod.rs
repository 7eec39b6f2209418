//! Paths and loaders the integration tests share.

#![allow(dead_code, reason = "each test file uses a different part")]

use std::path::PathBuf;

use tandem_env::EnvSpec;
use tandem_policy::{OnnxSpec, PolicyError};
use tandem_policy_onnx::OnnxFactory;

/// A path from the repository root.
pub fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path)
}

pub fn cartpole_mlp() -> PathBuf {
    repo("examples/models/cartpole_mlp.onnx")
}

pub fn pixel_cnn() -> PathBuf {
    repo("testdata/onnx/pixel_cnn.onnx")
}

pub fn load(spec: &OnnxSpec) -> OnnxFactory {
    match OnnxFactory::load(spec) {
        Ok(f) => f,
        Err(e) => panic!("{e}"),
    }
}

pub fn env_spec(id: &str) -> Result<EnvSpec, PolicyError> {
    tandem_envs::spec(id).ok_or_else(|| PolicyError::Incompatible(format!("no env {id}")))
}
