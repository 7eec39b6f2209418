//! Episode indices within a game, reserved in blocks before they are used.
//!
//! A game's episode starts reach the disk with the recorder's next batch, up
//! to a second later. Were the next index after a crash read from the
//! episodes stored, an episode the crash cut off in its first second would
//! leave no trace and its index would be played again (with a fixed scene
//! seed, the same episode). So a game reserves indices in blocks: a new game
//! holds its first block from creation (no extra commit), a game coming back
//! reserves the next block above everything stored or reserved, and a clean
//! stop gives the unused rest back. After a crash the rest of the block is
//! skipped, and the reservation says which indices were lost.

use std::ops::Range;

use crate::{Store, StoreError};

/// Indices a game reserves at a time.
pub const EPISODE_INDEX_BLOCK: u32 = 100;

/// A block of episode indices for one game's task.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EpisodeIndices {
    /// The indices reserved, to use in order.
    pub block: Range<u32>,
    /// Indices reserved earlier and never recorded: episodes a crash cut off
    /// before their start was stored (or reserved and never begun).
    pub skipped: Option<Range<u32>>,
}

impl Store {
    /// Reserves the next `count` episode indices of `game_id`, above every
    /// episode stored and every index reserved before.
    pub async fn reserve_episode_indices(
        &self,
        game_id: i64,
        count: u32,
    ) -> Result<EpisodeIndices, StoreError> {
        let mut tx = self.pool().begin_with("BEGIN IMMEDIATE").await?;
        let (recorded, reserved): (i64, i64) = sqlx::query_as(
            "SELECT (SELECT COALESCE(MAX(idx) + 1, 0) FROM episodes WHERE game_id = ?1),
                    episode_idx_reserved
             FROM games WHERE id = ?1",
        )
        .bind(game_id)
        .fetch_one(&mut *tx)
        .await?;
        let index = |n: i64| {
            u32::try_from(n).map_err(|_| StoreError::corrupt(format!("episode index {n}")))
        };
        let (recorded, reserved) = (index(recorded)?, index(reserved)?);
        let start = recorded.max(reserved);
        let end = start.saturating_add(count);
        sqlx::query("UPDATE games SET episode_idx_reserved = ? WHERE id = ?")
            .bind(i64::from(end))
            .bind(game_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(EpisodeIndices {
            block: start..end,
            skipped: (reserved > recorded).then_some(recorded..reserved),
        })
    }

    /// Gives back the indices from `next` to `end` that a stopping task
    /// reserved and did not use, if nothing was reserved since. Returns
    /// whether they were taken back.
    pub async fn release_episode_indices(
        &self,
        game_id: i64,
        next: u32,
        end: u32,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE games SET episode_idx_reserved = ? WHERE id = ? AND episode_idx_reserved = ?",
        )
        .bind(i64::from(next))
        .bind(game_id)
        .bind(i64::from(end))
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }
}
