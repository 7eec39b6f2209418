//! [`Decoder`]: a network's output vector to an action of the seat's space.
//!
//! The conventions are the ones RL libraries export: `Discrete(n)` takes `n`
//! logits; `MultiDiscrete([n1, .., nk])` takes `n1 + .. + nk` logits, split in
//! order, one categorical per dimension (SB3's `MultiCategorical`); a float
//! `Box` takes exactly one value per element, clipped into the bounds (SB3
//! clips the same way). Discrete choices are the argmax, or a draw from
//! `softmax(logits / temperature)`; sampling does not apply to boxes.

use rand::Rng;
use rand::RngExt;
use tandem_env::{Action, Space};

use crate::actions::ActionSpace;
use crate::{PolicyError, Sampling};

/// Turns outputs of one network into actions of one action space.
#[derive(Clone, Debug, PartialEq)]
pub struct Decoder {
    space: ActionSpace,
    sampling: Sampling,
}

impl Decoder {
    /// A decoder for `space`; errors if no action can be made for the space
    /// or the temperature is not a positive number.
    pub fn new(space: &Space, sampling: Sampling) -> Result<Self, PolicyError> {
        sampling.check()?;
        Ok(Decoder {
            space: ActionSpace::new(space)?,
            sampling,
        })
    }

    /// How many values the network must output.
    pub fn output_len(&self) -> usize {
        self.space.output_len()
    }

    /// The action for one network output. `rng` is drawn from only when
    /// sampling a discrete action.
    pub fn decode<R: Rng + ?Sized>(
        &self,
        output: &[f32],
        rng: &mut R,
    ) -> Result<Action, PolicyError> {
        if output.len() != self.output_len() {
            return Err(PolicyError::Incompatible(format!(
                "the network output {} values, but the action space {:?} needs {}",
                output.len(),
                self.space,
                self.output_len()
            )));
        }
        if let Some(i) = output.iter().position(|v| !v.is_finite()) {
            return Err(PolicyError::Inference(format!(
                "the network output {} at index {i}",
                output[i]
            )));
        }
        match &self.space {
            ActionSpace::Discrete { start, .. } => {
                Ok(Action::Discrete(start + self.choose(output, rng) as i64))
            }
            ActionSpace::MultiDiscrete { nvec, start } => {
                let mut rest = output;
                let mut action = Vec::with_capacity(nvec.len());
                for (n, s) in nvec.iter().zip(start) {
                    let (logits, tail) = rest.split_at(*n);
                    action.push(s + self.choose(logits, rng) as i64);
                    rest = tail;
                }
                Ok(Action::MultiDiscrete(action))
            }
            ActionSpace::Box { .. } => self.space.clip_box(output).ok_or_else(|| {
                PolicyError::Incompatible("box action of the wrong size".to_string())
            }),
        }
    }

    /// The index picked from one categorical's logits (finite, non-empty).
    fn choose<R: Rng + ?Sized>(&self, logits: &[f32], rng: &mut R) -> usize {
        match self.sampling {
            Sampling::Greedy => argmax(logits),
            Sampling::Sample { temperature } => sample(logits, temperature, rng),
        }
    }
}

/// The index of the largest value; the lowest index among ties.
fn argmax(values: &[f32]) -> usize {
    let mut best = 0;
    for (i, v) in values.iter().enumerate() {
        if *v > values[best] {
            best = i;
        }
    }
    best
}

/// A draw from `softmax(logits / temperature)`, computed in `f64` with the
/// maximum subtracted so large logits cannot overflow.
fn sample<R: Rng + ?Sized>(logits: &[f32], temperature: f32, rng: &mut R) -> usize {
    let t = f64::from(temperature);
    let max = logits
        .iter()
        .fold(f64::NEG_INFINITY, |m, v| m.max(f64::from(*v)));
    let weights: Vec<f64> = logits
        .iter()
        .map(|v| ((f64::from(*v) - max) / t).exp())
        .collect();
    let total: f64 = weights.iter().sum();
    let mut u = rng.random::<f64>() * total;
    for (i, w) in weights.iter().enumerate() {
        if u < *w {
            return i;
        }
        u -= w;
    }
    // Rounding left `u` just past the last weight: take the last likely choice.
    weights.iter().rposition(|w| *w > 0.0).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::episode_rng;

    fn decoder(space: Space, sampling: Sampling) -> Decoder {
        match Decoder::new(&space, sampling) {
            Ok(d) => d,
            Err(e) => panic!("{e}"),
        }
    }

    fn greedy(d: &Decoder, output: &[f32]) -> Result<Action, PolicyError> {
        d.decode(output, &mut episode_rng(0, 0))
    }

    /// Argmax, ties to the lowest index, offset by the space's start.
    #[test]
    fn discrete_greedy() {
        let d = decoder(Space::discrete(3), Sampling::Greedy);
        assert_eq!(
            greedy(&d, &[0.1, 2.0, -1.0]).ok(),
            Some(Action::Discrete(1))
        );
        assert_eq!(greedy(&d, &[5.0, 1.0, 5.0]).ok(), Some(Action::Discrete(0)));
        let d = decoder(Space::Discrete { n: 2, start: 10 }, Sampling::Greedy);
        assert_eq!(greedy(&d, &[0.0, 1.0]).ok(), Some(Action::Discrete(11)));
    }

    /// Logits are split per dimension, in order.
    #[test]
    fn multi_discrete_splits_logits() {
        let space = Space::MultiDiscrete {
            nvec: vec![3, 2],
            start: vec![0, 1],
        };
        let d = decoder(space, Sampling::Greedy);
        assert_eq!(
            greedy(&d, &[0.0, 0.0, 9.0, 4.0, 3.0]).ok(),
            Some(Action::MultiDiscrete(vec![2, 1]))
        );
    }

    /// Box outputs are clipped into the bounds; sampling changes nothing.
    #[test]
    fn box_is_clipped() {
        let space = Space::vector_f32(vec![-1.0, 0.0], vec![1.0, 2.0]);
        let d = decoder(space, Sampling::Sample { temperature: 1.0 });
        assert_eq!(
            greedy(&d, &[-3.0, 1.5]).ok(),
            Some(Action::Continuous(vec![-1.0, 1.5]))
        );
    }

    /// Wrong sizes and non-finite outputs are errors, not panics.
    #[test]
    fn bad_outputs_are_errors() {
        let d = decoder(Space::discrete(2), Sampling::Greedy);
        assert!(matches!(
            greedy(&d, &[1.0]),
            Err(PolicyError::Incompatible(_))
        ));
        assert!(matches!(
            greedy(&d, &[1.0, f32::NAN]),
            Err(PolicyError::Inference(_))
        ));
        let e = Decoder::new(&Space::discrete(2), Sampling::Sample { temperature: 0.0 });
        assert!(matches!(e, Err(PolicyError::Config(_))));
    }

    /// Sampling follows the softmax: a dominant logit almost always wins, equal
    /// logits split evenly, and the same seed gives the same draws.
    #[test]
    fn sampling_follows_softmax_and_seed() {
        let d = decoder(Space::discrete(2), Sampling::Sample { temperature: 1.0 });
        let draws = |seed: u64, logits: &[f32]| -> Vec<i64> {
            let mut rng = episode_rng(seed, 0);
            (0..2000)
                .map(|_| match d.decode(logits, &mut rng) {
                    Ok(Action::Discrete(a)) => a,
                    other => panic!("{other:?}"),
                })
                .collect()
        };
        let even = draws(1, &[0.0, 0.0]);
        let ones = even.iter().filter(|a| **a == 1).count();
        assert!((900..1100).contains(&ones), "{ones}");
        // p(1) = 1 / (1 + e^-3) ≈ 0.953.
        let skewed = draws(1, &[0.0, 3.0]);
        let ones = skewed.iter().filter(|a| **a == 1).count();
        assert!((1850..1960).contains(&ones), "{ones}");
        assert_eq!(draws(5, &[0.3, 0.1]), draws(5, &[0.3, 0.1]));
        assert_ne!(draws(5, &[0.3, 0.1]), draws(6, &[0.3, 0.1]));
    }

    /// A low temperature sharpens the softmax toward the argmax.
    #[test]
    fn temperature_sharpens() {
        let d = decoder(Space::discrete(2), Sampling::Sample { temperature: 0.01 });
        let mut rng = episode_rng(2, 0);
        for _ in 0..200 {
            assert_eq!(
                d.decode(&[0.0, 1.0], &mut rng).ok(),
                Some(Action::Discrete(1))
            );
        }
    }
}
