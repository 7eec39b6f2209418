//! [`Catalog`]: the environments an experiment may name, by id, at run time.
//!
//! The built-ins are always there; a caller adds more (Python workers, a
//! test's own environment) with [`Catalog::insert`]. The same value is handed to
//! the experiment reader, `tandem check` and the server, so an id that one of
//! them accepts, all of them can make. Factories sit behind `Arc`, so a catalog
//! is cheap to clone into every game.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use tandem_env::{Env, EnvError, EnvFactory, EnvSpec};

use crate::{CartPole, Kitchen, MountainCar, Paddles, PaddlesMode};

/// Environments by id.
#[derive(Clone)]
pub struct Catalog {
    /// Sorted, so listings and error messages come out the same every time.
    factories: BTreeMap<String, Arc<dyn EnvFactory>>,
    /// Ids a host was asked for and could not provide, with why: the
    /// experiment reader reports the reason at the scene that names them.
    unavailable: BTreeMap<String, String>,
}

/// The catalog has no environment of this id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown environment {id:?}; known ids: {}", known.join(", "))]
pub struct NotInCatalog {
    pub id: String,
    pub known: Vec<String>,
}

/// Why [`Catalog::make`] failed.
#[derive(Debug, thiserror::Error)]
pub enum MakeError {
    #[error(transparent)]
    Unknown(#[from] NotInCatalog),
    #[error("could not make environment {id:?}: {source}")]
    Failed { id: String, source: EnvError },
}

impl Catalog {
    /// The built-in environments and nothing else.
    pub fn builtin() -> Catalog {
        let mut catalog = Catalog::empty();
        let builtins: [fn() -> Box<dyn Env>; 5] = [
            || Box::new(CartPole::new()),
            || Box::new(MountainCar::new()),
            || Box::new(Kitchen::new()),
            || Box::new(Paddles::new(PaddlesMode::Competitive)),
            || Box::new(Paddles::new(PaddlesMode::Cooperative)),
        ];
        for make in builtins {
            catalog.insert(Arc::new(Builtin {
                spec: make().spec().clone(),
                make,
            }));
        }
        catalog
    }

    /// A catalog with nothing in it.
    pub fn empty() -> Catalog {
        Catalog {
            factories: BTreeMap::new(),
            unavailable: BTreeMap::new(),
        }
    }

    /// Adds a factory under its spec's id, replacing any of that id.
    pub fn insert(&mut self, factory: Arc<dyn EnvFactory>) {
        self.factories.insert(factory.spec().id.clone(), factory);
    }

    /// Records that `id` could not be provided, and why (a Python worker
    /// could not make it, say).
    pub fn insert_unavailable(&mut self, id: &str, reason: String) {
        self.unavailable.insert(id.to_string(), reason);
    }

    /// Why `id` could not be provided, if a host said so.
    pub fn unavailable(&self, id: &str) -> Option<&str> {
        self.unavailable.get(id).map(String::as_str)
    }

    /// The factory of `id`.
    pub fn get(&self, id: &str) -> Result<&Arc<dyn EnvFactory>, NotInCatalog> {
        self.factories.get(id).ok_or_else(|| NotInCatalog {
            id: id.to_string(),
            known: self.ids(),
        })
    }

    /// The spec of `id`, if the catalog has it.
    pub fn spec(&self, id: &str) -> Option<&EnvSpec> {
        self.factories.get(id).map(|f| f.spec())
    }

    /// A fresh environment of `id`.
    pub fn make(&self, id: &str) -> Result<Box<dyn Env>, MakeError> {
        self.get(id)?.make().map_err(|source| MakeError::Failed {
            id: id.to_string(),
            source,
        })
    }

    /// Every id, sorted.
    pub fn ids(&self) -> Vec<String> {
        self.factories.keys().cloned().collect()
    }
}

impl Default for Catalog {
    fn default() -> Self {
        Catalog::builtin()
    }
}

impl fmt::Debug for Catalog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.factories.keys()).finish()
    }
}

/// A compiled-in environment: pure Rust, microseconds a step.
struct Builtin {
    spec: EnvSpec,
    make: fn() -> Box<dyn Env>,
}

impl EnvFactory for Builtin {
    fn spec(&self) -> &EnvSpec {
        &self.spec
    }

    fn make(&self) -> Result<Box<dyn Env>, EnvError> {
        Ok((self.make)())
    }

    fn steps_inline(&self) -> bool {
        true
    }

    fn describe(&self) -> String {
        format!("{} (built in, version {})", self.spec.id, self.spec.version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every built-in id is in the catalog, made by it, and steps inline.
    #[test]
    fn builtins_are_catalogued() {
        let catalog = Catalog::builtin();
        let mut ids: Vec<String> = crate::ids().iter().map(|s| s.to_string()).collect();
        ids.sort();
        assert_eq!(catalog.ids(), ids);
        for id in &ids {
            let env = catalog.make(id).map_err(|e| e.to_string());
            assert_eq!(env.map(|e| e.spec().id.clone()), Ok(id.clone()));
            assert!(catalog.get(id).is_ok_and(|f| f.steps_inline()), "{id}");
        }
    }

    /// An unknown id names the known ones; an inserted factory is found.
    #[test]
    fn unknown_and_inserted() {
        let mut catalog = Catalog::empty();
        let message = catalog.make("Nope-v0").err().map(|e| e.to_string());
        assert_eq!(
            message.as_deref(),
            Some("unknown environment \"Nope-v0\"; known ids: ")
        );
        catalog.insert(Arc::new(Builtin {
            spec: CartPole::new().spec().clone(),
            make: || Box::new(CartPole::new()),
        }));
        assert!(catalog.spec("CartPole-v1").is_some());
        let message = catalog.get("Cartpole-v1").err().map(|e| e.to_string());
        assert_eq!(
            message.as_deref(),
            Some("unknown environment \"Cartpole-v1\"; known ids: CartPole-v1")
        );
    }
}
