//! The recorder: what game loops hold to record episodes, steps and events.
//!
//! A [`Recorder`] is a cheap, cloneable sender. Everything it is given goes, in
//! order, through one channel to one writer per database, on its own thread (see
//! `writer.rs`), which batches steps into large transactions. Sending a step never
//! blocks and never fails the game loop: a real-time game must not stall on the
//! disk, and a step the writer cannot take is counted and logged rather than raised.
//!
//! Episode starts and ends travel the same ordered channel as steps and are
//! written in the same batches: a start before its steps, an end after them, so
//! an episode is never stored as complete without its steps, and a game loop
//! never waits for the disk at an episode boundary. Episode ids come from blocks
//! the database hands out ahead of need (see `episode_ids.rs`), so
//! `start_episode` answers without a commit. The calls that wait for one
//! (`end_episode`, `flush`) are for callers that must know the data is stored.
//!
//! Shutdown: when every `Recorder` is dropped, or [`RecorderHandle::shutdown`] is
//! called, the writer commits what it holds and exits; `shutdown` waits for that.

use std::fmt;
use std::sync::Arc;

use serde_json::Value;
use tokio::sync::{Notify, mpsc, oneshot};
use tracing::error;

use crate::TimingRecord;
use crate::clock::now_us;
use crate::episode_ids::{BLOCK_SIZE, EpisodeIds};
use crate::queue::{Command, Counters, QueuedEvent, RecorderConfig, RecorderStats};
use crate::sqlite::{SqliteBatchSink, SqliteIdBlocks};
use crate::writer::Writer;
use crate::{EpisodeEnd, EpisodeStart, StepRecord, Store, StoreError};

/// Records episodes, steps and events through the database's writer. Cheap
/// to clone; each game loop holds one.
#[derive(Clone)]
pub struct Recorder {
    /// Unbounded so that `record_step` never waits: the writer drains it far
    /// faster than games fill it, and `RecorderStats` shows a backlog if not.
    tx: mpsc::UnboundedSender<Command>,
    /// Wakes the writer for a command someone waits on (it lets the rest
    /// gather; see `Writer::run`).
    urgent: Arc<Notify>,
    counters: Arc<Counters>,
    /// Where episode ids come from: blocks reserved from the database.
    ids: Arc<EpisodeIds>,
}

/// Owns the writer: ask it to stop and wait for it with
/// [`RecorderHandle::shutdown`]. Dropping the handle leaves the writer running
/// until every [`Recorder`] is dropped.
pub struct RecorderHandle {
    /// Weak, so that the writer still stops when the last `Recorder` goes even if
    /// the handle is kept.
    tx: mpsc::WeakUnboundedSender<Command>,
    urgent: Arc<Notify>,
    /// Answered by the writer with the result of its last commit when it exits.
    done: oneshot::Receiver<Result<(), StoreError>>,
    counters: Arc<Counters>,
}

impl Store {
    /// Starts this database's writer and returns a recorder feeding it.
    ///
    /// Start one per database (clone the `Recorder` for each game): one writer is
    /// what keeps batches large and SQLite's single write lock uncontended. The
    /// writer runs on a thread of its own (with a single-threaded Tokio runtime):
    /// as one task among thousands of game and socket tasks it was starved under
    /// load and fell behind by seconds (BENCHMARKS.md). Must be called within a
    /// Tokio runtime: the first block of episode ids is reserved on it, in the
    /// background, and the writer falls back to a task on it if no thread can be
    /// started.
    pub fn recorder(&self, config: RecorderConfig) -> (Recorder, RecorderHandle) {
        let (tx, rx) = mpsc::unbounded_channel();
        let urgent = Arc::new(Notify::new());
        let writer_urgent = Arc::clone(&urgent);
        let counters = Arc::new(Counters::default());
        let (done_tx, done) = oneshot::channel();
        let ids = EpisodeIds::new(
            Box::new(SqliteIdBlocks::new(self.pool().clone())),
            BLOCK_SIZE,
        );
        // The first block, so that even the first episode need not wait for it.
        ids.reserve_ahead();
        let sink = SqliteBatchSink::new(self.writer_pool());
        let writer_counters = counters.clone();
        let writer_ids = Arc::clone(&ids);
        // The thread's closure owns what the writer needs; if the thread cannot
        // start, the closure is handed back through this slot and run as a task.
        let start = move || async move {
            let writer = Writer::new(sink, config, writer_counters);
            let result = writer.run(rx, writer_urgent).await;
            // After the last commit, nothing queued needs an id any more: stop
            // handing them out and give the unused ones back.
            writer_ids.close().await;
            let _ = done_tx.send(result);
        };
        let slot = Arc::new(std::sync::Mutex::new(Some(start)));
        let thread_slot = Arc::clone(&slot);
        let spawned = std::thread::Builder::new()
            .name("tandem-recorder".into())
            .spawn(move || {
                let start = thread_slot.lock().ok().and_then(|mut s| s.take());
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build();
                match (start, runtime) {
                    (Some(start), Ok(runtime)) => runtime.block_on(start()),
                    (_, Err(e)) => error!(cause = %e, "the recorder's runtime could not start"),
                    (None, Ok(_)) => {}
                }
            });
        if let Err(e) = spawned {
            error!(cause = %e, "no thread for the recorder; it runs as a task instead");
            if let Some(start) = slot.lock().ok().and_then(|mut s| s.take()) {
                tokio::spawn(start());
            }
        }
        let handle = RecorderHandle {
            tx: tx.downgrade(),
            urgent: Arc::clone(&urgent),
            done,
            counters: counters.clone(),
        };
        let recorder = Recorder {
            tx,
            urgent,
            counters,
            ids,
        };
        (recorder, handle)
    }
}

impl Recorder {
    /// Records the start of an episode and returns its id at once; the episode
    /// is written with the next batch, before its steps. Waits only when the
    /// recorder holds no unused id: for the block being reserved when it started,
    /// or after a burst of starts outran the block reserved ahead.
    pub async fn start_episode(&self, start: EpisodeStart) -> Result<i64, StoreError> {
        if self.tx.is_closed() {
            return Err(StoreError::RecorderClosed);
        }
        let id = self.ids.next().await?;
        self.send(Command::StartEpisode(id, start))?;
        Ok(id)
    }

    /// Queues a step; it is committed within the flush interval. Never blocks. If
    /// the writer has stopped, the step is dropped, counted and logged.
    pub fn record_step(&self, step: StepRecord) {
        let (episode_id, t) = (step.episode_id, step.t);
        match self.tx.send(Command::Step(step)) {
            Ok(()) => {
                Counters::add(&self.counters.steps_received, 1);
            }
            Err(_) => {
                let dropped = Counters::add(&self.counters.steps_dropped, 1);
                // Once, then every 1000th: a stopped writer sees every step of every
                // running game.
                if dropped == 1 || dropped.is_multiple_of(1000) {
                    error!(
                        episode_id,
                        t, dropped, "the recorder has stopped: dropping steps"
                    );
                }
            }
        }
    }

    /// Records the end of an episode, after every step sent before it; returns
    /// once all of them are committed.
    ///
    /// On [`StoreError::WriteDeferred`] the end and the steps are kept and retried
    /// with the next flush: there is nothing to resend.
    pub async fn end_episode(&self, episode_id: i64, end: EpisodeEnd) -> Result<(), StoreError> {
        let (reply, answer) = oneshot::channel();
        self.send_urgent(Command::EndEpisode(episode_id, end, Some(reply)))?;
        answer.await.map_err(|_| StoreError::RecorderClosed)?
    }

    /// Queues the end of an episode behind its steps, to be written with the next
    /// batch. Never blocks: what game loops call. Fails only if the writer has
    /// stopped.
    pub fn record_episode_end(&self, episode_id: i64, end: EpisodeEnd) -> Result<(), StoreError> {
        self.send(Command::EndEpisode(episode_id, end, None))
    }

    /// Queues an event, stamped now, behind the steps already sent. Never blocks;
    /// if the writer has stopped, the event is logged instead.
    pub fn record_event(
        &self,
        participant_id: Option<i64>,
        game_id: Option<i64>,
        kind: &str,
        detail: Value,
    ) {
        let event = QueuedEvent {
            at_us: now_us(),
            participant_id,
            game_id,
            kind: kind.to_owned(),
            detail,
        };
        if let Err(mpsc::error::SendError(Command::Event(event))) =
            self.tx.send(Command::Event(event))
        {
            error!(?event, "the recorder has stopped: event not stored");
        }
    }

    /// Queues a page's timing report (an input, frames drawn, a clock
    /// sample), written with the next batch.
    pub fn record_timing(&self, record: TimingRecord) {
        if self.tx.send(Command::Timing(record)).is_err() {
            error!("the recorder has stopped: timing report not stored");
        }
    }

    /// Waits until everything sent before this call is committed.
    pub async fn flush(&self) -> Result<(), StoreError> {
        let (reply, answer) = oneshot::channel();
        self.send_urgent(Command::Flush(reply))?;
        answer.await.map_err(|_| StoreError::RecorderClosed)?
    }

    /// The counters as of now.
    pub fn stats(&self) -> RecorderStats {
        self.counters.snapshot()
    }

    fn send(&self, command: Command) -> Result<(), StoreError> {
        self.tx
            .send(command)
            .map_err(|_| StoreError::RecorderClosed)
    }

    /// Sends a command someone waits on, and wakes the writer for it rather
    /// than let it wait out the writer's pause.
    fn send_urgent(&self, command: Command) -> Result<(), StoreError> {
        self.send(command)?;
        self.urgent.notify_one();
        Ok(())
    }
}

impl RecorderHandle {
    /// Asks the writer to commit everything sent so far and stop, and waits until
    /// it has. Anything recorded afterwards is refused ([`StoreError::RecorderClosed`]
    /// or a dropped step). Returns the error of the final commit if it failed,
    /// in which case the steps it held are lost (and counted as dropped).
    pub async fn shutdown(self) -> Result<(), StoreError> {
        if let Some(tx) = self.tx.upgrade() {
            // The writer may stop between upgrade and send; then it is stopping anyway.
            let _ = tx.send(Command::Shutdown);
            self.urgent.notify_one();
        }
        self.done.await.map_err(|_| {
            error!("the recorder's writer ended without a word (its thread failed)");
            StoreError::RecorderClosed
        })?
    }

    /// The counters as of now.
    pub fn stats(&self) -> RecorderStats {
        self.counters.snapshot()
    }
}

impl fmt::Debug for Recorder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Recorder")
            .field("stats", &self.stats())
            .finish()
    }
}

impl fmt::Debug for RecorderHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecorderHandle")
            .field("stats", &self.stats())
            .finish()
    }
}
