//! Action spaces as policies see them: how many numbers an action takes, the
//! "do nothing" action, a uniformly random one, and clipping into bounds.
//!
//! [`ActionSpace`] is checked once when a policy is created, so a space a
//! policy cannot produce actions for (an integer `Box`, an empty `Discrete`)
//! is an error before the game starts, not in the middle of an episode.

use rand::{Rng, RngExt};
use tandem_env::{Action, Dtype, Space};

use crate::PolicyError;

/// An action space a policy can act in.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum ActionSpace {
    /// `start .. start + n`.
    Discrete { n: usize, start: i64 },
    /// One `start[i] .. start[i] + nvec[i]` choice per element.
    MultiDiscrete { nvec: Vec<usize>, start: Vec<i64> },
    /// A float box, flattened row-major.
    Box { low: Vec<f64>, high: Vec<f64> },
}

impl ActionSpace {
    /// The space in policy form, or why no policy can act in it.
    pub(crate) fn new(space: &Space) -> Result<Self, PolicyError> {
        let unsupported = |why: &str| {
            PolicyError::Incompatible(format!("cannot act in the action space {space:?}: {why}"))
        };
        match space {
            Space::Discrete { n, start } => {
                let n = usize::try_from(*n)
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| unsupported("it has no actions"))?;
                Ok(ActionSpace::Discrete { n, start: *start })
            }
            Space::MultiDiscrete { nvec, start } => {
                let nvec = nvec
                    .iter()
                    .map(|n| usize::try_from(*n).ok().filter(|n| *n > 0))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| unsupported("a dimension has no choices"))?;
                if start.len() != nvec.len() {
                    return Err(unsupported("\"start\" and \"nvec\" differ in length"));
                }
                Ok(ActionSpace::MultiDiscrete {
                    nvec,
                    start: start.clone(),
                })
            }
            Space::Box {
                low, high, dtype, ..
            } => {
                // `Action::Continuous` holds floats; an integer box has no
                // action type to carry it.
                if !matches!(dtype, Dtype::Float32 | Dtype::Float64) {
                    return Err(unsupported("only float boxes have continuous actions"));
                }
                if low.len() != high.len() || low.iter().zip(high).any(|(lo, hi)| lo > hi) {
                    return Err(unsupported("its bounds are inconsistent"));
                }
                Ok(ActionSpace::Box {
                    low: low.clone(),
                    high: high.clone(),
                })
            }
        }
    }

    /// How many numbers a network outputs for one action: logits per choice for
    /// the discrete kinds, one value per element for a box.
    pub(crate) fn output_len(&self) -> usize {
        match self {
            ActionSpace::Discrete { n, .. } => *n,
            ActionSpace::MultiDiscrete { nvec, .. } => nvec.iter().sum(),
            ActionSpace::Box { low, .. } => low.len(),
        }
    }

    /// The "do nothing" action: the first choice of each discrete dimension, or
    /// zeros clipped into a box's bounds.
    pub(crate) fn zero(&self) -> Action {
        match self {
            ActionSpace::Discrete { start, .. } => Action::Discrete(*start),
            ActionSpace::MultiDiscrete { start, .. } => Action::MultiDiscrete(start.clone()),
            ActionSpace::Box { low, high } => Action::Continuous(
                low.iter()
                    .zip(high)
                    .map(|(lo, hi)| clip(0.0, *lo, *hi))
                    .collect(),
            ),
        }
    }

    /// A random action, drawn as Gymnasium's `Space.sample` does: uniform over
    /// the choices, and for a box uniform between finite bounds, exponential
    /// from a single finite bound, normal when unbounded.
    pub(crate) fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> Action {
        match self {
            ActionSpace::Discrete { n, start } => {
                Action::Discrete(start + rng.random_range(0..*n as i64))
            }
            ActionSpace::MultiDiscrete { nvec, start } => Action::MultiDiscrete(
                nvec.iter()
                    .zip(start)
                    .map(|(n, s)| s + rng.random_range(0..*n as i64))
                    .collect(),
            ),
            ActionSpace::Box { low, high } => Action::Continuous(
                low.iter()
                    .zip(high)
                    .map(|(lo, hi)| clip(box_sample(*lo, *hi, rng), *lo, *hi))
                    .collect(),
            ),
        }
    }

    /// Network output for a box action, clipped into the bounds.
    pub(crate) fn clip_box(&self, values: &[f32]) -> Option<Action> {
        match self {
            ActionSpace::Box { low, high } if values.len() == low.len() => {
                Some(Action::Continuous(
                    values
                        .iter()
                        .zip(low.iter().zip(high))
                        .map(|(v, (lo, hi))| clip(f64::from(*v), *lo, *hi))
                        .collect(),
                ))
            }
            _ => None,
        }
    }
}

/// One element of a random box action.
fn box_sample<R: Rng + ?Sized>(lo: f64, hi: f64, rng: &mut R) -> f64 {
    // `random::<f64>()` is in [0, 1); `1 - u` is in (0, 1], safe for `ln`.
    let mut exponential = || -(1.0 - rng.random::<f64>()).ln();
    match (lo.is_finite(), hi.is_finite()) {
        (true, true) => lo + (hi - lo) * rng.random::<f64>(),
        (true, false) => lo + exponential(),
        (false, true) => hi - exponential(),
        (false, false) => {
            // Box–Muller: two uniforms make one standard normal.
            let u1 = 1.0 - rng.random::<f64>();
            let u2 = rng.random::<f64>();
            (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
        }
    }
}

/// `v` clipped into `[lo, hi]`, as an `f32` that is still inside the bounds.
///
/// Rounding to `f32` can step just outside an `f64` bound (0.1 rounds up), and
/// `Space::contains` compares in `f64`, so the rounded value is nudged back in.
fn clip(v: f64, lo: f64, hi: f64) -> f32 {
    let x = v.clamp(lo, hi) as f32;
    if f64::from(x) > hi {
        x.next_down()
    } else if f64::from(x) < lo {
        x.next_up()
    } else {
        x
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::episode_rng;

    fn float_box(low: Vec<f64>, high: Vec<f64>) -> Space {
        Space::vector_f32(low, high)
    }

    /// Spaces no policy can produce actions for are refused up front.
    #[test]
    fn unsupported_spaces_are_errors() {
        assert!(ActionSpace::new(&Space::discrete(0)).is_err());
        let int_box = Space::Box {
            low: vec![0.0],
            high: vec![3.0],
            shape: vec![1],
            dtype: Dtype::Int64,
        };
        assert!(ActionSpace::new(&int_box).is_err());
        let empty_dim = Space::MultiDiscrete {
            nvec: vec![2, 0],
            start: vec![0, 0],
        };
        assert!(ActionSpace::new(&empty_dim).is_err());
    }

    /// Output sizes: logits per choice, one value per box element.
    #[test]
    fn output_lengths() {
        let md = Space::MultiDiscrete {
            nvec: vec![3, 2],
            start: vec![0, 0],
        };
        assert_eq!(
            ActionSpace::new(&Space::discrete(4))
                .map(|a| a.output_len())
                .ok(),
            Some(4)
        );
        assert_eq!(ActionSpace::new(&md).map(|a| a.output_len()).ok(), Some(5));
        let b = float_box(vec![-1.0; 3], vec![1.0; 3]);
        assert_eq!(ActionSpace::new(&b).map(|a| a.output_len()).ok(), Some(3));
    }

    /// Zero actions: first choices, and zero clipped into each box element.
    #[test]
    fn zero_actions() -> Result<(), PolicyError> {
        let d = Space::Discrete { n: 3, start: -1 };
        assert_eq!(ActionSpace::new(&d)?.zero(), Action::Discrete(-1));
        let md = Space::MultiDiscrete {
            nvec: vec![3, 2],
            start: vec![0, 5],
        };
        assert_eq!(
            ActionSpace::new(&md)?.zero(),
            Action::MultiDiscrete(vec![0, 5])
        );
        let b = float_box(vec![-1.0, 0.5, -3.0], vec![1.0, 2.0, -2.0]);
        assert_eq!(
            ActionSpace::new(&b)?.zero(),
            Action::Continuous(vec![0.0, 0.5, -2.0])
        );
        Ok(())
    }

    /// Random actions are always inside the space, bounded or not.
    #[test]
    fn samples_are_in_the_space() -> Result<(), PolicyError> {
        let spaces = [
            Space::Discrete { n: 3, start: 2 },
            Space::MultiDiscrete {
                nvec: vec![4, 1, 2],
                start: vec![0, -1, 3],
            },
            float_box(
                vec![-0.1, f64::NEG_INFINITY, 0.0, f64::NEG_INFINITY],
                vec![0.1, 1.0, f64::INFINITY, f64::INFINITY],
            ),
        ];
        let mut rng = episode_rng(3, 0);
        for space in spaces {
            let a = ActionSpace::new(&space)?;
            for _ in 0..500 {
                let action = a.sample(&mut rng);
                assert!(space.contains(&action), "{action:?} not in {space:?}");
            }
        }
        Ok(())
    }

    /// Clipping lands inside `f64` bounds even when `f32` rounding would not.
    #[test]
    fn clip_stays_inside_after_rounding() {
        assert!(f64::from(clip(5.0, -0.1, 0.1)) <= 0.1);
        assert!(f64::from(clip(-5.0, -0.1, 0.1)) >= -0.1);
        assert_eq!(clip(0.25, -1.0, 1.0), 0.25);
    }
}
