//! [`OnnxFactory`]: a loaded ONNX model as a named policy of an experiment.
//!
//! Loading and optimizing happen once, when the experiment is loaded; every
//! seat the policy plays then gets a [`ModelPolicy`] sharing the same model
//! through an `Arc`, with its own frame stack, skip count and sampling
//! generator. The settings are checked at load too, so a bad temperature or
//! frame stack is reported with the model, before any game.

use std::sync::Arc;

use tandem_env::EnvSpec;
use tandem_policy::{
    Model, ModelPolicy, OnnxSpec, Policy, PolicyError, PolicyFactory, Preprocessor,
};

use crate::OnnxModel;

/// Makes policies that play an ONNX network.
#[derive(Clone, Debug)]
pub struct OnnxFactory {
    spec: OnnxSpec,
    model: Arc<OnnxModel>,
}

impl OnnxFactory {
    /// Loads and optimizes the model in `spec.path` and checks the settings.
    pub fn load(spec: &OnnxSpec) -> Result<OnnxFactory, PolicyError> {
        Preprocessor::new(spec.preprocess.clone())?;
        spec.sampling.check()?;
        let model = OnnxModel::load(&spec.path)?;
        Ok(OnnxFactory {
            spec: spec.clone(),
            model: Arc::new(model),
        })
    }

    /// The settings it was loaded with.
    pub fn spec(&self) -> &OnnxSpec {
        &self.spec
    }

    /// The loaded model.
    pub fn model(&self) -> &OnnxModel {
        &self.model
    }

    /// Runs one raw input of `shape` through the model, without preprocessing
    /// or decoding, and returns the first output flattened: for parity tests.
    pub fn run_raw(&self, input: &[f32], shape: &[usize]) -> Result<Vec<f32>, PolicyError> {
        self.model.run_raw(input, shape)
    }
}

impl PolicyFactory for OnnxFactory {
    fn create(&self, env: &EnvSpec, agent: usize) -> Result<Box<dyn Policy>, PolicyError> {
        let model: Arc<dyn Model> = self.model.clone();
        let policy =
            ModelPolicy::new(model, env, agent, &self.spec.preprocess, self.spec.sampling)?;
        Ok(Box::new(policy))
    }

    fn describe(&self) -> String {
        format!(
            "ONNX model {}: input {:?}, {} outputs; preprocess: {}; {}",
            self.spec.path.display(),
            self.model.input_shape(),
            self.model.output_len(),
            self.spec.preprocess.summary(),
            self.spec.sampling.summary(),
        )
    }
}
