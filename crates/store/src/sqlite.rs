//! SQLite's side of the recorder's seam (`backend.rs`): the statements that write
//! batches and reserve episode ids. A PostgreSQL backend would be a sibling of
//! this module.
//!
//! - `batch`: [`SqliteBatchSink`], batches as multi-row INSERTs in one transaction.
//! - `id_blocks`: [`SqliteIdBlocks`], blocks of episode ids from `id_blocks`.

mod batch;
mod id_blocks;

pub(crate) use batch::SqliteBatchSink;
pub(crate) use id_blocks::SqliteIdBlocks;
