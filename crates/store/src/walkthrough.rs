//! What `tandem test` checks after its bots walked a study: who reached and
//! left each scene and when, the lobby waits per scene, and for every
//! participant whether each scene, answer and game step they produced is on
//! disk. Read once, at the end of a run, from a temporary database.

use sqlx::Row;

use crate::{Store, StoreError};

/// One participant's passage through one scene.
#[derive(Clone, Debug, PartialEq)]
pub struct ScenePassage {
    pub participant_id: i64,
    pub scene_index: u32,
    pub entered_us: i64,
    /// When they entered the next scene (or finished there); `None` while
    /// still in it.
    pub left_us: Option<i64>,
}

/// Something a walk left unrecorded or unfinished.
#[derive(Clone, Debug, PartialEq)]
pub struct Missing {
    pub participant_id: i64,
    pub what: String,
}

impl Store {
    /// Every participant of `experiment_id`'s passages through scenes, in
    /// order of entry.
    pub async fn scene_passages(
        &self,
        experiment_id: &str,
    ) -> Result<Vec<ScenePassage>, StoreError> {
        let rows = sqlx::query(
            "SELECT e.participant_id, e.scene_index, e.at_us,
                    (SELECT MIN(n.at_us) FROM scene_events n
                      WHERE n.participant_id = e.participant_id AND n.event = 'entered'
                        AND n.id > e.id) AS next_us,
                    p.finished_us
             FROM scene_events e JOIN participants p ON p.id = e.participant_id
             WHERE p.experiment_id = ? AND e.event = 'entered'
             ORDER BY e.participant_id, e.id",
        )
        .bind(experiment_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                let next: Option<i64> = r.try_get("next_us")?;
                let finished: Option<i64> = r.try_get("finished_us")?;
                Ok(ScenePassage {
                    participant_id: r.try_get("participant_id")?,
                    scene_index: u32::try_from(r.try_get::<i64, _>("scene_index")?).unwrap_or(0),
                    entered_us: r.try_get("at_us")?,
                    left_us: next.or(finished),
                })
            })
            .collect()
    }

    /// Lobby waits of `experiment_id` that ended, per scene: `(scene index,
    /// waited µs)`.
    pub async fn lobby_wait_times(
        &self,
        experiment_id: &str,
    ) -> Result<Vec<(u32, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT scene_index, left_us - joined_us AS waited FROM lobby_waits
             WHERE experiment_id = ? AND left_us IS NOT NULL",
        )
        .bind(experiment_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    u32::try_from(r.try_get::<i64, _>("scene_index")?).unwrap_or(0),
                    r.try_get("waited")?,
                ))
            })
            .collect()
    }

    /// What a full walk of `experiment_id` should have left and did not:
    /// participants not finished, or finished elsewhere than at an end scene
    /// (`end_scenes`: screened out); answers missing for `required` questions
    /// (`(scene index, question id)`) of scenes a participant left; game
    /// scenes (`game_scenes`) a participant left without a seat in a game with
    /// an episode; ended episodes whose step rows are fewer than their step
    /// count. "Left" is by the participant's own path (their plan), not by
    /// scene index.
    pub async fn walk_gaps(
        &self,
        experiment_id: &str,
        required: &[(u32, String)],
        game_scenes: &[u32],
        end_scenes: &[u32],
    ) -> Result<Vec<Missing>, StoreError> {
        let ends = serde_json::json!(end_scenes).to_string();
        let mut missing = Vec::new();
        let unfinished = sqlx::query(
            "SELECT id, scene_index FROM participants WHERE experiment_id = ? AND finished_us IS NULL",
        )
        .bind(experiment_id)
        .fetch_all(self.pool())
        .await?;
        for r in &unfinished {
            let scene: i64 = r.try_get("scene_index")?;
            missing.push(Missing {
                participant_id: r.try_get("id")?,
                what: format!("did not finish (stopped at scene {scene})"),
            });
        }
        let screened = sqlx::query(
            "SELECT p.id, p.scene_index FROM participants p
             WHERE p.experiment_id = ? AND p.finished_us IS NOT NULL
               AND p.scene_index NOT IN (SELECT value FROM json_each(?))",
        )
        .bind(experiment_id)
        .bind(&ends)
        .fetch_all(self.pool())
        .await?;
        for r in &screened {
            let scene: i64 = r.try_get("scene_index")?;
            missing.push(Missing {
                participant_id: r.try_get("id")?,
                what: format!("finished early, at scene {scene} (screened out)"),
            });
        }
        for (scene, question) in required {
            let rows = sqlx::query(
                "SELECT p.id FROM participants p
                 WHERE p.experiment_id = ?1
                   AND EXISTS (SELECT 1 FROM scene_events l WHERE l.participant_id = p.id
                               AND l.scene_index = ?2 AND l.event = 'left')
                   AND NOT EXISTS (SELECT 1 FROM responses r WHERE r.participant_id = p.id
                                   AND r.scene_index = ?2 AND r.question_id = ?3)",
            )
            .bind(experiment_id)
            .bind(i64::from(*scene))
            .bind(question)
            .fetch_all(self.pool())
            .await?;
            for r in &rows {
                missing.push(Missing {
                    participant_id: r.try_get("id")?,
                    what: format!("no answer to {question:?} at scene {scene}"),
                });
            }
        }
        for scene in game_scenes {
            let rows = sqlx::query(
                "SELECT p.id FROM participants p
                 WHERE p.experiment_id = ?1
                   AND EXISTS (SELECT 1 FROM scene_events l WHERE l.participant_id = p.id
                               AND l.scene_index = ?2 AND l.event = 'left')
                   AND NOT EXISTS (
                     SELECT 1 FROM game_seats s JOIN games g ON g.id = s.game_id
                     JOIN episodes e ON e.game_id = g.id
                     WHERE s.participant_id = p.id AND g.scene_index = ?2)",
            )
            .bind(experiment_id)
            .bind(i64::from(*scene))
            .fetch_all(self.pool())
            .await?;
            for r in &rows {
                missing.push(Missing {
                    participant_id: r.try_get("id")?,
                    what: format!("passed game scene {scene} without a recorded episode"),
                });
            }
        }
        let short = sqlx::query(
            "SELECT e.id, e.steps, (SELECT COUNT(DISTINCT t) FROM steps s WHERE s.episode_id = e.id) AS rows
             FROM episodes e JOIN games g ON g.id = e.game_id
             WHERE g.experiment_id = ? AND e.steps IS NOT NULL",
        )
        .bind(experiment_id)
        .fetch_all(self.pool())
        .await?;
        for r in &short {
            let (steps, rows): (i64, i64) = (r.try_get("steps")?, r.try_get("rows")?);
            if rows < steps {
                let episode: i64 = r.try_get("id")?;
                missing.push(Missing {
                    participant_id: 0,
                    what: format!("episode {episode} has {rows} of its {steps} steps on disk"),
                });
            }
        }
        Ok(missing)
    }
}

/// One participant's score, for a bonus.
#[derive(Clone, Debug, PartialEq)]
pub struct ParticipantScore {
    pub participant_id: i64,
    pub prolific_pid: Option<String>,
    pub worker_id: Option<String>,
    /// Reached the experiment's last scene (its end), not screened out.
    pub completed: bool,
    /// The sum of the rewards of the steps they chose themselves (not an
    /// AI's in their seat), in complete episodes of the game scenes asked for.
    pub score: f64,
}

impl Store {
    /// Every participant of `experiment_id` with their score over the game
    /// scenes `scene_ids` (every game scene when `None`); `end_scenes` are
    /// the ids of the end scenes (finishing elsewhere is not completing).
    pub async fn participant_scores(
        &self,
        experiment_id: &str,
        scene_ids: Option<&[String]>,
        end_scenes: &[String],
    ) -> Result<Vec<ParticipantScore>, StoreError> {
        let ends = serde_json::json!(end_scenes).to_string();
        let scenes_json = scene_ids.map(|ids| serde_json::json!(ids).to_string());
        let rows = sqlx::query(
            "SELECT p.id, p.prolific_pid, p.worker_id, p.finished_us,
               EXISTS (SELECT 1 FROM scene_events se WHERE se.participant_id = p.id
                       AND se.event = 'entered'
                       AND se.scene_id IN (SELECT value FROM json_each(?3))) AS at_end,
               COALESCE((
                 SELECT SUM(st.reward) FROM steps st
                 JOIN episodes e ON e.id = st.episode_id AND e.outcome = 'complete'
                 JOIN games g ON g.id = e.game_id
                 WHERE st.actor = 'participant:' || p.id AND g.experiment_id = p.experiment_id
                   AND (?2 IS NULL OR g.scene_id IN (SELECT value FROM json_each(?2)))
               ), 0.0) AS score
             FROM participants p WHERE p.experiment_id = ?1 ORDER BY p.id",
        )
        .bind(experiment_id)
        .bind(scenes_json)
        .bind(&ends)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                let at_end: bool = r.try_get("at_end")?;
                let finished: Option<i64> = r.try_get("finished_us")?;
                Ok(ParticipantScore {
                    participant_id: r.try_get("id")?,
                    prolific_pid: r.try_get("prolific_pid")?,
                    worker_id: r.try_get("worker_id")?,
                    completed: finished.is_some() && at_end,
                    score: r.try_get("score")?,
                })
            })
            .collect()
    }

    /// The ids of every experiment the database holds.
    pub async fn experiment_ids(&self) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar("SELECT id FROM experiments ORDER BY id")
            .fetch_all(self.pool())
            .await?)
    }
}

impl Store {
    /// Everyone's score in game scene `scene_id` of `experiment_id`: the sum
    /// of the rewards of the steps they chose themselves (not a fallback's in
    /// their seat) in complete episodes, for each participant with one.
    pub async fn scene_scores(
        &self,
        experiment_id: &str,
        scene_id: &str,
    ) -> Result<Vec<(i64, f64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT CAST(substr(st.actor, 13) AS INTEGER) AS participant_id,
                    SUM(st.reward) AS score
             FROM steps st
             JOIN episodes e ON e.id = st.episode_id AND e.outcome = 'complete'
             JOIN games g ON g.id = e.game_id
             WHERE g.experiment_id = ? AND g.scene_id = ? AND st.actor LIKE 'participant:%'
             GROUP BY st.actor",
        )
        .bind(experiment_id)
        .bind(scene_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("participant_id")?, r.try_get("score")?)))
            .collect()
    }
}
