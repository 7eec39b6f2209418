//! The settings a network policy takes from the experiment file, as plain data.
//!
//! The experiment reader builds these (resolving the model path against the
//! experiment file's folder, and reporting its own file:line errors); this crate
//! only checks that the values make sense together, when a [`Preprocessor`] or
//! [`ModelPolicy`] is built from them. Keeping them free of serde keeps the file
//! format the reader's business.
//!
//! [`Preprocessor`]: crate::Preprocessor
//! [`ModelPolicy`]: crate::ModelPolicy

use std::path::PathBuf;

use crate::PolicyError;

/// A policy backed by an ONNX network.
#[derive(Clone, Debug, PartialEq)]
pub struct OnnxSpec {
    /// The `.onnx` file, already resolved relative to the experiment file.
    pub path: PathBuf,
    pub preprocess: Preprocess,
    pub sampling: Sampling,
}

impl OnnxSpec {
    /// A model fed the raw observation and played greedily.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        OnnxSpec {
            path: path.into(),
            preprocess: Preprocess::default(),
            sampling: Sampling::default(),
        }
    }
}

/// How a raw observation becomes the network's input, in the order the stages
/// run: max-and-skip, grayscale, resize, scale, normalize, channels-first,
/// frame stack. These are the usual Gymnasium/SB3 wrappers (`MaxAndSkip`,
/// `WarpFrame`/`GrayscaleObservation`, `ResizeObservation`, `FrameStack`), so a
/// network trained behind them sees the same tensors here.
#[derive(Clone, Debug, PartialEq)]
pub struct Preprocess {
    /// `(x - mean) / std` per feature; a length-1 `mean`/`std` applies to every
    /// element, otherwise the length must be the processed frame's element
    /// count or its last axis (the channels of an `(H, W, C)` image). Applied
    /// after grayscale/resize/scale, before channels-first and stacking.
    pub normalize: Option<Normalize>,
    /// Multiply every element (e.g. 1/255 for pixels); applied before normalize.
    pub scale: Option<f32>,
    /// RGB `(H, W, 3)` to `(H, W)` luminance with ITU-R 601 weights
    /// (0.299, 0.587, 0.114), as OpenCV's `COLOR_RGB2GRAY`.
    pub grayscale: bool,
    /// `(height, width)`: resize by area averaging, as OpenCV's `INTER_AREA`
    /// does when shrinking (what Atari wrappers use).
    pub resize: Option<(u32, u32)>,
    /// 1 = none; stacks the last k processed frames along a new leading axis
    /// `(k, ...)`, oldest first, repeating the first frame after reset.
    pub frame_stack: u32,
    /// 1 = none; the policy decides every k-th step and repeats its action in
    /// between; the observation it decides on is the elementwise max of the
    /// last two raw observations (Atari `MaxAndSkip`).
    pub max_and_skip: u32,
    /// For pixel input without grayscale: `(H, W, C)` to `(C, H, W)`.
    pub channels_first: bool,
}

impl Default for Preprocess {
    /// The identity: the raw observation as floats, every step.
    fn default() -> Self {
        Preprocess {
            normalize: None,
            scale: None,
            grayscale: false,
            resize: None,
            frame_stack: 1,
            max_and_skip: 1,
            channels_first: false,
        }
    }
}

impl Preprocess {
    /// The stages that do something, for log lines: `"grayscale, resize
    /// 84x84, scale 0.003921569, stack 4, max-and-skip 4"`, or `"none"`.
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        if self.max_and_skip > 1 {
            parts.push(format!("max-and-skip {}", self.max_and_skip));
        }
        if self.grayscale {
            parts.push("grayscale".to_string());
        }
        if let Some((h, w)) = self.resize {
            parts.push(format!("resize {h}x{w}"));
        }
        if let Some(s) = self.scale {
            parts.push(format!("scale {s}"));
        }
        if let Some(n) = &self.normalize {
            parts.push(format!("normalize mean {:?} std {:?}", n.mean, n.std));
        }
        if self.channels_first {
            parts.push("channels-first".to_string());
        }
        if self.frame_stack > 1 {
            parts.push(format!("stack {}", self.frame_stack));
        }
        if parts.is_empty() {
            "none".to_string()
        } else {
            parts.join(", ")
        }
    }
}

/// Per-feature standardization, `(x - mean) / std`.
#[derive(Clone, Debug, PartialEq)]
pub struct Normalize {
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
}

/// How a discrete action is picked from the network's logits.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum Sampling {
    /// The highest logit; ties go to the lowest index.
    #[default]
    Greedy,
    /// A draw from `softmax(logits / temperature)`, with a generator seeded by
    /// the episode seed, so an episode replays exactly from its seed.
    Sample { temperature: f32 },
}

impl Sampling {
    /// Checks that a sampling temperature is a positive number.
    pub fn check(&self) -> Result<(), PolicyError> {
        match *self {
            Sampling::Sample { temperature } if !(temperature.is_finite() && temperature > 0.0) => {
                Err(PolicyError::Config(format!(
                    "the sampling temperature must be a positive number, not {temperature}"
                )))
            }
            _ => Ok(()),
        }
    }

    /// For log lines: `"greedy"` or `"sampled at temperature 1"`.
    pub fn summary(&self) -> String {
        match self {
            Sampling::Greedy => "greedy".to_string(),
            Sampling::Sample { temperature } => format!("sampled at temperature {temperature}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries() {
        assert_eq!(Preprocess::default().summary(), "none");
        let atari = Preprocess {
            grayscale: true,
            resize: Some((84, 84)),
            frame_stack: 4,
            max_and_skip: 4,
            ..Preprocess::default()
        };
        assert_eq!(
            atari.summary(),
            "max-and-skip 4, grayscale, resize 84x84, stack 4"
        );
        assert_eq!(Sampling::Greedy.summary(), "greedy");
    }
}
