//! Multi-row INSERTs drawn from a fixed set of statements: one per power of
//! two of rows, up to a cap.
//!
//! A row per statement costs the writer a round trip to SQLite's connection
//! thread (two thread wake-ups) per row; at thousands of rows a second that
//! was most of the recorder's cost. A batch of any size is written as full
//! statements of the largest size plus one statement per set bit of the
//! remainder, so a table needs only a handful of statements and every one
//! stays in the connection's statement cache.

use std::sync::Arc;

use sqlx::sqlite::{SqliteArguments, SqliteConnection};
use sqlx::{AssertSqlSafe, Sqlite};

/// A query with some rows bound.
pub(crate) type Query<'q> = sqlx::query::Query<'q, Sqlite, SqliteArguments>;

/// Statements insert 2^k rows for k up to this, fewer for wide rows (see
/// [`MAX_VARIABLES`]).
const MAX_ROWS_LOG2: u32 = 8;

/// Bound variables per statement at most: well under SQLite's limit of 32,766.
const MAX_VARIABLES: usize = 8_192;

/// The INSERTs of one table, by size.
pub(crate) struct MultiRowInsert {
    /// `by_log2[k]` inserts 2^k rows.
    by_log2: Vec<Arc<str>>,
}

impl MultiRowInsert {
    /// `columns`: the columns each row binds, in the order it binds them.
    pub(crate) fn new(table: &str, columns: &[&str]) -> Self {
        let one_row = format!("({})", vec!["?"; columns.len()].join(", "));
        let columns_listed = columns.join(", ");
        let by_log2 = (0..=MAX_ROWS_LOG2)
            .take_while(|k| (1usize << k) * columns.len() <= MAX_VARIABLES)
            .map(|k| {
                let values = vec![one_row.as_str(); 1 << k].join(", ");
                Arc::from(format!(
                    "INSERT INTO {table} ({columns_listed}) VALUES {values}"
                ))
            })
            .collect();
        MultiRowInsert { by_log2 }
    }

    /// Inserts `rows`, each bound by `bind` (which must bind one value per
    /// column, in order).
    pub(crate) async fn insert<'q, R>(
        &self,
        conn: &mut SqliteConnection,
        rows: &[R],
        bind: impl Fn(Query<'q>, &R) -> Query<'q>,
    ) -> Result<(), sqlx::Error> {
        let largest = self.by_log2.len().saturating_sub(1) as u32;
        let mut rest = rows;
        while !rest.is_empty() {
            let log2 = rest.len().ilog2().min(largest);
            let (chunk, tail) = rest.split_at(1 << log2);
            let sql = self.by_log2[log2 as usize].clone();
            let query = chunk
                .iter()
                .fold(sqlx::query(AssertSqlSafe(sql)), |query, row| {
                    bind(query, row)
                });
            query.execute(&mut *conn).await?;
            rest = tail;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wide_rows_get_fewer_rows_per_statement() {
        let narrow = MultiRowInsert::new("t", &["a", "b"]);
        assert_eq!(narrow.by_log2.len(), 9, "1 to 256 rows");
        let wide: Vec<String> = (0..100).map(|i| format!("c{i}")).collect();
        let wide: Vec<&str> = wide.iter().map(String::as_str).collect();
        let wide = MultiRowInsert::new("t", &wide);
        // 64 rows × 100 columns = 6,400 variables; 128 rows would be 12,800.
        assert_eq!(wide.by_log2.len(), 7);
        assert!(narrow.by_log2[2].starts_with("INSERT INTO t (a, b) VALUES (?, ?), (?, ?)"));
    }
}
