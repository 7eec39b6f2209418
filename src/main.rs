//! The `tandem` command: serve an experiment, check an experiment file, verify
//! a recording by re-simulating it, export it, add console users, or load a
//! server with simulated participants.
//!
//! Thin by design: it parses flags, opens the database, binds the listener and
//! hands over to `tandem_server::run`, which the tests call the same way;
//! `bench` hands its flags to `tandem_bench::run`.

mod admin;
mod dry_run;
mod export;
mod policies;
mod python_envs;
mod verify;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tandem_envs::Catalog;
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(
    name = "tandem",
    version,
    about = "Human–AI reinforcement-learning experiments in the browser"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server on one or more experiment files, or folders of them (or
    /// the built-in default experiment). Each is a study with its own link.
    Serve {
        /// Experiment files (TOML), or folders whose `*.toml` files are each
        /// one. Without any, the built-in default experiment runs. With one
        /// study its link is `/`; with several, each is at `/s/ID/`.
        files: Vec<PathBuf>,
        /// Where to record: a SQLite file path or a sqlite: URL. Created on first run.
        #[arg(long, default_value = "tandem.db")]
        db: String,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8080")]
        addr: SocketAddr,
        /// The most participant sockets open at once; more are closed with
        /// code 1013 ("try again later"), and the page retries.
        #[arg(long, default_value_t = tandem_server::DEFAULT_MAX_SOCKETS)]
        max_sockets: usize,
        /// The most TCP connections open at once (pages, files and sockets);
        /// more are answered 503 and closed.
        #[arg(long, default_value_t = tandem_server::DEFAULT_MAX_CONNECTIONS)]
        max_connections: usize,
        /// Seconds a client may take to send a request's headers.
        #[arg(long, default_value_t = tandem_server::DEFAULT_HEADER_TIMEOUT.as_secs())]
        header_timeout: u64,
        /// New participants per minute from one address (0: no limit). Behind
        /// a reverse proxy every request comes from the proxy: raise it or use 0.
        #[arg(long, default_value_t = tandem_server::AdmissionLimits::default().per_address_per_minute)]
        new_per_minute: u32,
        /// The most participants the study takes; later arrivals see a
        /// "study is full" page.
        #[arg(long)]
        max_participants: Option<u64>,
        /// Always mark the participant cookie Secure (the study is served over
        /// HTTPS); a proxy's `X-Forwarded-Proto: https` marks it too.
        #[arg(long)]
        secure_cookies: bool,
        /// Origins besides the study's own that may show it in a frame (CSP
        /// frame-ancestors), e.g. `--frame-ancestors https://worker.mturk.com`;
        /// give it with no origin to allow none. Default: MTurk's worker sites.
        #[arg(long, num_args = 0.., value_parser = tandem_server::frame_ancestor)]
        frame_ancestors: Option<Vec<String>>,
        /// The origins an MTurk link's `turkSubmitTo` may name (where the end
        /// page posts the assignment). Default: MTurk's live site and sandbox.
        #[arg(long, num_args = 1.., value_parser = tandem_server::frame_ancestor)]
        mturk_submit_to: Option<Vec<String>>,
        /// Also offer the diagnostic environments `tandem bench` measures the
        /// server with (a game that steps in 50 ms beside normal ones).
        #[arg(long)]
        diagnostic_envs: bool,
        /// A token that lets a scraper read `/metrics` (sent as
        /// `Authorization: Bearer TOKEN`); without it only a console login can.
        #[arg(long, env = "TANDEM_METRICS_TOKEN", hide_env_values = true)]
        metrics_token: Option<String>,
        #[command(flatten)]
        workers: python_envs::WorkerArgs,
    },
    /// Validate an experiment file and report every problem with file, line and column.
    Check {
        /// The experiment file (TOML).
        file: PathBuf,
        #[command(flatten)]
        workers: python_envs::WorkerArgs,
    },
    /// Re-simulate every recorded episode from its seed and actions and compare
    /// observations, rewards, terminations and truncations bit for bit.
    /// Prints a line per episode; exits 1 if any differs.
    Verify {
        /// The database a server recorded to (a SQLite file path or sqlite: URL).
        db: String,
        #[command(flatten)]
        workers: python_envs::WorkerArgs,
    },
    /// Export a recording: Minari datasets (one per game scene and agent) or
    /// Parquet tables, through the Python exporter in `python/tandem/export.py`.
    Export(export::ExportArgs),
    /// A dry run: bots walk the study from its link to its end against an
    /// in-process server on a temporary database; reports per scene times,
    /// completions and lobby waits, and whether every expected row was
    /// recorded. Exits 1 on any problem.
    Test(dry_run::TestArgs),
    /// Manage who may use the researcher console.
    #[command(subcommand)]
    Admin(admin::AdminCommand),
    /// Load a server with simulated participants and measure frames, latency,
    /// CPU, memory, bandwidth and recorded steps. Prints a table and one JSON line;
    /// exits 3 if any step played was not recorded.
    Bench(tandem_bench::Options),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The bench's stdout is its report (the last line is JSON), so its logs go
    // to stderr, and only warnings by default.
    let (default_filter, to_stderr) = match cli.command {
        Command::Bench(_) => ("warn", true),
        _ => ("info", false),
    };
    let subscriber = tracing_subscriber::fmt().with_env_filter(
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter)),
    );
    if to_stderr {
        subscriber.with_writer(std::io::stderr).init();
    } else {
        subscriber.init();
    }
    let result = match cli.command {
        Command::Check { file, workers } => check(&file, &workers),
        Command::Serve {
            files,
            db,
            addr,
            max_sockets,
            max_connections,
            header_timeout,
            new_per_minute,
            max_participants,
            secure_cookies,
            frame_ancestors,
            mturk_submit_to,
            diagnostic_envs,
            metrics_token,
            workers,
        } => {
            if metrics_token.as_deref().is_some_and(|t| t.len() < 16) {
                eprintln!("error: --metrics-token must be at least 16 characters");
                return ExitCode::from(2);
            }
            let mut envs = if diagnostic_envs {
                tandem_bench::catalog_with_diagnostics()
            } else {
                environments()
            };
            let files = match experiment_files(&files) {
                Ok(files) => files,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    return ExitCode::from(2);
                }
            };
            let pools = match python_envs::host_all(&files, &mut envs, &workers) {
                Ok(pools) => pools,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    return ExitCode::from(1);
                }
            };
            let options = tandem_server::Options {
                envs,
                max_sockets,
                max_connections,
                header_timeout: std::time::Duration::from_secs(header_timeout),
                admission: tandem_server::AdmissionLimits {
                    per_address_per_minute: new_per_minute,
                    max_participants,
                },
                secure_cookies,
                frame_ancestors: frame_ancestors.unwrap_or_else(|| {
                    tandem_server::DEFAULT_FRAME_ANCESTORS
                        .iter()
                        .map(|s| s.to_string())
                        .collect()
                }),
                mturk_submit_to: mturk_submit_to.unwrap_or_else(|| {
                    tandem_server::DEFAULT_MTURK_SUBMIT_TO
                        .iter()
                        .map(|s| s.to_string())
                        .collect()
                }),
                metrics_token,
                extra_metrics: (!pools.is_empty()).then(|| {
                    let pools = pools.clone();
                    tandem_server::ExtraMetrics(std::sync::Arc::new(move |out: &mut String| {
                        python_envs::write_pool_metrics(&pools, out)
                    }))
                }),
                ..tandem_server::Options::default()
            };
            let served = tokio::runtime::Runtime::new()
                .context("could not start the async runtime")
                .and_then(|rt| rt.block_on(serve(files, db, addr, options, &workers)));
            // Games are over: end the workers kept warm or idle.
            for pool in pools {
                pool.close();
            }
            served
        }
        Command::Bench(options) => bench(options),
        Command::Verify { db, workers } => verify::run(&db, &workers),
        Command::Export(args) => export::run(&args),
        Command::Admin(command) => admin::run(command),
        Command::Test(args) => dry_run::run(&args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// The environments experiment files may name: the built-ins, to which
/// `serve` and `check` add the Python environments a file names. Every command
/// reads files and runs games with this one catalog.
fn environments() -> Catalog {
    Catalog::builtin()
}

fn check(file: &std::path::Path, workers: &python_envs::WorkerArgs) -> anyhow::Result<ExitCode> {
    let mut envs = environments();
    python_envs::host(file, &mut envs, workers)?;
    let experiment = match tandem_experiment::load_with(file, &envs) {
        Ok(experiment) => experiment,
        Err(e) => {
            eprintln!("{e}");
            return Ok(ExitCode::from(2));
        }
    };
    let Some(registry) = policies::registry_or_report(&experiment, Some(file), workers) else {
        return Ok(ExitCode::from(2));
    };
    println!(
        "{}: ok: experiment {:?} with {} scenes",
        file.display(),
        experiment.id,
        experiment.design.file_scene_count()
    );
    let design = &experiment.design;
    if design.has_conditions() {
        let ids: Vec<&str> = design
            .conditions
            .iter()
            .filter_map(|c| c.id.as_deref())
            .collect();
        println!(
            "  conditions: {} (balanced on participants assigned)",
            ids.join(", ")
        );
    }
    for block in &design.blocks {
        println!(
            "  block {}: {} in {} order, {} time{}",
            block.id,
            block.scenes.join(", "),
            block.order.name(),
            block.repeat,
            if block.repeat == 1 { "" } else { "s" }
        );
    }
    let derived = experiment.scenes.len() - design.file_scene_count();
    if derived > 0 {
        let ids: Vec<&str> = experiment.scenes[design.file_scene_count()..]
            .iter()
            .map(|s| s.id())
            .collect();
        println!("  scenes the design adds: {}", ids.join(", "));
    }
    let mut env_ids: Vec<&str> = experiment
        .scenes
        .iter()
        .filter_map(|s| s.as_game().map(|g| g.env.as_str()))
        .collect();
    env_ids.sort_unstable();
    env_ids.dedup();
    for id in env_ids {
        if let Ok(factory) = envs.get(id) {
            println!("  env {id}: {}", factory.describe());
        }
    }
    for def in &experiment.policies {
        if let Some(description) = registry.describe(&def.name) {
            println!("  policy {}: {description}", def.name);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs the load generator on a multi-threaded runtime (one worker per core).
/// Exit codes: 0 done, 2 bad options, 3 steps were lost, 1 anything else.
fn bench(options: tandem_bench::Options) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("could not start the async runtime")?;
    let outcome = if options.sweep {
        runtime.block_on(tandem_bench::sweep(options))
    } else {
        runtime.block_on(tandem_bench::run(options))
    };
    match outcome {
        Ok(outcome) if outcome.is_clean() => Ok(ExitCode::SUCCESS),
        Ok(_) => Ok(ExitCode::from(3)),
        Err(e) if e.downcast_ref::<tandem_bench::OptionsError>().is_some() => {
            eprintln!("error: {e}");
            Ok(ExitCode::from(2))
        }
        Err(e) => Err(e),
    }
}

async fn serve(
    files: Vec<PathBuf>,
    db: String,
    addr: SocketAddr,
    options: tandem_server::Options,
    workers: &python_envs::WorkerArgs,
) -> anyhow::Result<ExitCode> {
    let envs = &options.envs;
    let mut studies = Vec::new();
    let mut problems = false;
    if files.is_empty() {
        let experiment = tandem_experiment::default_experiment();
        match policies::registry_or_report(&experiment, None, workers) {
            Some(policies) => studies.push(tandem_server::Study {
                experiment,
                policies,
            }),
            None => problems = true,
        }
    }
    for path in &files {
        let experiment = match tandem_experiment::load_with(path, envs) {
            Ok(e) => e,
            Err(e) => {
                eprintln!("{e}");
                problems = true;
                continue;
            }
        };
        match policies::registry_or_report(&experiment, Some(path), workers) {
            Some(policies) => studies.push(tandem_server::Study {
                experiment,
                policies,
            }),
            None => problems = true,
        }
    }
    if problems {
        return Ok(ExitCode::from(2));
    }
    let store = tandem_store::Store::open(&db)
        .await
        .with_context(|| format!("could not open the database {db}"))?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("could not listen on {addr}"))?;
    let local = listener.local_addr()?;
    match studies.as_slice() {
        [study] => println!(
            "Tandem is serving {:?} ({}) on http://{local}/ — recording to {db}. Ctrl-C stops.",
            study.experiment.title, study.experiment.id
        ),
        _ => {
            println!(
                "Tandem is serving {} studies on http://{local}/ — recording to {db}. Ctrl-C stops.",
                studies.len()
            );
            for study in &studies {
                println!(
                    "  {:?} ({}): http://{local}/s/{}/",
                    study.experiment.title, study.experiment.id, study.experiment.id
                );
            }
        }
    }
    tandem_server::run_studies(listener, studies, store, options, shutdown_signal()).await?;
    Ok(ExitCode::SUCCESS)
}

/// The experiment files `paths` name: files as given, folders as their
/// `*.toml` files in name order.
fn experiment_files(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        if !path.is_dir() {
            files.push(path.clone());
            continue;
        }
        let mut found: Vec<PathBuf> = std::fs::read_dir(path)
            .with_context(|| format!("could not read the folder {}", path.display()))?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "toml") && p.is_file())
            .collect();
        if found.is_empty() {
            anyhow::bail!(
                "the folder {} holds no experiment file (*.toml)",
                path.display()
            );
        }
        found.sort();
        files.extend(found);
    }
    Ok(files)
}

/// Completes on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}
