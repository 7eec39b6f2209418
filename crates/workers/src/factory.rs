//! [`WorkerEnvFactory`]: a catalog entry whose environments live in workers,
//! and [`host`], which asks the pool for each environment an experiment names
//! and enters what it can make into the catalog.

use std::sync::Arc;

use tandem_env::{DefaultKey, Env, EnvError, EnvFactory, EnvSpec};
use tandem_envs::{Catalog, HostedEnv};

use crate::convert::Made;
use crate::env::WorkerEnv;
use crate::pool::Pool;

/// Makes environments of one hosted id, in workers of one pool.
pub struct WorkerEnvFactory {
    made: Made,
    env: Arc<HostedEnv>,
    pool: Arc<Pool>,
}

impl EnvFactory for WorkerEnvFactory {
    fn spec(&self) -> &EnvSpec {
        &self.made.spec
    }

    fn make(&self) -> Result<Box<dyn Env>, EnvError> {
        Ok(Box::new(WorkerEnv::new(
            self.made.spec.clone(),
            Arc::clone(&self.env),
            Arc::clone(&self.pool),
        )))
    }

    fn default_keys(&self) -> Option<&[DefaultKey]> {
        self.made.default_keys.as_deref()
    }

    fn describe(&self) -> String {
        format!(
            "{} (in a Python worker: {})",
            self.env.id, self.made.description
        )
    }
}

/// Asks `pool` for each of `envs` and enters each into `catalog`: as a
/// factory when a worker made it, as unavailable (with the worker's reason)
/// when not, so the experiment reader reports it at the scene.
pub fn host(catalog: &mut Catalog, pool: &Arc<Pool>, envs: &[HostedEnv]) {
    for env in envs {
        if catalog.spec(&env.id).is_some() || catalog.unavailable(&env.id).is_some() {
            continue;
        }
        match pool.probe(env) {
            Ok(made) => catalog.insert(Arc::new(WorkerEnvFactory {
                made,
                env: Arc::new(env.clone()),
                pool: Arc::clone(pool),
            })),
            Err(e) => catalog.insert_unavailable(&env.id, e.to_string()),
        }
    }
}
