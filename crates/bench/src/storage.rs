//! What the database holds once the child server has stopped.
//!
//! Read only after the server exited, so every step it played has either been
//! committed or been lost for good: the count is final.
//!
//! The server counts a step per tick of a game, however many agents it has
//! (`steps_played` in `/metrics`), while the database holds one `steps` row per
//! agent per tick: a two-player kitchen writes two rows a tick. So the ticks
//! recorded are the distinct `(episode_id, t)` pairs, which compare with
//! `steps_played`; and a tick stored with some of its agents' rows missing is
//! caught separately, by comparing the rows with what each stored tick should
//! have (one per agent of its episode, from `episode_agents`).

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use sqlx::{Pool, Sqlite};

/// Counts in the database file.
#[derive(Clone, Debug)]
pub struct Recorded {
    /// Ticks with at least one row: distinct `(episode_id, t)`.
    pub steps: u64,
    /// `steps` rows, one per agent per tick.
    pub agent_rows: u64,
    /// The rows the stored ticks should have: for each, its episode's agents.
    pub agent_rows_expected: u64,
    pub episodes: u64,
    /// Steps the episodes' own records claim (`SUM(episodes.steps)`): equal to
    /// `steps` when no episode's end was stored without its steps.
    pub steps_claimed: u64,
    /// Games the lobby formed, by `matches.reason` (`full`, `human_timeout`);
    /// empty for an experiment without a multiplayer scene.
    pub matches: BTreeMap<String, u64>,
}

/// Ticks recorded: each `(episode_id, t)` once, whatever the number of agents
/// (the primary key's index answers this without reading rows).
const TICKS: &str = "SELECT COUNT(*) FROM (SELECT DISTINCT episode_id, t FROM steps)";
/// For each recorded tick, the number of agents its episode has.
const ROWS_EXPECTED: &str = "SELECT COALESCE(SUM(a.n), 0) \
     FROM (SELECT DISTINCT episode_id, t FROM steps) AS s \
     JOIN (SELECT episode_id, COUNT(*) AS n FROM episode_agents GROUP BY episode_id) AS a \
     USING (episode_id)";

pub async fn count(db: &Path) -> anyhow::Result<Recorded> {
    let options = SqliteConnectOptions::new().filename(db);
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .with_context(|| format!("cannot open {}", db.display()))?;
    let recorded = Recorded {
        steps: scalar(&pool, TICKS).await?,
        agent_rows: scalar(&pool, "SELECT COUNT(*) FROM steps").await?,
        agent_rows_expected: scalar(&pool, ROWS_EXPECTED).await?,
        episodes: scalar(&pool, "SELECT COUNT(*) FROM episodes").await?,
        steps_claimed: scalar(&pool, "SELECT COALESCE(SUM(steps), 0) FROM episodes").await?,
        matches: matches(&pool).await?,
    };
    pool.close().await;
    Ok(recorded)
}

/// One count; a negative one (impossible for these queries) reads as 0.
async fn scalar(pool: &Pool<Sqlite>, sql: &'static str) -> anyhow::Result<u64> {
    sqlx::query_scalar::<_, i64>(sql)
        .fetch_one(pool)
        .await
        .with_context(|| sql.to_string())
        .map(|n| u64::try_from(n).unwrap_or(0))
}

async fn matches(pool: &Pool<Sqlite>) -> anyhow::Result<BTreeMap<String, u64>> {
    let sql = "SELECT reason, COUNT(*) FROM matches GROUP BY reason";
    let rows: Vec<(String, i64)> = sqlx::query_as(sql)
        .fetch_all(pool)
        .await
        .with_context(|| sql.to_string())?;
    Ok(rows
        .into_iter()
        .map(|(reason, n)| (reason, u64::try_from(n).unwrap_or(0)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ticks and agent rows are told apart: a two-agent tick is one step of two
    /// rows, and a tick missing one agent's row is caught by the row count.
    #[tokio::test]
    async fn counts_ticks_and_agent_rows() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let db = dir.path().join("t.db");
        let options = SqliteConnectOptions::new()
            .filename(&db)
            .create_if_missing(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .expect("opens");
        // Only the columns the counts read.
        for sql in [
            "CREATE TABLE steps (episode_id INTEGER, t INTEGER, agent INTEGER, \
             PRIMARY KEY (episode_id, t, agent))",
            "CREATE TABLE episode_agents (episode_id INTEGER, agent INTEGER)",
            "CREATE TABLE episodes (id INTEGER PRIMARY KEY, steps INTEGER)",
            "CREATE TABLE matches (id INTEGER PRIMARY KEY, reason TEXT)",
            // Episode 1: two agents, three ticks, agent 1's row of tick 3 lost.
            "INSERT INTO episode_agents VALUES (1, 0), (1, 1), (2, 0)",
            "INSERT INTO steps VALUES (1,1,0),(1,1,1),(1,2,0),(1,2,1),(1,3,0)",
            // Episode 2: one agent, two ticks.
            "INSERT INTO steps VALUES (2,1,0),(2,2,0)",
            "INSERT INTO episodes VALUES (1, 3), (2, 2)",
            "INSERT INTO matches (reason) VALUES ('full'), ('full'), ('human_timeout')",
        ] {
            sqlx::query(sql).execute(&pool).await.expect(sql);
        }
        pool.close().await;
        let r = count(&db).await.expect("counts");
        assert_eq!((r.steps, r.steps_claimed, r.episodes), (5, 5, 2));
        assert_eq!((r.agent_rows, r.agent_rows_expected), (7, 8));
        assert_eq!(r.matches.get("full"), Some(&2));
        assert_eq!(r.matches.get("human_timeout"), Some(&1));
    }
}
