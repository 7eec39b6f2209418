//! Actions and observations: the values that flow into and out of an environment.
//!
//! Both are small enums over the shapes Gymnasium spaces produce, so that the game
//! loop, the recorder and the wire can handle any environment without generics.

use serde::{Deserialize, Serialize};

/// One agent's action for one step.
///
/// Serialized untagged, so a discrete action is the plain JSON number `1` and a
/// multi-discrete one the array `[0, 2]`, the way a researcher writes them in an
/// experiment file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Action {
    /// An element of a `Discrete` space.
    Discrete(i64),
    /// An element of a `MultiDiscrete` space.
    MultiDiscrete(Vec<i64>),
    /// An element of a float `Box` space.
    Continuous(Vec<f32>),
}

/// One agent's observation: a dense tensor in row-major order.
#[derive(Clone, Debug, PartialEq)]
pub enum Observation {
    /// Float features, such as CartPole's four state variables.
    F32 { shape: Vec<usize>, data: Vec<f32> },
    /// Bytes, such as RGB pixels (`[height, width, 3]`).
    U8 { shape: Vec<usize>, data: Vec<u8> },
    /// Integers, such as grid-cell codes.
    I64 { shape: Vec<usize>, data: Vec<i64> },
}

impl Observation {
    /// A flat float vector, the common case for classic-control environments.
    pub fn vector(data: Vec<f32>) -> Self {
        Observation::F32 {
            shape: vec![data.len()],
            data,
        }
    }

    /// The tensor's shape.
    pub fn shape(&self) -> &[usize] {
        match self {
            Observation::F32 { shape, .. }
            | Observation::U8 { shape, .. }
            | Observation::I64 { shape, .. } => shape,
        }
    }

    /// The values as little-endian bytes, in the dtype the observation holds.
    pub fn to_le_bytes(&self) -> Vec<u8> {
        match self {
            Observation::F32 { data, .. } => data.iter().flat_map(|v| v.to_le_bytes()).collect(),
            Observation::U8 { data, .. } => data.clone(),
            Observation::I64 { data, .. } => data.iter().flat_map(|v| v.to_le_bytes()).collect(),
        }
    }
}
