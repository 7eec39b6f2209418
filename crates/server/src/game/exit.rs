//! How a game task ends: [`GameExit`], and the message of a caught panic.
//!
//! Kept apart from the task so that the roster (which decides some endings)
//! and the environment thread (which catches panics) need not import the task.

use tandem_wire::NoticeCode;

use super::GameError;

/// How a game task ended.
pub(super) enum GameExit {
    Finished,
    /// Ended early for everyone: `reason` is stored, `notice` shown.
    EndedEarly {
        reason: String,
        code: NoticeCode,
        notice: String,
    },
    Failed(GameError),
    Shutdown,
    /// Placement closed the task's commands: the game is idle, or over.
    Retired,
}

/// The message of a caught panic, when it has one.
pub(super) fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".to_string())
}
