//! Reading recorded episodes back: episodes, their agents and their steps, with
//! observations decoded and actions parsed.
//!
//! Meant for tests, replays and exporters, not for the hot path: each call loads
//! everything it returns into memory.

use sqlx::Row;
use sqlx::sqlite::SqliteRow;
use tandem_env::{Action, Observation};

use crate::columns::{obs_at, opt_u32_at, opt_u64_at, u32_at, u64_bits_at};
use crate::obs_codec::decode_obs_after;
use crate::{Outcome, Store, StoreError};

/// An episode as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct Episode {
    pub id: i64,
    pub game_id: i64,
    pub idx: u32,
    pub seed: u64,
    pub env_id: String,
    pub env_version: u32,
    pub started_us: i64,
    pub ended_us: Option<i64>,
    pub steps: Option<u32>,
    /// `None` while the episode is running (or was left open by a crash).
    pub outcome: Option<Outcome>,
    /// The sum of the agents' returns.
    pub total_return: Option<f64>,
}

/// One agent of an episode as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredEpisodeAgent {
    pub agent: u32,
    pub agent_name: String,
    pub actor: String,
    pub reset_obs: Observation,
    pub episode_return: Option<f64>,
}

/// One agent's row of one step as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredStep {
    pub episode_id: i64,
    pub t: u32,
    pub agent: u32,
    pub action: Action,
    pub actor: String,
    /// `"keys"`, `"default"`, `"policy"`, `"fallback"` or `"correction"`; kept as
    /// text so that data from a newer Tandem still reads.
    pub source: String,
    pub keys: Option<String>,
    pub reward: f64,
    pub terminated: bool,
    pub truncated: bool,
    pub obs: Observation,
    pub input_seq: Option<u64>,
    pub client_frame: Option<u64>,
    pub client_ts: Option<f64>,
    pub server_us: i64,
    /// Feedback the seat's participant gave on this step, if any.
    pub feedback: Option<f64>,
}

pub(crate) const EPISODE_COLUMNS: &str = "id, game_id, idx, seed, env_id, env_version, started_us, \
     ended_us, steps, outcome, reason, total_return";

impl Store {
    /// The episode with this id.
    pub async fn episode(&self, episode_id: i64) -> Result<Option<Episode>, StoreError> {
        let sql = format!("SELECT {EPISODE_COLUMNS} FROM episodes WHERE id = ?");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(episode_id)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(episode_from_row).transpose()
    }

    /// Every episode in the database, in the order they were recorded.
    pub async fn all_episodes(&self) -> Result<Vec<Episode>, StoreError> {
        let sql = format!("SELECT {EPISODE_COLUMNS} FROM episodes ORDER BY id");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(episode_from_row).collect()
    }

    /// The game's episodes in index order.
    pub async fn episodes_for_game(&self, game_id: i64) -> Result<Vec<Episode>, StoreError> {
        let sql = format!("SELECT {EPISODE_COLUMNS} FROM episodes WHERE game_id = ? ORDER BY idx");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(game_id)
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(episode_from_row).collect()
    }

    /// The episode's agents in agent order, with their reset observations.
    pub async fn episode_agents(
        &self,
        episode_id: i64,
    ) -> Result<Vec<StoredEpisodeAgent>, StoreError> {
        let rows = sqlx::query(
            "SELECT agent, agent_name, actor, reset_obs, episode_return FROM episode_agents
             WHERE episode_id = ? ORDER BY agent",
        )
        .bind(episode_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(StoredEpisodeAgent {
                    agent: u32_at(r, "agent")?,
                    agent_name: r.try_get("agent_name")?,
                    actor: r.try_get("actor")?,
                    reset_obs: obs_at(r, "reset_obs")?,
                    episode_return: r.try_get("episode_return")?,
                })
            })
            .collect()
    }

    /// The episode's step rows, ordered by step then agent.
    pub async fn steps_for_episode(&self, episode_id: i64) -> Result<Vec<StoredStep>, StoreError> {
        self.steps_for_episode_until(episode_id, u32::MAX).await
    }

    /// The episode's step rows up to step `last_t`, ordered by step then
    /// agent: a long episode read in part, for a viewer that shows a part.
    pub async fn steps_for_episode_until(
        &self,
        episode_id: i64,
        last_t: u32,
    ) -> Result<Vec<StoredStep>, StoreError> {
        let rows = sqlx::query(
            "SELECT episode_id, t, agent, action, actor, source, keys, reward, terminated,
                 truncated, obs, input_seq, client_frame, client_ts, server_us, feedback
             FROM steps WHERE episode_id = ? AND t <= ? ORDER BY t, agent",
        )
        .bind(episode_id)
        .bind(i64::from(last_t))
        .fetch_all(self.pool())
        .await?;
        // Large observations are stored as deltas against the agent's previous
        // one, starting from its reset observation: decode in order.
        let mut previous: Vec<Option<Observation>> = self
            .episode_agents(episode_id)
            .await?
            .into_iter()
            .map(|a| Some(a.reset_obs))
            .collect();
        rows.iter()
            .map(|r| step_from_row(r, &mut previous))
            .collect()
    }

    /// Step rows in the whole database (one per agent per step).
    pub async fn count_steps(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM steps")
            .fetch_one(self.pool())
            .await?)
    }

    /// Episodes in the whole database.
    pub async fn count_episodes(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM episodes")
            .fetch_one(self.pool())
            .await?)
    }
}

pub(crate) fn episode_from_row(r: &SqliteRow) -> Result<Episode, StoreError> {
    let outcome: Option<String> = r.try_get("outcome")?;
    let reason: Option<String> = r.try_get("reason")?;
    let outcome = match outcome.as_deref() {
        None => None,
        Some("complete") => Some(Outcome::Complete),
        Some("interrupted") => Some(Outcome::Interrupted {
            reason: reason.unwrap_or_default(),
        }),
        Some(other) => return Err(StoreError::corrupt(format!("outcome {other:?}"))),
    };
    Ok(Episode {
        id: r.try_get("id")?,
        game_id: r.try_get("game_id")?,
        idx: u32_at(r, "idx")?,
        seed: u64_bits_at(r, "seed")?,
        env_id: r.try_get("env_id")?,
        env_version: u32_at(r, "env_version")?,
        started_us: r.try_get("started_us")?,
        ended_us: r.try_get("ended_us")?,
        steps: opt_u32_at(r, "steps")?,
        outcome,
        total_return: r.try_get("total_return")?,
    })
}

fn step_from_row(
    r: &SqliteRow,
    previous: &mut Vec<Option<Observation>>,
) -> Result<StoredStep, StoreError> {
    let agent = u32_at(r, "agent")?;
    let slot = agent as usize;
    if previous.len() <= slot {
        previous.resize(slot + 1, None);
    }
    let blob: Vec<u8> = r.try_get("obs")?;
    let obs = decode_obs_after(&blob, previous[slot].as_ref())?;
    previous[slot] = Some(obs.clone());
    let action: String = r.try_get("action")?;
    let action = serde_json::from_str(&action)
        .map_err(|e| StoreError::corrupt(format!("action {action:?}: {e}")))?;
    Ok(StoredStep {
        episode_id: r.try_get("episode_id")?,
        t: u32_at(r, "t")?,
        agent,
        action,
        actor: r.try_get("actor")?,
        source: r.try_get("source")?,
        keys: r.try_get("keys")?,
        reward: r.try_get("reward")?,
        terminated: r.try_get("terminated")?,
        truncated: r.try_get("truncated")?,
        obs,
        input_seq: opt_u64_at(r, "input_seq")?,
        client_frame: opt_u64_at(r, "client_frame")?,
        client_ts: r.try_get("client_ts")?,
        server_us: r.try_get("server_us")?,
        feedback: r.try_get("feedback")?,
    })
}
