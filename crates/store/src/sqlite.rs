//! SQLite's side of the recorder's seam (`backend.rs`): the statements that write
//! batches and reserve episode ids. A PostgreSQL backend would be a sibling of
//! this module.
//!
//! - `batch`: [`SqliteBatchSink`], batches as multi-row INSERTs in one transaction.
//! - `id_blocks`: [`SqliteIdBlocks`], blocks of episode ids from `id_blocks`.
//! - `multi_row`: multi-row INSERTs from a fixed set of statements.

mod batch;
mod id_blocks;
mod multi_row;

pub(crate) use batch::SqliteBatchSink;
pub(crate) use id_blocks::SqliteIdBlocks;
pub(crate) use multi_row::MultiRowInsert;
