//! Runs an ONNX model on given inputs with tract and prints the outputs: the
//! Rust half of `python/tests/test_onnx_parity.py`, which compares them with
//! onnxruntime's.
//!
//! Usage: `onnx_eval MODEL_PATH`, with one JSON object on stdin,
//! `{"inputs": [[...flat f32...], ...], "shape": [...]}`, where `shape` is one
//! input's shape (a leading batch axis of 1 may be included or left out).
//! Prints `{"outputs": [[...], ...]}`, each the model's first output for the
//! input at the same index, flattened. Any failure is a message on stderr and
//! exit code 2.

use std::io::Read;
use std::process::ExitCode;

use serde::{Deserialize, Serialize};
use tandem_policy::OnnxSpec;
use tandem_policy_onnx::OnnxFactory;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Request {
    inputs: Vec<Vec<f32>>,
    shape: Vec<usize>,
}

#[derive(Serialize)]
struct Response {
    outputs: Vec<Vec<f32>>,
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("onnx_eval: {message}");
            ExitCode::from(2)
        }
    }
}

fn run() -> Result<(), String> {
    let path = std::env::args()
        .nth(1)
        .ok_or("usage: onnx_eval MODEL_PATH < request.json")?;
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .map_err(|e| format!("cannot read stdin: {e}"))?;
    let request: Request =
        serde_json::from_str(&text).map_err(|e| format!("bad request JSON: {e}"))?;
    let factory = OnnxFactory::load(&OnnxSpec::new(path)).map_err(|e| e.to_string())?;
    let outputs = request
        .inputs
        .iter()
        .map(|input| factory.run_raw(input, &request.shape))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    let json = serde_json::to_string(&Response { outputs }).map_err(|e| e.to_string())?;
    println!("{json}");
    Ok(())
}
