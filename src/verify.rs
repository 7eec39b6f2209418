//! `tandem verify DB`: replays every recorded episode of a deterministic
//! environment from its seed and recorded actions, and compares what the
//! environment does now with what was recorded, bit for bit.
//!
//! A match shows that the data is whole (every step there, in order, decoded
//! exactly) and that the episode can be re-simulated, which is what a
//! researcher relies on to recompute anything the recording did not keep.
//! Interrupted episodes are checked up to their last recorded step. Python
//! environments are re-simulated in workers, as they were played.
//!
//! The comparison is in [`resimulate`], a plain function over what the store
//! reads; the command around it opens the database, builds the catalog and
//! reports.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use tandem_env::{Action, Env, Observation};
use tandem_envs::{Catalog, HostedEnv};
use tandem_store::{Episode, Outcome, Store, StoredEpisodeAgent, StoredStep};

use crate::python_envs::{WorkerArgs, host_envs};

/// What re-simulating one episode showed.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    /// Every recorded step came out the same.
    Match { steps: u32 },
    /// The first difference.
    Mismatch { step: u32, what: String },
    /// The episode could not be re-simulated here, and why.
    Skipped(String),
}

/// Re-simulates one episode in `env` (fresh from its factory): reset from the
/// recorded seed, then the recorded actions, comparing observations, rewards,
/// terminations and truncations at every step. `steps` are the episode's rows
/// ordered by step and agent, as the store reads them.
pub fn resimulate(
    env: &mut dyn Env,
    episode: &Episode,
    agents: &[StoredEpisodeAgent],
    steps: &[StoredStep],
) -> Verdict {
    let count = env.spec().agents.len();
    if agents.len() != count {
        return Verdict::Mismatch {
            step: 0,
            what: format!(
                "{} agents recorded; the environment has {count}",
                agents.len()
            ),
        };
    }
    let reset = match env.reset(episode.seed) {
        Ok(observations) => observations,
        Err(e) => return mismatch(0, format!("the environment's reset failed: {e}")),
    };
    for (agent, (now, then)) in reset.iter().zip(agents).enumerate() {
        if let Some(difference) = differs(now, &then.reset_obs) {
            return mismatch(
                0,
                format!("agent {agent}'s reset observation: {difference}"),
            );
        }
    }
    let rows: Vec<&[StoredStep]> = steps.chunk_by(|a, b| a.t == b.t).collect();
    let last = rows.len();
    for (index, rows) in rows.into_iter().enumerate() {
        let t = rows[0].t;
        let expected = u32::try_from(index + 1).unwrap_or(u32::MAX);
        if t != expected {
            return mismatch(
                expected,
                format!("step {expected} is missing (the next recorded is {t})"),
            );
        }
        let agents_recorded: Vec<u32> = rows.iter().map(|r| r.agent).collect();
        if agents_recorded != (0..count as u32).collect::<Vec<_>>() {
            return mismatch(
                t,
                format!("agents {agents_recorded:?} recorded, not one row per agent"),
            );
        }
        let actions: Vec<Action> = rows.iter().map(|r| r.action.clone()).collect();
        let step = match env.step(&actions) {
            Ok(step) => step,
            Err(e) => {
                return mismatch(
                    t,
                    format!("the environment refused the recorded actions: {e}"),
                );
            }
        };
        let is_last = index + 1 == last;
        for (agent, row) in rows.iter().enumerate() {
            let at = |what: &str| format!("agent {agent}'s {what}");
            if let Some(obs) = step.observations.get(agent)
                && let Some(difference) = differs(obs, &row.obs)
            {
                return mismatch(t, format!("{}: {difference}", at("observation")));
            }
            let reward = step.rewards.get(agent).copied().unwrap_or(f64::NAN);
            if reward.to_bits() != row.reward.to_bits() {
                return mismatch(
                    t,
                    format!(
                        "{}: recorded {}, re-simulated {reward}",
                        at("reward"),
                        row.reward
                    ),
                );
            }
            let terminated = step.terminated.get(agent).copied().unwrap_or(false);
            if terminated != row.terminated {
                return mismatch(
                    t,
                    format!(
                        "{}: recorded {}, re-simulated {terminated}",
                        at("termination"),
                        row.terminated
                    ),
                );
            }
            let truncated = step.truncated.get(agent).copied().unwrap_or(false);
            // The server truncates the last step when the scene's time limit or
            // step cap ends the episode; the environment knows nothing of it.
            let cut_by_scene = is_last && row.truncated && !truncated;
            if truncated != row.truncated && !cut_by_scene {
                return mismatch(
                    t,
                    format!(
                        "{}: recorded {}, re-simulated {truncated}",
                        at("truncation"),
                        row.truncated
                    ),
                );
            }
        }
    }
    Verdict::Match {
        steps: u32::try_from(last).unwrap_or(u32::MAX),
    }
}

fn mismatch(step: u32, what: String) -> Verdict {
    Verdict::Mismatch { step, what }
}

/// How two observations differ, bit for bit (so `-0.0` is not `0.0`, and a
/// NaN equals only the same NaN); `None` when they do not.
fn differs(now: &Observation, then: &Observation) -> Option<String> {
    let kind = |o: &Observation| match o {
        Observation::F32 { .. } => "float32",
        Observation::U8 { .. } => "uint8",
        Observation::I64 { .. } => "int64",
    };
    if kind(now) != kind(then) || now.shape() != then.shape() {
        return Some(format!(
            "recorded {} {:?}, re-simulated {} {:?}",
            kind(then),
            then.shape(),
            kind(now),
            now.shape()
        ));
    }
    match (now, then) {
        (Observation::F32 { data: a, .. }, Observation::F32 { data: b, .. }) => {
            first_difference(a, b, |x, y| x.to_bits() == y.to_bits())
        }
        (Observation::I64 { data: a, .. }, Observation::I64 { data: b, .. }) => {
            first_difference(a, b, |x, y| x == y)
        }
        (Observation::U8 { data: a, .. }, Observation::U8 { data: b, .. }) => {
            first_difference(a, b, |x, y| x == y)
        }
        _ => Some("the observation's kind changed".to_string()),
    }
}

fn first_difference<T: std::fmt::Display>(
    now: &[T],
    then: &[T],
    same: impl Fn(&T, &T) -> bool,
) -> Option<String> {
    let i = now.iter().zip(then).position(|(x, y)| !same(x, y))?;
    Some(format!(
        "element {i}: recorded {}, re-simulated {}",
        then[i], now[i]
    ))
}

/// `tandem verify DB`: prints a line per episode and a summary; exits 1 if
/// any episode differs, 2 if the database cannot be read.
pub fn run(db: &str, workers: &WorkerArgs) -> anyhow::Result<ExitCode> {
    let path = db.strip_prefix("sqlite:").unwrap_or(db);
    let path = path.strip_prefix("//").unwrap_or(path);
    let path = path.split('?').next().unwrap_or(path);
    if !Path::new(path).exists() {
        eprintln!("error: there is no database at {path}");
        return Ok(ExitCode::from(2));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("could not start the async runtime")?;
    runtime.block_on(verify(db, workers))
}

async fn verify(db: &str, workers: &WorkerArgs) -> anyhow::Result<ExitCode> {
    let store = Store::open_to_read(db)
        .await
        .with_context(|| format!("could not open the database {db}"))?;
    let episodes = store.all_episodes().await?;
    let mut catalog = Catalog::builtin();
    let hosted: Vec<HostedEnv> = episodes
        .iter()
        .map(|e| e.env_id.as_str())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .filter_map(HostedEnv::from_id)
        .collect();
    // `python:` factories are imported from the current folder.
    let pool = tokio::task::block_in_place(|| host_envs(&hosted, None, &mut catalog, workers))?;
    let progress = indicatif::ProgressBar::new(episodes.len() as u64).with_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} episodes, {eta} left")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let (mut matched, mut mismatched, mut skipped) = (0, 0, 0);
    for episode in &episodes {
        let verdict = verify_one(&store, &catalog, episode).await?;
        let line = describe(episode, &verdict);
        match verdict {
            Verdict::Match { .. } => matched += 1,
            Verdict::Mismatch { .. } => mismatched += 1,
            Verdict::Skipped(_) => skipped += 1,
        }
        progress.suspend(|| println!("{line}"));
        progress.inc(1);
    }
    progress.finish_and_clear();
    if let Some(pool) = pool {
        pool.close();
    }
    println!(
        "{} episodes: {matched} match, {mismatched} differ, {skipped} skipped",
        episodes.len()
    );
    Ok(if mismatched > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

async fn verify_one(
    store: &Store,
    catalog: &Catalog,
    episode: &Episode,
) -> anyhow::Result<Verdict> {
    let factory = match catalog.get(&episode.env_id) {
        Ok(factory) => factory,
        Err(_) => {
            let why = catalog
                .unavailable(&episode.env_id)
                .map_or_else(|| "this build does not have it".to_string(), str::to_string);
            return Ok(Verdict::Skipped(format!("{}: {why}", episode.env_id)));
        }
    };
    let version = factory.spec().version;
    if version != episode.env_version {
        return Ok(Verdict::Skipped(format!(
            "recorded with version {} of {}; this build has version {version}",
            episode.env_version, episode.env_id
        )));
    }
    let agents = store.episode_agents(episode.id).await?;
    let steps = store.steps_for_episode(episode.id).await?;
    let mut env = match factory.make() {
        Ok(env) => env,
        Err(e) => {
            return Ok(Verdict::Skipped(format!(
                "could not make {}: {e}",
                episode.env_id
            )));
        }
    };
    // A Python environment's calls block on its worker.
    Ok(tokio::task::block_in_place(|| {
        resimulate(env.as_mut(), episode, &agents, &steps)
    }))
}

fn describe(episode: &Episode, verdict: &Verdict) -> String {
    let which = format!(
        "episode {} (game {}, #{}, {}, seed {})",
        episode.id, episode.game_id, episode.idx, episode.env_id, episode.seed
    );
    let state = match &episode.outcome {
        Some(Outcome::Complete) => "complete".to_string(),
        Some(Outcome::Interrupted { reason }) => format!("interrupted ({reason})"),
        None => "left open".to_string(),
    };
    match verdict {
        Verdict::Match { steps } => format!("{which}: {state}, {steps} steps match"),
        Verdict::Mismatch { step, what } => {
            format!("{which}: {state}, DIFFERS at step {step}: {what}")
        }
        Verdict::Skipped(why) => format!("{which}: skipped: {why}"),
    }
}
