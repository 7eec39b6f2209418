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
    /// Each study's bonuses as Prolific's bulk bonus takes them (`id,amount`),
    /// from its `[bonus]` rule: `OUT/bonus-STUDY.csv`.
    Bonus,
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
    if let Format::Bonus = args.format {
        return tokio::runtime::Runtime::new()
            .context("could not start the async runtime")?
            .block_on(bonuses(args));
    }
    let cache = tandem_workers::default_cache();
    let config = tandem_workers::WorkerConfig::install(&cache)
        .with_context(|| format!("could not write the Python package to {}", cache.display()))?;
    let python = args.python.clone().unwrap_or(config.python);
    let format = match args.format {
        Format::Minari => "minari",
        Format::Parquet => "parquet",
        Format::Bonus => unreachable!("bonuses are written above"),
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

/// Writes `OUT/bonus-STUDY.csv` for every study in the recording with a
/// `[bonus]` rule: one `id,amount` line per participant who completed it and
/// earned more than nothing, `id` their Prolific or MTurk id. Participants
/// without one, and those screened out or not finished, are counted and left
/// out.
async fn bonuses(args: &ExportArgs) -> anyhow::Result<ExitCode> {
    let db = args.db.display().to_string();
    let store = tandem_store::Store::open_to_read(&db)
        .await
        .with_context(|| format!("could not read the recording {db}"))?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("could not create {}", args.out.display()))?;
    let mut wrote = 0;
    for id in store.experiment_ids().await? {
        let Some(experiment) = store.experiment(&id).await? else {
            continue;
        };
        let (rule, end_scenes) = match tandem_experiment::bonus_of(&experiment.config) {
            Ok(Some(found)) => found,
            Ok(None) => {
                println!("{id}: no [bonus] rule; nothing written");
                continue;
            }
            Err(e) => {
                eprintln!("{id}: the recorded experiment's [bonus] cannot be read:\n{e}");
                return Ok(ExitCode::from(2));
            }
        };
        let scores = store
            .participant_scores(&id, rule.scenes.as_deref(), &end_scenes)
            .await?;
        let mut csv = String::from("id,amount\n");
        let (mut paid, mut total, mut without_id, mut not_completed) = (0, 0.0, 0, 0);
        for s in &scores {
            if !s.completed {
                not_completed += 1;
                continue;
            }
            // Recorded ids are checked at arrival; checked again here, since
            // one line per id is what Prolific's upload reads.
            let Some(person) = s
                .prolific_pid
                .as_ref()
                .or(s.worker_id.as_ref())
                .filter(|id| tandem_server::plausible_id(id))
            else {
                without_id += 1;
                continue;
            };
            let amount = rule.amount(s.score);
            if amount > 0.0 {
                csv.push_str(&format!("{person},{amount:.2}\n"));
                paid += 1;
                total += amount;
            }
        }
        let path = args.out.join(format!("bonus-{id}.csv"));
        std::fs::write(&path, csv)
            .with_context(|| format!("could not write {}", path.display()))?;
        wrote += 1;
        println!(
            "{id}: {paid} bonuses, {total:.2} in all → {} ({not_completed} did not complete, \
             {without_id} without a Prolific or MTurk id)",
            path.display()
        );
    }
    store.close().await;
    if wrote == 0 {
        println!("no study in {db} has a [bonus] rule");
    }
    Ok(ExitCode::SUCCESS)
}
