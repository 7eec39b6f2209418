//! The researchers who may use the console: `console_users` (migration 0006),
//! their logins, `console_sessions` (migration 0007), and what they did,
//! `console_audit`, with the study controls it records (migration 0008).
//!
//! The store keeps names and password hashes only; hashing and checking
//! passwords is the server's (`tandem_server::accounts`), so no password ever
//! reaches this crate.

use sqlx::Row;

use crate::{Store, StoreError, now_us};

/// A live console login: whose, and the CSRF token its forms carry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsoleSession {
    pub user_id: i64,
    pub user_name: String,
    pub csrf: String,
    pub expires_us: i64,
}

/// One line of the audit log.
#[derive(Clone, Debug, PartialEq)]
pub struct AuditEntry {
    pub at_us: i64,
    pub user_name: String,
    pub action: String,
    pub detail: serde_json::Value,
}

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

    /// Starts a login session (`token_hash`: the cookie token's SHA-256, hex).
    pub async fn create_console_session(
        &self,
        token_hash: &str,
        user_id: i64,
        csrf: &str,
        expires_us: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO console_sessions (token_hash, user_id, csrf, created_us, expires_us)
             VALUES (?, ?, ?, ?, ?)",
        )
        .bind(token_hash)
        .bind(user_id)
        .bind(csrf)
        .bind(now_us())
        .bind(expires_us)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The session with this token hash, if it has not expired (expired
    /// ones are deleted as they are found).
    pub async fn console_session(
        &self,
        token_hash: &str,
    ) -> Result<Option<ConsoleSession>, StoreError> {
        let now = now_us();
        sqlx::query("DELETE FROM console_sessions WHERE expires_us <= ?")
            .bind(now)
            .execute(self.pool())
            .await?;
        let row = sqlx::query(
            "SELECT s.user_id, u.name, s.csrf, s.expires_us FROM console_sessions s
             JOIN console_users u ON u.id = s.user_id WHERE s.token_hash = ?",
        )
        .bind(token_hash)
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| {
            Ok(ConsoleSession {
                user_id: r.try_get("user_id")?,
                user_name: r.try_get("name")?,
                csrf: r.try_get("csrf")?,
                expires_us: r.try_get("expires_us")?,
            })
        })
        .transpose()
    }

    /// Ends a login session.
    pub async fn delete_console_session(&self, token_hash: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM console_sessions WHERE token_hash = ?")
            .bind(token_hash)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Pauses or resumes admissions to `experiment_id`, recording who did it
    /// in the audit log in the same transaction.
    pub async fn set_admissions_paused(
        &self,
        experiment_id: &str,
        paused: bool,
        user_name: &str,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        sqlx::query("UPDATE experiments SET admissions_paused = ? WHERE id = ?")
            .bind(paused)
            .bind(experiment_id)
            .execute(&mut *tx)
            .await?;
        let action = if paused {
            "pause_admissions"
        } else {
            "resume_admissions"
        };
        let detail = serde_json::json!({"experiment": experiment_id});
        insert_audit(&mut tx, user_name, action, &detail).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Whether a researcher paused admissions to `experiment_id`.
    pub async fn admissions_paused(&self, experiment_id: &str) -> Result<bool, StoreError> {
        let paused: Option<bool> =
            sqlx::query_scalar("SELECT admissions_paused FROM experiments WHERE id = ?")
                .bind(experiment_id)
                .fetch_optional(self.pool())
                .await?;
        Ok(paused.unwrap_or(false))
    }

    /// The audit log, oldest first.
    pub async fn console_audit(&self) -> Result<Vec<AuditEntry>, StoreError> {
        let rows =
            sqlx::query("SELECT at_us, user_name, action, detail FROM console_audit ORDER BY id")
                .fetch_all(self.pool())
                .await?;
        rows.iter()
            .map(|r| {
                let detail: String = r.try_get("detail")?;
                Ok(AuditEntry {
                    at_us: r.try_get("at_us")?,
                    user_name: r.try_get("user_name")?,
                    action: r.try_get("action")?,
                    detail: serde_json::from_str(&detail)
                        .map_err(|e| StoreError::corrupt(format!("audit detail: {e}")))?,
                })
            })
            .collect()
    }

    /// Sets (or, with `None`, clears) the participant cap of `experiment_id`,
    /// recording who did it in the audit log in the same transaction.
    pub async fn set_participant_cap(
        &self,
        experiment_id: &str,
        cap: Option<u64>,
        user_name: &str,
    ) -> Result<(), StoreError> {
        let stored = cap.map(|c| i64::try_from(c).unwrap_or(i64::MAX));
        let mut tx = self.pool().begin().await?;
        sqlx::query("UPDATE experiments SET participant_cap = ? WHERE id = ?")
            .bind(stored)
            .bind(experiment_id)
            .execute(&mut *tx)
            .await?;
        let detail = serde_json::json!({"experiment": experiment_id, "cap": cap});
        insert_audit(&mut tx, user_name, "set_participant_cap", &detail).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Closes `experiment_id` for good, recording who did it in the audit log
    /// in the same transaction. Closing a closed study changes nothing.
    pub async fn close_study(
        &self,
        experiment_id: &str,
        user_name: &str,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        sqlx::query("UPDATE experiments SET closed_us = ? WHERE id = ? AND closed_us IS NULL")
            .bind(now_us())
            .bind(experiment_id)
            .execute(&mut *tx)
            .await?;
        let detail = serde_json::json!({"experiment": experiment_id});
        insert_audit(&mut tx, user_name, "close_study", &detail).await?;
        tx.commit().await?;
        Ok(())
    }

    /// When a researcher closed `experiment_id`, if they did.
    pub async fn study_closed(&self, experiment_id: &str) -> Result<Option<i64>, StoreError> {
        let closed: Option<Option<i64>> =
            sqlx::query_scalar("SELECT closed_us FROM experiments WHERE id = ?")
                .bind(experiment_id)
                .fetch_optional(self.pool())
                .await?;
        Ok(closed.flatten())
    }

    /// Writes one line of the audit log for a change made elsewhere (ending a
    /// game is the game task's to record).
    pub async fn audit(
        &self,
        user_name: &str,
        action: &str,
        detail: &serde_json::Value,
    ) -> Result<(), StoreError> {
        let mut conn = self.pool().acquire().await?;
        insert_audit(&mut conn, user_name, action, detail).await
    }

    /// The participant cap set from the console, if any.
    pub async fn participant_cap(&self, experiment_id: &str) -> Result<Option<u64>, StoreError> {
        let cap: Option<Option<i64>> =
            sqlx::query_scalar("SELECT participant_cap FROM experiments WHERE id = ?")
                .bind(experiment_id)
                .fetch_optional(self.pool())
                .await?;
        Ok(cap.flatten().and_then(|c| u64::try_from(c).ok()))
    }
}

/// One line of the audit log, written in the transaction of the change it
/// records.
async fn insert_audit(
    conn: &mut sqlx::SqliteConnection,
    user_name: &str,
    action: &str,
    detail: &serde_json::Value,
) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO console_audit (at_us, user_name, action, detail) VALUES (?, ?, ?, ?)")
        .bind(now_us())
        .bind(user_name)
        .bind(action)
        .bind(detail.to_string())
        .execute(conn)
        .await?;
    Ok(())
}
