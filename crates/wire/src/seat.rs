//! Seats as the `seat` message describes them: the participant's own seat (which
//! agent, how their keys count) and a line about each other seat (who holds it).
//!
//! The experiment crate makes a [`SeatView`] from a seat's configuration; the
//! game adds [`OtherSeat`]s from who is playing right now.

use serde::{Deserialize, Serialize};

/// What a human seat's keys do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InputKind {
    /// Keys choose the action.
    Action,
    /// A policy acts; keys give scalar feedback.
    Feedback,
    /// A policy acts unless a mapped key is held.
    Correction,
}

/// A feedback key and what one press of it is worth.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FeedbackKey {
    pub key: String,
    pub value: f64,
}

/// The seat this participant plays.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SeatView {
    /// The agent's index in the environment.
    pub agent: usize,
    pub agent_name: String,
    /// How the participant's keys count; null for a seat no human plays.
    pub input: Option<InputKind>,
    /// Every key the seat uses (key map and feedback keys), in order of first use.
    pub keys: Vec<String>,
    /// The feedback keys; null for a seat no human plays (empty for one that
    /// gives no feedback).
    pub feedback: Option<Vec<FeedbackKey>>,
}

/// Another seat of the same game, and who holds it now.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OtherSeat {
    pub agent: usize,
    pub agent_name: String,
    /// Whether a participant plays it (or is awaited back).
    pub human: bool,
    /// Who chooses its actions now, as recorded with each step:
    /// `participant:ID`, `policy:NAME`, or `nobody`.
    pub actor: String,
}
