//! The state every handler and socket shares: the experiment, the database,
//! the recorder, placement, the handles game tasks get, and the shutdown signal.
//!
//! It is one `Arc` inside, cheap to clone into every task. There is no
//! module-level state anywhere in the server: tests start several servers in
//! one process. Game tasks never see this; they get [`GameContext`] only.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tandem_experiment::Experiment;
use tandem_store::{Recorder, Store};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio_util::task::TaskTracker;

use crate::admission::{Admission, AdmissionLimits};
use crate::deferred::Deferred;
use crate::game::{GameContext, GameReport};
use crate::options::{Liveness, Options};
use crate::placement::Placement;

/// Shared server state; clone freely.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub experiment: Arc<Experiment>,
    pub store: Store,
    pub recorder: Recorder,
    /// Where every participant is: the one owner of sockets, queues and seats.
    pub placement: Placement,
    /// What every game task is handed.
    pub games: Arc<GameContext>,
    /// Work for the outcomes task (see `deferred`).
    pub deferred: mpsc::UnboundedSender<Deferred>,
    /// Flips to `true` once, when the server starts shutting down.
    pub shutdown: watch::Receiver<bool>,
    /// One permit per open participant socket: the cap on sockets.
    pub sockets: Arc<Semaphore>,
    /// The cap itself, for messages.
    pub sockets_limit: usize,
    /// Where the study's participant page is served (`/` or `/s/ID/`).
    pub base_path: String,
    /// The participant cookie's name (see [`Shared::cookie_name`]).
    pub cookie_name: String,
    /// Who may become a new participant.
    pub admission: Admission,
    pub admission_limits: AdmissionLimits,
    /// Whether the participant cookie is always `Secure`.
    pub secure_cookies: bool,
    /// The CSP `frame-ancestors` sources: `'self'` and the allowed origins.
    pub frame_ancestors: String,
    /// When a socket that answers no ping is closed.
    pub liveness: Liveness,
    /// The origins `turkSubmitTo` may name.
    pub mturk_submit_to: Vec<String>,
    /// Failed console logins per address (the console is the first study's,
    /// whichever study a researcher looks at).
    pub console_logins: crate::console::LoginLimiter,
    /// What opens `/metrics` to a scraper, and lines the binary adds to it.
    pub metrics_token: Option<String>,
    pub extra_metrics: Option<crate::options::ExtraMetrics>,
    /// A researcher paused admissions: new arrivals are turned away.
    pub admissions_paused: std::sync::atomic::AtomicBool,
    /// A researcher closed the study: new arrivals are told it has ended.
    pub study_closed: std::sync::atomic::AtomicBool,
    next_connection: AtomicU64,
}

/// What every study on one server shares, and where each is linked.
pub struct Shared {
    /// One permit per open participant socket, across every study.
    pub sockets: Arc<Semaphore>,
    /// Latency histograms for `/metrics`, across every study.
    pub telemetry: Arc<crate::telemetry::Telemetry>,
    /// The path the study's participant page is served at (`/` for a server
    /// with one study, else `/s/ID/`): its cookie is scoped to it.
    pub base_path: String,
    /// The participant cookie's name: its own per study when there are
    /// several, so a cookie left at `/` by a one-study run never stands in
    /// for a study's own.
    pub cookie_name: String,
}

impl Shared {
    /// For a server with one study, served at `/`.
    pub fn single(options: &Options) -> Shared {
        Shared {
            sockets: Arc::new(Semaphore::new(options.max_sockets)),
            telemetry: Arc::default(),
            base_path: "/".to_string(),
            cookie_name: crate::arrival::PARTICIPANT_COOKIE.to_string(),
        }
    }
}

/// The receiving ends of the outcome channels, for `flow::run_outcomes`.
pub struct Outcomes {
    pub games: mpsc::UnboundedReceiver<GameReport>,
    pub deferred: mpsc::UnboundedReceiver<Deferred>,
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    pub fn new(
        experiment: Arc<Experiment>,
        store: Store,
        recorder: Recorder,
        options: Options,
        participants: u64,
        shutdown: watch::Receiver<bool>,
        shared: Shared,
    ) -> (AppState, Outcomes) {
        let (reports, games_rx) = mpsc::unbounded_channel();
        let (deferred, deferred_rx) = mpsc::unbounded_channel();
        let games = Arc::new(GameContext {
            experiment: Arc::clone(&experiment),
            store: store.clone(),
            recorder: recorder.clone(),
            policies: options.policies,
            envs: options.envs,
            reports,
            shutdown: shutdown.clone(),
            steps_played: Arc::new(AtomicU64::new(0)),
            tasks: TaskTracker::new(),
            telemetry: shared.telemetry,
        });
        let state = AppState(Arc::new(Inner {
            experiment,
            store,
            recorder,
            placement: Placement::default(),
            games,
            deferred,
            shutdown,
            sockets: shared.sockets,
            base_path: shared.base_path,
            cookie_name: shared.cookie_name,
            sockets_limit: options.max_sockets,
            admission: Admission::new(options.admission, participants),
            admission_limits: options.admission,
            secure_cookies: options.secure_cookies,
            frame_ancestors: std::iter::once("'self'")
                .chain(options.frame_ancestors.iter().map(String::as_str))
                .collect::<Vec<_>>()
                .join(" "),
            liveness: options.liveness,
            mturk_submit_to: options
                .mturk_submit_to
                .iter()
                .map(|o| o.trim_end_matches('/').to_string())
                .collect(),
            console_logins: crate::console::LoginLimiter::default(),
            metrics_token: options.metrics_token,
            extra_metrics: options.extra_metrics,
            admissions_paused: std::sync::atomic::AtomicBool::new(false),
            study_closed: std::sync::atomic::AtomicBool::new(false),
            next_connection: AtomicU64::new(1),
        }));
        let outcomes = Outcomes {
            games: games_rx,
            deferred: deferred_rx,
        };
        (state, outcomes)
    }

    /// A process-unique id for a new socket, so a closing socket can tell whether
    /// it is still the participant's current one.
    pub fn next_connection_id(&self) -> u64 {
        self.next_connection.fetch_add(1, Ordering::Relaxed)
    }

    /// Whether shutdown has begun.
    pub fn is_shutting_down(&self) -> bool {
        *self.shutdown.borrow()
    }

    /// Steps the game loops have played.
    pub fn steps_played(&self) -> u64 {
        self.games.steps_played.load(Ordering::Relaxed)
    }
}
