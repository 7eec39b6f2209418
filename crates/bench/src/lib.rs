//! `tandem bench`: a load generator that plays simulated participants ("bots")
//! against a Tandem server over real WebSockets and measures what they get.
//!
//! Layout:
//! - `options`: the command's flags ([`Options`]) and their validation into a plan.
//! - `scenario`: the built-in experiments, and what a run needs to know of one.
//! - `server`: the server under test: a child process it starts, or a running one;
//!   `/proc` readings and `/metrics`.
//! - `http`: a minimal HTTP/1.0 GET, enough for `GET /` and `/metrics`.
//! - `bot`: one simulated participant, from `GET /` to its game and out again.
//! - `diagnostic`: environments for measuring the server (one slow game beside
//!   normal ones), added by `tandem serve --diagnostic-envs`.
//! - `live`: counters the bots update as they go, and the progress display.
//! - `storage`: counting what the database recorded once the server has stopped.
//! - `stats`: pooling the bots' samples into percentiles and rates.
//! - `report`: the figures, as a table for people and one JSON line for machines.
//! - `run`: the order of a run: start, ramp up, measure, close, check, report.
//! - `sweep`: runs of growing, then bisected, sizes: the most sessions that hold.
//! - `walk`: bots walking a study to its end, for `tandem test`.
//!
//! The bots run in this process and the server in another (as a child, or behind
//! `--url`), so the server's CPU and memory readings are its own.

mod bot;
mod diagnostic;
mod http;
mod live;
mod options;
mod report;
mod run;
mod scenario;
mod server;
mod stats;
mod storage;
mod sweep;
mod walk;

pub use diagnostic::{SLOW_FIRST_ID, SLOW_STEP, catalog_with_diagnostics, diagnostic_envs};
pub use options::{Options, OptionsError, ScenarioName};
pub use report::Figures;
pub use run::{Outcome, run};
pub use sweep::{shortfall, sweep};
pub use walk::{Walked, walk};
