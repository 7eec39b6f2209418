//! The researchers who may use the console: `console_users` (migration 0006).
//!
//! The store keeps names and password hashes only; hashing and checking
//! passwords is the server's (`tandem_server::accounts`), so no password ever
//! reaches this crate.

use sqlx::Row;

use crate::{Store, StoreError, now_us};

/// A console user as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsoleUser {
    pub id: i64,
    pub name: String,
    /// An argon2id PHC string.
    pub password_hash: String,
}

impl Store {
    /// Adds a console user; [`StoreError::Duplicate`] if the name is taken.
    pub async fn add_console_user(
        &self,
        name: &str,
        password_hash: &str,
    ) -> Result<i64, StoreError> {
        let row = sqlx::query(
            "INSERT INTO console_users (name, password_hash, created_us) VALUES (?, ?, ?)
             RETURNING id",
        )
        .bind(name)
        .bind(password_hash)
        .bind(now_us())
        .fetch_one(self.pool())
        .await?;
        Ok(row.try_get("id")?)
    }

    /// The console user called `name`, if there is one.
    pub async fn console_user(&self, name: &str) -> Result<Option<ConsoleUser>, StoreError> {
        let row = sqlx::query("SELECT id, name, password_hash FROM console_users WHERE name = ?")
            .bind(name)
            .fetch_optional(self.pool())
            .await?;
        row.map(|r| {
            Ok(ConsoleUser {
                id: r.try_get("id")?,
                name: r.try_get("name")?,
                password_hash: r.try_get("password_hash")?,
            })
        })
        .transpose()
    }

    /// How many console users there are: none means no console at all.
    pub async fn count_console_users(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM console_users")
            .fetch_one(self.pool())
            .await?)
    }
}
