//! [`GameError`]: why a game failed, as the game's end reason records it.
//!
//! Every way a game can fail is a variant, so the task's control flow matches
//! on kinds rather than parsing strings; the `Display` text is what the
//! database stores after `failed: ` and what the log shows.

use tandem_env::EnvError;
use tandem_store::StoreError;

use super::seat::SeatError;

#[derive(Debug, thiserror::Error)]
pub enum GameError {
    /// The scene index the game was created for is not a game scene of this
    /// experiment (the file changed between runs).
    #[error("scene {0} is not a game scene of this experiment")]
    NotAGameScene(usize),
    #[error("{0}")]
    Make(#[from] tandem_envs::MakeError),
    #[error("{0}")]
    Seat(#[from] SeatError),
    #[error("reset: {0}")]
    Reset(EnvError),
    #[error("step: {0}")]
    Step(EnvError),
    /// The thread an off-runtime environment runs on stopped (it panicked).
    #[error("the environment stopped: {0}")]
    EnvStopped(String),
    #[error("database: {0}")]
    Store(#[from] StoreError),
    #[error("recorder: {0}")]
    Recorder(StoreError),
    #[error("game {0} vanished after creation")]
    Vanished(i64),
    #[error("panicked: {0}")]
    Panicked(String),
}
