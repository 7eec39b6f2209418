//! [`Preprocessor`]: a raw observation in, the network's input out, with the
//! state the Atari-style wrappers keep between steps (the previous raw frame
//! for max-and-skip, the frame stack, the skip count).
//!
//! The stages run in a fixed order (see [`Preprocess`]), and each has a shape
//! rule used twice: by [`Preprocessor::output_shape`], to check a network
//! against an environment before a game starts, and on every observation, so
//! the two can never disagree. Work is done only on steps the policy decides
//! on; on the steps in between, only the raw frame that the next max needs is
//! kept.

use std::collections::VecDeque;

use tandem_env::{Observation, Space};

use crate::image::{grayscale, resize_area};
use crate::{Normalize, PolicyError, Preprocess};

/// A network input: one observation, no batch axis.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelInput {
    /// Row-major values.
    pub data: Vec<f32>,
    pub shape: Vec<usize>,
}

/// The shape of the observations a space holds: a `Box`'s shape, a scalar for
/// `Discrete`, one element per dimension for `MultiDiscrete`.
pub fn observation_shape(space: &Space) -> Vec<usize> {
    match space {
        Space::Box { shape, .. } => shape.clone(),
        Space::Discrete { .. } => Vec::new(),
        Space::MultiDiscrete { nvec, .. } => vec![nvec.len()],
    }
}

/// The stateful observation pipeline of one policy instance.
#[derive(Clone, Debug)]
pub struct Preprocessor {
    config: Preprocess,
    /// Observations seen since the last reset.
    steps: u64,
    /// The raw observation before a decision step, for max-and-skip's max.
    previous: Option<ModelInput>,
    /// The last `frame_stack` processed frames, oldest first.
    frames: VecDeque<Vec<f32>>,
}

impl Preprocessor {
    /// A pipeline in its after-reset state; errors if the settings are out of
    /// range (zero stack or skip, zero sizes, zero std, bad scale).
    pub fn new(config: Preprocess) -> Result<Self, PolicyError> {
        let bad = |m: String| Err(PolicyError::Config(m));
        if config.frame_stack == 0 {
            return bad("frame_stack must be at least 1 (1 means no stacking)".into());
        }
        if config.max_and_skip == 0 {
            return bad("max_and_skip must be at least 1 (1 means every step)".into());
        }
        if let Some((h, w)) = config.resize
            && (h == 0 || w == 0)
        {
            return bad(format!("resize to {h}x{w} leaves no pixels"));
        }
        if let Some(s) = config.scale
            && !s.is_finite()
        {
            return bad(format!("scale must be a finite number, not {s}"));
        }
        if let Some(Normalize { mean, std }) = &config.normalize {
            if mean.is_empty() || std.is_empty() {
                return bad("normalize needs at least one mean and one std".into());
            }
            if let Some(s) = std.iter().find(|s| !s.is_finite() || **s == 0.0) {
                return bad(format!(
                    "normalize std must be finite and non-zero, not {s}"
                ));
            }
            if mean.iter().any(|m| !m.is_finite()) {
                return bad("normalize mean must be finite".into());
            }
        }
        Ok(Preprocessor {
            config,
            steps: 0,
            previous: None,
            frames: VecDeque::new(),
        })
    }

    /// The settings this pipeline runs.
    pub fn config(&self) -> &Preprocess {
        &self.config
    }

    /// Forgets the episode: the next observation is decided on and fills the
    /// whole frame stack.
    pub fn reset(&mut self) {
        self.steps = 0;
        self.previous = None;
        self.frames.clear();
    }

    /// Whether the policy decides on the next observation; between decisions it
    /// repeats its last action.
    pub fn should_act(&self) -> bool {
        self.steps
            .is_multiple_of(u64::from(self.config.max_and_skip))
    }

    /// The input shape that observations of `input_shape` become, or why they
    /// cannot go through this pipeline.
    pub fn output_shape(&self, input_shape: &[usize]) -> Result<Vec<usize>, PolicyError> {
        let frame = self.frame_shape(input_shape)?;
        Ok(self.stacked_shape(&frame))
    }

    /// Feeds one raw observation. Returns the network input on steps the policy
    /// decides on, and `None` on the steps in between (see [`should_act`]).
    ///
    /// [`should_act`]: Preprocessor::should_act
    pub fn process(&mut self, obs: &Observation) -> Result<Option<ModelInput>, PolicyError> {
        let skip = u64::from(self.config.max_and_skip);
        let acting = self.should_act();
        let before_acting = skip > 1 && (self.steps + 1).is_multiple_of(skip);
        self.steps += 1;
        if !acting && !before_acting {
            return Ok(None);
        }
        let raw = to_f32(obs)?;
        if !acting {
            // The step just before a decision: keep it for the max.
            self.previous = Some(raw);
            return Ok(None);
        }
        // The reset observation has no predecessor and is used as is.
        let raw = match self.previous.take() {
            Some(previous) => max_of(previous, raw)?,
            None => raw,
        };
        let frame = self.frame(raw, matches!(obs, Observation::U8 { .. }))?;
        Ok(Some(self.stack(frame)))
    }

    /// Shape after the per-frame stages (everything but the stack).
    fn frame_shape(&self, input: &[usize]) -> Result<Vec<usize>, PolicyError> {
        let mut shape = input.to_vec();
        if self.config.grayscale {
            shape = grayscale_shape(&shape)?;
        }
        if let Some(size) = self.config.resize {
            shape = resize_shape(&shape, size)?;
        }
        if let Some(n) = &self.config.normalize {
            check_normalize(&shape, n)?;
        }
        if self.config.channels_first {
            shape = channels_first_shape(&shape)?;
        }
        Ok(shape)
    }

    fn stacked_shape(&self, frame: &[usize]) -> Vec<usize> {
        match self.config.frame_stack {
            1 => frame.to_vec(),
            k => std::iter::once(k as usize)
                .chain(frame.iter().copied())
                .collect(),
        }
    }

    /// Runs the per-frame stages on one (maxed) raw observation.
    fn frame(&self, raw: ModelInput, integral: bool) -> Result<ModelInput, PolicyError> {
        let ModelInput {
            mut data,
            mut shape,
        } = raw;
        if self.config.grayscale {
            let out = grayscale_shape(&shape)?;
            data = grayscale(&data, integral);
            shape = out;
        }
        if let Some(size) = self.config.resize {
            let out = resize_shape(&shape, size)?;
            let channels = shape.get(2).copied().unwrap_or(1);
            data = resize_area(
                &data,
                (shape[0], shape[1], channels),
                (out[0], out[1]),
                integral,
            );
            shape = out;
        }
        if let Some(s) = self.config.scale {
            data.iter_mut().for_each(|v| *v *= s);
        }
        if let Some(n) = &self.config.normalize {
            check_normalize(&shape, n)?;
            normalize(&mut data, n);
        }
        if self.config.channels_first {
            let out = channels_first_shape(&shape)?;
            data = to_channels_first(&data, (shape[0], shape[1], shape[2]));
            shape = out;
        }
        Ok(ModelInput { data, shape })
    }

    /// Pushes a frame and returns the stack, filling it on the first frame.
    fn stack(&mut self, frame: ModelInput) -> ModelInput {
        let k = self.config.frame_stack as usize;
        if k == 1 {
            return frame;
        }
        let shape = self.stacked_shape(&frame.shape);
        if self.frames.is_empty() {
            self.frames.extend(std::iter::repeat_n(frame.data, k));
        } else {
            self.frames.pop_front();
            self.frames.push_back(frame.data);
        }
        ModelInput {
            data: self.frames.iter().flatten().copied().collect(),
            shape,
        }
    }
}

/// The observation as floats, checked to hold as many values as its shape
/// says, so that no later stage can index out of bounds.
fn to_f32(obs: &Observation) -> Result<ModelInput, PolicyError> {
    let data: Vec<f32> = match obs {
        Observation::F32 { data, .. } => data.clone(),
        Observation::U8 { data, .. } => data.iter().map(|v| f32::from(*v)).collect(),
        Observation::I64 { data, .. } => data.iter().map(|v| *v as f32).collect(),
    };
    let shape = obs.shape().to_vec();
    if data.len() != shape.iter().product::<usize>() {
        return Err(PolicyError::Incompatible(format!(
            "an observation of shape {shape:?} holds {} values",
            data.len()
        )));
    }
    Ok(ModelInput { data, shape })
}

/// The elementwise max of two raw observations (MaxAndSkip removes Atari's
/// sprite flicker this way).
fn max_of(a: ModelInput, b: ModelInput) -> Result<ModelInput, PolicyError> {
    if a.shape != b.shape || a.data.len() != b.data.len() {
        return Err(PolicyError::Incompatible(format!(
            "observation shape changed from {:?} to {:?} between steps",
            a.shape, b.shape
        )));
    }
    let data = a.data.iter().zip(&b.data).map(|(x, y)| x.max(*y)).collect();
    Ok(ModelInput {
        data,
        shape: b.shape,
    })
}

fn grayscale_shape(shape: &[usize]) -> Result<Vec<usize>, PolicyError> {
    match shape {
        [h, w, 3] => Ok(vec![*h, *w]),
        _ => Err(PolicyError::Incompatible(format!(
            "grayscale needs an RGB observation of shape (height, width, 3), not {shape:?}"
        ))),
    }
}

fn resize_shape(shape: &[usize], (out_h, out_w): (u32, u32)) -> Result<Vec<usize>, PolicyError> {
    let (h, w) = (out_h as usize, out_w as usize);
    match shape {
        [ih, iw] if *ih > 0 && *iw > 0 => Ok(vec![h, w]),
        [ih, iw, c] if *ih > 0 && *iw > 0 => Ok(vec![h, w, *c]),
        _ => Err(PolicyError::Incompatible(format!(
            "resize needs an image of shape (height, width) or (height, width, channels), \
             not {shape:?}"
        ))),
    }
}

fn channels_first_shape(shape: &[usize]) -> Result<Vec<usize>, PolicyError> {
    match shape {
        [h, w, c] => Ok(vec![*c, *h, *w]),
        _ => Err(PolicyError::Incompatible(format!(
            "channels_first needs an image of shape (height, width, channels), not {shape:?} \
             (after grayscale an image has no channel axis)"
        ))),
    }
}

/// Checks that `mean` and `std` broadcast against a frame of `shape`.
fn check_normalize(shape: &[usize], n: &Normalize) -> Result<(), PolicyError> {
    let len: usize = shape.iter().product();
    let last = shape.last().copied().unwrap_or(1);
    for (name, values) in [("mean", &n.mean), ("std", &n.std)] {
        let l = values.len();
        if l != 1 && l != len && l != last {
            return Err(PolicyError::Incompatible(format!(
                "normalize {name} has {l} values, but a frame of shape {shape:?} needs 1, \
                 {last} (one per channel) or {len} (one per element)"
            )));
        }
    }
    Ok(())
}

/// `(x - mean) / std`, each broadcast by repeating it along the frame: one
/// value, one per last-axis entry, or one per element all cycle the same way.
fn normalize(data: &mut [f32], n: &Normalize) {
    for (i, v) in data.iter_mut().enumerate() {
        let mean = n.mean[i % n.mean.len()];
        let std = n.std[i % n.std.len()];
        *v = (*v - mean) / std;
    }
}

fn to_channels_first(data: &[f32], (h, w, c): (usize, usize, usize)) -> Vec<f32> {
    let mut out = vec![0.0; data.len()];
    for (i, v) in data.iter().enumerate() {
        let (pixel, channel) = (i / c, i % c);
        out[channel * h * w + pixel] = *v;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pre(config: Preprocess) -> Preprocessor {
        match Preprocessor::new(config) {
            Ok(p) => p,
            Err(e) => panic!("{e}"),
        }
    }

    fn run(p: &mut Preprocessor, obs: &Observation) -> Option<ModelInput> {
        match p.process(obs) {
            Ok(out) => out,
            Err(e) => panic!("{e}"),
        }
    }

    fn vector(v: &[f32]) -> Observation {
        Observation::vector(v.to_vec())
    }

    /// With defaults, the observation passes through as floats every step.
    #[test]
    fn identity_by_default() {
        let mut p = pre(Preprocess::default());
        let obs = Observation::I64 {
            shape: vec![2],
            data: vec![3, -4],
        };
        assert_eq!(p.output_shape(&[2]).ok(), Some(vec![2]));
        let out = run(&mut p, &obs);
        assert_eq!(
            out,
            Some(ModelInput {
                data: vec![3.0, -4.0],
                shape: vec![2]
            })
        );
    }

    /// Scale then normalize: ((x * 2) - mean) / std, per element.
    #[test]
    fn scale_then_normalize() {
        let mut p = pre(Preprocess {
            scale: Some(2.0),
            normalize: Some(Normalize {
                mean: vec![1.0, 2.0],
                std: vec![2.0, 4.0],
            }),
            ..Preprocess::default()
        });
        let out = run(&mut p, &vector(&[1.0, 3.0])).map(|i| i.data);
        assert_eq!(out, Some(vec![0.5, 1.0]));
    }

    /// A one-value mean/std applies everywhere; a per-channel one cycles along
    /// the last axis; any other length is refused.
    #[test]
    fn normalize_broadcasts() {
        let mut p = pre(Preprocess {
            normalize: Some(Normalize {
                mean: vec![10.0, 20.0],
                std: vec![1.0],
            }),
            ..Preprocess::default()
        });
        let obs = Observation::F32 {
            shape: vec![2, 2],
            data: vec![11.0, 22.0, 13.0, 24.0],
        };
        assert_eq!(
            run(&mut p, &obs).map(|i| i.data),
            Some(vec![1.0, 2.0, 3.0, 4.0])
        );
        assert!(p.output_shape(&[3, 3]).is_err());
    }

    /// Grayscale, resize and stacking compose into (k, h, w).
    #[test]
    fn atari_shape() {
        let p = pre(Preprocess {
            grayscale: true,
            resize: Some((84, 84)),
            frame_stack: 4,
            ..Preprocess::default()
        });
        assert_eq!(p.output_shape(&[210, 160, 3]).ok(), Some(vec![4, 84, 84]));
        assert!(p.output_shape(&[4]).is_err());
    }

    /// Grayscale on u8 pixels uses OpenCV's integer formula.
    #[test]
    fn grayscale_u8() {
        let mut p = pre(Preprocess {
            grayscale: true,
            ..Preprocess::default()
        });
        let obs = Observation::U8 {
            shape: vec![1, 2, 3],
            data: vec![255, 0, 0, 10, 20, 30],
        };
        let out = run(&mut p, &obs);
        assert_eq!(
            out,
            Some(ModelInput {
                data: vec![76.0, 18.0],
                shape: vec![1, 2]
            })
        );
    }

    /// (H, W, C) to (C, H, W), hand-transposed.
    #[test]
    fn channels_first_transposes() {
        let mut p = pre(Preprocess {
            channels_first: true,
            ..Preprocess::default()
        });
        // Pixels (r, g) at (0,0)=(1,2) (0,1)=(3,4) (1,0)=(5,6) (1,1)=(7,8).
        let obs = Observation::F32 {
            shape: vec![2, 2, 2],
            data: vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0],
        };
        let out = run(&mut p, &obs);
        assert_eq!(
            out,
            Some(ModelInput {
                data: vec![1.0, 3.0, 5.0, 7.0, 2.0, 4.0, 6.0, 8.0],
                shape: vec![2, 2, 2]
            })
        );
        let gray_first = pre(Preprocess {
            grayscale: true,
            channels_first: true,
            ..Preprocess::default()
        });
        assert!(gray_first.output_shape(&[2, 2, 3]).is_err());
    }

    /// The first frame fills the stack; later ones push the oldest out; a reset
    /// starts over.
    #[test]
    fn frame_stack_repeats_first_frame() {
        let mut p = pre(Preprocess {
            frame_stack: 3,
            ..Preprocess::default()
        });
        let data = |p: &mut Preprocessor, v: f32| run(p, &vector(&[v, -v])).map(|i| i.data);
        assert_eq!(
            data(&mut p, 1.0),
            Some(vec![1.0, -1.0, 1.0, -1.0, 1.0, -1.0])
        );
        assert_eq!(
            data(&mut p, 2.0),
            Some(vec![1.0, -1.0, 1.0, -1.0, 2.0, -2.0])
        );
        assert_eq!(
            data(&mut p, 3.0),
            Some(vec![1.0, -1.0, 2.0, -2.0, 3.0, -3.0])
        );
        assert_eq!(
            data(&mut p, 4.0),
            Some(vec![2.0, -2.0, 3.0, -3.0, 4.0, -4.0])
        );
        p.reset();
        assert_eq!(
            data(&mut p, 5.0),
            Some(vec![5.0, -5.0, 5.0, -5.0, 5.0, -5.0])
        );
    }

    /// With skip 3 the policy decides on steps 0, 3, 6; it sees step 0 as is
    /// and then the max of steps 2 and 3, 5 and 6.
    #[test]
    fn max_and_skip_decides_every_kth_step_on_the_max() {
        let mut p = pre(Preprocess {
            max_and_skip: 3,
            ..Preprocess::default()
        });
        let steps = [
            [1.0, 9.0],
            [0.0, 0.0],
            [5.0, 2.0],
            [3.0, 4.0],
            [0.0, 0.0],
            [1.0, 1.0],
            [0.0, 7.0],
        ];
        let mut decided = Vec::new();
        for (i, s) in steps.iter().enumerate() {
            assert_eq!(p.should_act(), i % 3 == 0, "step {i}");
            if let Some(input) = run(&mut p, &vector(s)) {
                decided.push((i, input.data));
            }
        }
        assert_eq!(
            decided,
            vec![
                (0, vec![1.0, 9.0]),
                (3, vec![5.0, 4.0]),
                (6, vec![1.0, 7.0])
            ]
        );
        p.reset();
        assert!(p.should_act());
        assert_eq!(
            run(&mut p, &vector(&[2.0, 2.0])).map(|i| i.data),
            Some(vec![2.0, 2.0])
        );
    }

    /// Settings that cannot work are refused when the pipeline is built.
    #[test]
    fn bad_settings_are_config_errors() {
        let bad = [
            Preprocess {
                frame_stack: 0,
                ..Preprocess::default()
            },
            Preprocess {
                max_and_skip: 0,
                ..Preprocess::default()
            },
            Preprocess {
                resize: Some((0, 84)),
                ..Preprocess::default()
            },
            Preprocess {
                normalize: Some(Normalize {
                    mean: vec![0.0],
                    std: vec![0.0],
                }),
                ..Preprocess::default()
            },
        ];
        for config in bad {
            assert!(
                matches!(
                    Preprocessor::new(config.clone()),
                    Err(PolicyError::Config(_))
                ),
                "{config:?}"
            );
        }
    }

    /// Observation shapes by space kind.
    #[test]
    fn observation_shapes() {
        assert_eq!(observation_shape(&Space::discrete(3)), Vec::<usize>::new());
        let md = Space::MultiDiscrete {
            nvec: vec![2, 2, 2],
            start: vec![0; 3],
        };
        assert_eq!(observation_shape(&md), vec![3]);
        let b = Space::vector_f32(vec![0.0; 4], vec![1.0; 4]);
        assert_eq!(observation_shape(&b), vec![4]);
    }
}
