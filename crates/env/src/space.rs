//! Gymnasium-compatible spaces and their JSON form.
//!
//! The JSON is the one Farama's Minari writes for `gymnasium.spaces`
//! (`{"type": "Box", "dtype": "float32", "shape": [4], "low": [...], "high": [...]}`),
//! so a dataset exported by Tandem deserializes with Minari's own code. JSON has no
//! infinity, so infinite bounds are written as the strings `"inf"` and `"-inf"`,
//! which `numpy.array(..., dtype)` reads back as infinities.

use serde_json::{Value, json};

use crate::Action;

/// Element type of a `Box` space.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dtype {
    Float32,
    Float64,
    Uint8,
    Int64,
}

impl Dtype {
    /// The numpy name, as Gymnasium prints it.
    pub fn name(self) -> &'static str {
        match self {
            Dtype::Float32 => "float32",
            Dtype::Float64 => "float64",
            Dtype::Uint8 => "uint8",
            Dtype::Int64 => "int64",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "float32" => Dtype::Float32,
            "float64" => Dtype::Float64,
            "uint8" => Dtype::Uint8,
            "int64" => Dtype::Int64,
            _ => return None,
        })
    }
}

/// A Gymnasium space.
#[derive(Clone, Debug, PartialEq)]
pub enum Space {
    /// `{start, ..., start + n - 1}`.
    Discrete { n: i64, start: i64 },
    /// A box with per-element bounds; `low` and `high` are flattened row-major.
    Box {
        low: Vec<f64>,
        high: Vec<f64>,
        shape: Vec<usize>,
        dtype: Dtype,
    },
    /// One discrete choice per element, `start[i] .. start[i] + nvec[i]`.
    MultiDiscrete { nvec: Vec<i64>, start: Vec<i64> },
}

/// Why a JSON value is not a space.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("invalid space JSON: {0}")]
pub struct SpaceJsonError(String);

impl Space {
    /// `Discrete(n)` starting at 0.
    pub fn discrete(n: i64) -> Self {
        Space::Discrete { n, start: 0 }
    }

    /// A one-dimensional float32 box.
    pub fn vector_f32(low: Vec<f64>, high: Vec<f64>) -> Self {
        let shape = vec![low.len()];
        Space::Box {
            low,
            high,
            shape,
            dtype: Dtype::Float32,
        }
    }

    /// Whether `action` is an element of this space.
    pub fn contains(&self, action: &Action) -> bool {
        match (self, action) {
            (Space::Discrete { n, start }, Action::Discrete(a)) => {
                *a >= *start && a.saturating_sub(*start) < *n
            }
            (Space::MultiDiscrete { nvec, start }, Action::MultiDiscrete(a)) => {
                a.len() == nvec.len()
                    && a.iter()
                        .zip(nvec.iter().zip(start))
                        .all(|(v, (n, s))| *v >= *s && v.saturating_sub(*s) < *n)
            }
            (Space::Box { low, high, .. }, Action::Continuous(a)) => {
                a.len() == low.len()
                    && a.iter()
                        .zip(low.iter().zip(high))
                        .all(|(v, (lo, hi))| f64::from(*v) >= *lo && f64::from(*v) <= *hi)
            }
            _ => false,
        }
    }

    /// The space in Gymnasium/Minari JSON form.
    pub fn to_json(&self) -> Value {
        match self {
            Space::Discrete { n, start } => {
                json!({"type": "Discrete", "dtype": "int64", "start": start, "n": n})
            }
            Space::Box {
                low,
                high,
                shape,
                dtype,
            } => json!({
                "type": "Box",
                "dtype": dtype.name(),
                "shape": shape,
                "low": nest(low, shape),
                "high": nest(high, shape),
            }),
            Space::MultiDiscrete { nvec, start } => json!({
                "type": "MultiDiscrete",
                "dtype": "int64",
                "nvec": nvec,
                "start": start,
            }),
        }
    }

    /// Reads a space from Gymnasium/Minari JSON form.
    pub fn from_json(value: &Value) -> Result<Self, SpaceJsonError> {
        let err = |m: &str| SpaceJsonError(m.to_string());
        let kind = value
            .get("type")
            .and_then(Value::as_str)
            .ok_or_else(|| err("missing \"type\""))?;
        match kind {
            "Discrete" => {
                let n = value
                    .get("n")
                    .and_then(Value::as_i64)
                    .ok_or_else(|| err("Discrete needs an integer \"n\""))?;
                let start = value.get("start").and_then(Value::as_i64).unwrap_or(0);
                Ok(Space::Discrete { n, start })
            }
            "MultiDiscrete" => {
                let nvec = int_list(value.get("nvec")).ok_or_else(|| err("bad \"nvec\""))?;
                let start = match value.get("start") {
                    Some(v) => int_list(Some(v)).ok_or_else(|| err("bad \"start\""))?,
                    None => vec![0; nvec.len()],
                };
                if start.len() != nvec.len() {
                    return Err(err("\"start\" and \"nvec\" differ in length"));
                }
                Ok(Space::MultiDiscrete { nvec, start })
            }
            "Box" => {
                let dtype_name = value
                    .get("dtype")
                    .and_then(Value::as_str)
                    .ok_or_else(|| err("Box needs \"dtype\""))?;
                let dtype = Dtype::from_name(dtype_name)
                    .ok_or_else(|| err(&format!("unsupported dtype {dtype_name:?}")))?;
                let shape: Vec<usize> = value
                    .get("shape")
                    .and_then(Value::as_array)
                    .ok_or_else(|| err("Box needs \"shape\""))?
                    .iter()
                    .map(|d| d.as_u64().map(|d| d as usize))
                    .collect::<Option<_>>()
                    .ok_or_else(|| err("bad \"shape\""))?;
                // The JSON may come from another process: a shape whose size
                // overflows is an error, and nothing is allocated from it.
                let size = shape
                    .iter()
                    .try_fold(1usize, |n, &d| n.checked_mul(d))
                    .ok_or_else(|| err("\"shape\" is too large"))?;
                let mut low = Vec::new();
                let mut high = Vec::new();
                flatten(value.get("low"), &mut low).ok_or_else(|| err("bad \"low\""))?;
                flatten(value.get("high"), &mut high).ok_or_else(|| err("bad \"high\""))?;
                if low.len() != size || high.len() != size {
                    return Err(err("\"low\"/\"high\" do not match \"shape\""));
                }
                Ok(Space::Box {
                    low,
                    high,
                    shape,
                    dtype,
                })
            }
            other => Err(err(&format!("unsupported space type {other:?}"))),
        }
    }
}

fn number(v: f64) -> Value {
    if v.is_finite() {
        json!(v)
    } else if v > 0.0 {
        json!("inf")
    } else if v < 0.0 {
        json!("-inf")
    } else {
        json!("nan")
    }
}

/// Nests a flat row-major list into the shape's nested JSON arrays, as numpy's
/// `tolist()` does.
fn nest(flat: &[f64], shape: &[usize]) -> Value {
    match shape {
        [] => flat.first().map(|v| number(*v)).unwrap_or(Value::Null),
        [_] => Value::Array(flat.iter().map(|v| number(*v)).collect()),
        [first, rest @ ..] => {
            let chunk = rest.iter().product::<usize>().max(1);
            Value::Array(
                flat.chunks(chunk)
                    .take(*first)
                    .map(|c| nest(c, rest))
                    .collect(),
            )
        }
    }
}

fn flatten(value: Option<&Value>, out: &mut Vec<f64>) -> Option<()> {
    match value? {
        Value::Array(items) => {
            for item in items {
                flatten(Some(item), out)?;
            }
            Some(())
        }
        Value::Number(n) => {
            out.push(n.as_f64()?);
            Some(())
        }
        Value::String(s) => {
            out.push(match s.as_str() {
                "inf" | "Infinity" => f64::INFINITY,
                "-inf" | "-Infinity" => f64::NEG_INFINITY,
                "nan" | "NaN" => f64::NAN,
                _ => return None,
            });
            Some(())
        }
        _ => None,
    }
}

fn int_list(value: Option<&Value>) -> Option<Vec<i64>> {
    value?.as_array()?.iter().map(Value::as_i64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The JSON matches what Minari's `serialize_space` writes for the same spaces.
    #[test]
    fn json_matches_minari_form() {
        assert_eq!(
            Space::discrete(3).to_json(),
            json!({"type": "Discrete", "dtype": "int64", "start": 0, "n": 3})
        );
        let b = Space::vector_f32(vec![-1.0, f64::NEG_INFINITY], vec![1.0, f64::INFINITY]);
        assert_eq!(
            b.to_json(),
            json!({"type": "Box", "dtype": "float32", "shape": [2],
                   "low": [-1.0, "-inf"], "high": [1.0, "inf"]})
        );
        let m = Space::MultiDiscrete {
            nvec: vec![3, 2],
            start: vec![0, 0],
        };
        assert_eq!(
            m.to_json(),
            json!({"type": "MultiDiscrete", "dtype": "int64", "nvec": [3, 2], "start": [0, 0]})
        );
    }

    /// Every space survives a round trip through JSON, nested shapes included.
    #[test]
    fn json_round_trips() {
        let spaces = [
            Space::Discrete { n: 5, start: -2 },
            Space::vector_f32(vec![-4.8, f64::NEG_INFINITY], vec![4.8, f64::INFINITY]),
            Space::Box {
                low: vec![0.0; 12],
                high: vec![255.0; 12],
                shape: vec![2, 2, 3],
                dtype: Dtype::Uint8,
            },
            Space::MultiDiscrete {
                nvec: vec![4, 4],
                start: vec![0, 1],
            },
        ];
        for space in spaces {
            let json = space.to_json();
            assert_eq!(Space::from_json(&json), Ok(space.clone()), "{json}");
        }
        let nested = Space::Box {
            low: vec![0.0; 12],
            high: vec![255.0; 12],
            shape: vec![2, 2, 3],
            dtype: Dtype::Uint8,
        }
        .to_json();
        assert_eq!(nested["low"][1][0], json!([0.0, 0.0, 0.0]));
    }

    /// Malformed JSON is an error that says what is wrong, not a panic.
    #[test]
    fn bad_json_is_an_error() {
        assert!(Space::from_json(&json!({"type": "Tuple"})).is_err());
        assert!(Space::from_json(&json!({"type": "Discrete"})).is_err());
        let e = Space::from_json(&json!({"type": "Box", "dtype": "float32", "shape": [3],
                                          "low": [0, 0], "high": [1, 1]}))
        .unwrap_err();
        assert!(e.to_string().contains("shape"), "{e}");
    }

    /// `contains` accepts exactly the elements of each space.
    #[test]
    fn contains_checks_bounds_and_kind() {
        let d = Space::discrete(3);
        assert!(d.contains(&Action::Discrete(2)));
        assert!(!d.contains(&Action::Discrete(3)));
        assert!(!d.contains(&Action::Discrete(-1)));
        assert!(!d.contains(&Action::MultiDiscrete(vec![1])));
        let m = Space::MultiDiscrete {
            nvec: vec![2, 3],
            start: vec![0, 0],
        };
        assert!(m.contains(&Action::MultiDiscrete(vec![1, 2])));
        assert!(!m.contains(&Action::MultiDiscrete(vec![2, 0])));
        let b = Space::vector_f32(vec![-1.0], vec![1.0]);
        assert!(b.contains(&Action::Continuous(vec![0.5])));
        assert!(!b.contains(&Action::Continuous(vec![1.5])));
    }
}
