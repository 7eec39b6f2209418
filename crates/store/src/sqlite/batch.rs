//! The recorder's batches as SQLite statements: episode starts, multi-row step
//! and timing INSERTs (`multi_row`), episode ends and events, all in one
//! `BEGIN IMMEDIATE` transaction.
//!
//! Only the statements live here; when to write and what to do after a failure
//! is the writer's (`writer.rs`).

use sqlx::Connection;
use sqlx::sqlite::{SqliteConnection, SqlitePool};
use tracing::warn;

use crate::backend::{BatchSink, Rejected, WriteError};
use crate::batch::{Batch, EncodedAgent, EncodedStep, Op, PendingStart};
use crate::columns::u64_bits;
use crate::events::insert_event;
use crate::sqlite::multi_row::{MultiRowInsert, Query};
use crate::timing::TimingInserts;

/// Columns of one step row, in the order they are bound.
const STEP_COLUMNS: [&str; 17] = [
    "episode_id",
    "t",
    "agent",
    "action",
    "actor",
    "source",
    "keys",
    "reward",
    "terminated",
    "truncated",
    "obs",
    "input_seq",
    "client_frame",
    "client_ts",
    "server_us",
    "feedback",
    "tick",
];

/// Writes batches to SQLite through the writer's own pool.
pub(crate) struct SqliteBatchSink {
    /// One connection of the writer's own (see `Store::writer_pool`).
    pool: SqlitePool,
    steps: MultiRowInsert,
    timing: TimingInserts,
}

impl SqliteBatchSink {
    pub(crate) fn new(pool: SqlitePool) -> Self {
        SqliteBatchSink {
            pool,
            steps: MultiRowInsert::new("steps", &STEP_COLUMNS),
            timing: TimingInserts::new(),
        }
    }
}

impl BatchSink for SqliteBatchSink {
    /// One transaction: every episode start, every step, then every op.
    async fn write_batch(&mut self, batch: &Batch) -> Result<(), WriteError> {
        let mut conn = self.pool.acquire().await.map_err(classify)?;
        let written = self.write_batch_on(&mut conn, batch).await;
        if written.is_err() {
            // A COMMIT that failed (a full disk, an I/O error) can leave the
            // connection inside a transaction that sqlx still counts, and
            // every later BEGIN on it would fail too: start the retry afresh.
            conn.close_on_drop();
        }
        written
    }

    /// One transaction again, but each record under its own savepoint, so a
    /// record the database rejects is rolled back alone and the rest commit.
    async fn write_each(&mut self, batch: &Batch) -> Result<Rejected, WriteError> {
        let mut conn = self.pool.acquire().await.map_err(classify)?;
        let written = self
            .try_write_each(&mut conn, batch)
            .await
            .map_err(classify);
        if written.is_err() {
            conn.close_on_drop();
        }
        written
    }
}

impl SqliteBatchSink {
    async fn write_batch_on(
        &mut self,
        conn: &mut SqliteConnection,
        batch: &Batch,
    ) -> Result<(), WriteError> {
        let mut tx = conn.begin_with("BEGIN IMMEDIATE").await.map_err(classify)?;
        for pending in &batch.starts {
            insert_start(&mut tx, pending).await.map_err(classify)?;
        }
        let rows: Vec<Row<'_>> = batch.steps.iter().flat_map(rows_of).collect();
        self.steps
            .insert(&mut tx, &rows, bind_row)
            .await
            .map_err(classify)?;
        // Timing reports (thousands a second under load) go in multi-row
        // INSERTs after the other ops; nothing else refers to their rows.
        let mut timing = Vec::new();
        for op in &batch.ops {
            match op {
                Op::Timing(record) => timing.push(record),
                op => apply_op(&mut tx, op, &self.timing)
                    .await
                    .map_err(classify)?,
            }
        }
        self.timing
            .insert(&mut tx, &timing)
            .await
            .map_err(classify)?;
        tx.commit().await.map_err(classify)
    }

    async fn try_write_each(
        &self,
        conn: &mut SqliteConnection,
        batch: &Batch,
    ) -> Result<Rejected, sqlx::Error> {
        let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
        let mut rejected = Rejected::default();
        for (i, pending) in batch.starts.iter().enumerate() {
            sqlx::query("SAVEPOINT record").execute(&mut *tx).await?;
            match insert_start(&mut tx, pending).await {
                Ok(()) => {}
                Err(e) if is_rejection(&e) => {
                    sqlx::query("ROLLBACK TO record").execute(&mut *tx).await?;
                    rejected.starts.push((i, e));
                }
                Err(e) => return Err(e),
            }
            sqlx::query("RELEASE record").execute(&mut *tx).await?;
        }
        for (i, step) in batch.steps.iter().enumerate() {
            let rows: Vec<Row<'_>> = rows_of(step).collect();
            sqlx::query("SAVEPOINT record").execute(&mut *tx).await?;
            match self.steps.insert(&mut tx, &rows, bind_row).await {
                Ok(()) => {}
                Err(e) if is_rejection(&e) => {
                    sqlx::query("ROLLBACK TO record").execute(&mut *tx).await?;
                    rejected.steps.push((i, e));
                }
                Err(e) => return Err(e),
            }
            sqlx::query("RELEASE record").execute(&mut *tx).await?;
        }
        for (i, op) in batch.ops.iter().enumerate() {
            sqlx::query("SAVEPOINT record").execute(&mut *tx).await?;
            match apply_op(&mut tx, op, &self.timing).await {
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
}

/// Sorts SQLite's errors into the two the writer's policy tells apart.
fn classify(e: sqlx::Error) -> WriteError {
    if is_rejection(&e) {
        WriteError::Rejected(e)
    } else {
        WriteError::Failed(e)
    }
}

/// Whether SQLite refused the data itself (a constraint, a value too big or of
/// the wrong type) rather than failed to write it: retrying cannot help.
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

async fn apply_op(
    conn: &mut SqliteConnection,
    op: &Op,
    timing: &TimingInserts,
) -> Result<(), sqlx::Error> {
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
        Op::Timing(record) => timing.insert(conn, &[record]).await,
        Op::EndEpisode { episode_id, end } => {
            let done = sqlx::query(
                "UPDATE episodes SET ended_us = ?, steps = ?, outcome = ?, reason = ?,
                     total_return = ?, final_info = ?
                 WHERE id = ? AND outcome IS NULL",
            )
            .bind(end.ended_us)
            .bind(i64::from(end.steps))
            .bind(end.outcome.as_str())
            .bind(end.outcome.reason())
            .bind(end.returns.iter().sum::<f64>())
            .bind(
                end.final_info
                    .as_ref()
                    .map(|i| serde_json::Value::Object(i.clone()).to_string()),
            )
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

/// One row to insert: a step, an agent's index, and the agent's part.
type Row<'a> = (&'a EncodedStep, usize, &'a EncodedAgent);

fn rows_of(step: &EncodedStep) -> impl Iterator<Item = Row<'_>> {
    step.agents
        .iter()
        .enumerate()
        .map(move |(agent, a)| (step, agent, a))
}

/// Binds one row's values in [`STEP_COLUMNS`] order. The values are cloned: the
/// batch must survive a failed commit.
fn bind_row<'q>(query: Query<'q>, &(step, agent, a): &Row<'_>) -> Query<'q> {
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
        .bind(step.tick)
}
