//! [`Options`]: what a server runs with besides its experiment and database:
//! the catalogs its games draw on and its limits.

use std::time::Duration;

use tandem_envs::Catalog;

use crate::admission::AdmissionLimits;
use tandem_policy::Registry;

/// Who may frame the study by default: MTurk shows an `ExternalQuestion` HIT
/// in an iframe on its worker sites (and their sandboxes).
pub const DEFAULT_FRAME_ANCESTORS: &[&str] = &[
    "https://worker.mturk.com",
    "https://workersandbox.mturk.com",
    "https://www.mturk.com",
    "https://requester.mturk.com",
    "https://requestersandbox.mturk.com",
];

/// The most participant sockets a server holds by default; more are closed
/// with code 1013 ("try again later").
pub const DEFAULT_MAX_SOCKETS: usize = 20_000;

/// The most TCP connections a server holds by default (pages, static files
/// and sockets); more are answered `503` and closed.
pub const DEFAULT_MAX_CONNECTIONS: usize = 25_000;

/// How long a client may take to send a request's headers, by default.
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// How the server tells a vanished browser from a quiet one: it pings every
/// socket every `ping_every` and closes one silent for `silence_limit`.
/// Fixed in production (`docs/WIRE.md` states them); tests shorten them.
#[derive(Clone, Copy, Debug)]
pub struct Liveness {
    pub ping_every: Duration,
    pub silence_limit: Duration,
}

impl Default for Liveness {
    fn default() -> Self {
        Liveness {
            ping_every: Duration::from_secs(tandem_wire::PING_INTERVAL_S),
            silence_limit: Duration::from_secs(tandem_wire::SILENCE_LIMIT_S),
        }
    }
}

/// Where MTurk may have an assignment posted (`turkSubmitTo`): the live site
/// and the sandbox.
pub const DEFAULT_MTURK_SUBMIT_TO: &[&str] =
    &["https://www.mturk.com", "https://workersandbox.mturk.com"];

/// What a server runs with besides its experiment and database.
#[derive(Clone, Debug)]
pub struct Options {
    /// Every policy a seat may name: the built-ins and the experiment's own.
    pub policies: Registry,
    /// Every environment a game scene may name; experiment files must be read
    /// with the same catalog.
    pub envs: Catalog,
    /// The cap on open participant sockets.
    pub max_sockets: usize,
    /// The cap on open TCP connections of any kind.
    pub max_connections: usize,
    /// How long a client may take to send a request's headers.
    pub header_timeout: Duration,
    /// Limits on new participants, per address and for the study.
    pub admission: AdmissionLimits,
    /// Mark the participant cookie `Secure` (the study is served over HTTPS);
    /// it is also marked when a proxy says so with `X-Forwarded-Proto: https`.
    pub secure_cookies: bool,
    /// Origins besides the study's own that may show it in a frame (CSP
    /// `frame-ancestors`); by default MTurk's worker sites.
    pub frame_ancestors: Vec<String>,
    /// When a socket that answers no ping is closed.
    pub liveness: Liveness,
    /// The origins a study link's `turkSubmitTo` may name; any other is
    /// ignored, so a crafted link cannot make the end page post elsewhere.
    pub mturk_submit_to: Vec<String>,
    /// The token that opens `/metrics` to a scraper (`Authorization: Bearer`);
    /// without one, only a console login reads it.
    pub metrics_token: Option<String>,
    /// Lines the binary adds to `/metrics` (the Python worker pool's state).
    pub extra_metrics: Option<ExtraMetrics>,
}

/// Writes more Prometheus text lines; see [`Options::extra_metrics`].
#[derive(Clone)]
pub struct ExtraMetrics(pub std::sync::Arc<dyn Fn(&mut String) + Send + Sync>);

impl std::fmt::Debug for ExtraMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ExtraMetrics")
    }
}

impl Default for Options {
    fn default() -> Self {
        Options {
            policies: Registry::builtin(),
            envs: Catalog::builtin(),
            max_sockets: DEFAULT_MAX_SOCKETS,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            admission: AdmissionLimits::default(),
            secure_cookies: false,
            frame_ancestors: DEFAULT_FRAME_ANCESTORS
                .iter()
                .map(|s| s.to_string())
                .collect(),
            liveness: Liveness::default(),
            mturk_submit_to: DEFAULT_MTURK_SUBMIT_TO
                .iter()
                .map(|s| s.to_string())
                .collect(),
            metrics_token: None,
            extra_metrics: None,
        }
    }
}
