//! The `events` table: things worth knowing that are neither steps nor answers
//! (disconnects, fallbacks to an AI, errors), with free-form JSON detail.
//!
//! Events are written two ways. [`Store::record_event`] writes at once, for the
//! flow's events. A game loop uses [`crate::Recorder::record_event`] instead, which
//! queues the event behind the steps already sent so the two stay in order and
//! the loop never waits on the disk.

use serde_json::Value;
use sqlx::sqlite::{SqliteConnection, SqliteRow};
use sqlx::{AssertSqlSafe, Row};

use crate::clock::now_us;
use crate::columns::json_at;
use crate::{Store, StoreError};

/// One stored event.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    pub id: i64,
    pub at_us: i64,
    pub participant_id: Option<i64>,
    pub game_id: Option<i64>,
    pub kind: String,
    pub detail: Value,
}

impl Store {
    /// Records an event now, about a participant, a game, both or neither.
    pub async fn record_event(
        &self,
        participant_id: Option<i64>,
        game_id: Option<i64>,
        kind: &str,
        detail: Value,
    ) -> Result<(), StoreError> {
        let mut conn = self.pool().acquire().await?;
        insert_event(&mut conn, now_us(), participant_id, game_id, kind, &detail).await?;
        Ok(())
    }

    /// The participant's events, oldest first.
    pub async fn events_for_participant(
        &self,
        participant_id: i64,
    ) -> Result<Vec<Event>, StoreError> {
        self.events_where("participant_id = ?", participant_id)
            .await
    }

    /// The game's events, oldest first.
    pub async fn events_for_game(&self, game_id: i64) -> Result<Vec<Event>, StoreError> {
        self.events_where("game_id = ?", game_id).await
    }

    async fn events_where(&self, filter: &str, id: i64) -> Result<Vec<Event>, StoreError> {
        let sql = format!(
            "SELECT id, at_us, participant_id, game_id, kind, detail FROM events
             WHERE {filter} ORDER BY at_us, id"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(id)
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(event_from_row).collect()
    }
}

/// Inserts one event on `conn` (a pooled connection or a transaction).
pub(crate) async fn insert_event(
    conn: &mut SqliteConnection,
    at_us: i64,
    participant_id: Option<i64>,
    game_id: Option<i64>,
    kind: &str,
    detail: &Value,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO events (at_us, participant_id, game_id, kind, detail)
         VALUES (?, ?, ?, ?, ?)",
    )
    .bind(at_us)
    .bind(participant_id)
    .bind(game_id)
    .bind(kind)
    .bind(detail.to_string())
    .execute(conn)
    .await?;
    Ok(())
}

pub(crate) fn event_from_row(r: &SqliteRow) -> Result<Event, StoreError> {
    Ok(Event {
        id: r.try_get("id")?,
        at_us: r.try_get("at_us")?,
        participant_id: r.try_get("participant_id")?,
        game_id: r.try_get("game_id")?,
        kind: r.try_get("kind")?,
        detail: json_at(r, "detail")?,
    })
}
