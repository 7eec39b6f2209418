//! What travels from every [`Recorder`](crate::Recorder) to the one writer:
//! the commands, in order, and the counters both sides update; and how the
//! writer batches ([`RecorderConfig`]).
//!
//! Apart from `recorder` and `writer` so that each of them, and the batch
//! code, depends on this and not on the other.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::oneshot;

use crate::{EpisodeEnd, EpisodeStart, StepRecord, StoreError};

/// How the writer batches.
#[derive(Clone, Debug, PartialEq)]
pub struct RecorderConfig {
    /// Commit once this many step rows (one per agent per step) are buffered.
    pub batch_rows: usize,
    /// Commit when the oldest buffered record is this old, however few there are:
    /// the most a crash can lose.
    pub flush_interval: Duration,
    /// If commits keep failing (disk full), the writer keeps what it could not
    /// write and retries; past this many buffered bytes it drops new steps
    /// (counted in [`RecorderStats::steps_dropped`]) rather than exhaust memory.
    pub max_buffered_bytes: usize,
}

impl Default for RecorderConfig {
    fn default() -> Self {
        RecorderConfig {
            batch_rows: 2000,
            flush_interval: Duration::from_secs(1),
            max_buffered_bytes: 256 << 20,
        }
    }
}

/// The recorder's counters, for benchmarks, tests and health checks.
///
/// Steps are joint steps ([`StepRecord`]s), not rows. In steady state
/// `received == written + dropped + (in flight)`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RecorderStats {
    /// Steps handed to [`crate::Recorder::record_step`] and accepted by the channel.
    pub steps_received: u64,
    /// Steps committed to the database.
    pub steps_written: u64,
    /// Transactions committed that held at least one step.
    pub batches_written: u64,
    /// Commits that failed (each is logged with its cause, and retried).
    pub write_errors: u64,
    /// Steps lost: sent after the writer stopped, over the memory bound while
    /// commits were failing, rejected by the database (a duplicate step), or
    /// still unwritten when the writer gave up at shutdown.
    pub steps_dropped: u64,
    /// Transactions committed (with steps or not), and the time they took in
    /// all: the mean flush latency is their ratio.
    pub commits: u64,
    pub commit_us: u64,
}

/// The shared counters behind [`RecorderStats`]; relaxed atomics, since they are
/// only ever read as a snapshot for reporting.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) steps_received: AtomicU64,
    pub(crate) steps_written: AtomicU64,
    pub(crate) batches_written: AtomicU64,
    pub(crate) write_errors: AtomicU64,
    pub(crate) steps_dropped: AtomicU64,
    pub(crate) commits: AtomicU64,
    pub(crate) commit_us: AtomicU64,
}

impl Counters {
    pub(crate) fn add(counter: &AtomicU64, n: u64) -> u64 {
        counter.fetch_add(n, Ordering::Relaxed) + n
    }

    pub(crate) fn snapshot(&self) -> RecorderStats {
        RecorderStats {
            steps_received: self.steps_received.load(Ordering::Relaxed),
            steps_written: self.steps_written.load(Ordering::Relaxed),
            batches_written: self.batches_written.load(Ordering::Relaxed),
            write_errors: self.write_errors.load(Ordering::Relaxed),
            steps_dropped: self.steps_dropped.load(Ordering::Relaxed),
            commits: self.commits.load(Ordering::Relaxed),
            commit_us: self.commit_us.load(Ordering::Relaxed),
        }
    }
}

/// What a [`crate::Recorder`] sends its writer. The writer handles commands strictly in
/// order; a command with a reply channel is answered once what it asks for is
/// committed (or has failed), and every record sent before it is committed in the
/// same or an earlier transaction.
pub(crate) enum Command {
    /// Buffer a step; no reply.
    Step(StepRecord),
    /// Buffer an episode (with the id the recorder gave it) and its agents.
    StartEpisode(i64, EpisodeStart),
    /// Mark an episode ended; reply, if asked, once committed.
    EndEpisode(
        i64,
        EpisodeEnd,
        Option<oneshot::Sender<Result<(), StoreError>>>,
    ),
    /// Buffer an event; no reply.
    Event(QueuedEvent),
    /// Buffer a page's timing report; no reply.
    Timing(crate::TimingRecord),
    /// Commit everything buffered; reply once done.
    Flush(oneshot::Sender<Result<(), StoreError>>),
    /// Stop taking commands, commit everything buffered and exit.
    Shutdown,
}

/// An event on its way to the writer, stamped when it was recorded.
#[derive(Debug)]
pub(crate) struct QueuedEvent {
    pub(crate) at_us: i64,
    pub(crate) participant_id: Option<i64>,
    pub(crate) game_id: Option<i64>,
    pub(crate) kind: String,
    pub(crate) detail: Value,
}
