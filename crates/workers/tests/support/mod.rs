//! What the worker crate's integration tests share: a worker configuration
//! on a fresh package cache, and the project's virtual environment.

#![allow(dead_code)]

use std::path::PathBuf;

use tandem_workers::WorkerConfig;

/// The project's `.venv` interpreter, which `./scripts/test` creates with
/// Gymnasium, ale-py and PettingZoo.
pub fn venv_python() -> PathBuf {
    let python = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: ./scripts/test creates it with Gymnasium",
        python.display()
    );
    python
}

/// The default configuration, with the package written to a temporary
/// cache of its own (kept, as workers may outlive the call).
pub fn config() -> WorkerConfig {
    let cache = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}")).keep();
    WorkerConfig::install(&cache).unwrap_or_else(|e| panic!("{e}"))
}
