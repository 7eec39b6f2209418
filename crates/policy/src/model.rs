//! A neural network playing a seat: the [`Model`] trait an inference engine
//! implements, and [`ModelPolicy`], which wraps a model in preprocessing,
//! frame skipping, action decoding and seeded sampling.
//!
//! The split keeps the engine crate thin (load a file, run a tensor) and puts
//! everything that decides what the network sees and what its output means
//! here, where it is tested without any model file or engine. The fit between
//! a model and a seat is checked once, in [`ModelPolicy::new`], so a mismatch
//! is reported when the experiment is checked rather than mid-game.

use std::sync::Arc;

use rand_chacha::ChaCha8Rng;
use tandem_env::{Action, EnvSpec, Observation};

use crate::rng::episode_rng;
use crate::{
    Decoder, Policy, PolicyError, Preprocess, Preprocessor, Sampling, observation_shape, seat,
};

/// A loaded network with one input and one output of fixed sizes.
pub trait Model: Send + Sync {
    /// What the model is, for messages (its file path, say).
    fn name(&self) -> String;

    /// The shape of one input, without a batch axis.
    fn input_shape(&self) -> &[usize];

    /// How many values one run outputs (the first output, flattened).
    fn output_len(&self) -> usize;

    /// Runs the model on one input of `input_shape` (row-major) and returns
    /// its first output flattened.
    fn run(&self, input: &[f32]) -> Result<Vec<f32>, PolicyError>;
}

/// Whether a tensor of shape `have` can be fed to an input of shape `want`:
/// equal once axes of length 1 are dropped, so that a network declaring
/// `(1, 84, 84)` takes an `(84, 84)` frame and `(1, 4)` takes a `(4,)` vector.
pub fn shape_fits(have: &[usize], want: &[usize]) -> bool {
    have.iter()
        .filter(|d| **d != 1)
        .eq(want.iter().filter(|d| **d != 1))
}

/// A [`Model`] playing one seat.
pub struct ModelPolicy {
    model: Arc<dyn Model>,
    preprocessor: Preprocessor,
    decoder: Decoder,
    agent: usize,
    rng: ChaCha8Rng,
    /// The action being repeated between decisions (max-and-skip).
    last: Option<Action>,
}

impl ModelPolicy {
    /// A policy for agent `agent` of `env`, or why `model` cannot play it: the
    /// preprocessed observation must fit the model's input and the model's
    /// output must be the size the action space needs. Both shapes are in the
    /// message.
    pub fn new(
        model: Arc<dyn Model>,
        env: &EnvSpec,
        agent: usize,
        preprocess: &Preprocess,
        sampling: Sampling,
    ) -> Result<Self, PolicyError> {
        let spec = seat(env, agent)?;
        let who = format!("agent {agent} ({}) of {}", spec.name, env.id);
        let preprocessor = Preprocessor::new(preprocess.clone())?;
        let observed = observation_shape(&spec.observation_space);
        let fed = preprocessor.output_shape(&observed).map_err(|e| {
            PolicyError::Incompatible(format!(
                "{who} observes shape {observed:?}, which preprocessing ({}) cannot take: {e}",
                preprocess.summary()
            ))
        })?;
        if !shape_fits(&fed, model.input_shape()) {
            return Err(PolicyError::Incompatible(format!(
                "the model {} takes input of shape {:?}, but {who} observes shape {observed:?}, \
                 which preprocessing ({}) turns into {fed:?}",
                model.name(),
                model.input_shape(),
                preprocess.summary(),
            )));
        }
        let decoder = Decoder::new(&spec.action_space, sampling)?;
        if decoder.output_len() != model.output_len() {
            return Err(PolicyError::Incompatible(format!(
                "the model {} outputs {} values, but {who} acts in {:?}, which needs {} \
                 (one logit per discrete choice, or one value per box element)",
                model.name(),
                model.output_len(),
                spec.action_space,
                decoder.output_len(),
            )));
        }
        Ok(ModelPolicy {
            model,
            preprocessor,
            decoder,
            agent,
            rng: episode_rng(0, agent),
            last: None,
        })
    }
}

impl Policy for ModelPolicy {
    fn reset(&mut self, seed: u64) {
        self.preprocessor.reset();
        self.rng = episode_rng(seed, self.agent);
        self.last = None;
    }

    fn act(&mut self, obs: &Observation) -> Result<Action, PolicyError> {
        let Some(input) = self.preprocessor.process(obs)? else {
            return self.last.clone().ok_or_else(|| {
                PolicyError::Inference("no decided action to repeat before this step".to_string())
            });
        };
        // The shape was checked against the spec at creation; this catches an
        // environment whose observations do not match its own spec.
        if !shape_fits(&input.shape, self.model.input_shape()) {
            return Err(PolicyError::Incompatible(format!(
                "an observation preprocessed to shape {:?}, but the model {} takes {:?}",
                input.shape,
                self.model.name(),
                self.model.input_shape()
            )));
        }
        let output = self.model.run(&input.data)?;
        let action = self.decoder.decode(&output, &mut self.rng)?;
        self.last = Some(action.clone());
        Ok(action)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use tandem_env::{AgentSpec, RenderKind, Space};

    use super::*;

    /// A stand-in network: records what it was fed and outputs its input's
    /// first values, so tests can steer the decoded action.
    struct Echo {
        input_shape: Vec<usize>,
        output_len: usize,
        fed: Mutex<Vec<Vec<f32>>>,
    }

    impl Model for Echo {
        fn name(&self) -> String {
            "echo".to_string()
        }
        fn input_shape(&self) -> &[usize] {
            &self.input_shape
        }
        fn output_len(&self) -> usize {
            self.output_len
        }
        fn run(&self, input: &[f32]) -> Result<Vec<f32>, PolicyError> {
            if let Ok(mut fed) = self.fed.lock() {
                fed.push(input.to_vec());
            }
            Ok(input[..self.output_len].to_vec())
        }
    }

    fn echo(input_shape: &[usize], output_len: usize) -> Arc<Echo> {
        Arc::new(Echo {
            input_shape: input_shape.to_vec(),
            output_len,
            fed: Mutex::new(Vec::new()),
        })
    }

    fn env(obs_dims: usize, actions: i64) -> EnvSpec {
        EnvSpec {
            id: "Test-v0".to_string(),
            version: 1,
            agents: vec![AgentSpec {
                name: "player".to_string(),
                observation_space: Space::vector_f32(vec![-9.0; obs_dims], vec![9.0; obs_dims]),
                action_space: Space::discrete(actions),
            }],
            render: RenderKind::Sprites {
                width: 1,
                height: 1,
            },
            fps: 30,
            max_episode_steps: None,
        }
    }

    fn policy(model: Arc<Echo>, env: &EnvSpec, preprocess: Preprocess) -> ModelPolicy {
        match ModelPolicy::new(model, env, 0, &preprocess, Sampling::Greedy) {
            Ok(p) => p,
            Err(e) => panic!("{e}"),
        }
    }

    /// Mismatched input or output sizes are refused with both shapes named.
    #[test]
    fn misfits_name_both_shapes() {
        let e = ModelPolicy::new(
            echo(&[4], 2),
            &env(2, 2),
            0,
            &Preprocess::default(),
            Sampling::Greedy,
        );
        let msg = e.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(msg.contains("[4]") && msg.contains("[2]"), "{msg}");
        let e = ModelPolicy::new(
            echo(&[2], 2),
            &env(2, 3),
            0,
            &Preprocess::default(),
            Sampling::Greedy,
        );
        let msg = e.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(
            msg.contains("outputs 2") && msg.contains("needs 3"),
            "{msg}"
        );
        let e = ModelPolicy::new(
            echo(&[2], 2),
            &env(2, 2),
            1,
            &Preprocess::default(),
            Sampling::Greedy,
        );
        assert!(matches!(e, Err(PolicyError::Incompatible(_))));
    }

    /// Unit axes do not matter: a (1, 2) input takes a 2-vector.
    #[test]
    fn unit_axes_fit() {
        assert!(shape_fits(&[2], &[1, 2]));
        assert!(shape_fits(&[4, 84, 84], &[4, 84, 84]));
        assert!(!shape_fits(&[84, 84, 4], &[4, 84, 84]));
    }

    /// The network decides; with max-and-skip it decides every k-th step and
    /// the action is repeated in between; stacks start over on reset.
    #[test]
    fn skips_repeat_the_decided_action() -> Result<(), PolicyError> {
        let model = echo(&[2, 2], 2);
        let preprocess = Preprocess {
            frame_stack: 2,
            max_and_skip: 2,
            ..Preprocess::default()
        };
        let mut p = policy(model.clone(), &env(2, 2), preprocess);
        p.reset(0);
        let obs = |a: f32, b: f32| Observation::vector(vec![a, b]);
        assert_eq!(p.act(&obs(1.0, 0.0))?, Action::Discrete(0));
        assert_eq!(p.act(&obs(0.0, 5.0))?, Action::Discrete(0));
        // The stack's oldest frame is (1, 0), so the echo's logits are (1, 0).
        assert_eq!(p.act(&obs(0.0, 1.0))?, Action::Discrete(0));
        p.reset(1);
        assert_eq!(p.act(&obs(0.0, 3.0))?, Action::Discrete(1));
        let fed = model.fed.lock().map(|f| f.clone()).unwrap_or_default();
        assert_eq!(
            fed,
            vec![
                vec![1.0, 0.0, 1.0, 0.0],
                vec![1.0, 0.0, 0.0, 5.0],
                vec![0.0, 3.0, 0.0, 3.0]
            ]
        );
        Ok(())
    }
}
