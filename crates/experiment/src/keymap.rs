//! Key maps: which held keys choose which action for a human seat.
//!
//! A key map is resolved on every tick for every human seat, so it is compiled
//! once at load: bindings are ordered by priority (more keys first, then file
//! order) and [`KeyMap::action_for`] only walks that short list. Keys and the
//! default action are validated against the seat's action space at load, so a
//! running game never meets an action the environment would refuse.

use std::collections::HashMap;

use serde_json::{Value, json};
use tandem_env::{Action, Space};

use crate::error::{Problems, Reported};
use crate::keys::{is_held, parse_chord};
use crate::reader::{Field, Span, as_f32s};

/// One entry of a key map: when all of `keys` are held, play `action`.
#[derive(Clone, Debug, PartialEq)]
pub struct KeyBinding {
    /// The entry's name as written in the file, such as `"ArrowLeft+Space"`;
    /// recorded with each step to say which binding chose the action.
    pub chord: String,
    /// The key names of the chord, in the order written.
    pub keys: Vec<String>,
    pub action: Action,
}

/// The action held keys select, and the binding that selected it.
#[derive(Clone, Debug, PartialEq)]
pub struct Resolved {
    pub action: Action,
    /// The chosen binding's chord, or `None` when no binding matched and the
    /// default action applies.
    pub chord: Option<String>,
}

/// A compiled key map and the action played when no binding matches.
#[derive(Clone, Debug, PartialEq)]
pub struct KeyMap {
    /// The action while no mapped key is held.
    pub default_action: Action,
    /// The key map in file order.
    bindings: Vec<KeyBinding>,
    /// Indices into `bindings`, most keys first, ties in file order: the first
    /// binding here whose keys are all held is the one that wins.
    priority: Vec<usize>,
    /// Every key name the map uses, in order of first use.
    key_names: Vec<String>,
}

impl KeyMap {
    /// Compiles bindings (in file order) and a default action.
    pub(crate) fn new(bindings: Vec<KeyBinding>, default_action: Action) -> KeyMap {
        let mut priority: Vec<usize> = (0..bindings.len()).collect();
        // Stable, so equal-sized chords keep file order.
        priority.sort_by_key(|&i| std::cmp::Reverse(bindings[i].keys.len()));
        let mut key_names: Vec<String> = Vec::new();
        for key in bindings.iter().flat_map(|b| &b.keys) {
            if !key_names.contains(key) {
                key_names.push(key.clone());
            }
        }
        KeyMap {
            default_action,
            bindings,
            priority,
            key_names,
        }
    }

    /// The action for `held` keys: among the bindings whose keys are all held,
    /// the one with the most keys (ties: the first in the file); keys the map
    /// does not use are ignored; with no match, the default action.
    pub fn action_for(&self, held: &[String]) -> Resolved {
        for &index in &self.priority {
            let binding = &self.bindings[index];
            if binding.keys.iter().all(|key| is_held(key, held)) {
                return Resolved {
                    action: binding.action.clone(),
                    chord: Some(binding.chord.clone()),
                };
            }
        }
        Resolved {
            action: self.default_action.clone(),
            chord: None,
        }
    }

    /// The key map, in file order.
    pub fn bindings(&self) -> &[KeyBinding] {
        &self.bindings
    }

    /// Every key name the key map uses, in order of first use.
    pub fn key_names(&self) -> &[String] {
        &self.key_names
    }

    /// The bindings as recorded with each game, in file order.
    pub fn to_json(&self) -> Value {
        let keys: Vec<Value> = self
            .bindings
            .iter()
            .map(|b| json!({"chord": b.chord, "keys": b.keys, "action": b.action}))
            .collect();
        json!({"keys": keys, "default_action": self.default_action})
    }
}

/// Reads a `keys` table. Chords are checked even when the environment is
/// unknown, so that one run reports both kinds of problem.
pub(crate) fn read_keys(
    problems: &mut Problems,
    field: &Field,
    space: Result<(&str, &Space), Reported>,
) -> Result<Vec<KeyBinding>, Reported> {
    let keys = field.table(problems)?;
    let entries = keys.fields();
    if entries.is_empty() {
        return Err(field.report(
            problems,
            "the key map is empty: map at least one key to an action, such as ArrowLeft = 0",
        ));
    }
    let mut result = Ok(Vec::with_capacity(entries.len()));
    // Each chord's keys, sorted, to find entries that name the same keys.
    let mut seen: HashMap<Vec<String>, (String, Span)> = HashMap::new();
    for entry in &entries {
        let chord = parse_chord(entry.key)
            .map_err(|e| entry.report_key(problems, e.message()))
            .and_then(|keys| {
                let mut sorted = keys.clone();
                sorted.sort();
                if let Some((other, span)) = seen.get(&sorted) {
                    let (line, _) = problems.lines().position(span.start);
                    return Err(entry.report_key(
                        problems,
                        format!("{other:?} (line {line}) already maps the same keys"),
                    ));
                }
                seen.insert(sorted, (entry.key.to_string(), entry.key_span.clone()));
                Ok(keys)
            });
        let action = space.and_then(|(env_id, space)| read_action(problems, entry, env_id, space));
        match (&mut result, chord, action) {
            (Ok(bindings), Ok(keys), Ok(action)) => bindings.push(KeyBinding {
                chord: entry.key.to_string(),
                keys,
                action,
            }),
            (_, Err(r), _) | (_, _, Err(r)) => result = Err(r),
            (Err(_), Ok(_), Ok(_)) => {}
        }
    }
    result
}

/// Reads an action written for `space` and checks that the space contains it.
pub(crate) fn read_action(
    problems: &mut Problems,
    field: &Field,
    env_id: &str,
    space: &Space,
) -> Result<Action, Reported> {
    let expected = describe(space);
    let mismatch = |problems: &mut Problems, shown: String| {
        field.report(
            problems,
            format!("{shown} is not an action of {env_id}: its actions are {expected}"),
        )
    };
    let action = match space {
        Space::Discrete { .. } => {
            let value = field.value(problems, "an integer action")?;
            match value.as_integer() {
                Some(i) => Action::Discrete(i),
                None => return Err(mismatch(problems, shown(value))),
            }
        }
        Space::MultiDiscrete { .. } => {
            let value = field.value(problems, "an array action")?;
            let ints: Option<Vec<i64>> = value
                .as_array()
                .and_then(|a| a.iter().map(toml_edit::Value::as_integer).collect());
            match ints {
                Some(ints) => Action::MultiDiscrete(ints),
                None => return Err(mismatch(problems, shown(value))),
            }
        }
        Space::Box { .. } => {
            let value = field.value(problems, "an array action")?;
            match as_f32s(field.item) {
                Some(floats) => Action::Continuous(floats),
                None => return Err(mismatch(problems, shown(value))),
            }
        }
    };
    if space.contains(&action) {
        Ok(action)
    } else {
        let shown = match &action {
            Action::Discrete(i) => i.to_string(),
            Action::MultiDiscrete(v) => format!("{v:?}"),
            Action::Continuous(v) => format!("{v:?}"),
        };
        Err(mismatch(problems, shown))
    }
}

/// A value as written, without surrounding white space or comments.
fn shown(value: &toml_edit::Value) -> String {
    let mut value = value.clone();
    value.decor_mut().clear();
    value.to_string()
}

/// A space's elements in words, for error messages.
fn describe(space: &Space) -> String {
    match space {
        Space::Discrete { n, start } if *n == 1 => format!("only the integer {start}"),
        Space::Discrete { n, start } => {
            format!("the integers {start} to {}", start + n - 1)
        }
        Space::MultiDiscrete { nvec, start } => {
            let ranges: Vec<String> = nvec
                .iter()
                .zip(start)
                .map(|(n, s)| format!("{s}..={}", s + n - 1))
                .collect();
            format!(
                "arrays of {} integers within [{}]",
                nvec.len(),
                ranges.join(", ")
            )
        }
        Space::Box { low, high, .. } => {
            let ranges: Vec<String> = low
                .iter()
                .zip(high)
                .map(|(lo, hi)| format!("{lo}..={hi}"))
                .collect();
            format!(
                "arrays of {} numbers within [{}]",
                low.len(),
                ranges.join(", ")
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Spaces are described the way a researcher would write their elements.
    #[test]
    fn spaces_are_described() {
        assert_eq!(describe(&Space::discrete(3)), "the integers 0 to 2");
        assert_eq!(
            describe(&Space::MultiDiscrete {
                nvec: vec![3, 2],
                start: vec![0, 1]
            }),
            "arrays of 2 integers within [0..=2, 1..=2]"
        );
    }
}
