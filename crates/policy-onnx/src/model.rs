//! [`OnnxModel`]: one `.onnx` file, loaded, checked and optimized once.
//!
//! tract optimizes best when every size is known, so the model's declared
//! input is read first: a leading axis that is symbolic (`batch`, `N`) or 1 is
//! the batch axis and is fixed to 1, and every other axis must be a number.
//! The network is then optimized for exactly that shape and kept as an
//! immutable plan that any number of seats can run at once. Only the first
//! output is kept (an exported actor-critic also outputs its value, which a
//! policy does not need), and it is run once on zeros at load time, which
//! proves the model runs and gives its output size.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tandem_policy::{Model, PolicyError, shape_fits};
use tract_onnx::prelude::*;
use tract_onnx::tract_hir::infer::Factoid;

/// A loaded ONNX network with one float input and its first output.
#[derive(Debug)]
pub struct OnnxModel {
    path: PathBuf,
    plan: Arc<TypedRunnableModel>,
    /// The input tract runs, batch axis included (if the model has one).
    run_shape: Vec<usize>,
    /// One input without the batch axis: what preprocessing must produce.
    input_shape: Vec<usize>,
    output_len: usize,
}

impl OnnxModel {
    /// Loads and optimizes `path`. A missing, unreadable or corrupt file, or a
    /// model whose input Tandem cannot feed (several inputs, not float32, open
    /// sizes besides the batch), is a [`PolicyError::Load`] saying which.
    pub fn load(path: &Path) -> Result<Self, PolicyError> {
        let fail = |reason: String| PolicyError::Load {
            path: path.to_path_buf(),
            reason,
        };
        if !path.is_file() {
            return Err(fail(if path.exists() {
                "it is not a file".to_string()
            } else {
                "no such file".to_string()
            }));
        }
        let mut model = tract_onnx::onnx()
            .model_for_path(path)
            .map_err(|e| fail(format!("not a readable ONNX model: {e:#}")))?;
        if model.inputs.len() != 1 {
            return Err(fail(format!(
                "the model has {} inputs; Tandem feeds exactly one, the observation",
                model.inputs.len()
            )));
        }
        let first_output = *model
            .outputs
            .first()
            .ok_or_else(|| fail("the model has no outputs".to_string()))?;
        model
            .select_output_outlets(&[first_output])
            .map_err(|e| fail(format!("cannot select the first output: {e:#}")))?;
        let declared = model
            .input_fact(0)
            .map_err(|e| fail(format!("cannot read the input: {e:#}")))?
            .clone();
        let (run_shape, input_shape) = input_shapes(&declared).map_err(&fail)?;
        let plan = model
            .with_input_fact(0, f32::fact(&run_shape).into())
            .and_then(|m| m.into_optimized())
            .and_then(|m| m.into_runnable())
            .map_err(|e| {
                fail(format!(
                    "cannot prepare the model for input shape {run_shape:?}: {e:#}"
                ))
            })?;
        let mut loaded = OnnxModel {
            path: path.to_path_buf(),
            plan,
            run_shape,
            input_shape,
            output_len: 0,
        };
        let zeros = vec![0.0; loaded.input_shape.iter().product()];
        let output = loaded
            .run(&zeros)
            .map_err(|e| fail(format!("the model fails on a zero input: {e}")))?;
        if output.is_empty() {
            return Err(fail("the model's first output is empty".to_string()));
        }
        loaded.output_len = output.len();
        Ok(loaded)
    }

    /// The file it was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs one input of `shape` (with or without the batch axis: axes of
    /// length 1 do not matter) and returns the first output flattened. For
    /// parity tests against other runtimes.
    pub fn run_raw(&self, input: &[f32], shape: &[usize]) -> Result<Vec<f32>, PolicyError> {
        if input.len() != shape.iter().product::<usize>() {
            return Err(PolicyError::Inference(format!(
                "{} values do not make a tensor of shape {shape:?}",
                input.len()
            )));
        }
        if !shape_fits(shape, &self.input_shape) {
            return Err(PolicyError::Incompatible(format!(
                "the model {} takes input of shape {:?}, not {shape:?}",
                self.path.display(),
                self.input_shape
            )));
        }
        self.run(input)
    }
}

impl Model for OnnxModel {
    fn name(&self) -> String {
        self.path.display().to_string()
    }

    fn input_shape(&self) -> &[usize] {
        &self.input_shape
    }

    fn output_len(&self) -> usize {
        self.output_len
    }

    fn run(&self, input: &[f32]) -> Result<Vec<f32>, PolicyError> {
        let fail = |e: TractError| PolicyError::Inference(format!("{e:#}"));
        let tensor = Tensor::from_shape(&self.run_shape, input).map_err(fail)?;
        let outputs = self.plan.run(tvec!(tensor.into())).map_err(fail)?;
        let first = outputs
            .first()
            .ok_or_else(|| PolicyError::Inference("the model returned no output".to_string()))?;
        let first = first
            .cast_to::<f32>()
            .map_err(|e| PolicyError::Inference(format!("the output is not numeric: {e:#}")))?;
        let view = first.to_plain_array_view::<f32>().map_err(fail)?;
        Ok(view.iter().copied().collect())
    }
}

/// From the declared input: the shape to run (batch fixed to 1) and the shape
/// of one input (no batch axis), or why the input cannot be fed.
fn input_shapes(declared: &InferenceFact) -> Result<(Vec<usize>, Vec<usize>), String> {
    if let Some(dt) = declared.datum_type.concretize()
        && dt != f32::datum_type()
    {
        return Err(format!("its input is {dt:?}; Tandem feeds float32"));
    }
    if declared.shape.is_open() {
        return Err("its input does not declare a shape".to_string());
    }
    let dims: Vec<Option<usize>> = declared
        .shape
        .dims()
        .map(|d| {
            d.concretize()
                .and_then(|d| d.as_i64())
                .and_then(|d| usize::try_from(d).ok())
        })
        .collect();
    // A leading axis that is open or 1 is the batch; a rank-1 input is one
    // observation with no batch axis.
    let batch = dims.len() >= 2 && matches!(dims[0], None | Some(1));
    let sample = if batch { &dims[1..] } else { &dims[..] };
    let sample: Vec<usize> = sample
        .iter()
        .copied()
        .collect::<Option<_>>()
        .ok_or_else(|| {
            format!(
                "its input shape {} has open sizes besides the batch axis; Tandem needs them fixed",
                declared
                    .shape
                    .dims()
                    .map(|d| format!("{d:?}"))
                    .collect::<Vec<_>>()
                    .join("x")
            )
        })?;
    let run = if batch {
        std::iter::once(1).chain(sample.iter().copied()).collect()
    } else {
        sample.clone()
    };
    Ok((run, sample))
}
