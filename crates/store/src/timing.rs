//! What a participant's page reports about timing, recorded beside the steps:
//! every input message, when each frame was drawn, and clock samples that
//! relate the page's clock to the server's (tables in migration 0005).
//!
//! These travel the recorder's queue like events and are written in the same
//! batches as the steps, so a second of play costs one commit whatever the
//! page reports. The session bounds how many a socket may send.

use sqlx::sqlite::SqliteConnection;

use crate::sqlite::MultiRowInsert;

/// One `input` message, as the server read it.
#[derive(Clone, Debug, PartialEq)]
pub struct InputRecord {
    pub participant_id: i64,
    /// The game and episode the keys went to, if the socket held a seat.
    pub game_id: Option<i64>,
    pub episode_id: Option<i64>,
    pub seq: u64,
    pub keys: Vec<String>,
    /// The page's `performance.now()` when the keys changed, in ms.
    pub client_ts: Option<f64>,
    /// The page's animation-frame counter then.
    pub client_frame: Option<u64>,
    /// The server tick of the frame on screen then.
    pub tick: Option<u64>,
    /// When the server read the message.
    pub server_us: i64,
}

/// When the page drew frames: `(tick, page time in ms)` pairs.
#[derive(Clone, Debug, PartialEq)]
pub struct DisplayRecord {
    pub participant_id: i64,
    pub game_id: Option<i64>,
    pub frames: Vec<(u64, f64)>,
    pub server_us: i64,
}

/// One clock probe's answer.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ClockSample {
    pub participant_id: i64,
    /// When the answer arrived.
    pub server_us: i64,
    pub rtt_us: i64,
    /// Add to a page time (µs) to get the server's.
    pub offset_us: i64,
}

/// Any of them, for the recorder's queue.
#[derive(Clone, Debug, PartialEq)]
pub enum TimingRecord {
    Input(InputRecord),
    Displays(DisplayRecord),
    Clock(ClockSample),
}

impl TimingRecord {
    /// Rows it will write.
    pub(crate) fn rows(&self) -> usize {
        match self {
            TimingRecord::Displays(d) => d.frames.len(),
            _ => 1,
        }
    }
}

/// SQLite's integers are signed: a `u64` past `i64::MAX` (never honest) is
/// stored as the largest it can hold.
fn int(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// The multi-row INSERTs of the three tables.
pub(crate) struct TimingInserts {
    inputs: MultiRowInsert,
    displays: MultiRowInsert,
    clocks: MultiRowInsert,
}

impl TimingInserts {
    pub(crate) fn new() -> Self {
        TimingInserts {
            inputs: MultiRowInsert::new(
                "inputs",
                &[
                    "participant_id",
                    "game_id",
                    "episode_id",
                    "seq",
                    "keys",
                    "client_ts",
                    "client_frame",
                    "tick",
                    "server_us",
                ],
            ),
            displays: MultiRowInsert::new(
                "frame_displays",
                &[
                    "participant_id",
                    "game_id",
                    "tick",
                    "client_ts",
                    "server_us",
                ],
            ),
            clocks: MultiRowInsert::new(
                "clock_samples",
                &["participant_id", "server_us", "rtt_us", "offset_us"],
            ),
        }
    }

    /// Writes `records`, a few statements per table however many there are.
    pub(crate) async fn insert(
        &self,
        conn: &mut SqliteConnection,
        records: &[&TimingRecord],
    ) -> Result<(), sqlx::Error> {
        let mut inputs = Vec::new();
        let mut displays = Vec::new();
        let mut clocks = Vec::new();
        for record in records {
            match record {
                TimingRecord::Input(i) => inputs.push(i),
                TimingRecord::Displays(d) => {
                    displays.extend(d.frames.iter().map(|&(tick, ts)| (d, tick, ts)));
                }
                TimingRecord::Clock(c) => clocks.push(c),
            }
        }
        self.inputs
            .insert(conn, &inputs, |query, i| {
                query
                    .bind(i.participant_id)
                    .bind(i.game_id)
                    .bind(i.episode_id)
                    .bind(int(i.seq))
                    .bind(serde_json::to_string(&i.keys).unwrap_or_default())
                    .bind(i.client_ts)
                    .bind(i.client_frame.map(int))
                    .bind(i.tick.map(int))
                    .bind(i.server_us)
            })
            .await?;
        self.displays
            .insert(conn, &displays, |query, &(d, tick, client_ts)| {
                query
                    .bind(d.participant_id)
                    .bind(d.game_id)
                    .bind(int(tick))
                    .bind(client_ts)
                    .bind(d.server_us)
            })
            .await?;
        self.clocks
            .insert(conn, &clocks, |query, c| {
                query
                    .bind(c.participant_id)
                    .bind(c.server_us)
                    .bind(c.rtt_us)
                    .bind(c.offset_us)
            })
            .await
    }
}
