//! `tandem bench --sweep`: the most sessions a server holds.
//!
//! One run per size, each on a fresh server: from `--sessions`, the size
//! doubles while runs meet the criterion, halves while they do not, and then
//! bisects between the largest that held and the smallest that failed until
//! they are `--sweep-step` apart. The criterion is the one Multi-User
//! Gymnasium was measured by: at least 95 % of the frames delivered, a p99
//! frame interval of at most two frame times, and (Tandem's own) no step lost.

use crate::options::{MAX_SESSIONS, Options};
use crate::report::Figures;
use crate::run::{Outcome, run};

/// Why a run does not meet the criterion, or `None` when it does.
pub fn shortfall(figures: &Figures, clean: bool) -> Option<String> {
    let frame_ms = figures.target_fps.map(|f| 1000.0 / f64::from(f.max(1)));
    let delivered = figures.frames_delivered_pct.unwrap_or(0.0);
    if !clean {
        return Some("steps were lost".into());
    }
    if delivered < 95.0 {
        return Some(format!("{delivered:.1} % of frames"));
    }
    match (figures.frame_interval_p99_ms, frame_ms) {
        (Some(p99), Some(frame)) if p99 > 2.0 * frame => Some(format!(
            "p99 frame interval {p99:.1} ms > {:.1} ms",
            2.0 * frame
        )),
        (None, _) | (_, None) => Some("no frame intervals measured".into()),
        _ => None,
    }
}

/// The next size to try, given the largest that held and the smallest that
/// failed so far; `None` when the sweep is done.
fn next_size(held: Option<usize>, failed: Option<usize>, step: usize) -> Option<usize> {
    match (held, failed) {
        (Some(best), None) => (best < MAX_SESSIONS).then(|| (best * 2).min(MAX_SESSIONS)),
        (None, Some(fail)) => (fail > 1).then_some(fail / 2),
        (Some(best), Some(fail)) => {
            (fail.saturating_sub(best) > step).then(|| best + (fail - best) / 2)
        }
        (None, None) => None,
    }
}

/// Runs the sweep; returns the largest run that held (or the last run).
pub async fn sweep(options: Options) -> anyhow::Result<Outcome> {
    let mut sessions = options.sessions;
    let mut held: Option<(usize, Outcome)> = None;
    let mut failed: Option<usize> = None;
    let mut last = None;
    let mut runs = Vec::new();
    loop {
        let mut one = options.clone();
        one.sessions = sessions;
        one.sweep = false;
        one.json_only = true;
        let outcome = run(one).await?;
        let why = shortfall(&outcome.figures, outcome.is_clean());
        let f = &outcome.figures;
        eprintln!(
            "sweep: {sessions} sessions: {} % of frames, p99 interval {} ms, {} µs CPU per frame, \
             {} steps lost: {}",
            f.frames_delivered_pct
                .map_or("-".into(), |v| format!("{v:.2}")),
            f.frame_interval_p99_ms
                .map_or("-".into(), |v| format!("{v:.1}")),
            f.server_cpu_us_per_frame
                .map_or("-".into(), |v| format!("{v:.1}")),
            f.steps_lost,
            why.as_deref().unwrap_or("holds"),
        );
        runs.push(serde_json::json!({
            "sessions": sessions,
            "holds": why.is_none(),
            "why": why,
            "frames_delivered_pct": f.frames_delivered_pct,
            "frame_interval_p99_ms": f.frame_interval_p99_ms,
            "server_cpu_us_per_frame": f.server_cpu_us_per_frame,
            "bench_cpu_cores": f.bench_cpu_cores,
            "server_cpu_cores": f.server_cpu_cores,
        }));
        if why.is_none() {
            held = Some((sessions, outcome));
        } else {
            failed = Some(failed.map_or(sessions, |f| f.min(sessions)));
            last = Some(outcome);
        }
        let best = held.as_ref().map(|(n, _)| *n);
        match next_size(best, failed, options.sweep_step) {
            Some(n) => sessions = n,
            None => break,
        }
    }
    let best = held.as_ref().map(|(n, _)| *n);
    match best {
        Some(n) => println!(
            "sweep: {n} sessions hold{}",
            failed.map_or(String::new(), |f| format!("; {f} do not"))
        ),
        None => println!("sweep: no size held, down to {sessions} sessions"),
    }
    println!(
        "{}",
        serde_json::json!({"sweep": {"holds": best, "fails": failed, "runs": runs}})
    );
    match (held, last) {
        (Some((_, outcome)), _) | (None, Some(outcome)) => Ok(outcome),
        (None, None) => anyhow::bail!("the sweep made no run"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Doubling while it holds, halving while it fails, then bisecting to
    /// the step: the sizes a server that holds 700 is tried at.
    #[test]
    fn sizes_double_then_bisect() {
        let holds = |n: usize| n <= 700;
        let (mut held, mut failed, mut n, mut tried) = (None, None, 100, vec![]);
        loop {
            tried.push(n);
            if holds(n) {
                held = Some(n);
            } else {
                failed = Some(failed.map_or(n, |f: usize| f.min(n)));
            }
            match next_size(held, failed, 50) {
                Some(next) => n = next,
                None => break,
            }
        }
        assert_eq!(tried, [100, 200, 400, 800, 600, 700, 750]);
        assert_eq!((held, failed), (Some(700), Some(750)));
        assert_eq!(next_size(None, Some(400), 50), Some(200));
        assert_eq!(next_size(None, Some(1), 50), None);
    }

    /// The criterion: frames, then the p99 interval against two frame times,
    /// and nothing lost.
    #[test]
    fn the_criterion_says_what_falls_short() {
        let figures = Figures {
            target_fps: Some(30),
            frames_delivered_pct: Some(99.0),
            frame_interval_p99_ms: Some(40.0),
            ..Figures::default()
        };
        assert_eq!(shortfall(&figures, true), None);
        assert_eq!(
            shortfall(&figures, false).as_deref(),
            Some("steps were lost")
        );
        let slow = Figures {
            frame_interval_p99_ms: Some(70.0),
            ..figures.clone()
        };
        assert!(shortfall(&slow, true).is_some_and(|w| w.contains("p99")));
        let sparse = Figures {
            frames_delivered_pct: Some(90.0),
            ..figures
        };
        assert_eq!(
            shortfall(&sparse, true).as_deref(),
            Some("90.0 % of frames")
        );
    }
}
