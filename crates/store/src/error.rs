//! [`StoreError`]: everything that can go wrong in the store, by kind.
//!
//! Callers mostly log these; the variants exist for the few that a caller handles
//! differently (a duplicate participant is looked up instead; a closed recorder
//! means the server is shutting down). The database driver's own errors travel
//! inside as a [`DatabaseError`], opaque, so callers never depend on the driver.

use std::error::Error;
use std::fmt;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database URL names a backend this build cannot use, such as PostgreSQL.
    #[error("unsupported database: {0}")]
    Unsupported(String),
    /// SQLite refused or failed a statement (I/O error, disk full, locked too long).
    #[error("database error: {0}")]
    Database(#[source] DatabaseError),
    /// A row would break a uniqueness rule: a participant with this token, public id
    /// or external id already exists, or an episode index is already taken.
    #[error("already exists: {0}")]
    Duplicate(String),
    /// The schema migrations could not be applied (for example, the file was
    /// written by a newer Tandem).
    #[error("could not migrate the database: {0}")]
    Migrate(#[source] DatabaseError),
    /// A stored value could not be read back: a malformed observation blob, JSON
    /// that does not parse, or a number out of range.
    #[error("corrupt stored data: {0}")]
    Corrupt(String),
    /// The recorder could not commit this yet (disk full, I/O error). Nothing is
    /// lost: the writer keeps the data and retries at its next flush, so there is
    /// nothing to resend. Carries the database's message.
    #[error("not written yet, will retry: {0}")]
    WriteDeferred(String),
    /// The database cannot be written: a read-only file, folder or
    /// filesystem, or a URL with `mode=ro`. Tandem records every step, so a
    /// server does not start on it; reading (`Store::open_to_read`) still works.
    #[error(
        "the database {0} cannot be written (a read-only file, folder or filesystem?); \
         Tandem records every step, so it does not start on it"
    )]
    ReadOnly(String),
    /// The recorder's writer has stopped (shut down or never started), so the
    /// request was not carried out.
    #[error("the recorder has stopped")]
    RecorderClosed,
}

impl From<sqlx::Error> for StoreError {
    /// Unique-constraint violations become [`StoreError::Duplicate`], so callers can
    /// tell "already there" from "the database is broken".
    fn from(err: sqlx::Error) -> Self {
        if let sqlx::Error::Database(db) = &err
            && db.kind() == sqlx::error::ErrorKind::UniqueViolation
        {
            return StoreError::Duplicate(db.message().to_string());
        }
        StoreError::Database(DatabaseError(Box::new(err)))
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(err: sqlx::migrate::MigrateError) -> Self {
        StoreError::Migrate(DatabaseError(Box::new(err)))
    }
}

/// What the database (or its driver) said, to show or log; its `source()` chain
/// is the driver's.
#[derive(Debug)]
pub struct DatabaseError(Box<dyn Error + Send + Sync>);

impl fmt::Display for DatabaseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl Error for DatabaseError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.0.source()
    }
}

impl StoreError {
    /// A [`StoreError::Corrupt`] for a column that could not be interpreted.
    pub(crate) fn corrupt(what: impl std::fmt::Display) -> Self {
        StoreError::Corrupt(what.to_string())
    }
}
