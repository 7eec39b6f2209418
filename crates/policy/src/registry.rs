//! [`Registry`]: policies by name, the way an experiment file refers to them.
//!
//! The built-ins are always there; the experiment adds its named ONNX policies
//! on top. Factories are behind `Arc` so a registry is cheap to clone into each
//! game while a loaded model is shared by all of them.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use tandem_env::EnvSpec;

use crate::{NoopFactory, Policy, PolicyError, PolicyFactory, RandomFactory, ScriptedFactory};

/// The names of the built-in policies.
pub const BUILTIN_NAMES: &[&str] = &["random", "noop", "scripted"];

/// Policies by name: the built-ins `random`, `noop`, `scripted`, plus named
/// ones added by the experiment (ONNX).
#[derive(Clone)]
pub struct Registry {
    /// Sorted, so listings and error messages come out the same every time.
    factories: BTreeMap<String, Arc<dyn PolicyFactory>>,
}

impl Registry {
    /// The built-in policies and nothing else.
    pub fn builtin() -> Registry {
        let mut registry = Registry {
            factories: BTreeMap::new(),
        };
        registry.insert("random", Arc::new(RandomFactory));
        registry.insert("noop", Arc::new(NoopFactory));
        registry.insert("scripted", Arc::new(ScriptedFactory));
        registry
    }

    /// Adds a policy under `name`, replacing any policy of that name (a
    /// built-in included: refusing such names is the experiment reader's call).
    pub fn insert(&mut self, name: &str, factory: Arc<dyn PolicyFactory>) {
        self.factories.insert(name.to_string(), factory);
    }

    /// Whether a policy has this name.
    pub fn contains(&self, name: &str) -> bool {
        self.factories.contains_key(name)
    }

    /// Every name, sorted.
    pub fn names(&self) -> Vec<String> {
        self.factories.keys().cloned().collect()
    }

    /// A fresh instance of policy `name` for agent `agent` of `env`.
    pub fn create(
        &self,
        name: &str,
        env: &EnvSpec,
        agent: usize,
    ) -> Result<Box<dyn Policy>, PolicyError> {
        self.factory(name)?.create(env, agent)
    }

    /// Checks that policy `name` can play agent `agent` of `env`; may block
    /// (see [`PolicyFactory::check`]).
    pub fn check(&self, name: &str, env: &EnvSpec, agent: usize) -> Result<(), PolicyError> {
        self.factory(name)?.check(env, agent)
    }

    /// Whether policy `name` may be called on the server's runtime (unknown
    /// names say yes: creating them fails anyway).
    pub fn acts_inline(&self, name: &str) -> bool {
        self.factories.get(name).is_none_or(|f| f.acts_inline())
    }

    fn factory(&self, name: &str) -> Result<&Arc<dyn PolicyFactory>, PolicyError> {
        self.factories
            .get(name)
            .ok_or_else(|| PolicyError::Unknown {
                name: name.to_string(),
                known: self.names(),
            })
    }

    /// The one-line description of policy `name`, if there is one.
    pub fn describe(&self, name: &str) -> Option<String> {
        self.factories.get(name).map(|f| f.describe())
    }
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.factories.keys()).finish()
    }
}

#[cfg(test)]
mod tests {
    use tandem_env::{Action, Observation};

    use super::*;

    fn cartpole() -> EnvSpec {
        match tandem_envs::spec("CartPole-v1") {
            Some(spec) => spec,
            None => panic!("CartPole-v1 is built in"),
        }
    }

    /// The built-ins are all there, by the names in `BUILTIN_NAMES`.
    #[test]
    fn builtins_are_registered() {
        let r = Registry::builtin();
        for name in BUILTIN_NAMES {
            assert!(r.contains(name), "{name}");
            assert!(r.describe(name).is_some());
        }
        assert_eq!(r.names(), vec!["noop", "random", "scripted"]);
    }

    /// An unknown name is an error that lists the known ones.
    #[test]
    fn unknown_names_list_known_ones() {
        let e = Registry::builtin().create("expert", &cartpole(), 0).err();
        let msg = e.map(|e| e.to_string()).unwrap_or_default();
        assert!(
            msg.contains("\"expert\"") && msg.contains("noop, random, scripted"),
            "{msg}"
        );
    }

    /// Inserted policies are found by name, and may replace a built-in.
    #[test]
    fn insert_adds_and_replaces() -> Result<(), PolicyError> {
        let mut r = Registry::builtin();
        r.insert("lazy", Arc::new(NoopFactory));
        r.insert("random", Arc::new(NoopFactory));
        assert!(r.contains("lazy"));
        let mut p = r.create("random", &cartpole(), 0)?;
        p.reset(9);
        let obs = Observation::vector(vec![0.0; 4]);
        for _ in 0..20 {
            assert_eq!(p.act(&obs)?, Action::Discrete(0));
        }
        Ok(())
    }

    /// An agent index the env does not have is an error, not a panic.
    #[test]
    fn missing_seat_is_an_error() {
        let r = Registry::builtin();
        assert!(matches!(
            r.create("noop", &cartpole(), 3),
            Err(PolicyError::Incompatible(_))
        ));
    }
}
