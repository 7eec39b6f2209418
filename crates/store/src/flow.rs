//! The flow's tables: experiments, participants, where each participant stands
//! (`scene_events`) and what they answered (`responses`).
//!
//! These writes happen at human speed, so each is a direct, awaited statement (or
//! one short transaction) rather than going through the recorder. Moving between
//! scenes is a compare-and-set on `participants.scene_index`: two sockets of the
//! same participant that both try to advance from scene 3 advance them once.

use std::collections::HashMap;
use std::fmt;

use serde_json::Value;
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, Sqlite, Transaction};

use crate::clock::now_us;
use crate::columns::{json_at, u32_at};
use crate::{Store, StoreError};

/// The ids a recruiting platform (Prolific, MTurk) puts on the study link; each
/// is absent when the link did not carry it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecruitIds {
    /// Prolific's `PROLIFIC_PID`.
    pub prolific_pid: Option<String>,
    /// Prolific's `STUDY_ID`.
    pub study_id: Option<String>,
    /// Prolific's `SESSION_ID`.
    pub session_id: Option<String>,
    /// MTurk's `workerId`.
    pub worker_id: Option<String>,
    /// MTurk's `assignmentId`.
    pub assignment_id: Option<String>,
    /// MTurk's `hitId`.
    pub hit_id: Option<String>,
    /// MTurk's `turkSubmitTo`: the origin the finished assignment is posted
    /// to (kept only when it is one the server allows).
    pub turk_submit_to: Option<String>,
}

/// A participant to create.
#[derive(Clone, PartialEq, Eq)]
pub struct NewParticipant {
    /// The cookie secret. Masked in `Debug`.
    pub token: String,
    /// The id shown to the participant and the researcher.
    pub public_id: String,
    pub experiment_id: String,
    /// The ids the recruiting platform put on the study link.
    pub recruit: RecruitIds,
    pub user_agent: Option<String>,
}

/// A participant as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct Participant {
    pub id: i64,
    /// The cookie secret. Masked in `Debug`.
    pub token: String,
    pub public_id: String,
    pub experiment_id: String,
    /// The ids the recruiting platform put on the study link.
    pub recruit: RecruitIds,
    pub user_agent: Option<String>,
    pub created_us: i64,
    /// The scene the participant stands at (0 before the first is entered).
    pub scene_index: u32,
    /// When they entered it; `None` until the first scene is entered.
    pub scene_entered_us: Option<i64>,
    pub finished_us: Option<i64>,
    pub completion_code: Option<String>,
    /// The between-subject condition they were assigned, if the study has any.
    pub condition: Option<String>,
    /// The scene ids they are shown, in order; `None` for participants
    /// recorded before plans existed (they see the file's scenes in order).
    pub scene_plan: Option<Vec<String>>,
}

/// What a new participant is assigned: their condition, their plan and the
/// first scene of it (index and id).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assigned {
    pub condition: Option<String>,
    pub scene_plan: Vec<String>,
    pub first: (u32, String),
}

/// Which external id to look a participant up by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExternalKey<'a> {
    /// A Prolific `PROLIFIC_PID`.
    Prolific(&'a str),
    /// An MTurk `workerId`.
    MTurk(&'a str),
}

/// An experiment as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Experiment {
    pub id: String,
    pub title: String,
    /// The experiment file's text as last loaded.
    pub config: String,
    pub first_seen_us: i64,
    pub updated_us: i64,
}

/// One `entered` or `left` record of a participant's path through the scenes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SceneEvent {
    pub scene_index: u32,
    pub scene_id: String,
    /// `"entered"` or `"left"`.
    pub event: String,
    pub at_us: i64,
}

/// One stored survey answer.
#[derive(Clone, Debug, PartialEq)]
pub struct Response {
    pub scene_index: u32,
    pub scene_id: String,
    pub question_id: String,
    pub answer: Value,
    pub at_us: i64,
}

const PARTICIPANT_COLUMNS: &str = "id, token, public_id, experiment_id, prolific_pid, study_id, \
     session_id, worker_id, assignment_id, hit_id, turk_submit_to, user_agent, created_us, \
     scene_index, scene_entered_us, finished_us, completion_code, condition, scene_plan";

impl Store {
    /// Records the experiment file loaded at start-up: inserts the experiment or
    /// updates its title and text, and remembers each distinct text in
    /// `experiment_configs` with when it was first seen.
    pub async fn upsert_experiment(
        &self,
        id: &str,
        title: &str,
        config_text: &str,
    ) -> Result<(), StoreError> {
        let now = now_us();
        let mut tx = self.pool().begin_with("BEGIN IMMEDIATE").await?;
        sqlx::query(
            "INSERT INTO experiments (id, title, config, first_seen_us, updated_us)
             VALUES (?1, ?2, ?3, ?4, ?4)
             ON CONFLICT (id) DO UPDATE SET
                 title = excluded.title,
                 config = excluded.config,
                 updated_us = CASE WHEN experiments.config = excluded.config
                                   THEN experiments.updated_us ELSE excluded.updated_us END",
        )
        .bind(id)
        .bind(title)
        .bind(config_text)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO experiment_configs (experiment_id, config, first_seen_us)
             VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
        )
        .bind(id)
        .bind(config_text)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The experiment with this id.
    pub async fn experiment(&self, id: &str) -> Result<Option<Experiment>, StoreError> {
        let row = sqlx::query(
            "SELECT id, title, config, first_seen_us, updated_us FROM experiments WHERE id = ?",
        )
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| {
            Ok(Experiment {
                id: r.try_get("id")?,
                title: r.try_get("title")?,
                config: r.try_get("config")?,
                first_seen_us: r.try_get("first_seen_us")?,
                updated_us: r.try_get("updated_us")?,
            })
        })
        .transpose()
    }

    /// Creates a participant standing before the first scene.
    ///
    /// Fails with [`StoreError::Duplicate`] if the token or public id is taken, or
    /// if the experiment already has a participant with the same Prolific or MTurk
    /// worker id (look that one up with [`Store::participant_by_external`]).
    pub async fn create_participant(
        &self,
        new: &NewParticipant,
    ) -> Result<Participant, StoreError> {
        let mut connection = self.pool().acquire().await?;
        insert_participant(&mut connection, new, None, None, now_us()).await
    }

    /// Creates a participant and puts them at the first scene of what
    /// `assign` gives them, in one transaction: `assign` sees how many
    /// participants of the experiment each condition has so far (the key of
    /// those without a condition is `""`), so concurrent arrivals, and
    /// arrivals after a restart, are balanced on every participant created.
    pub async fn create_assigned_participant(
        &self,
        new: &NewParticipant,
        assign: impl FnOnce(&HashMap<String, u64>) -> Assigned,
    ) -> Result<Participant, StoreError> {
        let mut tx = self.pool().begin_with("BEGIN IMMEDIATE").await?;
        let counts: HashMap<String, u64> = condition_counts_in(&mut tx, &new.experiment_id)
            .await?
            .into_iter()
            .collect();
        let assigned = assign(&counts);
        let plan = serde_json::to_string(&assigned.scene_plan).unwrap_or_else(|_| "[]".into());
        let now = now_us();
        let condition = assigned.condition.as_deref();
        let mut participant = insert_participant(&mut tx, new, condition, Some(&plan), now).await?;
        let first = (assigned.first.0, assigned.first.1.as_str());
        advance(&mut tx, participant.id, None, first, now).await?;
        tx.commit().await?;
        participant.scene_index = assigned.first.0;
        participant.scene_entered_us = Some(now);
        Ok(participant)
    }

    /// How many participants of `experiment_id` each condition has (`""`:
    /// those without one).
    pub async fn condition_counts(
        &self,
        experiment_id: &str,
    ) -> Result<Vec<(String, u64)>, StoreError> {
        let mut connection = self.pool().acquire().await?;
        condition_counts_in(&mut connection, experiment_id).await
    }

    /// The participant with this database id.
    pub async fn participant_by_id(&self, id: i64) -> Result<Option<Participant>, StoreError> {
        self.participant_where("id = ?", |q| q.bind(id)).await
    }

    /// The participant whose cookie holds `token`.
    pub async fn participant_by_token(
        &self,
        token: &str,
    ) -> Result<Option<Participant>, StoreError> {
        self.participant_where("token = ?", |q| q.bind(token.to_owned()))
            .await
    }

    /// How many participants the experiment has, finished or not.
    pub async fn count_participants(&self, experiment_id: &str) -> Result<u64, StoreError> {
        let n: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM participants WHERE experiment_id = ?")
                .bind(experiment_id)
                .fetch_one(self.pool())
                .await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// The experiment's participant with this Prolific or MTurk worker id.
    pub async fn participant_by_external(
        &self,
        experiment_id: &str,
        key: ExternalKey<'_>,
    ) -> Result<Option<Participant>, StoreError> {
        let (filter, id) = match key {
            ExternalKey::Prolific(pid) => ("experiment_id = ? AND prolific_pid = ?", pid),
            ExternalKey::MTurk(worker) => ("experiment_id = ? AND worker_id = ?", worker),
        };
        self.participant_where(filter, |q| {
            q.bind(experiment_id.to_owned()).bind(id.to_owned())
        })
        .await
    }

    /// Puts `experiment_id` in lockout group `group` (or in none).
    pub async fn set_lockout_group(
        &self,
        experiment_id: &str,
        group: Option<&str>,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE experiments SET lockout_group = ? WHERE id = ?")
            .bind(group)
            .bind(experiment_id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Another study of lockout group `group` that the person `key` names
    /// has started, if any: they may not start `experiment_id` too.
    pub async fn started_in_group(
        &self,
        group: &str,
        experiment_id: &str,
        key: ExternalKey<'_>,
    ) -> Result<Option<String>, StoreError> {
        let (column, id) = match key {
            ExternalKey::Prolific(pid) => ("prolific_pid", pid),
            ExternalKey::MTurk(worker) => ("worker_id", worker),
        };
        let sql = format!(
            "SELECT p.experiment_id FROM participants p
             JOIN experiments e ON e.id = p.experiment_id
             WHERE p.{column} = ? AND e.lockout_group = ? AND p.experiment_id != ?
             LIMIT 1"
        );
        let other: Option<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .bind(group)
            .bind(experiment_id)
            .fetch_optional(self.pool())
            .await?;
        Ok(other)
    }

    async fn participant_where<'q>(
        &self,
        filter: &str,
        bind: impl FnOnce(
            sqlx::query::Query<'q, Sqlite, sqlx::sqlite::SqliteArguments>,
        ) -> sqlx::query::Query<'q, Sqlite, sqlx::sqlite::SqliteArguments>,
    ) -> Result<Option<Participant>, StoreError> {
        let sql = format!("SELECT {PARTICIPANT_COLUMNS} FROM participants WHERE {filter}");
        let row = bind(sqlx::query(sqlx::AssertSqlSafe(sql)))
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(participant_from_row).transpose()
    }

    /// Moves a participant from scene `from` to scene `to`, recording `left` and
    /// `entered`, if and only if they still stand at `from` (`None`: they have not
    /// entered any scene yet). Returns whether the move happened.
    ///
    /// This is the guard against double advances: of two sockets that both advance
    /// from the same scene, only the first moves the participant.
    pub async fn enter_scene(
        &self,
        participant_id: i64,
        from: Option<(u32, &str)>,
        to: (u32, &str),
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool().begin_with("BEGIN IMMEDIATE").await?;
        let moved = advance(&mut tx, participant_id, from, to, now_us()).await?;
        if moved {
            tx.commit().await?;
        } else {
            tx.rollback().await?;
        }
        Ok(moved)
    }

    /// Stores a scene's answers and moves on to `next`, in one transaction and
    /// under the same guard as [`Store::enter_scene`]: if the participant no longer
    /// stands at `scene` (another socket submitted first), nothing is stored and
    /// `false` is returned.
    pub async fn submit_scene(
        &self,
        participant_id: i64,
        scene: (u32, &str),
        answers: &[(String, Value)],
        next: (u32, &str),
    ) -> Result<bool, StoreError> {
        let now = now_us();
        let mut tx = self.pool().begin_with("BEGIN IMMEDIATE").await?;
        if !advance(&mut tx, participant_id, Some(scene), next, now).await? {
            tx.rollback().await?;
            return Ok(false);
        }
        insert_responses(&mut tx, participant_id, scene, answers, now).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Stores survey answers (`question id`, JSON answer) for one scene, all or
    /// none. Unconditional; prefer [`Store::submit_scene`] when the answers also
    /// move the participant on.
    pub async fn save_responses(
        &self,
        participant_id: i64,
        scene_index: u32,
        scene_id: &str,
        answers: &[(String, Value)],
    ) -> Result<(), StoreError> {
        let mut tx = self.pool().begin_with("BEGIN IMMEDIATE").await?;
        insert_responses(
            &mut tx,
            participant_id,
            (scene_index, scene_id),
            answers,
            now_us(),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Marks the participant finished, with the completion code they were shown.
    /// Returns `false` if they had already finished (the first code is kept).
    pub async fn finish_participant(
        &self,
        participant_id: i64,
        completion_code: Option<&str>,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE participants SET finished_us = ?, completion_code = ?
             WHERE id = ? AND finished_us IS NULL",
        )
        .bind(now_us())
        .bind(completion_code)
        .bind(participant_id)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The participant's path through the scenes, oldest first.
    pub async fn scene_events_for(
        &self,
        participant_id: i64,
    ) -> Result<Vec<SceneEvent>, StoreError> {
        let rows = sqlx::query(
            "SELECT scene_index, scene_id, event, at_us FROM scene_events
             WHERE participant_id = ? ORDER BY id",
        )
        .bind(participant_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(SceneEvent {
                    scene_index: u32_at(r, "scene_index")?,
                    scene_id: r.try_get("scene_id")?,
                    event: r.try_get("event")?,
                    at_us: r.try_get("at_us")?,
                })
            })
            .collect()
    }

    /// Every answer the participant gave, oldest first (a resubmitted question
    /// appears twice; the later one counts).
    pub async fn responses_for(&self, participant_id: i64) -> Result<Vec<Response>, StoreError> {
        let rows = sqlx::query(
            "SELECT scene_index, scene_id, question_id, answer, at_us FROM responses
             WHERE participant_id = ? ORDER BY id",
        )
        .bind(participant_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Response {
                    scene_index: u32_at(r, "scene_index")?,
                    scene_id: r.try_get("scene_id")?,
                    question_id: r.try_get("question_id")?,
                    answer: json_at(r, "answer")?,
                    at_us: r.try_get("at_us")?,
                })
            })
            .collect()
    }
}

/// How many participants of `experiment_id` each condition has (`""`: those
/// without one), by condition.
async fn condition_counts_in(
    connection: &mut sqlx::SqliteConnection,
    experiment_id: &str,
) -> Result<Vec<(String, u64)>, StoreError> {
    let rows = sqlx::query(
        "SELECT COALESCE(condition, '') AS condition, COUNT(*) AS n FROM participants
         WHERE experiment_id = ? GROUP BY 1 ORDER BY 1",
    )
    .bind(experiment_id)
    .fetch_all(&mut *connection)
    .await?;
    rows.iter()
        .map(|r| {
            let n: i64 = r.try_get("n")?;
            Ok((r.try_get("condition")?, u64::try_from(n).unwrap_or(0)))
        })
        .collect()
}

/// Inserts a participant (`plan`: their scene plan as JSON).
async fn insert_participant(
    connection: &mut sqlx::SqliteConnection,
    new: &NewParticipant,
    condition: Option<&str>,
    plan: Option<&str>,
    now: i64,
) -> Result<Participant, StoreError> {
    let sql = format!(
        "INSERT INTO participants (token, public_id, experiment_id, prolific_pid, study_id,
             session_id, worker_id, assignment_id, hit_id, turk_submit_to, user_agent,
             created_us, condition, scene_plan)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         RETURNING {PARTICIPANT_COLUMNS}"
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(&new.token)
        .bind(&new.public_id)
        .bind(&new.experiment_id)
        .bind(&new.recruit.prolific_pid)
        .bind(&new.recruit.study_id)
        .bind(&new.recruit.session_id)
        .bind(&new.recruit.worker_id)
        .bind(&new.recruit.assignment_id)
        .bind(&new.recruit.hit_id)
        .bind(&new.recruit.turk_submit_to)
        .bind(&new.user_agent)
        .bind(now)
        .bind(condition)
        .bind(plan)
        .fetch_one(&mut *connection)
        .await?;
    participant_from_row(&row)
}

/// The compare-and-set behind [`Store::enter_scene`]: moves the participant if they
/// stand at `from`, then records the events. Returns whether they moved.
async fn advance(
    tx: &mut Transaction<'static, Sqlite>,
    participant_id: i64,
    from: Option<(u32, &str)>,
    to: (u32, &str),
    now: i64,
) -> Result<bool, StoreError> {
    let moved = sqlx::query(
        "UPDATE participants SET scene_index = ?1, scene_entered_us = ?2
         WHERE id = ?3 AND CASE WHEN ?4 IS NULL THEN scene_entered_us IS NULL
                                ELSE scene_entered_us IS NOT NULL AND scene_index = ?4 END",
    )
    .bind(i64::from(to.0))
    .bind(now)
    .bind(participant_id)
    .bind(from.map(|(index, _)| i64::from(index)))
    .execute(&mut **tx)
    .await?;
    if moved.rows_affected() != 1 {
        return Ok(false);
    }
    let events = from
        .map(|f| (f, "left"))
        .into_iter()
        .chain([(to, "entered")]);
    for ((index, scene_id), event) in events {
        sqlx::query(
            "INSERT INTO scene_events (participant_id, scene_index, scene_id, event, at_us)
             VALUES (?, ?, ?, ?, ?)",
        )
        .bind(participant_id)
        .bind(i64::from(index))
        .bind(scene_id)
        .bind(event)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    }
    Ok(true)
}

async fn insert_responses(
    tx: &mut Transaction<'static, Sqlite>,
    participant_id: i64,
    (scene_index, scene_id): (u32, &str),
    answers: &[(String, Value)],
    now: i64,
) -> Result<(), StoreError> {
    for (question_id, answer) in answers {
        sqlx::query(
            "INSERT INTO responses (participant_id, scene_index, scene_id, question_id, answer, at_us)
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(participant_id)
        .bind(i64::from(scene_index))
        .bind(scene_id)
        .bind(question_id)
        .bind(answer.to_string())
        .bind(now)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

fn participant_from_row(r: &SqliteRow) -> Result<Participant, StoreError> {
    Ok(Participant {
        id: r.try_get("id")?,
        token: r.try_get("token")?,
        public_id: r.try_get("public_id")?,
        experiment_id: r.try_get("experiment_id")?,
        recruit: RecruitIds {
            prolific_pid: r.try_get("prolific_pid")?,
            study_id: r.try_get("study_id")?,
            session_id: r.try_get("session_id")?,
            worker_id: r.try_get("worker_id")?,
            assignment_id: r.try_get("assignment_id")?,
            hit_id: r.try_get("hit_id")?,
            turk_submit_to: r.try_get("turk_submit_to")?,
        },
        user_agent: r.try_get("user_agent")?,
        created_us: r.try_get("created_us")?,
        scene_index: u32_at(r, "scene_index")?,
        scene_entered_us: r.try_get("scene_entered_us")?,
        finished_us: r.try_get("finished_us")?,
        completion_code: r.try_get("completion_code")?,
        condition: r.try_get("condition")?,
        scene_plan: r
            .try_get::<Option<String>, _>("scene_plan")?
            .and_then(|text| serde_json::from_str(&text).ok()),
    })
}

/// Tokens are secrets: `Debug` output ends up in logs.
const MASKED: &str = "***";

impl fmt::Debug for NewParticipant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewParticipant")
            .field("token", &MASKED)
            .field("public_id", &self.public_id)
            .field("experiment_id", &self.experiment_id)
            .field("recruit", &self.recruit)
            .field("user_agent", &self.user_agent)
            .finish()
    }
}

impl fmt::Debug for Participant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Participant")
            .field("id", &self.id)
            .field("token", &MASKED)
            .field("public_id", &self.public_id)
            .field("experiment_id", &self.experiment_id)
            .field("recruit", &self.recruit)
            .field("user_agent", &self.user_agent)
            .field("created_us", &self.created_us)
            .field("scene_index", &self.scene_index)
            .field("scene_entered_us", &self.scene_entered_us)
            .field("finished_us", &self.finished_us)
            .field("completion_code", &self.completion_code)
            .field("condition", &self.condition)
            .field("scene_plan", &self.scene_plan)
            .finish()
    }
}
