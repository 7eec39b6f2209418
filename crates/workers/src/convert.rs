//! Between the protocol's JSON and arrays and Tandem's environment types:
//! what a `made` says becomes an [`EnvSpec`], arrays become observations and
//! frames, actions become JSON.
//!
//! Every function here reads what a worker sent, so none trusts it: a shape
//! that does not match its bytes, a space Tandem cannot represent or a frame
//! that is not RGB is an error with a reason, never a panic.

use serde_json::{Value, json};
use tandem_env::{
    Action, AgentSpec, DefaultKey, EnvSpec, Frame, Image, Observation, RenderKind, Space,
};

use crate::protocol::{Array, Dtype, Message};

/// What a worker said about an environment it made.
#[derive(Clone, Debug)]
pub struct Made {
    pub spec: EnvSpec,
    pub default_keys: Option<Vec<DefaultKey>>,
    pub description: String,
}

/// Reads a `made` reply for the environment the catalog calls `id`.
pub fn made(id: &str, message: &Message) -> Result<Made, String> {
    let header = &message.header;
    let agents = header
        .get("agents")
        .and_then(Value::as_array)
        .filter(|a| !a.is_empty())
        .ok_or("made: \"agents\" is missing or empty")?;
    let agents = agents
        .iter()
        .map(|agent| {
            let name = agent
                .get("name")
                .and_then(Value::as_str)
                .ok_or("made: an agent has no name")?;
            let space = |key: &str| {
                agent
                    .get(key)
                    .ok_or_else(|| format!("made: agent {name} has no {key}"))
                    .and_then(|v| {
                        Space::from_json(v).map_err(|e| format!("made: agent {name}'s {key}: {e}"))
                    })
            };
            Ok(AgentSpec {
                name: name.to_string(),
                observation_space: space("observation_space")?,
                action_space: space("action_space")?,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    let render = header
        .get("render")
        .filter(|r| !r.is_null())
        .ok_or("the environment renders no rgb_array, so there is nothing to show a participant")?;
    let dimension = |key: &str| {
        render
            .get(key)
            .and_then(Value::as_u64)
            .and_then(|v| u32::try_from(v).ok())
            .filter(|&v| v > 0)
            .ok_or_else(|| format!("made: render has no valid {key}"))
    };
    let (width, height) = (dimension("width")?, dimension("height")?);
    if width > MAX_SIDE || height > MAX_SIDE {
        return Err(format!(
            "made: a {width}×{height} render; at most {MAX_SIDE} pixels a side"
        ));
    }
    let render = RenderKind::Pixels { width, height };
    for agent in &agents {
        check_space(&agent.observation_space)
            .and_then(|()| check_space(&agent.action_space))
            .map_err(|why| format!("made: agent {}: {why}", agent.name))?;
    }
    let small = |key: &str| {
        header
            .get(key)
            .and_then(Value::as_f64)
            .filter(|v| v.is_finite() && *v >= 0.0 && *v <= f64::from(u32::MAX))
            .map(|v| v.round() as u32)
    };
    let default_keys = header
        .get("keys_to_action")
        .and_then(Value::as_array)
        .map(|entries| entries.iter().filter_map(default_key).collect::<Vec<_>>())
        .filter(|keys| !keys.is_empty());
    Ok(Made {
        spec: EnvSpec {
            id: id.to_string(),
            version: 0,
            agents,
            render,
            // The file's own fps is 1 to 240; an environment's is held to it.
            fps: small("fps").filter(|f| (1..=240).contains(f)).unwrap_or(30),
            max_episode_steps: small("max_episode_steps"),
        },
        default_keys,
        description: header
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or("a Python environment")
            .chars()
            .take(200)
            .collect(),
    })
}

/// The widest or tallest frame a worker may draw.
pub const MAX_SIDE: u32 = 4096;

/// Whether a space from a worker is one the server can use without
/// overflowing: discrete ranges that fit, and tensors of bounded size.
fn check_space(space: &Space) -> Result<(), String> {
    let range = |n: i64, start: i64| n >= 1 && start.checked_add(n).is_some();
    match space {
        Space::Discrete { n, start } if range(*n, *start) => Ok(()),
        Space::Discrete { n, start } => Err(format!("Discrete n={n} start={start}")),
        Space::MultiDiscrete { nvec, start }
            if nvec.len() <= 4096 && nvec.iter().zip(start).all(|(n, s)| range(*n, *s)) =>
        {
            Ok(())
        }
        Space::MultiDiscrete { .. } => Err("a MultiDiscrete out of range".into()),
        Space::Box { low, .. } if low.len() <= crate::protocol::MAX_MESSAGE => Ok(()),
        Space::Box { low, .. } => Err(format!("a Box of {} elements", low.len())),
    }
}

/// How many values an observation of `space` holds.
fn elements(space: &Space) -> usize {
    match space {
        Space::Discrete { .. } => 1,
        Space::MultiDiscrete { nvec, .. } => nvec.len(),
        Space::Box { low, .. } => low.len(),
    }
}

fn default_key(entry: &Value) -> Option<DefaultKey> {
    let keys: Vec<String> = entry
        .get("keys")?
        .as_array()?
        .iter()
        .map(|k| {
            k.as_str()
                .filter(|k| !k.is_empty() && k.len() <= 32)
                .map(str::to_string)
        })
        .collect::<Option<_>>()?;
    if keys.is_empty() {
        return None;
    }
    Some(DefaultKey {
        keys,
        action: action_from_json(entry.get("action")?)?,
    })
}

fn action_from_json(value: &Value) -> Option<Action> {
    match value {
        Value::Number(n) => n.as_i64().map(Action::Discrete),
        Value::Array(items) if items.iter().all(Value::is_i64) => Some(Action::MultiDiscrete(
            items.iter().filter_map(Value::as_i64).collect(),
        )),
        Value::Array(items) => items
            .iter()
            .map(|v| v.as_f64().map(|f| f as f32))
            .collect::<Option<_>>()
            .map(Action::Continuous),
        _ => None,
    }
}

/// An action as the `step` request carries it.
pub fn action_to_json(action: &Action) -> Value {
    match action {
        Action::Discrete(a) => json!(a),
        Action::MultiDiscrete(a) => json!(a),
        Action::Continuous(a) => json!(a),
    }
}

/// An action a Python policy chose, read as its space says (so that `[0, 1]`
/// is a `MultiDiscrete` or a `Box` action by the space, not by its look);
/// `None` when it is not one of the space's actions.
pub fn action_in(value: &Value, space: &Space) -> Option<Action> {
    let action = match space {
        Space::Discrete { .. } => Action::Discrete(value.as_i64()?),
        Space::MultiDiscrete { .. } => Action::MultiDiscrete(
            value
                .as_array()?
                .iter()
                .map(Value::as_i64)
                .collect::<Option<_>>()?,
        ),
        Space::Box { .. } => Action::Continuous(
            value
                .as_array()?
                .iter()
                .map(|v| number(v).map(|f| f as f32))
                .collect::<Option<_>>()?,
        ),
    };
    space.contains(&action).then_some(action)
}

/// A number as the protocol writes it: non-finite ones as strings.
pub fn json_number(value: f64) -> Value {
    if value.is_finite() {
        json!(value)
    } else if value.is_nan() {
        json!("nan")
    } else if value > 0.0 {
        json!("inf")
    } else {
        json!("-inf")
    }
}

/// A value a worker sent, cut short for a message.
pub fn short_json(value: &Value) -> String {
    let text = value.to_string();
    match text.char_indices().nth(80) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text,
    }
}

/// An observation as a protocol array, in the dtype Tandem holds it in.
pub fn observation_array(obs: &Observation) -> Array {
    let dtype = match obs {
        Observation::F32 { .. } => Dtype::F32,
        Observation::U8 { .. } => Dtype::U8,
        Observation::I64 { .. } => Dtype::I64,
    };
    Array {
        dtype,
        shape: obs.shape().to_vec(),
        bytes: obs.to_le_bytes(),
    }
}

/// An observation array as Tandem holds it: floats as `f32`, bytes and
/// booleans as `u8`, other integers as `i64`.
pub fn observation(array: &Array) -> Result<Observation, String> {
    let shape = array.shape.clone();
    let bytes = &array.bytes;
    let chunks = |n: usize| bytes.chunks_exact(n);
    Ok(match array.dtype {
        Dtype::U8 | Dtype::Bool => Observation::U8 {
            shape,
            data: bytes.clone(),
        },
        Dtype::F32 => Observation::F32 {
            shape,
            data: chunks(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
        },
        Dtype::F64 => Observation::F32 {
            shape,
            data: chunks(8)
                .map(|c| {
                    f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f32
                })
                .collect(),
        },
        Dtype::I8 => Observation::I64 {
            shape,
            data: bytes.iter().map(|&b| i64::from(b as i8)).collect(),
        },
        Dtype::I16 => Observation::I64 {
            shape,
            data: chunks(2)
                .map(|c| i64::from(i16::from_le_bytes([c[0], c[1]])))
                .collect(),
        },
        Dtype::U16 => Observation::I64 {
            shape,
            data: chunks(2)
                .map(|c| i64::from(u16::from_le_bytes([c[0], c[1]])))
                .collect(),
        },
        Dtype::I32 => Observation::I64 {
            shape,
            data: chunks(4)
                .map(|c| i64::from(i32::from_le_bytes([c[0], c[1], c[2], c[3]])))
                .collect(),
        },
        Dtype::U32 => Observation::I64 {
            shape,
            data: chunks(4)
                .map(|c| i64::from(u32::from_le_bytes([c[0], c[1], c[2], c[3]])))
                .collect(),
        },
        Dtype::I64 => Observation::I64 {
            shape,
            data: chunks(8)
                .map(|c| i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
                .collect(),
        },
    })
}

/// Each agent's observation from a `reset_done` or `step_done`, each the
/// size of its agent's observation space.
pub fn observations(message: &Message, spec: &EnvSpec) -> Result<Vec<Observation>, String> {
    let agents = spec.agents.len();
    let listed = message
        .header
        .get("observations")
        .and_then(Value::as_array)
        .filter(|l| l.len() == agents)
        .ok_or_else(|| format!("expected {agents} observations"))?;
    listed
        .iter()
        .zip(&spec.agents)
        .map(|(reference, agent)| {
            let array = message
                .array(reference)
                .ok_or("an observation is not an array")?;
            let count: usize = array.shape.iter().product();
            let expected = elements(&agent.observation_space);
            if count != expected {
                return Err(format!(
                    "agent {}'s observation holds {count} values, its space {expected}",
                    agent.name
                ));
            }
            observation(array)
        })
        .collect()
}

/// A number as the protocol writes it: JSON, or `"nan"`, `"inf"`, `"-inf"`.
pub fn number(value: &Value) -> Option<f64> {
    match value {
        Value::String(s) => match s.as_str() {
            "nan" => Some(f64::NAN),
            "inf" => Some(f64::INFINITY),
            "-inf" => Some(f64::NEG_INFINITY),
            _ => None,
        },
        other => other.as_f64(),
    }
}

/// One number or flag per agent from a `step_done`.
pub fn per_agent<T>(
    message: &Message,
    key: &str,
    agents: usize,
    read: impl Fn(&Value) -> Option<T>,
) -> Result<Vec<T>, String> {
    message
        .header
        .get(key)
        .and_then(Value::as_array)
        .filter(|l| l.len() == agents)
        .and_then(|l| l.iter().map(read).collect())
        .ok_or_else(|| format!("step_done: \"{key}\" is not {agents} values"))
}

/// The frame of a reply: an RGB `uint8` array of shape `[height, width, 3]`,
/// the size the environment said it draws.
pub fn frame(message: &Message, spec: &EnvSpec) -> Result<Option<Frame>, String> {
    let Some(reference) = message.header.get("frame").filter(|f| !f.is_null()) else {
        return Ok(None);
    };
    let array = message
        .array(reference)
        .ok_or("the frame is not an array")?;
    match (array.dtype, array.shape.as_slice()) {
        (Dtype::U8, &[height, width, 3])
            if spec.render
                != (RenderKind::Pixels {
                    width: u32::try_from(width).unwrap_or(0),
                    height: u32::try_from(height).unwrap_or(0),
                }) =>
        {
            Err(format!(
                "a {width}×{height} frame from an environment that said it draws {:?}",
                spec.render
            ))
        }
        (Dtype::U8, &[height, width, 3]) => Ok(Some(Frame::Pixels(Image {
            width: u32::try_from(width).map_err(|_| "the frame is too wide")?,
            height: u32::try_from(height).map_err(|_| "the frame is too tall")?,
            rgb: array.bytes.clone(),
        }))),
        (dtype, shape) => Err(format!(
            "the frame is {} {shape:?}, not uint8 [height, width, 3]",
            dtype.name()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Kind;

    fn made_with(agent: Value, render: Value, fps: Value) -> Result<Made, String> {
        made(
            "python:x:y",
            &Message::new(
                Kind::Made,
                json!({"agents": [agent], "render": render, "fps": fps}),
            ),
        )
    }

    fn agent(observation: Value, action: Value) -> Value {
        json!({"name": "agent", "observation_space": observation, "action_space": action})
    }

    /// What a broken or hostile worker says about its environment is refused
    /// with a reason, never a panic or a huge allocation.
    #[test]
    fn hostile_made_replies_are_refused() {
        let discrete = json!({"type": "Discrete", "n": 2});
        let small =
            json!({"type": "Box", "dtype": "float32", "shape": [2], "low": [0, 0], "high": [1, 1]});
        let pixels = json!({"kind": "pixels", "width": 8, "height": 8});
        assert!(
            made_with(
                agent(small.clone(), discrete.clone()),
                pixels.clone(),
                json!(30)
            )
            .is_ok()
        );
        let cases = [
            agent(
                json!({"type": "Box", "dtype": "float32", "shape": [1u64 << 62, 4], "low": [], "high": []}),
                discrete.clone(),
            ),
            agent(small.clone(), json!({"type": "Discrete", "n": 0})),
            agent(
                small.clone(),
                json!({"type": "Discrete", "n": i64::MAX, "start": 5}),
            ),
            agent(
                small.clone(),
                json!({"type": "MultiDiscrete", "nvec": [2, -1], "start": [0, 0]}),
            ),
        ];
        for case in cases {
            assert!(
                made_with(case.clone(), pixels.clone(), json!(30)).is_err(),
                "{case}"
            );
        }
        let huge = json!({"kind": "pixels", "width": 100_000, "height": 100_000});
        assert!(made_with(agent(small.clone(), discrete.clone()), huge, json!(30)).is_err());
        let fast = made_with(agent(small, discrete), pixels, json!(1e9));
        assert_eq!(fast.map(|m| m.spec.fps), Ok(30));
    }
}
