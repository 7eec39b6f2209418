//! The lobby's records: each participant's wait (`lobby_waits`) and each group
//! formed into a game (`matches`).
//!
//! A wait row is opened when a participant enters a multiplayer scene's lobby
//! and closed once, with how it ended. Forming a match writes the game, its
//! seats, the match and the closing of every member's wait in one transaction,
//! so the database never shows a participant both waiting and seated.

use sqlx::Row;

use crate::clock::now_us;
use crate::columns::{opt_u32_at, u32_at};
use crate::{NewGame, Seat, Store, StoreError};

/// Why the lobby formed a group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatchReason {
    /// As many humans as the scene asks for arrived.
    Full,
    /// The longest wait reached the scene's `human_timeout_s`; empty human
    /// seats went to their fallback policy.
    HumanTimeout,
}

impl MatchReason {
    pub fn as_str(self) -> &'static str {
        match self {
            MatchReason::Full => "full",
            MatchReason::HumanTimeout => "human_timeout",
        }
    }
}

/// A group the lobby formed: the waits it closes, and the game it creates.
#[derive(Clone, Debug)]
pub struct NewMatch<'a> {
    pub game: &'a NewGame,
    pub seats: &'a [Seat],
    pub reason: MatchReason,
    /// `(wait id, agent index)` of every human matched.
    pub members: Vec<(i64, u32)>,
    /// Human seats given to their fallback policy at the start.
    pub filled: u32,
}

/// One stored wait, for tests and analysis.
#[derive(Clone, Debug, PartialEq)]
pub struct LobbyWait {
    pub id: i64,
    pub participant_id: i64,
    pub scene_index: u32,
    pub joined_us: i64,
    pub left_us: Option<i64>,
    pub outcome: Option<String>,
    pub match_id: Option<i64>,
    pub agent: Option<u32>,
}

/// One stored match.
#[derive(Clone, Debug, PartialEq)]
pub struct Match {
    pub id: i64,
    pub game_id: i64,
    pub scene_index: u32,
    pub formed_us: i64,
    pub reason: String,
    pub humans: u32,
    pub filled: u32,
}

impl Store {
    /// Opens a wait for the participant in the lobby of scene `scene_index`;
    /// returns its id.
    pub async fn open_lobby_wait(
        &self,
        participant_id: i64,
        experiment_id: &str,
        scene_index: u32,
        joined_us: i64,
    ) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(
            "INSERT INTO lobby_waits (participant_id, experiment_id, scene_index, joined_us)
             VALUES (?, ?, ?, ?) RETURNING id",
        )
        .bind(participant_id)
        .bind(experiment_id)
        .bind(i64::from(scene_index))
        .bind(joined_us)
        .fetch_one(self.pool())
        .await?)
    }

    /// Closes a wait that ended without a match (`"left"`, `"no_partner"`).
    /// A wait already closed keeps its first outcome.
    pub async fn close_lobby_wait(&self, wait_id: i64, outcome: &str) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE lobby_waits SET left_us = ?, outcome = ? WHERE id = ? AND outcome IS NULL",
        )
        .bind(now_us())
        .bind(outcome)
        .bind(wait_id)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Closes every open wait with `outcome` (`server_shutdown` when stopping,
    /// `server_restart` for waits a crashed run left open); returns how many.
    pub async fn close_open_lobby_waits(&self, outcome: &str) -> Result<u64, StoreError> {
        let done =
            sqlx::query("UPDATE lobby_waits SET left_us = ?, outcome = ? WHERE outcome IS NULL")
                .bind(now_us())
                .bind(outcome)
                .execute(self.pool())
                .await?;
        Ok(done.rows_affected())
    }

    /// Creates the game and its seats, records the match and closes the
    /// members' waits, all in one transaction. Returns `(game id, match id)`.
    pub async fn create_match(&self, m: &NewMatch<'_>) -> Result<(i64, i64), StoreError> {
        let mut tx = self.pool().begin_with("BEGIN IMMEDIATE").await?;
        let game_id = crate::games::insert_game(&mut tx, m.game, m.seats).await?;
        let formed_us = now_us();
        let match_id: i64 = sqlx::query_scalar(
            "INSERT INTO matches (game_id, experiment_id, scene_index, formed_us, reason,
                 humans, filled)
             VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(game_id)
        .bind(&m.game.experiment_id)
        .bind(i64::from(m.game.scene_index))
        .bind(formed_us)
        .bind(m.reason.as_str())
        .bind(m.members.len() as i64)
        .bind(i64::from(m.filled))
        .fetch_one(&mut *tx)
        .await?;
        for &(wait_id, agent) in &m.members {
            sqlx::query(
                "UPDATE lobby_waits SET left_us = ?, outcome = 'matched', match_id = ?, agent = ?
                 WHERE id = ?",
            )
            .bind(formed_us)
            .bind(match_id)
            .bind(i64::from(agent))
            .bind(wait_id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok((game_id, match_id))
    }

    /// The participant's lobby waits, oldest first.
    pub async fn lobby_waits_for(&self, participant_id: i64) -> Result<Vec<LobbyWait>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, participant_id, scene_index, joined_us, left_us, outcome, match_id, agent
             FROM lobby_waits WHERE participant_id = ? ORDER BY id",
        )
        .bind(participant_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(LobbyWait {
                    id: r.try_get("id")?,
                    participant_id: r.try_get("participant_id")?,
                    scene_index: u32_at(r, "scene_index")?,
                    joined_us: r.try_get("joined_us")?,
                    left_us: r.try_get("left_us")?,
                    outcome: r.try_get("outcome")?,
                    match_id: r.try_get("match_id")?,
                    agent: opt_u32_at(r, "agent")?,
                })
            })
            .collect()
    }

    /// Every match, oldest first.
    pub async fn matches(&self) -> Result<Vec<Match>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, game_id, scene_index, formed_us, reason, humans, filled
             FROM matches ORDER BY id",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Match {
                    id: r.try_get("id")?,
                    game_id: r.try_get("game_id")?,
                    scene_index: u32_at(r, "scene_index")?,
                    formed_us: r.try_get("formed_us")?,
                    reason: r.try_get("reason")?,
                    humans: u32_at(r, "humans")?,
                    filled: u32_at(r, "filled")?,
                })
            })
            .collect()
    }
}

impl Store {
    /// The group `participant_id` played their latest multiplayer game with,
    /// in a scene of `experiment_id` other than `before_scene` (games are
    /// ordered by when they were made: plans order scenes differently for
    /// different participants, so scene indices do not): that game's id
    /// and how many people held its seats. `None` when they played none.
    pub async fn last_team(
        &self,
        experiment_id: &str,
        participant_id: i64,
        before_scene: u32,
    ) -> Result<Option<(i64, usize)>, StoreError> {
        let row = sqlx::query(
            "SELECT g.id,
                    (SELECT COUNT(*) FROM game_seats o
                     WHERE o.game_id = g.id AND o.participant_id IS NOT NULL) AS size
             FROM game_seats s JOIN games g ON g.id = s.game_id
             WHERE s.participant_id = ? AND g.experiment_id = ? AND g.scene_index <> ?
               AND (SELECT COUNT(*) FROM game_seats o
                    WHERE o.game_id = g.id AND o.participant_id IS NOT NULL) > 1
             ORDER BY g.id DESC LIMIT 1",
        )
        .bind(participant_id)
        .bind(experiment_id)
        .bind(i64::from(before_scene))
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| {
            let size: i64 = r.try_get("size")?;
            Ok((r.try_get("id")?, usize::try_from(size).unwrap_or(0)))
        })
        .transpose()
    }
}

impl Store {
    /// Steps `participant_id` chose with their own keys in games of scene
    /// `scene_index` of `experiment_id`: their active play, in steps.
    pub async fn active_steps(
        &self,
        experiment_id: &str,
        participant_id: i64,
        scene_index: u32,
    ) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM steps s
             JOIN episodes e ON e.id = s.episode_id JOIN games g ON g.id = e.game_id
             WHERE s.actor = 'participant:' || ? AND s.source = 'keys'
               AND g.experiment_id = ? AND g.scene_index = ?",
        )
        .bind(participant_id)
        .bind(experiment_id)
        .bind(i64::from(scene_index))
        .fetch_one(self.pool())
        .await?)
    }

    /// Whether `participant_id` held a seat in a game of scene `scene_index`.
    pub async fn seated_in_scene(
        &self,
        experiment_id: &str,
        participant_id: i64,
        scene_index: u32,
    ) -> Result<bool, StoreError> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM game_seats s JOIN games g ON g.id = s.game_id
             WHERE s.participant_id = ? AND g.experiment_id = ? AND g.scene_index = ?",
        )
        .bind(participant_id)
        .bind(experiment_id)
        .bind(i64::from(scene_index))
        .fetch_one(self.pool())
        .await?;
        Ok(n > 0)
    }
}
