//! `[policy.NAME]` tables: AI policies an experiment defines beyond the
//! built-ins: an ONNX model with the preprocessing it was trained with, or an
//! agent written in Python (`kind = "python"`, `entry = "pkg.mod:Factory"`).
//!
//! Only the configuration is read here. Loading the model or starting a
//! Python worker, and checking that the policy fits the seats that name it,
//! happens where the registry is built (`tandem check`, `tandem serve`), so
//! this crate stays free of the inference engine and of processes.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};
use tandem_policy::{Normalize, OnnxSpec, Preprocess, Sampling};

use crate::error::{Problems, Reported};
use crate::reader::{Field, Table, as_f32s, as_number, check_id};
use crate::suggest::did_you_mean;

/// The policy kinds, each with the fields only it has.
const KINDS: &[&str] = &["onnx", "python"];
const ONNX_FIELDS: &[&str] = &[
    "path",
    "sampling",
    "temperature",
    "scale",
    "normalize_mean",
    "normalize_std",
    "grayscale",
    "resize",
    "frame_stack",
    "max_and_skip",
    "channels_first",
];
const PYTHON_FIELDS: &[&str] = &["entry", "kwargs"];

/// A policy the experiment file defines.
#[derive(Clone, Debug, PartialEq)]
pub struct PolicyDef {
    pub name: String,
    pub kind: PolicyKind,
    /// `file:line:column` of the table, for messages about loading it.
    pub location: String,
}

/// What a `[policy.NAME]` table defines.
#[derive(Clone, Debug, PartialEq)]
pub enum PolicyKind {
    /// A network; `path` is resolved against the experiment file's folder.
    Onnx(OnnxSpec),
    /// An agent in Python, made in a worker by calling `entry` (`module:Factory`,
    /// imported from beside the experiment file) with the seat's spaces and
    /// `kwargs`.
    Python {
        entry: String,
        kwargs: Map<String, Value>,
    },
}

impl PolicyDef {
    /// The ONNX model, for an `onnx` policy.
    pub fn onnx(&self) -> Option<&OnnxSpec> {
        match &self.kind {
            PolicyKind::Onnx(spec) => Some(spec),
            PolicyKind::Python { .. } => None,
        }
    }
}

/// Reads the root's `policy` table of tables.
pub(crate) fn read_all(
    problems: &mut Problems,
    root: &Table,
    base_dir: &Path,
) -> Result<Vec<PolicyDef>, Reported> {
    let Some(field) = root.field("policy") else {
        return Ok(Vec::new());
    };
    let table = field.table(problems)?;
    let mut defs = Ok(Vec::new());
    for entry in table.fields() {
        let def = read_one(problems, &entry, base_dir);
        match (&mut defs, def) {
            (Ok(defs), Ok(def)) => defs.push(def),
            (_, Err(r)) => defs = Err(r),
            _ => {}
        }
    }
    defs
}

fn read_one(
    problems: &mut Problems,
    entry: &Field,
    base_dir: &Path,
) -> Result<PolicyDef, Reported> {
    let name = entry.key.to_string();
    check_id(problems, entry, &name)?;
    if tandem_policy::BUILTIN_NAMES.contains(&name.as_str()) {
        return Err(entry.report_key(
            problems,
            format!("{name:?} is a built-in policy; give this one another name"),
        ));
    }
    let table = entry.table(problems)?;
    let kind = match table.field("kind") {
        None => Err(table.missing(
            problems,
            "kind",
            ": the policy's kind, such as kind = \"onnx\" or kind = \"python\"",
        )),
        Some(field) => match field.string(problems)? {
            kind @ ("onnx" | "python") => Ok(kind),
            other => Err(field.report(
                problems,
                format!(
                    "unknown policy kind {other:?}{}; the kinds are: {} \
                     (the built-ins random, noop and scripted need no table)",
                    did_you_mean(other, KINDS),
                    KINDS.join(", ")
                ),
            )),
        },
    };
    let (own, other, other_kind) = match kind {
        Ok("python") => (PYTHON_FIELDS, ONNX_FIELDS, "onnx"),
        _ => (ONNX_FIELDS, PYTHON_FIELDS, "python"),
    };
    let allowed: Vec<&str> = std::iter::once("kind").chain(own.iter().copied()).collect();
    table.deny_unknown(problems, "this policy", &allowed, |key| {
        other
            .contains(&key)
            .then(|| format!("it belongs to a policy of kind {other_kind:?}"))
    });
    let kind = match kind? {
        "python" => read_python(problems, &table)?,
        _ => PolicyKind::Onnx(read_onnx(problems, &table, base_dir)?),
    };
    let (line, column) = problems.lines().position(entry.key_span.start);
    Ok(PolicyDef {
        location: format!("{}:{line}:{column}: {}", problems.file(), entry.path),
        name,
        kind,
    })
}

fn read_onnx(
    problems: &mut Problems,
    table: &Table,
    base_dir: &Path,
) -> Result<OnnxSpec, Reported> {
    let path = table.req_str(problems, "path");
    let sampling = read_sampling(problems, table);
    let preprocess = read_preprocess(problems, table);
    Ok(OnnxSpec {
        path: resolve(base_dir, &path?),
        preprocess: preprocess?,
        sampling: sampling?,
    })
}

fn read_python(problems: &mut Problems, table: &Table) -> Result<PolicyKind, Reported> {
    let entry = match table.field("entry") {
        None => Err(table.missing(
            problems,
            "entry",
            ": the Python factory to call, such as entry = \"my_agents:Agent\"",
        )),
        Some(field) => {
            let text = field.text(problems)?;
            let (module, factory) = text.split_once(':').unwrap_or((&text, ""));
            let is_path = |s: &str| {
                !s.is_empty()
                    && s.split('.').all(|part| {
                        part.chars()
                            .next()
                            .is_some_and(|c| c.is_alphabetic() || c == '_')
                            && part.chars().all(|c| c.is_alphanumeric() || c == '_')
                    })
            };
            if is_path(module) && is_path(factory) {
                Ok(text)
            } else {
                Err(field.report(
                    problems,
                    "entry is \"module:Factory\", such as \"my_agents:Agent\" or \"pkg.agents:make\"",
                ))
            }
        }
    };
    let kwargs = match table.field("kwargs") {
        None => Ok(Map::new()),
        Some(field) => crate::hosted::read_kwargs(problems, &field),
    };
    Ok(PolicyKind::Python {
        entry: entry?,
        kwargs: kwargs?,
    })
}

fn resolve(base_dir: &Path, path: &str) -> PathBuf {
    let path = Path::new(path);
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        base_dir.join(path)
    }
}

fn read_sampling(problems: &mut Problems, table: &Table) -> Result<Sampling, Reported> {
    let temperature = read_float(problems, table, "temperature")?;
    match table.field("sampling") {
        None => Ok(Sampling::Greedy),
        Some(field) => match field.string(problems)? {
            "greedy" => Ok(Sampling::Greedy),
            "sample" => {
                let temperature = temperature.unwrap_or(1.0) as f32;
                if temperature <= 0.0 {
                    return Err(field.report(problems, "temperature must be above 0"));
                }
                Ok(Sampling::Sample { temperature })
            }
            other => Err(field.report(
                problems,
                format!(
                    "sampling must be \"greedy\" or \"sample\", not {other:?}{}",
                    did_you_mean(other, &["greedy", "sample"])
                ),
            )),
        },
    }
}

fn read_preprocess(problems: &mut Problems, table: &Table) -> Result<Preprocess, Reported> {
    let scale = read_float(problems, table, "scale");
    let mean = read_floats(problems, table, "normalize_mean");
    let std = read_floats(problems, table, "normalize_std");
    let grayscale = table.opt_bool(problems, "grayscale");
    let channels_first = table.opt_bool(problems, "channels_first");
    let frame_stack = table.opt_int(problems, "frame_stack", 1..=64);
    let max_and_skip = table.opt_int(problems, "max_and_skip", 1..=64);
    let resize = match table.field("resize") {
        None => Ok(None),
        Some(field) => {
            let dims: Option<Vec<u32>> = field.item.as_array().and_then(|a| {
                a.iter()
                    .map(|v| {
                        v.as_integer()
                            .and_then(|i| u32::try_from(i).ok())
                            .filter(|&i| i > 0)
                    })
                    .collect()
            });
            match dims.as_deref() {
                Some([h, w]) => Ok(Some((*h, *w))),
                _ => Err(field.report(
                    problems,
                    "resize is [height, width] in pixels, such as [84, 84]",
                )),
            }
        }
    };
    let normalize = match (mean?, std?) {
        (None, None) => None,
        (Some(mean), Some(std)) => {
            if std.iter().any(|&s| s <= 0.0) {
                let at = table.field("normalize_std");
                return Err(match at {
                    Some(f) => f.report(problems, "every normalize_std value must be above 0"),
                    None => table.missing(problems, "normalize_std", ""),
                });
            }
            Some(Normalize { mean, std })
        }
        (Some(_), None) => {
            return Err(table.missing(problems, "normalize_std", ": normalize_mean needs it"));
        }
        (None, Some(_)) => {
            return Err(table.missing(problems, "normalize_mean", ": normalize_std needs it"));
        }
    };
    Ok(Preprocess {
        normalize,
        scale: scale?.map(|s| s as f32),
        grayscale: grayscale?.unwrap_or(false),
        resize: resize?,
        frame_stack: frame_stack?.map_or(1, |v| v as u32),
        max_and_skip: max_and_skip?.map_or(1, |v| v as u32),
        channels_first: channels_first?.unwrap_or(false),
    })
}

fn read_float(problems: &mut Problems, table: &Table, key: &str) -> Result<Option<f64>, Reported> {
    let Some(field) = table.field(key) else {
        return Ok(None);
    };
    match field.item.as_value().and_then(as_number) {
        Some(f) => Ok(Some(f)),
        None => Err(field.report(problems, format!("{key} must be a number"))),
    }
}

fn read_floats(
    problems: &mut Problems,
    table: &Table,
    key: &str,
) -> Result<Option<Vec<f32>>, Reported> {
    let Some(field) = table.field(key) else {
        return Ok(None);
    };
    match as_f32s(field.item) {
        Some(v) if !v.is_empty() => Ok(Some(v)),
        _ => Err(field.report(
            problems,
            format!("{key} must be a non-empty array of numbers"),
        )),
    }
}
