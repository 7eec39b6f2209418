//! [`HostedEnv`]: an environment an experiment names that lives outside this
//! binary (`gymnasium:`, `pettingzoo:` or `python:` ids), and the catalog id
//! it goes by.
//!
//! A scene's `env_kwargs` change what the environment is (Atari's
//! `frameskip`, say), so two scenes naming the same environment with
//! different arguments need two catalog entries: the id carries the
//! arguments, as compact JSON with sorted keys, after the name.

use serde_json::{Map, Value};

/// Where a hosted environment comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HostedSource {
    /// `gymnasium.make(target, **kwargs)`.
    Gymnasium,
    /// A PettingZoo module's `parallel_env(**kwargs)` (or its AEC `env`).
    PettingZoo,
    /// A user factory, `module:function`.
    Python,
}

impl HostedSource {
    pub fn name(self) -> &'static str {
        match self {
            HostedSource::Gymnasium => "gymnasium",
            HostedSource::PettingZoo => "pettingzoo",
            HostedSource::Python => "python",
        }
    }
}

/// One environment to ask a worker for.
#[derive(Clone, Debug, PartialEq)]
pub struct HostedEnv {
    /// The catalog id: the `env` string, and the arguments when there are any.
    pub id: String,
    pub source: HostedSource,
    /// The Gymnasium id, PettingZoo module or `module:function`.
    pub target: String,
    pub kwargs: Map<String, Value>,
}

impl HostedEnv {
    /// Reads an experiment's `env` string: `None` for an id without a hosted
    /// prefix (a built-in), an error for a prefix with a bad target.
    pub fn parse(env: &str, kwargs: Map<String, Value>) -> Option<Result<HostedEnv, String>> {
        let (prefix, target) = env.split_once(':')?;
        let source = match prefix {
            "gymnasium" => HostedSource::Gymnasium,
            "pettingzoo" => HostedSource::PettingZoo,
            "python" => HostedSource::Python,
            _ => return None,
        };
        Some(check_target(source, target).map(|()| HostedEnv {
            id: hosted_id(env, &kwargs),
            source,
            target: target.to_string(),
            kwargs,
        }))
    }
}

impl HostedEnv {
    /// The hosted environment a catalog id names (`env`, or `env {kwargs as
    /// JSON}` as [`hosted_id`] writes it), such as an id recorded with an
    /// episode; `None` for a built-in or an id that does not read.
    pub fn from_id(id: &str) -> Option<HostedEnv> {
        let (env, kwargs) = match id.split_once(' ') {
            None => (id, Map::new()),
            Some((env, json)) => match serde_json::from_str(json) {
                Ok(Value::Object(kwargs)) => (env, kwargs),
                _ => return None,
            },
        };
        HostedEnv::parse(env, kwargs)?.ok()
    }
}

/// Whether an `env` string names a hosted environment.
pub fn is_hosted(env: &str) -> bool {
    matches!(
        env.split_once(':').map(|(prefix, _)| prefix),
        Some("gymnasium" | "pettingzoo" | "python")
    )
}

/// The catalog id of `env` with `kwargs`.
pub fn hosted_id(env: &str, kwargs: &Map<String, Value>) -> String {
    if kwargs.is_empty() {
        return env.to_string();
    }
    // serde_json's map is sorted (no `preserve_order`), so equal arguments
    // give equal ids whatever order the file wrote them in.
    let sorted: std::collections::BTreeMap<&String, &Value> = kwargs.iter().collect();
    format!(
        "{env} {}",
        serde_json::to_string(&sorted).unwrap_or_default()
    )
}

fn check_target(source: HostedSource, target: &str) -> Result<(), String> {
    let dotted = |s: &str| {
        !s.is_empty()
            && s.split('.').all(|part| {
                !part.is_empty()
                    && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    && !part.starts_with(|c: char| c.is_ascii_digit())
            })
    };
    let ok = match source {
        HostedSource::Gymnasium => {
            !target.is_empty()
                && target.len() <= 200
                && target
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_/.:".contains(c))
        }
        HostedSource::PettingZoo => dotted(target),
        HostedSource::Python => target
            .split_once(':')
            .is_some_and(|(module, function)| dotted(module) && dotted(function)),
    };
    if ok {
        return Ok(());
    }
    Err(match source {
        HostedSource::Gymnasium => format!(
            "{target:?} is not a Gymnasium id (such as \"CartPole-v1\" or \"ALE/Breakout-v5\")"
        ),
        HostedSource::PettingZoo => format!(
            "{target:?} is not a module path (such as \"pettingzoo.butterfly.pistonball_v6\")"
        ),
        HostedSource::Python => {
            format!("{target:?} is not module:function (such as \"my_pkg.envs:make_env\")")
        }
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn kwargs(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    #[test]
    fn ids_read_back() {
        let mut kwargs = Map::new();
        kwargs.insert("frameskip".into(), Value::from(1));
        kwargs.insert("mode".into(), Value::from("hard"));
        for hosted in [
            HostedEnv::parse("gymnasium:ALE/Breakout-v5", kwargs),
            HostedEnv::parse("python:my_envs:make", Map::new()),
        ] {
            let hosted = hosted.and_then(Result::ok).expect("parses");
            assert_eq!(HostedEnv::from_id(&hosted.id), Some(hosted));
        }
        assert_eq!(HostedEnv::from_id("CartPole-v1"), None);
        assert_eq!(HostedEnv::from_id("gymnasium:X-v0 [1]"), None);
    }

    #[test]
    fn ids_carry_sorted_arguments() {
        let a = HostedEnv::parse(
            "gymnasium:ALE/Breakout-v5",
            kwargs(json!({"repeat_action_probability": 0.0, "frameskip": 4})),
        );
        let Some(Ok(a)) = a else { panic!("{a:?}") };
        assert_eq!(
            a.id,
            r#"gymnasium:ALE/Breakout-v5 {"frameskip":4,"repeat_action_probability":0.0}"#
        );
        assert_eq!(a.target, "ALE/Breakout-v5");
        let plain = HostedEnv::parse("gymnasium:CartPole-v1", Map::new());
        assert_eq!(
            plain.map(|r| r.map(|e| e.id)),
            Some(Ok("gymnasium:CartPole-v1".into()))
        );
    }

    #[test]
    fn prefixes_and_targets_are_checked() {
        assert!(HostedEnv::parse("CartPole-v1", Map::new()).is_none());
        assert!(HostedEnv::parse("other:x", Map::new()).is_none());
        for bad in [
            "python:no_function",
            "python:a b:c",
            "pettingzoo:../x",
            "gymnasium:",
        ] {
            assert!(
                matches!(HostedEnv::parse(bad, Map::new()), Some(Err(_))),
                "{bad}"
            );
        }
        assert!(matches!(
            HostedEnv::parse("python:my_pkg.envs:make_env", Map::new()),
            Some(Ok(_))
        ));
        assert!(is_hosted("pettingzoo:pettingzoo.butterfly.pistonball_v6"));
        assert!(!is_hosted("MountainCar-v0"));
    }
}
