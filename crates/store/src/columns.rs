//! Reading typed values out of rows: every conversion that can fail (a count that
//! does not fit `u32`, JSON that does not parse, an observation blob) becomes a
//! [`StoreError`] naming the column, never a panic.

use serde_json::Value;
use sqlx::Row;
use sqlx::sqlite::SqliteRow;
use tandem_env::Observation;

use crate::StoreError;
use crate::obs_codec::decode_obs;

/// A non-negative INTEGER column that must fit `u32` (indices, counts, versions).
pub(crate) fn u32_at(row: &SqliteRow, col: &str) -> Result<u32, StoreError> {
    let v: i64 = row.try_get(col)?;
    u32::try_from(v).map_err(|_| StoreError::corrupt(format!("{col} = {v} is out of range")))
}

/// A nullable [`u32_at`].
pub(crate) fn opt_u32_at(row: &SqliteRow, col: &str) -> Result<Option<u32>, StoreError> {
    let v: Option<i64> = row.try_get(col)?;
    v.map(|v| {
        u32::try_from(v).map_err(|_| StoreError::corrupt(format!("{col} = {v} is out of range")))
    })
    .transpose()
}

/// A nullable non-negative INTEGER column read as `u64`.
pub(crate) fn opt_u64_at(row: &SqliteRow, col: &str) -> Result<Option<u64>, StoreError> {
    let v: Option<i64> = row.try_get(col)?;
    v.map(|v| u64::try_from(v).map_err(|_| StoreError::corrupt(format!("{col} = {v} is negative"))))
        .transpose()
}

/// A TEXT column holding JSON.
pub(crate) fn json_at(row: &SqliteRow, col: &str) -> Result<Value, StoreError> {
    let text: String = row.try_get(col)?;
    serde_json::from_str(&text).map_err(|e| StoreError::corrupt(format!("{col}: {e}")))
}

/// A BLOB column in the `obs_codec` format.
pub(crate) fn obs_at(row: &SqliteRow, col: &str) -> Result<Observation, StoreError> {
    let blob: Vec<u8> = row.try_get(col)?;
    decode_obs(&blob)
}

/// A `u64` stored bit for bit in a signed INTEGER column (SQLite has no u64).
pub(crate) fn u64_bits_at(row: &SqliteRow, col: &str) -> Result<u64, StoreError> {
    let v: i64 = row.try_get(col)?;
    Ok(u64::from_ne_bytes(v.to_ne_bytes()))
}

/// The signed INTEGER a `u64` is stored as, bit for bit (see [`u64_bits_at`]).
pub(crate) fn u64_bits(v: u64) -> i64 {
    i64::from_ne_bytes(v.to_ne_bytes())
}

/// A `u64` the client sent (input sequence, frame number), or NULL if it does not
/// fit SQLite's signed integers: an absurd client value is not worth failing a
/// batch over.
pub(crate) fn client_u64(v: Option<u64>) -> Option<i64> {
    v.and_then(|v| i64::try_from(v).ok())
}
