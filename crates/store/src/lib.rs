//! Tandem's database: the schema, the flow's records, and the recorder that
//! writes every step of every game in batches through one writer per database.
//!
//! SQLite only for now (one file, WAL); times are microseconds since the Unix epoch.
//!
//! Layout:
//! - `store`: [`Store`], opening the database (durability settings) and migrating it.
//! - `flow`: experiments, participants, scene moves (guarded) and survey answers.
//! - `games`: games and seats, episode bookkeeping, interrupting open episodes.
//! - `events`: the `events` table (disconnects, fallbacks, errors).
//! - `lobby`: lobby waits and the matches formed from them.
//! - `recorder`: [`Recorder`], the non-blocking front of the writer, and its records.
//! - `writer`: the writer (on its own thread): batching, multi-row inserts, retries.
//! - `read`: recorded episodes and steps read back, observations decoded.
//! - [`obs_codec`]: the observation BLOB format (public: Python readers follow it).
//! - `error`: [`StoreError`].
//! - `clock`: [`now_us`], the clock every stored time comes from.
//! - `columns`: typed, checked reads from rows.

mod clock;
mod columns;
mod error;
mod events;
mod flow;
mod games;
mod lobby;
pub mod obs_codec;
mod read;
mod recorder;
mod store;
mod writer;

pub use clock::now_us;
pub use error::StoreError;
pub use events::Event;
pub use flow::{
    Experiment, ExternalKey, NewParticipant, Participant, RecruitIds, Response, SceneEvent,
};
pub use games::{Game, NewGame, Outcome, Seat};
pub use lobby::{LobbyWait, Match, MatchReason, NewMatch};
pub use read::{Episode, StoredEpisodeAgent, StoredStep};
pub use recorder::{
    ActionSource, AgentStep, EpisodeAgent, EpisodeEnd, EpisodeStart, Recorder, RecorderConfig,
    RecorderHandle, RecorderStats, StepRecord,
};
pub use store::Store;
