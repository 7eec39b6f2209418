//! Work the flow does not do where it arises, but hands to the outcomes task
//! (`flow::outcomes`): what the lobby decided, and moves that would otherwise
//! start inside the very join that found them.
//!
//! Carrying these out leads anywhere in the flow (a participant moved on may
//! reach the next game scene and queue again), so doing it inline would make
//! the flow's futures recursive; a channel breaks the cycle, and the outcomes
//! task runs each item in a task of its own.

use crate::lobby::Decision;

/// One piece of deferred work.
#[derive(Debug)]
pub enum Deferred {
    /// A decision of the lobby of game scene `scene_index`.
    Lobby {
        scene_index: usize,
        decision: Decision,
    },
    /// Move a participant past scene `from`: they were being placed in a game
    /// that had just ended.
    MoveOn { participant_id: i64, from: usize },
}
