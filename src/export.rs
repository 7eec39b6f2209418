//! `tandem export`: a recording to Minari datasets or Parquet tables.
//!
//! The writing is Python's (`python/tandem/export.py`), because the formats'
//! own libraries are Python's: `minari` writes the datasets `minari.load_dataset`
//! reads, and pyarrow the Parquet files. This keeps Arrow and Parquet out of
//! the server's build altogether. The command runs the interpreter the
//! workers use, with the server's copy of the `tandem` package first on its
//! path, so the exporter always reads the schema this server writes.

use std::path::PathBuf;
use std::process::{Command, ExitCode};

use anyhow::Context;
use clap::{Args, ValueEnum};

/// The formats `tandem export` writes.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Format {
    /// One Minari dataset per game scene and agent (complete episodes).
    Minari,
    /// One Parquet file per table: steps, episodes, participants, responses, events, …
    Parquet,
}

/// `tandem export`'s flags.
#[derive(Args, Debug)]
pub struct ExportArgs {
    /// What to write.
    #[arg(long, value_enum)]
    pub format: Format,
    /// The recording: the SQLite file a server wrote.
    pub db: PathBuf,
    /// The folder to write into (created if missing).
    pub out: PathBuf,
    /// Only this game scene (repeatable).
    #[arg(long)]
    pub scene: Vec<String>,
    /// Only participants who finished the study.
    #[arg(long)]
    pub completed: bool,
    /// From this time on (ISO 8601, UTC unless it says; or microseconds since the epoch).
    #[arg(long)]
    pub since: Option<String>,
    /// Up to (not including) this time.
    #[arg(long)]
    pub until: Option<String>,
    /// The Python interpreter (default: `.venv/bin/python` when the current
    /// folder has one, else `python3`). It needs numpy, zstandard and, for
    /// Minari, `minari` with `h5py`; for Parquet, pandas and pyarrow.
    #[arg(long)]
    pub python: Option<PathBuf>,
}

/// Runs the exporter; its exit status is the command's.
pub fn run(args: &ExportArgs) -> anyhow::Result<ExitCode> {
    if !args.db.exists() {
        eprintln!("error: there is no recording at {}", args.db.display());
        return Ok(ExitCode::from(2));
    }
    let cache = tandem_workers::default_cache();
    let config = tandem_workers::WorkerConfig::install(&cache)
        .with_context(|| format!("could not write the Python package to {}", cache.display()))?;
    let python = args.python.clone().unwrap_or(config.python);
    let format = match args.format {
        Format::Minari => "minari",
        Format::Parquet => "parquet",
    };
    let mut command = Command::new(&python);
    command
        .args(["-m", "tandem.export", "--format", format])
        .arg(&args.db)
        .arg(&args.out)
        .env("PYTHONPATH", &config.package_path)
        .env("PYTHONSAFEPATH", "1");
    for scene in &args.scene {
        command.args(["--scene", scene]);
    }
    if args.completed {
        command.arg("--completed");
    }
    if let Some(since) = &args.since {
        command.args(["--since", since]);
    }
    if let Some(until) = &args.until {
        command.args(["--until", until]);
    }
    let status = command
        .status()
        .with_context(|| format!("could not run {}", python.display()))?;
    Ok(match status.code() {
        Some(0) => ExitCode::SUCCESS,
        Some(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        None => ExitCode::from(1),
    })
}
