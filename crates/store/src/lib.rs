//! Tandem's database: the schema, the flow's records, and the recorder that
//! writes every step of every game in batches through one writer per database.
//!
//! SQLite only for now (one file, WAL); times are microseconds since the Unix epoch.
//! Public types and methods speak in domain types only (the driver's errors travel
//! opaque inside [`StoreError`]), and the recorder reaches the database through a
//! small seam (`backend`), so another backend is a module beside `sqlite`.
//!
//! Layout:
//! - `store`: [`Store`], opening the database (durability settings) and migrating
//!   it; [`Durability`], the settings read back.
//! - `flow`: experiments, participants, scene moves (guarded) and survey answers.
//! - `games`: games and seats, episode bookkeeping, interrupting open episodes.
//! - `events`: the `events` table (disconnects, fallbacks, errors).
//! - `console`: the researchers who may use the console (names, password hashes).
//! - `timing`: what pages report about timing (inputs, frames drawn, clock
//!   samples).
//! - `lobby`: lobby waits and the matches formed from them.
//! - `recorder`: [`Recorder`], the non-blocking front of the writer.
//! - `queue`: what recorders send the writer, their shared counters, and
//!   [`RecorderConfig`].
//! - `records`: what a game loop records: [`EpisodeStart`], [`StepRecord`], [`EpisodeEnd`].
//! - `episode_ids`: episode ids from blocks the database hands out (hi/lo).
//! - `episode_indices`: episode indices within a game, reserved in blocks so
//!   that a crash never lets one be used twice.
//! - `writer`: the writer (on its own thread): the batching policy, when to
//!   commit, retries, the memory cap, counters.
//! - `batch`: what the writer buffers, observations encoded, ready for any backend.
//! - `backend`: the seam between the recorder and a database (two small traits).
//! - `sqlite`: SQLite's side of that seam: multi-row inserts, id blocks.
//! - `read`: recorded episodes and steps read back, observations decoded.
//! - [`obs_codec`]: the observation BLOB format (public: Python readers follow it).
//! - `error`: [`StoreError`], and [`DatabaseError`], the driver's error kept opaque.
//! - `clock`: [`now_us`], the clock every stored time comes from.
//! - `columns`: typed, checked reads from rows.

mod backend;
mod batch;
mod clock;
mod columns;
mod console;
mod dashboard;
mod episode_ids;
mod episode_indices;
mod error;
mod events;
mod flow;
mod games;
mod lobby;
pub mod obs_codec;
mod queue;
mod read;
mod recorder;
mod records;
mod sqlite;
mod store;
mod timing;
mod walkthrough;
mod writer;

pub use clock::now_us;
pub use console::{AuditEntry, ConsoleSession, ConsoleUser};
pub use dashboard::{GameSceneStats, SceneCount};
pub use episode_indices::{EPISODE_INDEX_BLOCK, EpisodeIndices};
pub use error::{DatabaseError, StoreError};
pub use events::Event;
pub use flow::{
    Assigned, Experiment, ExternalKey, NewParticipant, Participant, RecruitIds, Response,
    SceneEvent,
};
pub use games::{Game, NewGame, Outcome, Seat};
pub use lobby::{LobbyWait, Match, MatchReason, NewMatch};
pub use queue::{RecorderConfig, RecorderStats};
pub use read::{Episode, StoredEpisodeAgent, StoredStep};
pub use recorder::{Recorder, RecorderHandle};
pub use records::{ActionSource, AgentStep, EpisodeAgent, EpisodeEnd, EpisodeStart, StepRecord};
pub use store::{Durability, Store};
pub use timing::{ClockSample, DisplayRecord, InputRecord, TimingRecord};
pub use walkthrough::{Missing, ParticipantScore, ScenePassage};
