//! What the database holds once the child server has stopped.
//!
//! Read only after the server exited, so every step it played has either been
//! committed or been lost for good: the count is final. Steps are counted as rows
//! of agent 0 (one row per agent per step), which is the number of joint steps
//! whatever the number of agents.

use std::path::Path;

use anyhow::Context;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};

/// Counts in the database file.
#[derive(Clone, Copy, Debug)]
pub struct Recorded {
    pub steps: u64,
    pub episodes: u64,
    /// Steps the episodes' own records claim (`SUM(episodes.steps)`): equal to
    /// `steps` when no episode's end was stored without its steps.
    pub steps_claimed: u64,
}

pub async fn count(db: &Path) -> anyhow::Result<Recorded> {
    let options = SqliteConnectOptions::new().filename(db);
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .with_context(|| format!("cannot open {}", db.display()))?;
    let scalar = |sql: &'static str| {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>(sql)
                .fetch_one(&pool)
                .await
                .with_context(|| sql.to_string())
                .map(|n| u64::try_from(n).unwrap_or(0))
        }
    };
    let recorded = Recorded {
        steps: scalar("SELECT COUNT(*) FROM steps WHERE agent = 0").await?,
        episodes: scalar("SELECT COUNT(*) FROM episodes").await?,
        steps_claimed: scalar("SELECT COALESCE(SUM(steps), 0) FROM episodes").await?,
    };
    pool.close().await;
    Ok(recorded)
}
