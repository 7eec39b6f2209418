//! Environments hosted outside the binary (`gymnasium:`, `pettingzoo:`,
//! `python:`): finding them in a file before it is read, and reading a
//! scene's `env_kwargs`.
//!
//! A hosted environment's spaces are known only once a worker has made it,
//! and the experiment reader checks key maps and actions against them. So the
//! caller first lists the file's hosted environments with [`hosted_envs`]
//! (a lenient pass that reports nothing), has workers make them and enters
//! them into the catalog, and then reads the file with that catalog.

use serde_json::{Map, Number, Value};
use tandem_envs::HostedEnv;

use crate::error::{Problems, Reported};
use crate::reader::Field;

/// The hosted environments `text` names, each once, in file order. Scenes
/// with problems are skipped: the full read reports them.
pub fn hosted_envs(text: &str) -> Vec<HostedEnv> {
    let Ok(document) = text.parse::<toml_edit::DocumentMut>() else {
        return Vec::new();
    };
    let Some(scenes) = document.get("scene").and_then(|s| s.as_array_of_tables()) else {
        return Vec::new();
    };
    let mut found: Vec<HostedEnv> = Vec::new();
    let mut add = |env: Option<&toml_edit::Item>, kwargs: Option<&toml_edit::Item>| {
        let Some(env) = env.and_then(|e| e.as_str()) else {
            return;
        };
        let kwargs = match kwargs {
            None => Map::new(),
            Some(item) => match item.as_table_like().map(table_to_json) {
                Some(Some(map)) => map,
                _ => return,
            },
        };
        if let Some(Ok(hosted)) = HostedEnv::parse(env, kwargs)
            && !found.iter().any(|f| f.id == hosted.id)
        {
            found.push(hosted);
        }
    };
    for scene in scenes.iter() {
        add(scene.get("env"), scene.get("env_kwargs"));
    }
    // A condition may give a scene another environment or other arguments.
    let conditions = document
        .get("condition")
        .and_then(|c| c.as_array_of_tables());
    for condition in conditions.iter().flat_map(|c| c.iter()) {
        let Some(overrides) = condition.get("override").and_then(|o| o.as_table_like()) else {
            continue;
        };
        for (scene_id, fields) in overrides.iter() {
            let (Some(fields), Some(scene)) = (
                fields.as_table_like(),
                scenes
                    .iter()
                    .find(|s| s.get("id").and_then(|i| i.as_str()) == Some(scene_id)),
            ) else {
                continue;
            };
            if fields.contains_key("env") || fields.contains_key("env_kwargs") {
                add(
                    fields.get("env").or(scene.get("env")),
                    fields.get("env_kwargs").or(scene.get("env_kwargs")),
                );
            }
        }
    }
    found
}

/// Reads a table of keyword arguments for Python (a scene's `env_kwargs`, a
/// policy's `kwargs`) as JSON.
pub(crate) fn read_kwargs(
    problems: &mut Problems,
    field: &Field,
) -> Result<Map<String, Value>, Reported> {
    let key = field.key;
    let table = field.item.as_table_like().ok_or_else(|| {
        field.report(
            problems,
            format!("{key} is a table of keyword arguments, such as {{ frameskip = 4 }}"),
        )
    })?;
    table_to_json(table).ok_or_else(|| {
        field.report(
            problems,
            format!("{key} holds only strings, numbers, booleans, arrays and tables"),
        )
    })
}

fn table_to_json(table: &dyn toml_edit::TableLike) -> Option<Map<String, Value>> {
    table
        .iter()
        .map(|(key, item)| Some((key.to_string(), item_to_json(item)?)))
        .collect()
}

fn item_to_json(item: &toml_edit::Item) -> Option<Value> {
    match item {
        toml_edit::Item::Value(value) => value_to_json(value),
        toml_edit::Item::Table(table) => table_to_json(table).map(Value::Object),
        toml_edit::Item::ArrayOfTables(tables) => tables
            .iter()
            .map(|t| table_to_json(t).map(Value::Object))
            .collect::<Option<Vec<_>>>()
            .map(Value::Array),
        toml_edit::Item::None => None,
    }
}

fn value_to_json(value: &toml_edit::Value) -> Option<Value> {
    use toml_edit::Value as V;
    Some(match value {
        V::String(s) => Value::String(s.value().clone()),
        V::Integer(i) => Value::Number((*i.value()).into()),
        V::Float(f) => Value::Number(Number::from_f64(*f.value())?),
        V::Boolean(b) => Value::Bool(*b.value()),
        V::Datetime(d) => Value::String(d.value().to_string()),
        V::Array(items) => Value::Array(items.iter().map(value_to_json).collect::<Option<_>>()?),
        V::InlineTable(table) => Value::Object(table_to_json(table)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosted_envs_are_listed_once_with_their_arguments() {
        let text = r#"
id = "x"
title = "x"
[[scene]]
kind = "game"
env = "gymnasium:ALE/Breakout-v5"
[scene.env_kwargs]
frameskip = 4
repeat_action_probability = 0.25
[[scene]]
kind = "game"
env = "CartPole-v1"
[[scene]]
kind = "game"
env = "gymnasium:ALE/Breakout-v5"
env_kwargs = { repeat_action_probability = 0.25, frameskip = 4 }
[[scene]]
kind = "game"
env = "python:my_pkg.envs:make_env"
"#;
        let found = hosted_envs(text);
        let ids: Vec<&str> = found.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                r#"gymnasium:ALE/Breakout-v5 {"frameskip":4,"repeat_action_probability":0.25}"#,
                "python:my_pkg.envs:make_env"
            ]
        );
        assert!(hosted_envs("not toml [").is_empty());
    }
}
