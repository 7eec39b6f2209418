//! The state every handler and task shares: the experiment, the database, the
//! recorder, who is connected, which games run, and the shutdown signal.
//!
//! It is one `Arc` inside, cheap to clone into every task. There is no module-level
//! state anywhere in the server: tests start several servers in one process.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tandem_experiment::Experiment;
use tandem_store::{Recorder, Store};
use tokio::sync::watch;

use crate::game::Games;
use crate::lobby::Lobby;
use crate::session::Session;
use tandem_policy::Registry;

/// Shared server state; clone freely.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub experiment: Arc<Experiment>,
    pub store: Store,
    pub recorder: Recorder,
    /// The live socket of each connected participant, by participant id. At most
    /// one per participant: a new socket replaces the old one.
    pub sessions: Mutex<HashMap<i64, Arc<Session>>>,
    pub games: Games,
    pub lobby: Lobby,
    /// Every policy a seat may name: the built-ins and the experiment's own.
    pub policies: Registry,
    /// Flips to `true` once, when the server starts shutting down.
    pub shutdown: watch::Receiver<bool>,
    /// Steps the game loops have played, for comparison with steps recorded.
    pub steps_played: AtomicU64,
    next_connection: AtomicU64,
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
        policies: Registry,
        shutdown: watch::Receiver<bool>,
    ) -> Self {
        AppState(Arc::new(Inner {
            experiment,
            store,
            recorder,
            sessions: Mutex::new(HashMap::new()),
            games: Games::default(),
            lobby: Lobby::default(),
            policies,
            shutdown,
            steps_played: AtomicU64::new(0),
            next_connection: AtomicU64::new(1),
        }))
    }

    /// A process-unique id for a new socket, so a closing socket can tell whether
    /// it is still the participant's current one.
    pub fn next_connection_id(&self) -> u64 {
        self.next_connection.fetch_add(1, Ordering::Relaxed)
    }

    /// The live session of a participant, if connected.
    pub fn session(&self, participant_id: i64) -> Option<Arc<Session>> {
        lock(&self.sessions).get(&participant_id).cloned()
    }

    /// Whether shutdown has begun.
    pub fn is_shutting_down(&self) -> bool {
        *self.shutdown.borrow()
    }
}

/// Locks a std mutex, recovering the data if a panicking thread poisoned it: the
/// maps it guards stay consistent between statements, so the data is still good.
pub fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Microseconds since the Unix epoch, the unit of every time in the database.
pub fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

/// Completes once the shutdown signal is set. The signal's borrow guard is
/// dropped here, so callers may hold this across awaits in `select!` branches.
pub async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}
