//! [`Store`]: an open database, its connection settings and its migrations.
//!
//! Every other module adds methods to `Store` for the tables it owns; this one only
//! decides how the file is opened, because durability is decided there. The pool
//! stays inside the crate: callers speak to the store in domain types, so the
//! backend behind it can change.

use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::StoreError;

/// The schema, embedded at compile time from `crates/store/migrations/`.
static MIGRATOR: Migrator = sqlx::migrate!();

/// How long a statement waits for another connection's write lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Connections in the pool. SQLite has one writer at a time however many there
/// are; the rest serve readers (admin pages, exports) alongside the recorder.
const MAX_CONNECTIONS: u32 = 8;

/// How safely the database stores what it is given (see [`Store::durability`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Durability {
    /// Commits are appended to a write-ahead log, so readers never block the
    /// writer (SQLite: `journal_mode = WAL`).
    pub write_ahead_log: bool,
    /// Every commit reaches the disk before it returns, so an OS crash or power
    /// cut loses at most the recorder's flush interval (SQLite: `synchronous =
    /// FULL`).
    pub synced_commits: bool,
    /// A row that points at a missing row (a step of an unknown episode) is
    /// refused (SQLite: `foreign_keys = ON`).
    pub foreign_keys: bool,
}

/// An open Tandem database. Cheap to clone: clones share one connection pool.
#[derive(Clone, Debug)]
pub struct Store {
    pool: SqlitePool,
    /// How to open another connection to the same database (the writer's own).
    options: SqliteConnectOptions,
    /// An in-memory database exists only inside its own connections, so the
    /// writer must share the pool instead of opening its own.
    in_memory: bool,
}

impl Store {
    /// Opens (creating if missing) the database at `db` and brings its schema up to
    /// date.
    ///
    /// `db` is a file path such as `tandem.db` or a `sqlite:` URL
    /// (`sqlite://data/tandem.db`, `sqlite::memory:`). A `postgres://` URL is
    /// recognised but not supported yet. Re-opening an up-to-date file is a no-op
    /// apart from the connection.
    pub async fn open(db: &str) -> Result<Store, StoreError> {
        let options = if db.starts_with("postgres://") || db.starts_with("postgresql://") {
            return Err(StoreError::Unsupported(
                "PostgreSQL support is not built yet".into(),
            ));
        } else if db.starts_with("sqlite:") {
            SqliteConnectOptions::from_str(db)?
        } else if let Some((scheme, _)) = db.split_once("://") {
            return Err(StoreError::Unsupported(format!(
                "{scheme}:// URLs (use a file path, a sqlite: URL or a postgres:// URL)"
            )));
        } else {
            SqliteConnectOptions::new().filename(db)
        };

        let options = options
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // Our promise is that a crash loses at most the last flush interval.
            // With WAL, NORMAL already survives a crash of this process (a commit is
            // in the OS's hands once written), but it only syncs the log at
            // checkpoints, so an OS crash or power cut could lose every commit since
            // the last checkpoint: a minute or more of a quiet study. FULL syncs the
            // log at each commit. Because the recorder commits steps in batches, that
            // is about one sync per second plus one per participant action, which
            // is cheap next to breaking the promise.
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);

        let pool = SqlitePoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .connect_with(options.clone())
            .await?;
        MIGRATOR.run(&pool).await?;
        probe_writable(&pool, db).await?;
        let in_memory = db.contains(":memory:") || db.contains("mode=memory");
        Ok(Store {
            pool,
            options,
            in_memory,
        })
    }

    /// Opens an existing database only to read it (`tandem verify`, readers
    /// beside a running server): nothing is created or migrated, and a
    /// read-only file is fine.
    pub async fn open_to_read(db: &str) -> Result<Store, StoreError> {
        let options = if db.starts_with("sqlite:") {
            SqliteConnectOptions::from_str(db)?
        } else {
            SqliteConnectOptions::new().filename(db)
        };
        let options = options.read_only(true).busy_timeout(BUSY_TIMEOUT);
        let pool = SqlitePoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .connect_with(options.clone())
            .await?;
        Ok(Store {
            pool,
            options,
            in_memory: false,
        })
    }

    /// A pool of one connection of its own for the recorder's writer, so that
    /// recording never waits for a connection behind participants' page loads
    /// and scene moves (seen in load tests: 10 s waits at 2,000 arrivals).
    pub(crate) fn writer_pool(&self) -> SqlitePool {
        if self.in_memory {
            return self.pool.clone();
        }
        SqlitePoolOptions::new()
            .max_connections(1)
            .connect_lazy_with(self.options.clone())
    }

    /// The connection pool, for this crate's queries.
    pub(crate) fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// The durability settings in force, read back from a connection rather than
    /// assumed from how it was opened: for benches, tests and health checks.
    pub async fn durability(&self) -> Result<Durability, StoreError> {
        // One connection for all three: `synchronous` and `foreign_keys` are
        // per-connection settings.
        let mut conn = self.pool.acquire().await?;
        let journal_mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&mut *conn)
            .await?;
        let synchronous: i64 = sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(&mut *conn)
            .await?;
        let foreign_keys: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
            .fetch_one(&mut *conn)
            .await?;
        Ok(Durability {
            write_ahead_log: journal_mode.eq_ignore_ascii_case("wal"),
            // 2 is FULL, 3 is EXTRA: both sync the log at every commit.
            synced_commits: synchronous >= 2,
            foreign_keys: foreign_keys == 1,
        })
    }

    /// Closes every connection, waiting for those in use to be returned. SQLite
    /// checkpoints the log into the main file when the last one closes. Call it
    /// after the recorder has shut down.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Fails with [`StoreError::ReadOnly`] unless the database takes a write lock:
/// migrations write nothing to an up-to-date file, so without this a
/// read-only database would be found only at the first participant.
async fn probe_writable(pool: &SqlitePool, db: &str) -> Result<(), StoreError> {
    // A write that is rolled back: a read-only connection takes the lock of
    // `BEGIN IMMEDIATE` but refuses the statement.
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let wrote = sqlx::query("CREATE TABLE tandem_write_probe (x)")
        .execute(&mut *tx)
        .await;
    tx.rollback().await?;
    match wrote {
        Ok(_) => Ok(()),
        Err(sqlx::Error::Database(e))
            if e.code()
                .and_then(|c| c.parse::<i32>().ok())
                .is_some_and(|c| c & 0xff == SQLITE_READONLY) =>
        {
            Err(StoreError::ReadOnly(db.to_string()))
        }
        Err(e) => Err(e.into()),
    }
}

/// SQLite's primary result code for a write to a read-only database.
const SQLITE_READONLY: i32 = 8;
