//! Python environments and policies for `serve` and `check`: the worker
//! flags, how workers start, and filling the catalog with every hosted
//! environment an experiment file names.
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
    #[arg(long, default_value_t = 1.0, value_parser = step_deadline)]
    pub step_deadline: f64,
    /// Workers kept started, with their environment made, per Python
    /// environment, so that a game starts without waiting for Python.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(0..=64))]
    pub warm_workers: u16,
    /// Let Python workers on other machines connect here (`python -m
    /// tandem.worker --connect HOST:PORT --offer gymnasium:ID`); needs a
    /// worker token. They serve the environments they offer, before local ones.
    #[arg(long, requires = "worker_token")]
    pub worker_addr: Option<std::net::SocketAddr>,
    /// The secret remote workers must present (at least 16 characters); better
    /// given as $TANDEM_WORKER_TOKEN than on the command line, where `ps` shows it.
    #[arg(long, env = "TANDEM_WORKER_TOKEN", hide_env_values = true)]
    pub worker_token: Option<String>,
    /// Seconds to wait at start for a remote worker offering an environment this
    /// machine cannot make.
    #[arg(long, default_value_t = 60)]
    pub remote_wait: u64,
}

/// Enters every hosted environment that `file` names into `catalog`, starting
/// workers as needed. Returns their pool, to be closed when the server stops,
/// if there were any.
pub fn host(
    file: &Path,
    catalog: &mut Catalog,
    args: &WorkerArgs,
) -> anyhow::Result<Option<Arc<Pool>>> {
    let Ok(text) = std::fs::read_to_string(file) else {
        // The reader reports an unreadable file with its own message.
        return Ok(None);
    };
    let envs = tandem_experiment::hosted_envs(&text);
    host_envs(&envs, Some(file), catalog, args)
}

/// [`host`] for several experiment files: one pool per folder they are in
/// (workers put their folder on the Python path), each environment id once.
pub fn host_all(
    files: &[PathBuf],
    catalog: &mut Catalog,
    args: &WorkerArgs,
) -> anyhow::Result<Vec<Arc<Pool>>> {
    let mut by_folder: Vec<(PathBuf, PathBuf, Vec<tandem_envs::HostedEnv>)> = Vec::new();
    for file in files {
        let Ok(text) = std::fs::read_to_string(file) else {
            continue; // the reader reports an unreadable file with its own message
        };
        let folder = file.parent().map(Path::to_path_buf).unwrap_or_default();
        let envs = tandem_experiment::hosted_envs(&text);
        match by_folder.iter_mut().find(|(f, _, _)| *f == folder) {
            Some((_, _, known)) => {
                for env in envs {
                    if !known.iter().any(|k| k.id == env.id) {
                        known.push(env);
                    }
                }
            }
            None => by_folder.push((folder, file.clone(), envs)),
        }
    }
    let hosting: Vec<_> = by_folder
        .iter()
        .filter(|(_, _, envs)| !envs.is_empty())
        .collect();
    if hosting.len() > 1 && args.worker_addr.is_some() {
        anyhow::bail!(
            "remote workers (--worker-addr) serve the studies of one folder; \
             these name Python environments from {} folders",
            hosting.len()
        );
    }
    let mut pools = Vec::new();
    for (_, file, envs) in hosting {
        pools.extend(host_envs(envs, Some(file), catalog, args)?);
    }
    Ok(pools)
}

/// Enters `envs` into `catalog`, starting workers (with the folder of
/// `file`, else the current folder, on their Python path). Returns their
/// pool if there were any.
pub fn host_envs(
    envs: &[tandem_envs::HostedEnv],
    file: Option<&Path>,
    catalog: &mut Catalog,
    args: &WorkerArgs,
) -> anyhow::Result<Option<Arc<Pool>>> {
    if envs.is_empty() {
        return Ok(None);
    }
    let config = worker_config(file, args)?;
    eprintln!(
        "starting Python workers ({}) for {} environment{}…",
        config.python.display(),
        envs.len(),
        if envs.len() == 1 { "" } else { "s" }
    );
    let pool: Arc<Pool> = match args.worker_addr {
        None => Pool::new(config, usize::from(args.warm_workers)),
        Some(addr) => {
            let token = args.worker_token.clone().unwrap_or_default();
            if token.chars().count() < 16 {
                anyhow::bail!("--worker-token must be at least 16 characters: it is a password");
            }
            let pool = Pool::with_remote(
                config,
                usize::from(args.warm_workers),
                Duration::from_secs(args.remote_wait),
            );
            let listener = std::net::TcpListener::bind(addr)
                .with_context(|| format!("could not listen for workers on {addr}"))?;
            eprintln!("remote workers may connect to {}", listener.local_addr()?);
            tandem_workers::listen_for_remote(listener, Arc::clone(&pool), token)
                .context("could not start the remote worker listener")?;
            pool
        }
    };
    tandem_workers::host(catalog, &pool, envs);
    Ok(Some(pool))
}

/// How workers for `file` start: the embedded package written to its cache,
/// the experiment's folder on the Python path (for `python:` factories and
/// Python policies), and the flags' interpreter and deadline.
pub fn worker_config(file: Option<&Path>, args: &WorkerArgs) -> anyhow::Result<WorkerConfig> {
    let cache = tandem_workers::default_cache();
    let mut config = WorkerConfig::install(&cache).with_context(|| {
        format!(
            "could not write the worker's Python package to {}",
            cache.display()
        )
    })?;
    let folder = file
        .and_then(Path::parent)
        .filter(|p| !p.as_os_str().is_empty());
    config.python_path = vec![folder.map_or_else(|| PathBuf::from("."), Path::to_path_buf)];
    if let Some(python) = &args.python {
        config.python = python.clone();
    }
    config.step_deadline = Duration::from_secs_f64(args.step_deadline);
    Ok(config)
}

/// A step deadline: a number of seconds above 0 and at most 60.
fn step_deadline(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(s) if s > 0.0 && s <= 60.0 => Ok(s),
        _ => Err(format!(
            "{text} is not a number of seconds above 0 and at most 60"
        )),
    }
}

/// The worker pools' state in Prometheus' text format, for `/metrics`.
pub fn write_pool_metrics(pools: &[Arc<Pool>], out: &mut String) {
    use std::fmt::Write;
    let _ = writeln!(
        out,
        "# HELP tandem_workers_warm Python workers started and waiting for a game.\n\
         # TYPE tandem_workers_warm gauge\ntandem_workers_warm {}\n\
         # HELP tandem_workers_remote_idle Remote workers connected and idle.\n\
         # TYPE tandem_workers_remote_idle gauge\ntandem_workers_remote_idle {}",
        pools.iter().map(|p| p.warm_count()).sum::<usize>(),
        pools.iter().map(|p| p.remote_count()).sum::<usize>()
    );
}
