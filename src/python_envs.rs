//! Python environments for `serve` and `check`: the worker flags, and filling
//! the catalog with every hosted environment an experiment file names.
//!
//! Workers are started and each environment made before the file is read,
//! because the reader checks key maps and actions against spaces that only a
//! worker knows. A failure is not fatal here: the catalog records why, and
//! the reader reports it at the scene that names the environment.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use tandem_envs::Catalog;
use tandem_workers::{Pool, WorkerConfig};

/// How Python workers are run.
#[derive(Args, Clone, Debug)]
pub struct WorkerArgs {
    /// The Python interpreter for environment workers (default: `.venv/bin/python`
    /// when the current folder has one, else `python3`). It needs numpy and the
    /// environments' own packages (gymnasium, ale-py, pettingzoo).
    #[arg(long)]
    pub python: Option<PathBuf>,
    /// Seconds a Python environment's step may take before its worker is taken
    /// to hang: the game ends with that reason and the worker is replaced.
    #[arg(long, default_value_t = 1.0)]
    pub step_deadline: f64,
    /// Workers kept started, with their environment made, per Python
    /// environment, so that a game starts without waiting for Python.
    #[arg(long, default_value_t = 1)]
    pub warm_workers: usize,
}

/// Enters every hosted environment that `file` names into `catalog`, starting
/// workers as needed. Returns how many there were.
pub fn host(file: &Path, catalog: &mut Catalog, args: &WorkerArgs) -> anyhow::Result<usize> {
    let Ok(text) = std::fs::read_to_string(file) else {
        // The reader reports an unreadable file with its own message.
        return Ok(0);
    };
    let envs = tandem_experiment::hosted_envs(&text);
    if envs.is_empty() {
        return Ok(0);
    }
    let cache = tandem_workers::default_cache();
    let package = tandem_workers::install_package(&cache).with_context(|| {
        format!(
            "could not write the worker's Python package to {}",
            cache.display()
        )
    })?;
    let mut config = WorkerConfig::new(package);
    // `python:` factories are imported from beside the experiment file.
    let folder = file.parent().filter(|p| !p.as_os_str().is_empty());
    config.python_path = vec![folder.map_or_else(|| PathBuf::from("."), Path::to_path_buf)];
    if let Some(python) = &args.python {
        config.python = python.clone();
    }
    if args.step_deadline.is_finite() && args.step_deadline > 0.0 {
        config.step_deadline = Duration::from_secs_f64(args.step_deadline);
    }
    eprintln!(
        "starting Python workers ({}) for {} environment{}…",
        config.python.display(),
        envs.len(),
        if envs.len() == 1 { "" } else { "s" }
    );
    let pool: Arc<Pool> = Pool::new(config, args.warm_workers);
    tandem_workers::host(catalog, &pool, &envs);
    Ok(envs.len())
}
