//! What the researcher's dashboard reads: where participants stand, when they
//! finished or went quiet, the latest events and episodes.
//!
//! Each query is bounded (a `LIMIT`, or a `GROUP BY` over scenes or minutes),
//! because the dashboard asks every second for as long as it is open, and a
//! long study must not make each second cost more.

use sqlx::{AssertSqlSafe, Row};

use crate::events::event_from_row;
use crate::read::{EPISODE_COLUMNS, episode_from_row};
use crate::{Episode, Event, Store, StoreError};

/// Participants at one scene.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SceneCount {
    pub scene_index: u32,
    /// Participants whose current scene this is (finished ones included, at
    /// their last scene).
    pub at: i64,
    /// Of those, how many have finished the study.
    pub finished: i64,
}

impl Store {
    /// Participants per current scene of `experiment_id`, by scene index.
    pub async fn scene_counts(&self, experiment_id: &str) -> Result<Vec<SceneCount>, StoreError> {
        let rows = sqlx::query(
            "SELECT scene_index, COUNT(*) AS at, COUNT(finished_us) AS finished
             FROM participants WHERE experiment_id = ? GROUP BY scene_index ORDER BY scene_index",
        )
        .bind(experiment_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(SceneCount {
                    scene_index: u32::try_from(r.try_get::<i64, _>("scene_index")?).unwrap_or(0),
                    at: r.try_get("at")?,
                    finished: r.try_get("finished")?,
                })
            })
            .collect()
    }

    /// Per scene index, how many participants of `experiment_id` have
    /// entered it (by their own path: plans order scenes differently).
    pub async fn scene_reached(&self, experiment_id: &str) -> Result<Vec<(u32, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT e.scene_index, COUNT(DISTINCT e.participant_id) AS n
             FROM scene_events e JOIN participants p ON p.id = e.participant_id
             WHERE p.experiment_id = ? AND e.event = 'entered' GROUP BY e.scene_index",
        )
        .bind(experiment_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                let index = u32::try_from(r.try_get::<i64, _>("scene_index")?).unwrap_or(0);
                Ok((index, r.try_get("n")?))
            })
            .collect()
    }

    /// Completions per minute: (the minute's start in µs since the epoch,
    /// participants who finished in it), oldest first.
    pub async fn completions_per_minute(
        &self,
        experiment_id: &str,
    ) -> Result<Vec<(i64, i64)>, StoreError> {
        self.per_minute(
            "SELECT finished_us / 60000000 AS minute, COUNT(*) AS n FROM participants
             WHERE experiment_id = ? AND finished_us IS NOT NULL
             GROUP BY minute ORDER BY minute",
            experiment_id,
        )
        .await
    }

    /// Participants who have not finished and have not moved for
    /// `quiet_us`, per minute of their last move (their arrival, or entering
    /// their current scene): the candidates for drop-outs. The caller leaves
    /// out whoever is still connected.
    pub async fn quiet_participants(
        &self,
        experiment_id: &str,
        quiet_us: i64,
        limit: i64,
    ) -> Result<Vec<(i64, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, COALESCE(scene_entered_us, created_us) AS last_us FROM participants
             WHERE experiment_id = ? AND finished_us IS NULL
               AND COALESCE(scene_entered_us, created_us) < ?
             ORDER BY last_us DESC LIMIT ?",
        )
        .bind(experiment_id)
        .bind(crate::now_us() - quiet_us)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("id")?, r.try_get("last_us")?)))
            .collect()
    }

    async fn per_minute(
        &self,
        sql: &'static str,
        experiment_id: &str,
    ) -> Result<Vec<(i64, i64)>, StoreError> {
        let rows = sqlx::query(sql)
            .bind(experiment_id)
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|r| {
                let minute: i64 = r.try_get("minute")?;
                Ok((minute * 60_000_000, r.try_get("n")?))
            })
            .collect()
    }

    /// The latest `limit` events of `experiment_id`'s games and participants,
    /// newest first.
    pub async fn recent_events(
        &self,
        experiment_id: &str,
        limit: i64,
    ) -> Result<Vec<Event>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, at_us, participant_id, game_id, kind, detail FROM events
             WHERE game_id IN (SELECT id FROM games WHERE experiment_id = ?1)
                OR participant_id IN (SELECT id FROM participants WHERE experiment_id = ?1)
             ORDER BY id DESC LIMIT ?2",
        )
        .bind(experiment_id)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(event_from_row).collect()
    }

    /// The latest `limit` episodes of `experiment_id`, newest first.
    pub async fn recent_episodes(
        &self,
        experiment_id: &str,
        limit: i64,
    ) -> Result<Vec<Episode>, StoreError> {
        let sql = format!(
            "SELECT {EPISODE_COLUMNS} FROM episodes
             WHERE game_id IN (SELECT id FROM games WHERE experiment_id = ?)
             ORDER BY id DESC LIMIT ?"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(experiment_id)
            .bind(limit)
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(episode_from_row).collect()
    }
}

/// One game scene's figures so far, for the dashboard.
#[derive(Clone, Debug, PartialEq)]
pub struct GameSceneStats {
    pub scene_index: u32,
    pub games: i64,
    pub complete_episodes: i64,
    pub mean_return: Option<f64>,
    pub mean_steps: Option<f64>,
    /// Seconds of episodes per participant who played one themselves.
    pub mean_play_s: Option<f64>,
    /// The mean of each number in the environment's info at the end of its
    /// complete episodes (the scene's latest 1,000), by key; at most 8 keys.
    pub info_means: Vec<(String, f64)>,
}

/// Most info keys a game scene's statistics show.
const MAX_INFO_KEYS: usize = 8;
/// Most recent episodes of a scene whose info is averaged.
const INFO_EPISODES: i64 = 1000;

impl Store {
    /// Per game scene of `experiment_id`: games, complete episodes, their
    /// mean return and length, and the mean time participants played.
    pub async fn game_scene_stats(
        &self,
        experiment_id: &str,
    ) -> Result<Vec<GameSceneStats>, StoreError> {
        let rows = sqlx::query(
            "SELECT g.scene_index,
                    COUNT(DISTINCT g.id) AS games,
                    COUNT(e.id) AS complete,
                    AVG(e.total_return) AS mean_return,
                    AVG(e.steps) AS mean_steps,
                    (SELECT AVG(played) FROM (
                       SELECT SUM(COALESCE(e2.ended_us, e2.started_us) - e2.started_us) / 1e6 AS played
                       FROM episodes e2 JOIN games g2 ON g2.id = e2.game_id
                       JOIN episode_agents a ON a.episode_id = e2.id AND a.actor LIKE 'participant:%'
                       WHERE g2.experiment_id = ?1 AND g2.scene_index = g.scene_index
                       GROUP BY a.actor)) AS mean_play_s
             FROM games g LEFT JOIN episodes e ON e.game_id = g.id AND e.outcome = 'complete'
             WHERE g.experiment_id = ?1
             GROUP BY g.scene_index ORDER BY g.scene_index",
        )
        .bind(experiment_id)
        .fetch_all(self.pool())
        .await?;
        let infos = self.info_means(experiment_id).await?;
        rows.iter()
            .map(|r| {
                let scene_index = u32::try_from(r.try_get::<i64, _>("scene_index")?).unwrap_or(0);
                Ok(GameSceneStats {
                    scene_index,
                    games: r.try_get("games")?,
                    complete_episodes: r.try_get("complete")?,
                    mean_return: r.try_get("mean_return")?,
                    mean_steps: r.try_get("mean_steps")?,
                    mean_play_s: r.try_get("mean_play_s")?,
                    info_means: infos.get(&scene_index).cloned().unwrap_or_default(),
                })
            })
            .collect()
    }

    /// Per scene index, the mean of each number in the final infos of its
    /// latest complete episodes (keys in the order first seen).
    async fn info_means(
        &self,
        experiment_id: &str,
    ) -> Result<std::collections::HashMap<u32, Vec<(String, f64)>>, StoreError> {
        let rows = sqlx::query(
            "SELECT scene_index, final_info FROM (
               SELECT g.scene_index, e.final_info,
                      ROW_NUMBER() OVER (PARTITION BY g.scene_index ORDER BY e.id DESC) AS n
               FROM episodes e JOIN games g ON g.id = e.game_id
               WHERE g.experiment_id = ? AND e.outcome = 'complete'
                 AND e.final_info IS NOT NULL)
             WHERE n <= ?",
        )
        .bind(experiment_id)
        .bind(INFO_EPISODES)
        .fetch_all(self.pool())
        .await?;
        // Per scene: key → (sum, count), keys in first-seen order.
        let mut sums: std::collections::HashMap<u32, Vec<(String, f64, u32)>> = Default::default();
        for r in &rows {
            let scene = u32::try_from(r.try_get::<i64, _>("scene_index")?).unwrap_or(0);
            let text: String = r.try_get("final_info")?;
            let Ok(serde_json::Value::Object(info)) = serde_json::from_str(&text) else {
                continue;
            };
            let keys = sums.entry(scene).or_default();
            for (key, value) in info {
                let Some(number) = value.as_f64().filter(|n| n.is_finite()) else {
                    continue;
                };
                if let Some((_, sum, n)) = keys.iter_mut().find(|(k, _, _)| *k == key) {
                    (*sum, *n) = (*sum + number, *n + 1);
                } else if keys.len() < MAX_INFO_KEYS {
                    keys.push((key, number, 1));
                }
            }
        }
        Ok(sums
            .into_iter()
            .map(|(scene, keys)| {
                let means = keys
                    .into_iter()
                    .map(|(k, sum, n)| (k, sum / f64::from(n.max(1))))
                    .collect();
                (scene, means)
            })
            .collect())
    }
}
