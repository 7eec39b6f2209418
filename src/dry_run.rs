//! `tandem test FILE --bots N`: a dry run of a study before any participant
//! sees it, as `otree test` does for oTree.
//!
//! The study runs in this process on a temporary database, exactly as `serve`
//! would run it; bots walk it from the link to the end (valid answers, keys
//! pressed in games, lobbies filled by each other), and then the database is
//! read: per scene, how many reached it and how long they stayed, the lobby
//! waits, the completions, and anything a full walk should have recorded and
//! did not. Any bot that did not finish, any message the server refused and
//! any missing row is a problem, and the command exits 1.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use tandem_experiment::{Experiment, Scene};
use tandem_store::Store;

use crate::python_envs::{self, WorkerArgs};

#[derive(Args)]
pub struct TestArgs {
    /// The experiment file (TOML).
    pub file: std::path::PathBuf,
    /// Bots that walk the study at once.
    #[arg(long, default_value_t = 4)]
    pub bots: usize,
    /// Seconds the walk may take before unfinished bots count as problems.
    #[arg(long, default_value_t = 300)]
    pub timeout: u64,
    #[command(flatten)]
    pub workers: WorkerArgs,
}

pub fn run(args: &TestArgs) -> anyhow::Result<ExitCode> {
    if args.bots == 0 {
        eprintln!("error: --bots must be at least 1");
        return Ok(ExitCode::from(2));
    }
    let mut envs = tandem_envs::Catalog::builtin();
    let pools = python_envs::host_all(std::slice::from_ref(&args.file), &mut envs, &args.workers)?;
    let experiment = match tandem_experiment::load_with(&args.file, &envs) {
        Ok(experiment) => experiment,
        Err(e) => {
            eprintln!("{e}");
            return Ok(ExitCode::from(2));
        }
    };
    let Some(policies) =
        crate::policies::registry_or_report(&experiment, Some(&args.file), &args.workers)
    else {
        return Ok(ExitCode::from(2));
    };
    // A fresh folder of our own: `create_dir` fails rather than reuse one.
    let suffix: u64 = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let dir = std::env::temp_dir().join(format!("tandem-test-{}-{suffix:x}", std::process::id()));
    std::fs::create_dir(&dir).with_context(|| format!("could not create {}", dir.display()))?;
    let options = tandem_server::Options {
        envs,
        policies,
        // Every bot arrives from this machine.
        admission: tandem_server::AdmissionLimits {
            per_address_per_minute: 0,
            max_participants: None,
        },
        ..tandem_server::Options::default()
    };
    let runtime = tokio::runtime::Runtime::new().context("could not start the async runtime")?;
    let outcome = runtime.block_on(dry_run(experiment, options, &dir, args));
    for pool in pools {
        pool.close();
    }
    let _ = std::fs::remove_dir_all(&dir);
    outcome
}

async fn dry_run(
    experiment: Experiment,
    options: tandem_server::Options,
    dir: &Path,
    args: &TestArgs,
) -> anyhow::Result<ExitCode> {
    let db = dir.join("test.db");
    let db_name = db.display().to_string();
    let store = Store::open(&db_name).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(tandem_server::run_with(
        listener,
        experiment.clone(),
        store.clone(),
        options,
        async {
            let _ = stopped.await;
        },
    ));
    println!(
        "Walking {:?} with {} bot{} (at most {} s)…",
        experiment.id,
        args.bots,
        if args.bots == 1 { "" } else { "s" },
        args.timeout
    );
    let bar = indicatif::ProgressBar::new(args.bots as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:40} {pos}/{len} bots done ({msg} finished) {elapsed}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let walked = tandem_bench::walk(
        addr,
        args.bots,
        Duration::from_secs(args.timeout),
        |finished, ended| {
            bar.set_position(ended as u64);
            bar.set_message(finished.to_string());
        },
    )
    .await;
    bar.finish_and_clear();
    let _ = stop.send(());
    server
        .await
        .context("the server task failed")?
        .context("the server stopped with an error")?;

    let mut problems: Vec<String> = Vec::new();
    if walked.finished < walked.bots {
        problems.push(format!(
            "{} of {} bots did not finish",
            walked.bots - walked.finished,
            walked.bots
        ));
    }
    if walked.screened_out > 0 {
        problems.push(format!(
            "{} bots were screened out (a bot has a keyboard, a 1280×800 window, Chrome, \
             and this machine's round trip)",
            walked.screened_out
        ));
    }
    if walked.waiting_at_end > 0 {
        problems.push(format!(
            "{} bots were still waiting in a lobby",
            walked.waiting_at_end
        ));
    }
    if walked.server_errors > 0 {
        problems.push(format!(
            "the server refused {} messages from the bots",
            walked.server_errors
        ));
    }
    problems.extend(walked.troubles.iter().cloned());

    let report = SceneReport::read(&store, &experiment).await?;
    report.print(&experiment, walked.bots);
    problems.extend(conditions(&store, &experiment, walked.bots).await?);
    let required: Vec<(u32, String)> = experiment
        .scenes
        .iter()
        .enumerate()
        .filter_map(|(i, s)| s.as_survey().map(|survey| (i, survey)))
        .flat_map(|(i, survey)| {
            survey
                .questions
                .iter()
                .filter(|q| q.required)
                .map(move |q| (i as u32, q.id.clone()))
        })
        .collect();
    let games: Vec<u32> = experiment
        .scenes
        .iter()
        .enumerate()
        .filter(|(_, s)| matches!(s, Scene::Game(_)))
        .map(|(i, _)| i as u32)
        .collect();
    let ends: Vec<u32> = experiment
        .scenes
        .iter()
        .enumerate()
        .filter(|(_, s)| matches!(s, Scene::End(_)))
        .map(|(i, _)| i as u32)
        .collect();
    for gap in store
        .walk_gaps(&experiment.id, &required, &games, &ends)
        .await?
    {
        problems.push(if gap.participant_id > 0 {
            format!("participant {}: {}", gap.participant_id, gap.what)
        } else {
            gap.what
        });
    }
    store.close().await;
    if problems.is_empty() {
        println!(
            "ok: {} bots walked the study; everything expected was recorded",
            walked.bots
        );
        Ok(ExitCode::SUCCESS)
    } else {
        println!(
            "{} problem{}:",
            problems.len(),
            if problems.len() == 1 { "" } else { "s" }
        );
        for problem in problems.iter().take(50) {
            println!("  - {problem}");
        }
        if problems.len() > 50 {
            println!("  … and {} more", problems.len() - 50);
        }
        Ok(ExitCode::from(1))
    }
}

/// Prints how many bots each condition got, and returns the problems: a
/// condition no bot reached, or too few bots to reach them all.
async fn conditions(
    store: &Store,
    experiment: &Experiment,
    bots: usize,
) -> anyhow::Result<Vec<String>> {
    if !experiment.design.has_conditions() {
        return Ok(Vec::new());
    }
    let counts = store.condition_counts(&experiment.id).await?;
    let ids: Vec<&str> = experiment
        .design
        .conditions
        .iter()
        .filter_map(|c| c.id.as_deref())
        .collect();
    let line: Vec<String> = ids
        .iter()
        .map(|id| {
            let n = counts.iter().find(|(c, _)| c == id).map_or(0, |(_, n)| *n);
            format!("{id} {n}")
        })
        .collect();
    println!("bots per condition: {}", line.join(" · "));
    if bots < ids.len() {
        return Ok(vec![format!(
            "{bots} bots cannot reach the study's {} conditions; use --bots {} or more",
            ids.len(),
            ids.len()
        )]);
    }
    Ok(ids
        .iter()
        .filter(|id| !counts.iter().any(|(c, n)| c == *id && *n > 0))
        .map(|id| format!("no bot was assigned condition {id:?}"))
        .collect())
}

/// Per scene: who reached it and how long they stayed, and its lobby waits.
struct SceneReport {
    /// Per scene index: seconds each participant stayed (for those who left).
    stays: Vec<Vec<f64>>,
    reached: Vec<usize>,
    lobby: Vec<Vec<f64>>,
}

impl SceneReport {
    async fn read(store: &Store, experiment: &Experiment) -> anyhow::Result<SceneReport> {
        let n = experiment.scenes.len();
        let mut report = SceneReport {
            stays: vec![Vec::new(); n],
            reached: vec![0; n],
            lobby: vec![Vec::new(); n],
        };
        for passage in store.scene_passages(&experiment.id).await? {
            let i = passage.scene_index as usize;
            if i >= n {
                continue;
            }
            report.reached[i] += 1;
            if let Some(left) = passage.left_us {
                report.stays[i].push((left - passage.entered_us) as f64 / 1e6);
            }
        }
        for (scene, waited_us) in store.lobby_wait_times(&experiment.id).await? {
            if let Some(waits) = report.lobby.get_mut(scene as usize) {
                waits.push(waited_us as f64 / 1e6);
            }
        }
        Ok(report)
    }

    fn print(&self, experiment: &Experiment, bots: usize) {
        println!(
            "{:<4} {:<20} {:<10} {:>8} {:>10} {:>10} {:>14}",
            "#", "scene", "kind", "reached", "median s", "max s", "lobby median s"
        );
        for (i, scene) in experiment.scenes.iter().enumerate() {
            let stays = &self.stays[i];
            let lobby = &self.lobby[i];
            let show = |v: Option<f64>| v.map_or("–".to_string(), |s| format!("{s:.1}"));
            println!(
                "{:<4} {:<20} {:<10} {:>8} {:>10} {:>10} {:>14}",
                i,
                scene.id(),
                scene.kind().name(),
                format!("{}/{bots}", self.reached[i]),
                show(median(stays)),
                show(stays.iter().copied().reduce(f64::max)),
                show(median(lobby)),
            );
        }
    }
}

fn median(values: &[f64]) -> Option<f64> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len() / 2).copied()
}
