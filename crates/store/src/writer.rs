//! The recorder's writer: the only code that writes steps and episodes.
//!
//! It takes [`Command`]s in order from one channel, encodes observations, and
//! buffers episode starts, steps, episode ends and events until a commit is due:
//! when the batch reaches [`RecorderConfig::batch_rows`] rows, when the oldest
//! buffered record is [`RecorderConfig::flush_interval`] old, or when a command
//! that needs an answer arrives. A commit writes everything buffered in one
//! transaction: episode starts first, then steps (multi-row INSERTs drawn from a
//! fixed set of prepared statements), then ends and events.
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

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use sqlx::sqlite::{SqliteArguments, SqliteConnection, SqlitePool};
use sqlx::{AssertSqlSafe, Sqlite};
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, sleep, sleep_until};
use tracing::{error, warn};

use crate::columns::{client_u64, u64_bits};
use crate::events::insert_event;
use tandem_env::Observation;

use crate::obs_codec::{DELTA_MIN_LEN, KEYFRAME_INTERVAL, ObsEncoder, payload_len};
use crate::recorder::{Command, Counters, QueuedEvent};
use crate::{EpisodeEnd, EpisodeStart, RecorderConfig, StepRecord, StoreError};

/// Columns of one step row, in the order they are bound.
const STEP_COLUMNS: &str = "episode_id, t, agent, action, actor, source, keys, reward, \
     terminated, truncated, obs, input_seq, client_frame, client_ts, server_us, feedback";
const STEP_COLUMN_COUNT: usize = 16;

/// Statements insert 2^k rows for k up to this: 256 rows × 16 columns = 4,096
/// bound variables, well under SQLite's limit of 32,766. A batch of any size is
/// written as full 256-row statements plus one statement per set bit of the
/// remainder, so the writer only ever prepares nine statements and every one
/// stays in the connection's statement cache.
const MAX_ROWS_LOG2: u32 = 8;

/// The longest pause between retries of a failing commit.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// After this many failed commits in a row the log says data is at risk.
const LOUD_AFTER_FAILURES: u32 = 5;
/// Attempts at the final commit when stopping, and the pause between them.
const FINAL_ATTEMPTS: u32 = 3;
const FINAL_PAUSE: Duration = Duration::from_millis(200);
/// Bookkeeping bytes counted per buffered row besides its blobs and strings.
const ROW_OVERHEAD: usize = 96;

/// A step whose observations are encoded and actions serialized, ready to bind.
struct EncodedStep {
    episode_id: i64,
    t: i64,
    server_us: i64,
    agents: Vec<EncodedAgent>,
}

struct EncodedAgent {
    action: String,
    actor: String,
    source: &'static str,
    keys: Option<String>,
    reward: f64,
    terminated: bool,
    truncated: bool,
    obs: Vec<u8>,
    input_seq: Option<i64>,
    client_frame: Option<i64>,
    client_ts: Option<f64>,
    feedback: Option<f64>,
}

/// A buffered episode start: written before any step, so its steps find it.
struct PendingStart {
    id: i64,
    start: EpisodeStart,
    /// The agents' reset observations, encoded.
    blobs: Vec<Vec<u8>>,
}

/// A buffered write other than a step.
enum Op {
    EndEpisode { episode_id: i64, end: EpisodeEnd },
    Event(QueuedEvent),
}

struct PendingOp {
    op: Op,
    /// Answered after the first commit attempt that includes the op; `None` once
    /// answered (a failed attempt answers "deferred" and keeps the op).
    reply: Option<oneshot::Sender<Result<(), StoreError>>>,
}

/// What a record-by-record commit left out.
#[derive(Default)]
struct Rejected {
    /// Indices into the buffered steps, with the database's reason.
    steps: Vec<(usize, sqlx::Error)>,
    /// Indices into the buffered ops, with the database's reason.
    ops: Vec<(usize, sqlx::Error)>,
}

pub(crate) struct Writer {
    pool: SqlitePool,
    config: RecorderConfig,
    counters: Arc<Counters>,
    encoder: ObsEncoder,
    /// Per (episode, agent): the last large observation encoded, which the next
    /// one is stored as a delta against (see `obs_codec`). Emptied per episode at
    /// its end, and when a step of it is dropped (the chain would break).
    previous_obs: HashMap<(i64, usize), Observation>,
    inserts: StepInserts,
    /// Episode starts not yet committed; written first in each transaction.
    starts: Vec<PendingStart>,
    /// Steps not yet committed, in arrival order.
    steps: Vec<EncodedStep>,
    /// Rows in `steps` (one per agent per step).
    step_rows: usize,
    /// Episode ends and events not yet committed, in arrival order. They are
    /// written after `steps` in the same transaction, so an end is never stored
    /// without the steps sent before it.
    ops: Vec<PendingOp>,
    /// Approximate memory held by `steps` and `ops`.
    buffered_bytes: usize,
    /// When the oldest uncommitted record arrived; `None` when nothing is buffered.
    oldest: Option<Instant>,
    /// Failed commits in a row, and when the next automatic retry may happen.
    failures: u32,
    retry_at: Option<Instant>,
}

impl Writer {
    pub(crate) fn new(pool: SqlitePool, config: RecorderConfig, counters: Arc<Counters>) -> Self {
        Writer {
            pool,
            config,
            counters,
            encoder: ObsEncoder::new(),
            previous_obs: HashMap::new(),
            inserts: StepInserts::new(),
            starts: Vec::new(),
            steps: Vec::new(),
            step_rows: 0,
            ops: Vec::new(),
            buffered_bytes: 0,
            oldest: None,
            failures: 0,
            retry_at: None,
        }
    }

    /// Runs until told to shut down or until every sender is gone, then makes a
    /// last commit. Returns that commit's error if it failed for good.
    pub(crate) async fn run(
        mut self,
        mut rx: mpsc::UnboundedReceiver<Command>,
    ) -> Result<(), StoreError> {
        loop {
            let command = match self.deadline() {
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
            match command {
                // Refuse new commands but handle those already queued: everything
                // sent before the shutdown is committed.
                Some(Command::Shutdown) => rx.close(),
                Some(command) => self.handle(command).await,
                None => break,
            }
            // Under a constant stream of commands the timer branch above may never
            // be polled; this keeps the flush interval honest anyway.
            if self.deadline().is_some_and(|d| Instant::now() >= d) {
                let _ = self.commit().await;
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
            Command::StartEpisode(id, start) => self.buffer_start(id, start),
            Command::EndEpisode(episode_id, end, reply) => {
                self.previous_obs
                    .retain(|(episode, _), _| *episode != episode_id);
                let wants_answer = reply.is_some();
                self.buffer_op(Op::EndEpisode { episode_id, end }, reply);
                if wants_answer {
                    // Answers the reply, whichever way it goes.
                    let _ = self.commit().await;
                }
            }
            Command::Event(event) => self.buffer_op(Op::Event(event), None),
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
            self.previous_obs
                .retain(|(episode, _), _| *episode != step.episode_id);
            return;
        }
        let episode_id = step.episode_id;
        let keyframe = step.t.is_multiple_of(KEYFRAME_INTERVAL);
        let agents: Vec<EncodedAgent> = step
            .agents
            .into_iter()
            .enumerate()
            .map(|(agent, a)| EncodedAgent {
                action: serde_json::to_string(&a.action).unwrap_or_else(|e| {
                    warn!(cause = %e, "an action could not be serialized; storing null");
                    "null".to_owned()
                }),
                actor: a.actor,
                source: a.source.as_str(),
                keys: a.keys,
                reward: a.reward,
                terminated: a.terminated,
                truncated: a.truncated,
                obs: {
                    // Small observations (most) never delta: skip the map for them.
                    let key = (episode_id, agent);
                    let large = payload_len(&a.obs) >= DELTA_MIN_LEN;
                    let previous = if large && !keyframe {
                        self.previous_obs.get(&key)
                    } else {
                        None
                    };
                    let blob = self.encoder.encode_after(&a.obs, previous);
                    if large {
                        self.previous_obs.insert(key, a.obs);
                    }
                    blob
                },
                input_seq: client_u64(a.input_seq),
                client_frame: client_u64(a.client_frame),
                client_ts: a.client_ts,
                feedback: a.feedback,
            })
            .collect();
        self.buffered_bytes += agents
            .iter()
            .map(|a| {
                ROW_OVERHEAD
                    + a.obs.len()
                    + a.action.len()
                    + a.actor.len()
                    + a.keys.as_ref().map_or(0, String::len)
            })
            .sum::<usize>();
        self.step_rows += agents.len();
        self.steps.push(EncodedStep {
            episode_id: step.episode_id,
            t: i64::from(step.t),
            server_us: step.server_us,
            agents,
        });
        self.oldest.get_or_insert_with(Instant::now);
    }

    fn buffer_op(&mut self, op: Op, reply: Option<oneshot::Sender<Result<(), StoreError>>>) {
        self.buffered_bytes += ROW_OVERHEAD;
        self.ops.push(PendingOp { op, reply });
        self.oldest.get_or_insert_with(Instant::now);
    }

    /// Commits everything buffered. On failure the buffer is kept for a retry
    /// and the error says so ([`StoreError::WriteDeferred`]).
    async fn commit(&mut self) -> Result<(), StoreError> {
        self.try_commit()
            .await
            .map_err(|e| StoreError::WriteDeferred(e.to_string()))
    }

    async fn try_commit(&mut self) -> Result<(), sqlx::Error> {
        if self.starts.is_empty() && self.steps.is_empty() && self.ops.is_empty() {
            return Ok(());
        }
        let result = match self.write_all().await {
            Err(e) if is_rejection(&e) => {
                Counters::add(&self.counters.write_errors, 1);
                warn!(
                    cause = %e,
                    steps = self.steps.len(),
                    "the database rejected a batch; writing it record by record"
                );
                self.write_one_by_one().await
            }
            other => other.map(|()| Rejected::default()),
        };
        match result {
            Ok(rejected) => {
                self.committed(rejected);
                Ok(())
            }
            Err(e) => {
                self.failed(&e);
                Err(e)
            }
        }
    }

    /// One transaction: every buffered episode start, every step, then every op.
    async fn write_all(&self) -> Result<(), sqlx::Error> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        for pending in &self.starts {
            insert_start(&mut tx, pending).await?;
        }
        let rows: Vec<Row<'_>> = self.steps.iter().flat_map(rows_of).collect();
        self.inserts.insert(&mut tx, &rows).await?;
        for pending in &self.ops {
            apply_op(&mut tx, &pending.op).await?;
        }
        tx.commit().await
    }

    /// One transaction again, but each record under its own savepoint, so a
    /// record the database rejects is rolled back alone and the rest commit.
    async fn write_one_by_one(&self) -> Result<Rejected, sqlx::Error> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let mut rejected = Rejected::default();
        for pending in &self.starts {
            sqlx::query("SAVEPOINT record").execute(&mut *tx).await?;
            match insert_start(&mut tx, pending).await {
                Ok(()) => {}
                Err(e) if is_rejection(&e) => {
                    sqlx::query("ROLLBACK TO record").execute(&mut *tx).await?;
                    error!(
                        episode_id = pending.id,
                        game_id = pending.start.game_id,
                        idx = pending.start.idx,
                        cause = %e,
                        "the database rejected an episode start; its steps will be rejected too"
                    );
                }
                Err(e) => return Err(e),
            }
            sqlx::query("RELEASE record").execute(&mut *tx).await?;
        }
        for (i, step) in self.steps.iter().enumerate() {
            let rows: Vec<Row<'_>> = rows_of(step).collect();
            sqlx::query("SAVEPOINT record").execute(&mut *tx).await?;
            match self.inserts.insert(&mut tx, &rows).await {
                Ok(()) => {}
                Err(e) if is_rejection(&e) => {
                    sqlx::query("ROLLBACK TO record").execute(&mut *tx).await?;
                    rejected.steps.push((i, e));
                }
                Err(e) => return Err(e),
            }
            sqlx::query("RELEASE record").execute(&mut *tx).await?;
        }
        for (i, pending) in self.ops.iter().enumerate() {
            sqlx::query("SAVEPOINT record").execute(&mut *tx).await?;
            match apply_op(&mut tx, &pending.op).await {
                Ok(()) => {}
                Err(e) if is_rejection(&e) => {
                    sqlx::query("ROLLBACK TO record").execute(&mut *tx).await?;
                    rejected.ops.push((i, e));
                }
                Err(e) => return Err(e),
            }
            sqlx::query("RELEASE record").execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(rejected)
    }

    /// Bookkeeping after a successful commit: count, answer, empty the buffer.
    fn committed(&mut self, rejected: Rejected) {
        for (i, cause) in &rejected.steps {
            if let Some(step) = self.steps.get(*i) {
                error!(
                    episode_id = step.episode_id,
                    t = step.t,
                    cause = %cause,
                    "the database rejected a step; it is dropped"
                );
            }
        }
        let written = self.steps.len() - rejected.steps.len();
        Counters::add(&self.counters.steps_written, written as u64);
        Counters::add(&self.counters.steps_dropped, rejected.steps.len() as u64);
        if written > 0 {
            Counters::add(&self.counters.batches_written, 1);
        }

        let mut op_errors = rejected.ops.into_iter().peekable();
        for (i, pending) in self.ops.drain(..).enumerate() {
            let outcome = match op_errors.next_if(|(j, _)| *j == i) {
                Some((_, cause)) => {
                    error!(cause = %cause, "the database rejected an episode end or event; it is dropped");
                    Err(StoreError::from(cause))
                }
                None => Ok(()),
            };
            if let Some(reply) = pending.reply {
                let _ = reply.send(outcome);
            }
        }

        self.starts.clear();
        self.steps.clear();
        self.step_rows = 0;
        self.buffered_bytes = 0;
        self.oldest = None;
        self.failures = 0;
        self.retry_at = None;
    }

    /// Bookkeeping after a failed commit: log, count, schedule the retry, and
    /// tell waiting callers their data is kept.
    fn failed(&mut self, cause: &sqlx::Error) {
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
            buffered_steps = self.steps.len(),
            buffered_bytes = self.buffered_bytes,
            retry_in_ms = backoff.as_millis() as u64,
            "the recorder could not commit; keeping the batch to retry"
        );
        if self.failures == LOUD_AFTER_FAILURES || self.failures.is_multiple_of(100) {
            error!(
                failures = self.failures,
                buffered_steps = self.steps.len(),
                "RECORDING IS FAILING: steps are piling up in memory and will be lost \
                 if the server stops before the database accepts them"
            );
        }
        for pending in &mut self.ops {
            if let Some(reply) = pending.reply.take() {
                let _ = reply.send(Err(StoreError::WriteDeferred(cause.to_string())));
            }
        }
    }

    fn buffer_start(&mut self, id: i64, mut start: EpisodeStart) {
        let blobs: Vec<Vec<u8>> = start
            .agents
            .iter()
            .map(|a| self.encoder.encode(&a.reset_obs))
            .collect();
        for (agent, a) in start.agents.iter_mut().enumerate() {
            // The reset observation is kept as the base of the first step's delta
            // when it is large; the encoded blob is all the insert needs.
            let obs = std::mem::replace(&mut a.reset_obs, Observation::vector(Vec::new()));
            if payload_len(&obs) >= DELTA_MIN_LEN {
                self.previous_obs.insert((id, agent), obs);
            }
        }
        self.buffered_bytes += ROW_OVERHEAD + blobs.iter().map(Vec::len).sum::<usize>();
        self.starts.push(PendingStart { id, start, blobs });
        self.oldest.get_or_insert_with(Instant::now);
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
                    let lost = self.steps.len();
                    Counters::add(&self.counters.steps_dropped, lost as u64);
                    error!(
                        cause = %e,
                        lost_steps = lost,
                        lost_other = self.ops.len(),
                        "the recorder is stopping with data it could not write: it is lost"
                    );
                    return Err(StoreError::from(e));
                }
            }
        }
    }
}

/// Whether the database refused the data itself (a constraint, a value too big or
/// of the wrong type) rather than failed to write it: retrying cannot help.
fn is_rejection(e: &sqlx::Error) -> bool {
    const SQLITE_TOOBIG: i64 = 18;
    const SQLITE_CONSTRAINT: i64 = 19;
    const SQLITE_MISMATCH: i64 = 20;
    let sqlx::Error::Database(db) = e else {
        return false;
    };
    let primary = db
        .code()
        .and_then(|c| c.parse::<i64>().ok())
        .map(|c| c & 0xff);
    matches!(
        primary,
        Some(SQLITE_TOOBIG | SQLITE_CONSTRAINT | SQLITE_MISMATCH)
    )
}

/// Inserts an episode, with the id the recorder gave it, and its agents.
async fn insert_start(
    conn: &mut SqliteConnection,
    pending: &PendingStart,
) -> Result<(), sqlx::Error> {
    let start = &pending.start;
    sqlx::query(
        "INSERT INTO episodes (id, game_id, idx, seed, env_id, env_version, started_us)
         VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(pending.id)
    .bind(start.game_id)
    .bind(i64::from(start.idx))
    .bind(u64_bits(start.seed))
    .bind(&start.env_id)
    .bind(i64::from(start.env_version))
    .bind(start.started_us)
    .execute(&mut *conn)
    .await?;
    for (agent, (a, blob)) in start.agents.iter().zip(&pending.blobs).enumerate() {
        sqlx::query(
            "INSERT INTO episode_agents (episode_id, agent, agent_name, actor, reset_obs)
             VALUES (?, ?, ?, ?, ?)",
        )
        .bind(pending.id)
        .bind(agent as i64)
        .bind(&a.agent_name)
        .bind(&a.actor)
        .bind(blob)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// One row to insert: a step, an agent's index, and the agent's part.
type Row<'a> = (&'a EncodedStep, usize, &'a EncodedAgent);

fn rows_of(step: &EncodedStep) -> impl Iterator<Item = Row<'_>> {
    step.agents
        .iter()
        .enumerate()
        .map(move |(agent, a)| (step, agent, a))
}

async fn apply_op(conn: &mut SqliteConnection, op: &Op) -> Result<(), sqlx::Error> {
    match op {
        Op::Event(e) => {
            insert_event(
                conn,
                e.at_us,
                e.participant_id,
                e.game_id,
                &e.kind,
                &e.detail,
            )
            .await
        }
        Op::EndEpisode { episode_id, end } => {
            let done = sqlx::query(
                "UPDATE episodes SET ended_us = ?, steps = ?, outcome = ?, reason = ?,
                     total_return = ?
                 WHERE id = ? AND outcome IS NULL",
            )
            .bind(end.ended_us)
            .bind(i64::from(end.steps))
            .bind(end.outcome.as_str())
            .bind(end.outcome.reason())
            .bind(end.returns.iter().sum::<f64>())
            .bind(episode_id)
            .execute(&mut *conn)
            .await?;
            if done.rows_affected() == 0 {
                warn!(
                    episode_id,
                    "end_episode: no open episode with this id (unknown or already ended); ignored"
                );
                return Ok(());
            }
            for (agent, ret) in end.returns.iter().enumerate() {
                sqlx::query(
                    "UPDATE episode_agents SET episode_return = ?
                     WHERE episode_id = ? AND agent = ?",
                )
                .bind(ret)
                .bind(episode_id)
                .bind(agent as i64)
                .execute(&mut *conn)
                .await?;
            }
            Ok(())
        }
    }
}

/// The prepared multi-row INSERTs for steps, by size (see [`MAX_ROWS_LOG2`]).
struct StepInserts {
    /// `by_log2[k]` inserts 2^k rows.
    by_log2: Vec<Arc<str>>,
}

impl StepInserts {
    fn new() -> Self {
        let one_row = format!("({})", vec!["?"; STEP_COLUMN_COUNT].join(", "));
        let by_log2 = (0..=MAX_ROWS_LOG2)
            .map(|k| {
                let values = vec![one_row.as_str(); 1 << k].join(", ");
                Arc::from(format!(
                    "INSERT INTO steps ({STEP_COLUMNS}) VALUES {values}"
                ))
            })
            .collect();
        StepInserts { by_log2 }
    }

    async fn insert(
        &self,
        conn: &mut SqliteConnection,
        rows: &[Row<'_>],
    ) -> Result<(), sqlx::Error> {
        let mut rest = rows;
        while !rest.is_empty() {
            let log2 = rest.len().ilog2().min(MAX_ROWS_LOG2);
            let (chunk, tail) = rest.split_at(1 << log2);
            let sql = self.by_log2[log2 as usize].clone();
            let mut query = sqlx::query(AssertSqlSafe(sql));
            for row in chunk {
                query = bind_row(query, row);
            }
            query.execute(&mut *conn).await?;
            rest = tail;
        }
        Ok(())
    }
}

/// Binds one row's values in [`STEP_COLUMNS`] order. The values are cloned: the
/// buffer must survive a failed commit.
fn bind_row<'q>(
    query: sqlx::query::Query<'q, Sqlite, SqliteArguments>,
    &(step, agent, a): &Row<'_>,
) -> sqlx::query::Query<'q, Sqlite, SqliteArguments> {
    query
        .bind(step.episode_id)
        .bind(step.t)
        .bind(agent as i64)
        .bind(a.action.clone())
        .bind(a.actor.clone())
        .bind(a.source)
        .bind(a.keys.clone())
        .bind(a.reward)
        .bind(a.terminated)
        .bind(a.truncated)
        .bind(a.obs.clone())
        .bind(a.input_seq)
        .bind(a.client_frame)
        .bind(a.client_ts)
        .bind(step.server_us)
        .bind(a.feedback)
}
