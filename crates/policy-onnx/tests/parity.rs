//! tract's outputs on the committed models match onnxruntime's, stored in
//! `testdata/onnx/*.json` by `python/tools/make_onnx_models.py`.

mod common;

use std::path::Path;

use serde::Deserialize;
use tandem_policy::OnnxSpec;

/// Absolute tolerance: both runtimes compute in f32, in different orders.
const TOLERANCE: f32 = 1e-5;

#[derive(Deserialize)]
struct Expected {
    inputs: Vec<Vec<f32>>,
    shape: Vec<usize>,
    outputs: Vec<Vec<f32>>,
}

fn check(model: &Path, expected: &str) {
    let text = match std::fs::read_to_string(common::repo(expected)) {
        Ok(text) => text,
        Err(e) => panic!("{expected}: {e}"),
    };
    let expected: Expected = match serde_json::from_str(&text) {
        Ok(e) => e,
        Err(e) => panic!("{e}"),
    };
    assert!(!expected.inputs.is_empty());
    let factory = common::load(&OnnxSpec::new(model));
    for (i, (input, want)) in expected.inputs.iter().zip(&expected.outputs).enumerate() {
        let got = match factory.run_raw(input, &expected.shape) {
            Ok(out) => out,
            Err(e) => panic!("input {i}: {e}"),
        };
        assert_eq!(got.len(), want.len(), "input {i}");
        let worst = got
            .iter()
            .zip(want)
            .map(|(g, w)| (g - w).abs())
            .fold(0.0f32, f32::max);
        assert!(
            worst < TOLERANCE,
            "input {i}: off by {worst}: {got:?} vs {want:?}"
        );
    }
}

#[test]
fn cartpole_mlp_matches_onnxruntime() {
    check(&common::cartpole_mlp(), "testdata/onnx/cartpole_mlp.json");
}

#[test]
fn pixel_cnn_matches_onnxruntime() {
    check(&common::pixel_cnn(), "testdata/onnx/pixel_cnn.json");
}

/// The batch axis may be given or left out.
#[test]
fn batch_axis_is_optional() -> Result<(), tandem_policy::PolicyError> {
    let factory = common::load(&OnnxSpec::new(common::cartpole_mlp()));
    let obs = [0.1, -0.2, 0.03, 0.4];
    assert_eq!(
        factory.run_raw(&obs, &[4])?,
        factory.run_raw(&obs, &[1, 4])?
    );
    assert!(factory.run_raw(&obs, &[2, 2]).is_err());
    assert!(factory.run_raw(&obs[..3], &[4]).is_err());
    Ok(())
}
