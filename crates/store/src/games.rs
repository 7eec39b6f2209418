//! Games and their seats, and the episode bookkeeping a game loop needs outside
//! the hot path: how many episodes are done, which index comes next, and marking
//! the episodes a crash or shutdown left open.
//!
//! A game row outlives a server restart on purpose: a participant who reconnects
//! finds their open game with [`Store::open_game_for`] and continues at the next
//! episode index, while the episode that was cut short stays `interrupted`.

use serde_json::{Map, Value, json};
use sqlx::Row;
use sqlx::sqlite::{SqliteConnection, SqliteRow};
use tandem_env::EnvSpec;

use crate::clock::now_us;
use crate::columns::{json_at, u32_at};
use crate::{Store, StoreError};

/// A game to create: one scene's instance of an environment.
#[derive(Clone, Debug, PartialEq)]
pub struct NewGame {
    pub experiment_id: String,
    pub scene_index: u32,
    pub scene_id: String,
    pub env_id: String,
    pub env_version: u32,
    /// Per agent name, its observation and action space (see
    /// [`NewGame::spaces_json`]).
    pub spaces: Value,
    /// The rate the game is played at (the scene's, which may differ from the
    /// environment's natural rate).
    pub fps: u32,
    /// The scene's game settings as resolved for this game.
    pub config: Value,
}

impl NewGame {
    /// `{"<agent name>": {"observation": <space>, "action": <space>}, ...}` in
    /// Gymnasium/Minari JSON, the form stored in `games.spaces`.
    pub fn spaces_json(spec: &EnvSpec) -> Value {
        let agents: Map<String, Value> = spec
            .agents
            .iter()
            .map(|a| {
                (
                    a.name.clone(),
                    json!({
                        "observation": a.observation_space.to_json(),
                        "action": a.action_space.to_json(),
                    }),
                )
            })
            .collect();
        Value::Object(agents)
    }
}

/// Who holds one agent's seat: a participant, a policy, or a participant with a
/// policy to fall back on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seat {
    /// The agent's index in the environment's spec.
    pub agent: u32,
    pub agent_name: String,
    pub participant_id: Option<i64>,
    /// The policy's registered name.
    pub policy: Option<String>,
}

/// How an episode ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The environment terminated or truncated it.
    Complete,
    /// It was cut short: the participant left, the server stopped, a worker died.
    Interrupted { reason: String },
}

impl Outcome {
    /// The value stored in `episodes.outcome`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Outcome::Complete => "complete",
            Outcome::Interrupted { .. } => "interrupted",
        }
    }

    /// The value stored in `episodes.reason`.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Outcome::Complete => None,
            Outcome::Interrupted { reason } => Some(reason),
        }
    }
}

/// A game as stored, with its seats in agent order.
#[derive(Clone, Debug, PartialEq)]
pub struct Game {
    pub id: i64,
    pub experiment_id: String,
    pub scene_index: u32,
    pub scene_id: String,
    pub env_id: String,
    pub env_version: u32,
    pub spaces: Value,
    pub fps: u32,
    pub config: Value,
    pub started_us: i64,
    pub ended_us: Option<i64>,
    pub end_reason: Option<String>,
    pub seats: Vec<Seat>,
}

const GAME_COLUMNS: &str = "g.id, g.experiment_id, g.scene_index, g.scene_id, g.env_id, \
     g.env_version, g.spaces, g.fps, g.config, g.started_us, g.ended_us, g.end_reason";

impl Store {
    /// Creates a game and its seats in one transaction; returns the game's id.
    pub async fn create_game(&self, game: &NewGame, seats: &[Seat]) -> Result<i64, StoreError> {
        let mut tx = self.pool().begin_with("BEGIN IMMEDIATE").await?;
        let id = insert_game(&mut tx, game, seats).await?;
        tx.commit().await?;
        Ok(id)
    }

    /// The game with this id.
    pub async fn game(&self, game_id: i64) -> Result<Option<Game>, StoreError> {
        let sql = format!("SELECT {GAME_COLUMNS} FROM games g WHERE g.id = ?");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(game_id)
            .fetch_optional(self.pool())
            .await?;
        match row {
            Some(row) => Ok(Some(self.game_from_row(&row).await?)),
            None => Ok(None),
        }
    }

    /// The game, not yet ended, in which the participant holds a seat at this
    /// scene: the one to rejoin after a reconnect or a server restart. The newest
    /// if there are several.
    pub async fn open_game_for(
        &self,
        participant_id: i64,
        scene_index: u32,
    ) -> Result<Option<Game>, StoreError> {
        let sql = format!(
            "SELECT {GAME_COLUMNS} FROM games g JOIN game_seats s ON s.game_id = g.id
             WHERE s.participant_id = ? AND g.scene_index = ? AND g.ended_us IS NULL
             ORDER BY g.id DESC LIMIT 1"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(participant_id)
            .bind(i64::from(scene_index))
            .fetch_optional(self.pool())
            .await?;
        match row {
            Some(row) => Ok(Some(self.game_from_row(&row).await?)),
            None => Ok(None),
        }
    }

    /// Marks the game ended now, for `reason`. Returns `false` if it had already
    /// ended (the first end is kept).
    pub async fn end_game(&self, game_id: i64, reason: &str) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE games SET ended_us = ?, end_reason = ? WHERE id = ? AND ended_us IS NULL",
        )
        .bind(now_us())
        .bind(reason)
        .bind(game_id)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// How many of the game's episodes ended `complete` (interrupted ones do not
    /// count towards a scene's episode quota).
    pub async fn episodes_completed(&self, game_id: i64) -> Result<u32, StoreError> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM episodes WHERE game_id = ? AND outcome = 'complete'",
        )
        .bind(game_id)
        .fetch_one(self.pool())
        .await?;
        u32::try_from(n).map_err(|_| StoreError::corrupt(format!("{n} episodes")))
    }

    /// The index the game's next episode takes: one past the highest used, so an
    /// interrupted episode's index is never reused.
    pub async fn next_episode_index(&self, game_id: i64) -> Result<u32, StoreError> {
        let n: i64 =
            sqlx::query_scalar("SELECT COALESCE(MAX(idx) + 1, 0) FROM episodes WHERE game_id = ?")
                .bind(game_id)
                .fetch_one(self.pool())
                .await?;
        u32::try_from(n).map_err(|_| StoreError::corrupt(format!("episode index {n}")))
    }

    /// Marks every episode without an outcome as `interrupted` for `reason`, ended
    /// now, with the step count and returns of the steps that did reach the
    /// database. Returns how many episodes it marked.
    ///
    /// Run it at start-up (episodes a crash left open) and at shutdown *after* the
    /// recorder has shut down, so that no step is still on its way.
    pub async fn interrupt_unfinished(&self, reason: &str) -> Result<u64, StoreError> {
        let mut tx = self.pool().begin_with("BEGIN IMMEDIATE").await?;
        sqlx::query(
            "UPDATE episode_agents SET episode_return =
                 (SELECT COALESCE(SUM(s.reward), 0) FROM steps s
                  WHERE s.episode_id = episode_agents.episode_id AND s.agent = episode_agents.agent)
             WHERE episode_id IN (SELECT id FROM episodes WHERE outcome IS NULL)",
        )
        .execute(&mut *tx)
        .await?;
        let done = sqlx::query(
            "UPDATE episodes SET outcome = 'interrupted', reason = ?, ended_us = ?,
                 steps = (SELECT COALESCE(MAX(t), 0) FROM steps WHERE episode_id = episodes.id),
                 total_return = (SELECT COALESCE(SUM(reward), 0) FROM steps
                                 WHERE episode_id = episodes.id)
             WHERE outcome IS NULL",
        )
        .bind(reason)
        .bind(now_us())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected())
    }

    async fn game_from_row(&self, r: &SqliteRow) -> Result<Game, StoreError> {
        let id: i64 = r.try_get("id")?;
        let seats = sqlx::query(
            "SELECT agent, agent_name, participant_id, policy FROM game_seats
             WHERE game_id = ? ORDER BY agent",
        )
        .bind(id)
        .fetch_all(self.pool())
        .await?
        .iter()
        .map(|s| {
            Ok(Seat {
                agent: u32_at(s, "agent")?,
                agent_name: s.try_get("agent_name")?,
                participant_id: s.try_get("participant_id")?,
                policy: s.try_get("policy")?,
            })
        })
        .collect::<Result<_, StoreError>>()?;
        Ok(Game {
            id,
            experiment_id: r.try_get("experiment_id")?,
            scene_index: u32_at(r, "scene_index")?,
            scene_id: r.try_get("scene_id")?,
            env_id: r.try_get("env_id")?,
            env_version: u32_at(r, "env_version")?,
            spaces: json_at(r, "spaces")?,
            fps: u32_at(r, "fps")?,
            config: json_at(r, "config")?,
            started_us: r.try_get("started_us")?,
            ended_us: r.try_get("ended_us")?,
            end_reason: r.try_get("end_reason")?,
            seats,
        })
    }
}

/// Inserts a game and its seats on `conn` (inside the caller's transaction).
pub(crate) async fn insert_game(
    conn: &mut SqliteConnection,
    game: &NewGame,
    seats: &[Seat],
) -> Result<i64, StoreError> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO games (experiment_id, scene_index, scene_id, env_id, env_version,
             spaces, fps, config, started_us, episode_idx_reserved)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
    )
    .bind(&game.experiment_id)
    .bind(i64::from(game.scene_index))
    .bind(&game.scene_id)
    .bind(&game.env_id)
    .bind(i64::from(game.env_version))
    .bind(game.spaces.to_string())
    .bind(i64::from(game.fps))
    .bind(game.config.to_string())
    .bind(now_us())
    // A new game's task uses its first block without asking (see
    // `episode_indices`), so a new game never waits for a commit to play.
    .bind(i64::from(crate::EPISODE_INDEX_BLOCK))
    .fetch_one(&mut *conn)
    .await?;
    for seat in seats {
        sqlx::query(
            "INSERT INTO game_seats (game_id, agent, agent_name, participant_id, policy)
             VALUES (?, ?, ?, ?, ?)",
        )
        .bind(id)
        .bind(i64::from(seat.agent))
        .bind(&seat.agent_name)
        .bind(seat.participant_id)
        .bind(&seat.policy)
        .execute(&mut *conn)
        .await?;
    }
    Ok(id)
}
