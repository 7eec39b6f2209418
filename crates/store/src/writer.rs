//! The recorder's writer: the batching policy, the only code that decides when
//! steps and episodes are written and what happens when writing fails.
//!
//! It takes [`Command`]s in order from one channel, encodes them into a [`Batch`]
//! (`batch.rs`) and commits the batch through a [`BatchSink`] (`backend.rs`;
//! SQLite's is in `sqlite/`) when a commit is due: when the batch reaches
//! [`RecorderConfig::batch_rows`] rows, when the oldest buffered record is
//! [`RecorderConfig::flush_interval`] old, or when a command that needs an
//! answer arrives. The sink writes the whole batch in one transaction.
//!
//! Failure policy, in order of what matters:
//! - A failed commit loses nothing: the buffer is kept, the cause is logged and
//!   counted, and the commit is retried with a growing pause (a full disk does not
//!   turn into a busy loop). Memory is bounded by dropping *new* steps past
//!   [`RecorderConfig::max_buffered_bytes`], so what is kept is a clean prefix.
//! - A batch the database *rejects* (a constraint: a step recorded twice, an
//!   unknown episode) would fail forever if retried whole, so it is rewritten one
//!   record at a time and only the offending records are dropped, each logged.
//! - The task never panics on data and never exits on an error; it exits only when
//!   told to, or when every [`crate::Recorder`] is gone, after a last commit.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, mpsc, oneshot};
use tokio::time::{Instant, sleep, sleep_until};
use tracing::{error, warn};

use crate::backend::{BatchSink, Rejected, WriteError};
use crate::batch::{Batch, Encoder, Op};
use crate::queue::{Command, Counters};
use crate::{RecorderConfig, StepRecord, StoreError};

/// The longest pause between retries of a failing commit.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// After this many failed commits in a row the log says data is at risk.
const LOUD_AFTER_FAILURES: u32 = 5;
/// Attempts at the final commit when stopping, and the pause between them.
const FINAL_ATTEMPTS: u32 = 3;
const FINAL_PAUSE: Duration = Duration::from_millis(200);

/// How long the writer lets commands gather before it looks again, while
/// they keep coming: at 30,000 steps a second, a wake-up per 600 steps
/// rather than per step. Commands someone waits on do not wait for it.
pub(crate) const GATHER: Duration = Duration::from_millis(20);

/// Commands handled in a row before the writer yields to its runtime.
const YIELD_EVERY: u32 = 1024;

/// A caller waiting to hear that what it sent is committed.
type Reply = oneshot::Sender<Result<(), StoreError>>;

pub(crate) struct Writer<S> {
    sink: S,
    config: RecorderConfig,
    counters: Arc<Counters>,
    encoder: Encoder,
    /// Everything not yet committed.
    batch: Batch,
    /// One per op in `batch.ops`, at the same index: answered after the first
    /// commit attempt that includes the op; `None` once answered (a failed
    /// attempt answers "deferred" and keeps the op) or if no one asked.
    replies: Vec<Option<Reply>>,
    /// Rows in `batch.steps` (one per agent per step).
    step_rows: usize,
    /// Approximate memory held by `batch`.
    buffered_bytes: usize,
    /// When the oldest uncommitted record arrived; `None` when nothing is buffered.
    oldest: Option<Instant>,
    /// Failed commits in a row, and when the next automatic retry may happen.
    failures: u32,
    retry_at: Option<Instant>,
}

impl<S: BatchSink> Writer<S> {
    pub(crate) fn new(sink: S, config: RecorderConfig, counters: Arc<Counters>) -> Self {
        Writer {
            sink,
            config,
            counters,
            encoder: Encoder::new(),
            batch: Batch::default(),
            replies: Vec::new(),
            step_rows: 0,
            buffered_bytes: 0,
            oldest: None,
            failures: 0,
            retry_at: None,
        }
    }

    /// Runs until told to shut down or until every sender is gone, then makes a
    /// last commit. Returns that commit's error if it failed for good.
    ///
    /// Commands are taken in bursts: the first one after a quiet spell wakes
    /// the writer, which then handles whatever arrives within a [`GATHER`]
    /// pause at a time, until a pause brings nothing. Waiting on the channel
    /// for each command instead cost a thread wake-up (and a context switch on
    /// the core the games run on) per step recorded. `urgent` cuts a pause
    /// short for a command someone waits on.
    pub(crate) async fn run(
        mut self,
        mut rx: mpsc::UnboundedReceiver<Command>,
        urgent: Arc<Notify>,
    ) -> Result<(), StoreError> {
        let mut stopping = false;
        loop {
            let first = match self.deadline() {
                None => rx.recv().await,
                Some(deadline) => tokio::select! {
                    biased;
                    command = rx.recv() => command,
                    () = sleep_until(deadline) => {
                        let _ = self.commit().await;
                        continue;
                    }
                },
            };
            let Some(first) = first else { break };
            let mut next = Some(first);
            // A burst: handle what is queued, pause, and go on while pauses
            // bring more.
            loop {
                let mut taken = 0;
                while let Some(command) = next.take().or_else(|| rx.try_recv().ok()) {
                    taken += 1;
                    match command {
                        // Refuse new commands but handle those already queued:
                        // everything sent before the shutdown is committed.
                        Command::Shutdown => {
                            rx.close();
                            stopping = true;
                        }
                        command => self.handle(command).await,
                    }
                    // Under a constant stream of commands this keeps the flush
                    // interval honest.
                    if self.deadline().is_some_and(|d| Instant::now() >= d) {
                        let _ = self.commit().await;
                    }
                    // `try_recv` never yields: when the writer runs as a task on
                    // the shared runtime (no thread could start), a flood of
                    // commands must not hold a runtime thread.
                    if taken % YIELD_EVERY == 0 {
                        tokio::task::yield_now().await;
                    }
                }
                if taken == 0 || stopping {
                    break;
                }
                let pause_until = self
                    .deadline()
                    .map_or(Instant::now() + GATHER, |d| d.min(Instant::now() + GATHER));
                tokio::select! {
                    biased;
                    () = urgent.notified() => {}
                    () = sleep_until(pause_until) => {}
                }
            }
            if stopping {
                break;
            }
        }
        self.finish().await
    }

    async fn handle(&mut self, command: Command) {
        match command {
            Command::Step(step) => {
                self.buffer_step(step);
                let may_retry = self.retry_at.is_none_or(|at| Instant::now() >= at);
                if self.step_rows >= self.config.batch_rows && may_retry {
                    let _ = self.commit().await;
                }
            }
            Command::StartEpisode(id, start) => {
                let pending = self.encoder.start(id, start);
                self.buffered_bytes += pending.bytes();
                self.batch.starts.push(pending);
                self.oldest.get_or_insert_with(Instant::now);
            }
            Command::EndEpisode(episode_id, end, reply) => {
                self.encoder.forget(episode_id);
                let wants_answer = reply.is_some();
                self.buffer_op(Op::EndEpisode { episode_id, end }, reply);
                if wants_answer {
                    // Answers the reply, whichever way it goes.
                    let _ = self.commit().await;
                }
            }
            Command::Event(event) => self.buffer_op(Op::Event(event), None),
            Command::Timing(record) => self.buffer_op(Op::Timing(record), None),
            Command::Flush(reply) => {
                let _ = reply.send(self.commit().await);
            }
            Command::Shutdown => {}
        }
    }

    /// When the next commit is due without any command asking for it.
    fn deadline(&self) -> Option<Instant> {
        let due = self.oldest? + self.config.flush_interval;
        Some(self.retry_at.map_or(due, |retry| retry.max(due)))
    }

    fn buffer_step(&mut self, step: StepRecord) {
        if self.buffered_bytes > self.config.max_buffered_bytes {
            let dropped = Counters::add(&self.counters.steps_dropped, 1);
            if dropped == 1 || dropped.is_multiple_of(1000) {
                error!(
                    episode_id = step.episode_id,
                    t = step.t,
                    buffered_bytes = self.buffered_bytes,
                    dropped,
                    "the recorder cannot write and its buffer is full: dropping new steps"
                );
            }
            self.encoder.forget(step.episode_id);
            return;
        }
        let step = self.encoder.step(step);
        self.buffered_bytes += step.bytes();
        self.step_rows += step.agents.len();
        self.batch.steps.push(step);
        self.oldest.get_or_insert_with(Instant::now);
    }

    fn buffer_op(&mut self, op: Op, reply: Option<Reply>) {
        self.buffered_bytes += op.bytes();
        self.batch.ops.push(op);
        self.replies.push(reply);
        self.oldest.get_or_insert_with(Instant::now);
    }

    /// Commits everything buffered. On failure the buffer is kept for a retry
    /// and the error says so ([`StoreError::WriteDeferred`]).
    async fn commit(&mut self) -> Result<(), StoreError> {
        self.try_commit()
            .await
            .map_err(|e| StoreError::WriteDeferred(e.to_string()))
    }

    async fn try_commit(&mut self) -> Result<(), WriteError> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let started = Instant::now();
        let result = match self.sink.write_batch(&self.batch).await {
            Err(WriteError::Rejected(e)) => {
                Counters::add(&self.counters.write_errors, 1);
                warn!(
                    cause = %e,
                    steps = self.batch.steps.len(),
                    "the database rejected a batch; writing it record by record"
                );
                self.sink.write_each(&self.batch).await
            }
            other => other.map(|()| Rejected::default()),
        };
        match result {
            Ok(rejected) => {
                Counters::add(&self.counters.commits, 1);
                Counters::add(
                    &self.counters.commit_us,
                    started.elapsed().as_micros() as u64,
                );
                self.committed(rejected);
                Ok(())
            }
            Err(e) => {
                self.failed(&e);
                Err(e)
            }
        }
    }

    /// Bookkeeping after a successful commit: log what was left out, count,
    /// answer, empty the buffer.
    fn committed(&mut self, rejected: Rejected) {
        for (i, cause) in &rejected.starts {
            if let Some(pending) = self.batch.starts.get(*i) {
                error!(
                    episode_id = pending.id,
                    game_id = pending.start.game_id,
                    idx = pending.start.idx,
                    cause = %cause,
                    "the database rejected an episode start; its steps will be rejected too"
                );
            }
        }
        for (i, cause) in &rejected.steps {
            if let Some(step) = self.batch.steps.get(*i) {
                error!(
                    episode_id = step.episode_id,
                    t = step.t,
                    cause = %cause,
                    "the database rejected a step; it is dropped"
                );
            }
        }
        let written = self.batch.steps.len() - rejected.steps.len();
        Counters::add(&self.counters.steps_written, written as u64);
        Counters::add(&self.counters.steps_dropped, rejected.steps.len() as u64);
        if written > 0 {
            Counters::add(&self.counters.batches_written, 1);
        }

        let mut op_errors = rejected.ops.into_iter().peekable();
        for (i, reply) in self.replies.drain(..).enumerate() {
            let outcome = match op_errors.next_if(|(j, _)| *j == i) {
                Some((_, cause)) => {
                    error!(cause = %cause, "the database rejected an episode end or event; it is dropped");
                    Err(StoreError::from(cause))
                }
                None => Ok(()),
            };
            if let Some(reply) = reply {
                let _ = reply.send(outcome);
            }
        }

        self.batch.clear();
        self.step_rows = 0;
        self.buffered_bytes = 0;
        self.oldest = None;
        self.failures = 0;
        self.retry_at = None;
    }

    /// Bookkeeping after a failed commit: log, count, schedule the retry, and
    /// tell waiting callers their data is kept.
    fn failed(&mut self, cause: &WriteError) {
        Counters::add(&self.counters.write_errors, 1);
        self.failures += 1;
        let backoff = self
            .config
            .flush_interval
            .saturating_mul(1 << self.failures.min(16).saturating_sub(1))
            .min(MAX_BACKOFF);
        self.retry_at = Some(Instant::now() + backoff);
        error!(
            cause = %cause,
            failures = self.failures,
            buffered_steps = self.batch.steps.len(),
            buffered_bytes = self.buffered_bytes,
            retry_in_ms = backoff.as_millis() as u64,
            "the recorder could not commit; keeping the batch to retry"
        );
        if self.failures == LOUD_AFTER_FAILURES || self.failures.is_multiple_of(100) {
            error!(
                failures = self.failures,
                buffered_steps = self.batch.steps.len(),
                "RECORDING IS FAILING: steps are piling up in memory and will be lost \
                 if the server stops before the database accepts them"
            );
        }
        for reply in &mut self.replies {
            if let Some(reply) = reply.take() {
                let _ = reply.send(Err(StoreError::WriteDeferred(cause.to_string())));
            }
        }
    }

    /// The last commit before the task exits, retried briefly; what still cannot
    /// be written is counted as dropped and reported.
    async fn finish(mut self) -> Result<(), StoreError> {
        let mut attempt = 1;
        loop {
            match self.try_commit().await {
                Ok(()) => return Ok(()),
                Err(_) if attempt < FINAL_ATTEMPTS => {
                    sleep(FINAL_PAUSE * attempt).await;
                    attempt += 1;
                }
                Err(e) => {
                    let lost = self.batch.steps.len();
                    Counters::add(&self.counters.steps_dropped, lost as u64);
                    error!(
                        cause = %e,
                        lost_steps = lost,
                        lost_other = self.batch.ops.len(),
                        "the recorder is stopping with data it could not write: it is lost"
                    );
                    return Err(StoreError::from(e.into_cause()));
                }
            }
        }
    }
}
