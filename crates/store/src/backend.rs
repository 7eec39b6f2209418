//! The seam between the recorder and a database: what the writer's batching
//! policy (`writer.rs`) and the episode id allocator (`episode_ids.rs`) need a
//! backend to do, and nothing else.
//!
//! The policy decides *when* to write, what to keep after a failure and what to
//! drop; a backend only turns a [`Batch`] into statements and reports how it went.
//! SQLite's side is in `sqlite/`; a PostgreSQL backend would be a sibling module
//! implementing the same two traits, leaving the policy and the store's callers
//! untouched.

use std::fmt;
use std::future::Future;
use std::ops::Range;
use std::pin::Pin;

use crate::StoreError;
use crate::batch::Batch;

/// Why a batch, or one record of it, was not written.
#[derive(Debug)]
pub(crate) enum WriteError {
    /// The database refused the data itself (a constraint, a value too big or of
    /// the wrong type): writing the same records again cannot succeed.
    Rejected(sqlx::Error),
    /// The write failed (I/O error, disk full, locked too long): the same records
    /// may well be written later.
    Failed(sqlx::Error),
}

impl WriteError {
    /// The database's own error.
    pub(crate) fn into_cause(self) -> sqlx::Error {
        match self {
            WriteError::Rejected(e) | WriteError::Failed(e) => e,
        }
    }
}

impl fmt::Display for WriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WriteError::Rejected(e) | WriteError::Failed(e) => e.fmt(f),
        }
    }
}

/// The records a record-by-record write left out, by index into the batch's
/// `starts`, `steps` and `ops`, each in increasing order with the database's
/// reason.
#[derive(Debug, Default)]
pub(crate) struct Rejected {
    pub(crate) starts: Vec<(usize, sqlx::Error)>,
    pub(crate) steps: Vec<(usize, sqlx::Error)>,
    pub(crate) ops: Vec<(usize, sqlx::Error)>,
}

/// Writes the recorder's batches. Owned by the writer alone, so it may keep a
/// connection and prepared statements of its own.
///
/// Both methods write in one transaction: episode starts first, then steps, then
/// episode ends and events, in batch order, so an episode is never stored as
/// ended without the steps sent before its end. Neither keeps anything of the
/// batch: on failure the policy keeps it and asks again.
pub(crate) trait BatchSink {
    /// Writes the whole batch, or nothing of it.
    fn write_batch(&mut self, batch: &Batch)
    -> impl Future<Output = Result<(), WriteError>> + Send;

    /// Writes the batch record by record, leaving out (and reporting) the records
    /// the database rejects and committing the rest. For a batch that
    /// [`BatchSink::write_batch`] answered with [`WriteError::Rejected`]. An error
    /// means nothing was written.
    fn write_each(
        &mut self,
        batch: &Batch,
    ) -> impl Future<Output = Result<Rejected, WriteError>> + Send;
}

/// A future a backend returns through `dyn`.
pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Hands out blocks of episode ids that no other recorder, in this process or any
/// other sharing the database, is given. Shared by every clone of a recorder,
/// hence `dyn` and `Sync`.
pub(crate) trait IdBlocks: Send + Sync {
    /// Reserves the next `n` ids, all above every episode id already stored, in
    /// one short transaction of their own.
    fn reserve(&self, n: i64) -> BoxFuture<'_, Result<Range<i64>, StoreError>>;

    /// Returns `unused`, the unused tail of the blocks this recorder reserved, to
    /// the database, but only if no block was reserved since (its end is still
    /// where the next block would start): ids stay dense across clean restarts
    /// and are never handed out twice. Returns whether they were taken back.
    fn give_back(&self, unused: Range<i64>) -> BoxFuture<'_, Result<bool, StoreError>>;
}
