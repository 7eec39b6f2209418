//! The command's flags and their validation.
//!
//! [`Options`] is what clap parses (the binary embeds it as the `bench`
//! subcommand's arguments, so `main` stays thin); [`Options::plan`] checks it and
//! turns it into a [`Plan`] whose fields need no further checks: durations are
//! `Duration`s, the URL is an address, the experiment file has been read. Every
//! refusal says which flag is wrong and what would be right.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::ValueEnum;

/// Most sessions one run may ask for: far past what one machine's sockets and
/// ports allow, so a typo (an extra zero) is refused rather than attempted.
pub(crate) const MAX_SESSIONS: usize = 100_000;
/// Longest ramp-up and measurement: a day.
const MAX_SECONDS: f64 = 86_400.0;

/// Flags of `tandem bench`.
#[derive(clap::Args, Clone, Debug)]
pub struct Options {
    /// Simulated participants to connect.
    #[arg(long, default_value_t = 100)]
    pub sessions: usize,
    /// Seconds over which to spread the connections evenly (0: all at once).
    #[arg(long, value_name = "SECS", default_value_t = 5.0)]
    pub ramp_up: f64,
    /// Seconds to measure, after the ramp-up.
    #[arg(long, value_name = "SECS", default_value_t = 30.0)]
    pub duration: f64,
    /// Built-in experiment for the server bench starts: CartPole-v1 at 30 fps with
    /// sprite or pixel frames, or two players paired in Kitchen-v0 at 15 fps.
    #[arg(long, value_enum, default_value_t = ScenarioName::Sprites, conflicts_with = "experiment")]
    pub scenario: ScenarioName,
    /// An experiment file instead of a built-in scenario. With --url, it must be
    /// the file that server runs.
    #[arg(long, value_name = "FILE")]
    pub experiment: Option<PathBuf>,
    /// A running server (http://HOST:PORT) instead of starting one. Its database
    /// is then not read: steps are checked against its recorder's counters.
    #[arg(long)]
    pub url: Option<String>,
    /// With --url: the server's process id, to read its CPU time and memory.
    #[arg(long, value_name = "PID", requires = "url")]
    pub server_pid: Option<u32>,
    /// Print only the JSON line (no progress, no table).
    #[arg(long)]
    pub json_only: bool,
    /// Run the server on these CPUs only (a `taskset` list such as `0` or
    /// `0-1`): the child it starts, or with --url the --server-pid process.
    #[arg(long, value_name = "LIST")]
    pub server_cpus: Option<String>,
    /// Run the bots (this process) on these CPUs only.
    #[arg(long, value_name = "LIST")]
    pub bot_cpus: Option<String>,
    /// Find the most sessions that meet the criterion (at least 95 % of the
    /// frames, a p99 frame interval of at most two frame times, no step
    /// lost): runs at --sessions, doubles while it holds, then bisects.
    #[arg(long)]
    pub sweep: bool,
    /// With --sweep: stop bisecting when the bounds are this close (sessions).
    #[arg(long, value_name = "N", default_value_t = 50, requires = "sweep")]
    pub sweep_step: usize,
}

/// The built-in scenarios.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ScenarioName {
    /// CartPole-v1 at 30 fps with sprite frames (binary patches).
    Sprites,
    /// CartPole-v1 at 30 fps rendered as PNG pixel frames.
    Pixels,
    /// Kitchen-v0 at 15 fps for two players paired in the lobby (an odd one out
    /// plays with the scripted chef after 20 s).
    Pairs,
    /// MountainCar-v0 at 30 fps where the first game steps in 50 ms (a slow
    /// environment) and every other game normally: run with --sessions 51.
    Slow,
}

impl ScenarioName {
    pub fn name(self) -> &'static str {
        match self {
            ScenarioName::Sprites => "sprites",
            ScenarioName::Pixels => "pixels",
            ScenarioName::Pairs => "pairs",
            ScenarioName::Slow => "slow",
        }
    }
}

/// A flag that cannot be used as given.
#[derive(Debug, thiserror::Error)]
pub enum OptionsError {
    #[error("--sessions must be between 1 and {MAX_SESSIONS}, not {0}")]
    Sessions(usize),
    #[error("--{flag} must be a number of seconds from {min} to {MAX_SECONDS}, not {value}")]
    Seconds {
        flag: &'static str,
        min: f64,
        value: f64,
    },
    #[error("--url must look like http://HOST:PORT (plain HTTP), not {0:?}")]
    UrlForm(String),
    #[error("--url {url}: cannot resolve {host}: {cause}")]
    UrlHost {
        url: String,
        host: String,
        cause: String,
    },
    #[error("--server-pid {0}: no such process here (/proc/{0}/stat is unreadable)")]
    ServerPid(u32),
    #[error("--experiment {path}: {cause}")]
    Experiment { path: String, cause: String },
    #[error("--{flag} {list:?}: a CPU list is numbers, ranges and commas, such as 0 or 0-1 or 0,2")]
    CpuList { flag: &'static str, list: String },
    #[error("--server-cpus with --url needs --server-pid, the process to pin")]
    PinWhat,
    #[error("--sweep-step must be at least 1")]
    SweepStep,
}

/// Where the server under test is.
#[derive(Clone, Debug)]
pub enum Target {
    /// Start `tandem serve` as a child process on this experiment text.
    Child,
    /// A running server.
    Url {
        url: String,
        /// The `Host` header to send: the URL's `host:port`.
        host: String,
        addr: SocketAddr,
        pid: Option<u32>,
    },
}

/// Validated options: everything a run needs, checked.
#[derive(Clone, Debug)]
pub struct Plan {
    pub sessions: usize,
    pub ramp_up: Duration,
    pub duration: Duration,
    pub target: Target,
    pub scenario: crate::scenario::Scenario,
    pub json_only: bool,
    pub server_cpus: Option<String>,
    pub bot_cpus: Option<String>,
}

impl Options {
    /// Checks every flag and reads the experiment; the first problem is returned.
    pub async fn plan(&self) -> Result<Plan, OptionsError> {
        if self.sessions == 0 || self.sessions > MAX_SESSIONS {
            return Err(OptionsError::Sessions(self.sessions));
        }
        let ramp_up = seconds("ramp-up", self.ramp_up, 0.0)?;
        for (flag, list) in [
            ("server-cpus", &self.server_cpus),
            ("bot-cpus", &self.bot_cpus),
        ] {
            if let Some(list) = list
                && !is_cpu_list(list)
            {
                return Err(OptionsError::CpuList {
                    flag,
                    list: list.chars().take(40).collect(),
                });
            }
        }
        if self.url.is_some() && self.server_cpus.is_some() && self.server_pid.is_none() {
            return Err(OptionsError::PinWhat);
        }
        if self.sweep && self.sweep_step == 0 {
            return Err(OptionsError::SweepStep);
        }
        let duration = seconds("duration", self.duration, 0.1)?;
        let scenario = match &self.experiment {
            Some(path) => crate::scenario::Scenario::from_file(path).map_err(|cause| {
                OptionsError::Experiment {
                    path: path.display().to_string(),
                    cause,
                }
            })?,
            None => crate::scenario::Scenario::builtin(self.scenario),
        };
        let target = match &self.url {
            None => Target::Child,
            Some(url) => {
                let host = url_host(url)?;
                let addr = tokio::net::lookup_host(host.as_str())
                    .await
                    .map_err(|e| e.to_string())
                    .and_then(|mut addrs| addrs.next().ok_or_else(|| "no address".to_string()))
                    .map_err(|cause| OptionsError::UrlHost {
                        url: url.clone(),
                        host: host.clone(),
                        cause,
                    })?;
                if let Some(pid) = self.server_pid
                    && std::fs::metadata(format!("/proc/{pid}/stat")).is_err()
                {
                    return Err(OptionsError::ServerPid(pid));
                }
                Target::Url {
                    url: url.clone(),
                    host,
                    addr,
                    pid: self.server_pid,
                }
            }
        };
        Ok(Plan {
            sessions: self.sessions,
            ramp_up,
            duration,
            target,
            scenario,
            json_only: self.json_only,
            server_cpus: self.server_cpus.clone(),
            bot_cpus: self.bot_cpus.clone(),
        })
    }
}

/// Whether `list` is a CPU list `taskset -c` takes: `0`, `0-3`, `0,2-3`.
fn is_cpu_list(list: &str) -> bool {
    !list.is_empty()
        && list.split(',').all(|part| {
            let mut ends = part.splitn(2, '-');
            let number = |s: Option<&str>| {
                s.is_some_and(|s| {
                    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && s.len() <= 4
                })
            };
            let first = ends.next();
            match ends.next() {
                None => number(first),
                Some(last) => number(first) && number(Some(last)),
            }
        })
}

fn seconds(flag: &'static str, value: f64, min: f64) -> Result<Duration, OptionsError> {
    if value.is_finite() && value >= min && value <= MAX_SECONDS {
        Ok(Duration::from_secs_f64(value))
    } else {
        Err(OptionsError::Seconds { flag, min, value })
    }
}

/// The `host:port` of an `http://host:port[/]` URL.
fn url_host(url: &str) -> Result<String, OptionsError> {
    let bad = || OptionsError::UrlForm(url.to_string());
    let rest = url.strip_prefix("http://").ok_or_else(bad)?;
    let host = rest.strip_suffix('/').unwrap_or(rest);
    let (name, port) = host.rsplit_once(':').ok_or_else(bad)?;
    if name.is_empty() || host.contains('/') || port.parse::<u16>().is_err() {
        return Err(bad());
    }
    Ok(host.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// CPU lists are what `taskset -c` takes, and nothing that could be read
    /// as another flag or a command.
    #[test]
    fn cpu_lists_are_numbers_ranges_and_commas() {
        for good in ["0", "1", "0-1", "0,2", "0-3,6"] {
            assert!(is_cpu_list(good), "{good}");
        }
        for bad in ["", "-1", "0-", "a", "0;rm", "0,,1", "1-2-3", "--all"] {
            assert!(!is_cpu_list(bad), "{bad}");
        }
    }

    /// Only plain `http://host:port` URLs are taken; anything else is refused early.
    #[test]
    fn urls_need_host_and_port() {
        assert_eq!(
            url_host("http://127.0.0.1:8080/").unwrap(),
            "127.0.0.1:8080"
        );
        assert_eq!(url_host("http://localhost:80").unwrap(), "localhost:80");
        for bad in [
            "https://a:1",
            "http://a",
            "http://:80",
            "http://a:80/x",
            "a:80",
            "http://a:port",
        ] {
            assert!(url_host(bad).is_err(), "{bad}");
        }
    }

    /// Nonsense numbers are refused with the flag's name.
    #[test]
    fn seconds_are_checked() {
        assert!(seconds("duration", 0.0, 0.1).is_err());
        assert!(seconds("ramp-up", f64::NAN, 0.0).is_err());
        assert!(seconds("ramp-up", -1.0, 0.0).is_err());
        let e = seconds("duration", 1e9, 0.1).unwrap_err().to_string();
        assert!(e.contains("--duration"), "{e}");
        assert_eq!(
            seconds("ramp-up", 0.0, 0.0).unwrap(),
            Duration::from_secs(0)
        );
    }
}
