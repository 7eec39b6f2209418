//! Measures a Python environment's step through a worker against the same
//! step called directly in Python, and the worker's memory.
//!
//! `cargo run --release -p tandem-workers --example worker_steps -- [ENV] [STEPS]`
//! (default `gymnasium:CartPole-v1`, 5000 steps), from the repository root
//! (it uses `.venv/bin/python`). A `python:module:function` environment is
//! imported from `PYTHONPATH`. Prints µs per step both ways, the overhead,
//! the CPU each side spent per step, bytes per step reply, and the worker's
//! resident memory.

use std::sync::Arc;
use std::time::Instant;

use serde_json::{Map, json};
use tandem_envs::HostedEnv;
use tandem_workers::protocol::{Kind, Message};
use tandem_workers::{Pool, WorkerConfig};

fn main() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let env = args
        .next()
        .unwrap_or_else(|| "gymnasium:CartPole-v1".into());
    let steps: u32 = args.next().and_then(|s| s.parse().ok()).unwrap_or(5000);
    let hosted = match HostedEnv::parse(&env, Map::new()) {
        Some(Ok(hosted)) => Arc::new(hosted),
        _ => return Err(format!("{env} is not a hosted environment id")),
    };
    let dir = std::env::temp_dir().join("tandem-worker-steps");
    let mut config = WorkerConfig::install(&dir).map_err(|e| e.to_string())?;
    config.python = ".venv/bin/python".into();
    let pool = Pool::new(config.clone(), 0);
    let mut worker = pool.take(&hosted).map_err(|e| e.to_string())?;
    let reset = Message::new(Kind::Reset, json!({"seed": 1}));
    worker
        .request(&reset, Kind::ResetDone, "reset", config.reset_deadline)
        .map_err(|e| e.to_string())?;
    let mut bytes = 0usize;
    let worker_cpu_before = cpu_seconds(&format!("/proc/{}/stat", worker.pid()));
    let server_cpu_before = cpu_seconds("/proc/self/stat");
    let started = Instant::now();
    for i in 0..steps {
        let step = Message::new(Kind::Step, json!({"actions": [i % 2]}));
        let reply = worker
            .request(&step, Kind::StepDone, "a step", config.step_deadline)
            .map_err(|e| e.to_string())?;
        bytes += reply.arrays.iter().map(|a| a.bytes.len()).sum::<usize>();
        let done = ["terminated", "truncated"].iter().any(|k| {
            reply.header[*k]
                .as_array()
                .is_some_and(|flags| flags.iter().all(|f| f.as_bool() == Some(true)))
        });
        if done {
            worker
                .request(&reset, Kind::ResetDone, "reset", config.reset_deadline)
                .map_err(|e| e.to_string())?;
        }
    }
    let through_worker = started.elapsed().as_secs_f64() * 1e6 / f64::from(steps);
    let per_step = |before: Option<f64>, after: Option<f64>| {
        before
            .zip(after)
            .map_or(f64::NAN, |(b, a)| (a - b) * 1e6 / f64::from(steps))
    };
    let worker_cpu = per_step(
        worker_cpu_before,
        cpu_seconds(&format!("/proc/{}/stat", worker.pid())),
    );
    let server_cpu = per_step(server_cpu_before, cpu_seconds("/proc/self/stat"));
    let rss = std::fs::read_to_string(format!("/proc/{}/status", worker.pid()))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .map(|l| l.trim_start_matches("VmRSS:").trim().to_string())
        })
        .unwrap_or_default();
    drop(worker);

    let target = &hosted.target;
    // A `python:` factory is called as the worker calls it; an id is made.
    let make = match target
        .split_once(':')
        .filter(|_| env.starts_with("python:"))
    {
        Some((module, function)) => format!(
            "import importlib; e = getattr(importlib.import_module({module:?}), {function:?})(render_mode='rgb_array')"
        ),
        None => format!("e = gym.make({target:?}, render_mode='rgb_array')"),
    };
    let direct = std::process::Command::new(".venv/bin/python")
        .args([
            "-c",
            &format!(
                "import time, gymnasium as gym\n\
             try:\n    import ale_py; gym.register_envs(ale_py)\nexcept ImportError: pass\n\
             {make}; e.reset(seed=1); e.render()\n\
             t = time.perf_counter()\n\
             for i in range({steps}):\n\
             \x20   o, r, te, tr, _ = e.step(i % 2); e.render()\n\
             \x20   if te or tr: e.reset(seed=1)\n\
             print((time.perf_counter() - t) * 1e6 / {steps})"
            ),
        ])
        .output()
        .map_err(|e| e.to_string())?;
    let direct: f64 = String::from_utf8_lossy(&direct.stdout)
        .trim()
        .parse()
        .map_err(|_| {
            format!(
                "the direct run failed: {}",
                String::from_utf8_lossy(&direct.stderr)
            )
        })?;
    println!(
        "{env}: {steps} steps; through a worker {through_worker:.0} µs/step, direct in Python \
         (step + render) {direct:.0} µs/step, overhead {:.0} µs/step; CPU per step: worker \
         {worker_cpu:.0} µs (overhead {:.0} µs), the server side {server_cpu:.0} µs; {} bytes \
         of arrays per step reply; worker RSS {rss}",
        through_worker - direct,
        worker_cpu - direct,
        bytes / steps as usize
    );
    Ok(())
}

/// utime + stime in seconds from a `/proc/.../stat` file (fields 14 and 15,
/// after the command name, which may hold spaces), at the usual 100 ticks/s.
fn cpu_seconds(path: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(path).ok()?;
    let after_name = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / 100.0)
}
