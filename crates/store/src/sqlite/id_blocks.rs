//! Blocks of episode ids from SQLite's `id_blocks` table (migration 0003).
//!
//! Each reservation is one `UPDATE ... RETURNING`, a transaction of its own, so
//! two recorders (in one process or several) can never be given overlapping
//! blocks: SQLite lets one writer at a time move the counter. The same statement
//! works on PostgreSQL (with `GREATEST` for the two-argument `MAX`), where the
//! row lock does the same job.

use std::ops::Range;

use sqlx::sqlite::SqlitePool;

use crate::StoreError;
use crate::backend::{BoxFuture, IdBlocks};

/// The `id_blocks` row episode ids come from.
const EPISODES: &str = "episodes";

/// Reserves episode ids through the store's pool.
pub(crate) struct SqliteIdBlocks {
    pool: SqlitePool,
}

impl SqliteIdBlocks {
    pub(crate) fn new(pool: SqlitePool) -> Self {
        SqliteIdBlocks { pool }
    }

    async fn try_reserve(&self, n: i64) -> Result<Range<i64>, StoreError> {
        // The counter is lifted above the highest stored id first: nothing but
        // the recorder inserts episodes, but a file restored or edited by hand
        // must not make the recorder collide with what is there.
        let next: Option<i64> = sqlx::query_scalar(
            "UPDATE id_blocks
             SET next = MAX(next, (SELECT COALESCE(MAX(id), 0) + 1 FROM episodes)) + ?
             WHERE name = ?
             RETURNING next",
        )
        .bind(n)
        .bind(EPISODES)
        .fetch_optional(&self.pool)
        .await?;
        let end = next.ok_or_else(|| StoreError::corrupt("id_blocks has no 'episodes' row"))?;
        Ok(end - n..end)
    }

    async fn try_give_back(&self, unused: Range<i64>) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE id_blocks SET next = ? WHERE name = ? AND next = ?")
            .bind(unused.start)
            .bind(EPISODES)
            .bind(unused.end)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }
}

impl IdBlocks for SqliteIdBlocks {
    fn reserve(&self, n: i64) -> BoxFuture<'_, Result<Range<i64>, StoreError>> {
        Box::pin(self.try_reserve(n))
    }

    fn give_back(&self, unused: Range<i64>) -> BoxFuture<'_, Result<bool, StoreError>> {
        Box::pin(self.try_give_back(unused))
    }
}
