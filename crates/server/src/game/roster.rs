//! Who sits where in one game, and seats changing hands.
//!
//! A participant who leaves is replaced by their seat's fallback within one
//! tick; without one the game pauses. A participant back within the scene's
//! grace period gets the seat back. After it, the fallback keeps the seat and
//! the participant is forfeited (the task reports it, and the flow moves them
//! on); with no fallback and other people playing, the game ends for everyone
//! with an explanation.
//!
//! The roster sends notices to the sockets it holds, and collects what must be
//! recorded (`seat_change`, `disconnected`, `reconnected`, `grace_expired`)
//! and reported (forfeits) for the task to hand on with the episode and step
//! they happened at. It does no other I/O and reads only tokio's clock, so its
//! rules are tested on paused time.

use std::time::Duration;

use serde_json::{Value, json};
use tandem_wire::{NoticeCode, OtherSeat, SeatMessage, ServerMessage};
use tokio::time::Instant;

use super::IDLE_LIMIT;
use super::exit::GameExit;
use super::seat::SeatRuntime;
use crate::connection::{Connection, Outgoing};
use crate::frames::FrameReceiver;

/// Something to record in `events`.
#[derive(Debug, PartialEq)]
pub(super) struct RosterEvent {
    pub(super) participant: Option<i64>,
    pub(super) kind: &'static str,
    pub(super) detail: Value,
}

pub(super) struct Roster {
    pub(super) seats: Vec<SeatRuntime>,
    /// The scene's `reconnect_grace_s`.
    grace_s: u32,
    /// Since when no socket has been attached.
    pub(super) idle_since: Instant,
    events: Vec<RosterEvent>,
    /// Participants forfeited since the task last looked.
    forfeits: Vec<i64>,
    /// This game's frames, to name them when telling a socket to stop
    /// watching (it may be watching another game's by then).
    frames: FrameReceiver,
}

impl Roster {
    pub(super) fn new(seats: Vec<SeatRuntime>, grace_s: u32, frames: FrameReceiver) -> Self {
        Roster {
            seats,
            grace_s,
            idle_since: Instant::now(),
            events: Vec::new(),
            forfeits: Vec::new(),
            frames,
        }
    }

    fn grace(&self) -> Duration {
        Duration::from_secs(u64::from(self.grace_s))
    }

    /// Events to record, in the order they happened.
    pub(super) fn take_events(&mut self) -> Vec<RosterEvent> {
        std::mem::take(&mut self.events)
    }

    /// Participants forfeited since the last call.
    pub(super) fn take_forfeits(&mut self) -> Vec<i64> {
        std::mem::take(&mut self.forfeits)
    }

    /// Whether the game can play now: someone is connected, and every seat has
    /// someone or something to play it.
    pub(super) fn is_ready(&self) -> bool {
        self.seats.iter().any(|s| s.present().is_some())
            && !self.seats.iter().any(SeatRuntime::blocks_play)
    }

    /// Whether no socket is attached at all.
    pub(super) fn is_empty(&self) -> bool {
        self.seats.iter().all(|s| s.occupant.is_none())
    }

    /// When a paused game must look again: the first grace period to expire,
    /// or the idle limit.
    pub(super) fn next_wake(&self) -> Instant {
        let grace = self.grace();
        let mut wake = self.idle_since + IDLE_LIMIT;
        for seat in &self.seats {
            if let (true, None, Some(since)) = (seat.is_awaited(), &seat.occupant, seat.away_since)
            {
                wake = wake.min(since + grace);
            }
        }
        wake
    }

    /// The participants still seated: those who have not forfeited.
    pub(super) fn staying(&self) -> Vec<i64> {
        self.seats
            .iter()
            .filter(|s| s.is_awaited())
            .filter_map(|s| s.participant_id)
            .collect()
    }

    /// A participant's socket takes their seat. `before_play`: nothing has
    /// been played yet, so arriving is joining, not a seat change.
    pub(super) fn attach(&mut self, socket: Connection, before_play: bool) {
        let participant = socket.participant_id;
        let Some(index) = self
            .seats
            .iter()
            .position(|s| s.participant_id == Some(participant) && s.is_awaited())
        else {
            // No longer seated here: their seat went to its fallback for good.
            // Reporting it again moves them on even if the first move was lost.
            socket.control(Outgoing::Unwatch(Some(self.frames.clone())));
            if self
                .seats
                .iter()
                .any(|s| s.participant_id == Some(participant))
            {
                self.forfeits.push(participant);
            }
            return;
        };
        let first_join = before_play && !self.seats[index].attached_once;
        let seat = &mut self.seats[index];
        let returning = seat.occupant.is_none();
        let before = seat.actor();
        seat.occupant = Some(socket);
        seat.away_since = None;
        seat.attached_once = true;
        if returning && !first_join {
            let after = seat.actor();
            let name = seat.name().to_string();
            self.record(
                Some(participant),
                "reconnected",
                json!({"agent": index, "agent_name": name}),
            );
            self.seat_change(index, &before, &after, "participant_joined");
            self.notify_others(
                index,
                NoticeCode::PartnerBack,
                &format!("{name}'s player is back."),
            );
        }
        let seat = &self.seats[index];
        if let Some(o) = seat.present() {
            o.send(ServerMessage::Seat(SeatMessage {
                seat: seat.config.view(),
                others: self.others(index),
            }));
        }
    }

    /// Socket `connection` of a participant closed. A socket that is not the
    /// one seated (an old one, replaced) changes nothing. While the server is
    /// `stopping`, sockets close because it stops, not because anyone left:
    /// nothing is recorded or told.
    pub(super) fn detach(&mut self, participant_id: i64, connection: u64, stopping: bool) {
        let Some(index) = self.seats.iter().position(|s| {
            s.participant_id == Some(participant_id)
                && s.occupant.as_ref().is_some_and(|o| o.id == connection)
        }) else {
            return;
        };
        if stopping {
            self.seats[index].occupant = None;
            return;
        }
        let grace = self.grace_s;
        let seat = &mut self.seats[index];
        let before = seat.actor();
        if let Some(left) = seat.occupant.take() {
            crate::sync::lock(&left.input).place = None;
        }
        seat.away_since = Some(Instant::now());
        let after = seat.actor();
        let has_fallback = seat.has_fallback();
        let name = seat.name().to_string();
        if self.is_empty() {
            self.idle_since = Instant::now();
        }
        self.record(
            Some(participant_id),
            "disconnected",
            json!({"agent": index, "agent_name": name, "grace_s": grace}),
        );
        self.seat_change(index, &before, &after, "takeover");
        let text = if has_fallback {
            format!("{name}'s player left; an AI plays for them until they return.")
        } else {
            format!("{name}'s player disconnected; waiting up to {grace} s for them to return.")
        };
        self.notify_others(index, NoticeCode::PartnerLeft, &text);
    }

    /// Ends grace periods that ran out. Returns how the game ends, if it must.
    pub(super) fn expire_grace(&mut self) -> Option<GameExit> {
        let grace = self.grace();
        let expired: Vec<usize> = self
            .seats
            .iter()
            .enumerate()
            .filter(|(_, s)| {
                s.is_awaited()
                    && s.occupant.is_none()
                    && s.away_since.is_some_and(|t| t.elapsed() >= grace)
            })
            .map(|(i, _)| i)
            .collect();
        for index in expired {
            let seat = &self.seats[index];
            let name = seat.name().to_string();
            let participant = seat.participant_id;
            if seat.has_fallback() {
                self.seats[index].forfeited = true;
                self.record(
                    participant,
                    "grace_expired",
                    json!({"agent": index, "agent_name": name, "seat": "fallback"}),
                );
                self.notify_others(
                    index,
                    NoticeCode::PartnerGone,
                    &format!("{name}'s player did not come back; the AI keeps playing for them."),
                );
                // They are gone for good: when they return, the flow shows
                // them the next scene instead of this game.
                self.forfeits.extend(participant);
            } else if self.seats.iter().any(|s| s.present().is_some()) {
                self.record(
                    participant,
                    "grace_expired",
                    json!({"agent": index, "agent_name": name, "seat": "empty"}),
                );
                return Some(GameExit::EndedEarly {
                    reason: format!("participant_left: {name}"),
                    code: NoticeCode::PartnerDidNotReturn,
                    notice: format!(
                        "{name}'s player left and did not come back, so this game has ended. \
                         Thank you for playing; the study continues."
                    ),
                });
            }
        }
        if !self.seats.iter().any(SeatRuntime::is_awaited) {
            return Some(GameExit::EndedEarly {
                reason: "abandoned".to_string(),
                code: NoticeCode::Abandoned,
                notice: "Every player left, so this game has ended.".to_string(),
            });
        }
        None
    }

    /// Sends `message` to every participant playing.
    pub(super) fn broadcast(&self, message: &ServerMessage) {
        for seat in &self.seats {
            if let Some(o) = seat.present() {
                o.send(message.clone());
            }
        }
    }

    /// Records that seat `index`'s actor changed from `from` to `to`.
    pub(super) fn seat_change(&mut self, index: usize, from: &str, to: &str, reason: &str) {
        if from == to {
            return;
        }
        let participant = self.seats[index].participant_id;
        let detail = json!({
            "agent": index,
            "agent_name": self.seats[index].name(),
            "from": from,
            "to": to,
            "reason": reason,
        });
        self.record(participant, "seat_change", detail);
    }

    /// Queues an event for the task to record.
    pub(super) fn record(&mut self, participant: Option<i64>, kind: &'static str, detail: Value) {
        self.events.push(RosterEvent {
            participant,
            kind,
            detail,
        });
    }

    /// The other seats, as the `seat` message describes them.
    fn others(&self, index: usize) -> Vec<OtherSeat> {
        self.seats
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != index)
            .map(|(_, s)| OtherSeat {
                agent: s.agent(),
                agent_name: s.name().to_string(),
                human: s.is_awaited(),
                actor: s.actor(),
            })
            .collect()
    }

    fn notify_others(&self, index: usize, code: NoticeCode, text: &str) {
        for (i, seat) in self.seats.iter().enumerate() {
            if i != index
                && let Some(o) = seat.present()
            {
                o.send(ServerMessage::notice(code.clone(), text));
            }
        }
    }
}

#[cfg(test)]
#[path = "roster_tests.rs"]
mod tests;
