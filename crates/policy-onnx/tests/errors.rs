//! Failures are errors that say what is wrong, never panics: missing and
//! corrupt files at load, and models that do not fit a seat at create.

mod common;

use tandem_env::{AgentSpec, Dtype, EnvSpec, RenderKind, Space};
use tandem_policy::{OnnxSpec, PolicyError, PolicyFactory, Preprocess, Sampling};
use tandem_policy_onnx::OnnxFactory;

fn load_error(spec: &OnnxSpec) -> (std::path::PathBuf, String) {
    match OnnxFactory::load(spec) {
        Err(PolicyError::Load { path, reason }) => (path, reason),
        Err(other) => panic!("expected a load error, got {other}"),
        Ok(_) => panic!("expected a load error"),
    }
}

fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("tandem-policy-onnx-{}", std::process::id()));
    if let Err(e) = std::fs::create_dir_all(&dir) {
        panic!("{e}");
    }
    dir.join(name)
}

#[test]
fn missing_file() {
    let spec = OnnxSpec::new(common::repo("testdata/onnx/no_such_model.onnx"));
    let (path, reason) = load_error(&spec);
    assert_eq!(path, spec.path);
    assert!(reason.contains("no such file"), "{reason}");
    let message = PolicyError::Load { path, reason }.to_string();
    assert!(message.contains("no_such_model.onnx"), "{message}");
}

#[test]
fn directory_is_not_a_model() {
    let (_, reason) = load_error(&OnnxSpec::new(common::repo("testdata/onnx")));
    assert!(reason.contains("not a file"), "{reason}");
}

#[test]
fn corrupt_files() -> std::io::Result<()> {
    let garbage = scratch("garbage.onnx");
    std::fs::write(&garbage, b"this is not a protobuf \xff\xfe\x00\x01")?;
    let (path, reason) = load_error(&OnnxSpec::new(&garbage));
    assert_eq!(path, garbage);
    assert!(!reason.is_empty());
    // Half a real model: the protobuf ends mid-tensor.
    let bytes = std::fs::read(common::pixel_cnn())?;
    let truncated = scratch("truncated.onnx");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2])?;
    load_error(&OnnxSpec::new(&truncated));
    let empty = scratch("empty.onnx");
    std::fs::write(&empty, b"")?;
    load_error(&OnnxSpec::new(&empty));
    Ok(())
}

/// Settings that cannot work are refused at load, with the model.
#[test]
fn bad_settings_at_load() {
    let mut spec = OnnxSpec::new(common::cartpole_mlp());
    spec.sampling = Sampling::Sample { temperature: -1.0 };
    assert!(matches!(
        OnnxFactory::load(&spec),
        Err(PolicyError::Config(_))
    ));
    let mut spec = OnnxSpec::new(common::cartpole_mlp());
    spec.preprocess.frame_stack = 0;
    assert!(matches!(
        OnnxFactory::load(&spec),
        Err(PolicyError::Config(_))
    ));
}

fn incompatible(factory: &OnnxFactory, env: &EnvSpec) -> String {
    match factory.create(env, 0) {
        Err(PolicyError::Incompatible(message)) => message,
        Err(other) => panic!("expected Incompatible, got {other}"),
        Ok(_) => panic!("expected Incompatible for {}", env.id),
    }
}

/// The CartPole MLP (4 inputs) cannot play MountainCar (2 observations); the
/// message names both shapes.
#[test]
fn cartpole_model_rejects_mountain_car() -> Result<(), PolicyError> {
    let factory = common::load(&OnnxSpec::new(common::cartpole_mlp()));
    let message = incompatible(&factory, &common::env_spec("MountainCar-v0")?);
    assert!(
        message.contains("[4]") && message.contains("[2]"),
        "{message}"
    );
    assert!(message.contains("MountainCar-v0"), "{message}");
    Ok(())
}

/// Preprocessing counts: stacking two CartPole frames makes (2, 4), which the
/// MLP does not take; the pixel CNN does not take a CartPole vector.
#[test]
fn preprocessed_shape_must_fit() -> Result<(), PolicyError> {
    let cartpole = common::env_spec("CartPole-v1")?;
    let mut spec = OnnxSpec::new(common::cartpole_mlp());
    spec.preprocess = Preprocess {
        frame_stack: 2,
        ..Preprocess::default()
    };
    let message = incompatible(&common::load(&spec), &cartpole);
    assert!(message.contains("[2, 4]"), "{message}");
    let pixels = common::load(&OnnxSpec::new(common::pixel_cnn()));
    let message = incompatible(&pixels, &cartpole);
    assert!(message.contains("[4, 84, 84]"), "{message}");
    Ok(())
}

/// Right observations, wrong action count: 2 logits for 3 actions.
#[test]
fn output_size_must_fit_the_action_space() {
    let env = EnvSpec {
        id: "ThreeWay-v0".to_string(),
        version: 1,
        agents: vec![AgentSpec {
            name: "agent_0".to_string(),
            observation_space: Space::vector_f32(vec![-1.0; 4], vec![1.0; 4]),
            action_space: Space::discrete(3),
        }],
        render: RenderKind::Sprites {
            width: 1,
            height: 1,
        },
        fps: 30,
        max_episode_steps: None,
    };
    let factory = common::load(&OnnxSpec::new(common::cartpole_mlp()));
    let message = incompatible(&factory, &env);
    assert!(
        message.contains("outputs 2") && message.contains("needs 3"),
        "{message}"
    );
    let mut int_box = env.clone();
    int_box.agents[0].action_space = Space::Box {
        low: vec![0.0, 0.0],
        high: vec![1.0, 1.0],
        shape: vec![2],
        dtype: Dtype::Int64,
    };
    incompatible(&factory, &int_box);
    assert!(matches!(
        factory.create(&env, 1),
        Err(PolicyError::Incompatible(_))
    ));
}
