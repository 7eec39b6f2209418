//! What the rest of the server holds of one participant's socket: a handle to
//! queue messages for it, and the keys it holds now.
//!
//! The socket itself (reading, writing, closing) lives in `session`; everyone
//! else (the flow, placement, the lobby, game tasks) reaches a socket only
//! through a [`Connection`]. It is cheap to clone and never blocks: messages go
//! to the socket's send task through a channel, and a closed socket drops them
//! silently, since it is going away and its closing is handled where it closes.
//!
//! The channel is bounded ([`SOCKET_QUEUE`]): frames do not travel it (they
//! are read newest-only from the game), so it fills only when the browser has
//! stopped reading. A message that finds it full marks the connection
//! overwhelmed instead of waiting or growing, and the session closes the
//! socket: one client that never reads cannot make the server hold its replies.

use std::sync::{Arc, Mutex};

use tandem_wire::ServerMessage;
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;
use tokio_util::sync::{CancellationToken, WaitForCancellationFuture};

use crate::frames::FrameReceiver;
use crate::sync::lock;

/// A message for a socket's send task.
///
/// Kept small: a socket's channel allocates its slots 32 at a time and keeps
/// about two such blocks for its whole life, so every byte here costs ~64 bytes
/// per socket. `ServerMessage` is ~160 bytes inline (its largest payloads), hence
/// the box: control messages are a few per episode, frames do not come this way.
pub enum Outgoing {
    Message(Box<ServerMessage>),
    /// Start streaming this game's frames, as seated agent `agent`.
    Watch {
        frames: FrameReceiver,
        agent: usize,
    },
    /// Stop streaming frames: any game's (`None`), or this game's only, so
    /// that a game answering late cannot stop the frames of the next one.
    Unwatch(Option<FrameReceiver>),
    /// Close the socket with this code and reason.
    Close(u16, &'static str),
    /// A WebSocket ping, to learn whether the browser is still there.
    Ping,
}

/// The most messages waiting for one socket's send task. Between two reads a
/// browser gets a handful (a scene, a seat, a status, a notice, a lobby update
/// a second); this many unread means it stopped reading.
pub const SOCKET_QUEUE: usize = 64;

/// One socket of one participant.
#[derive(Clone)]
pub struct Connection {
    pub participant_id: i64,
    /// Process-unique: tells a participant's sockets apart (a refresh, a second
    /// tab), so that an old socket closing never undoes what a newer one holds.
    pub id: u64,
    out: mpsc::Sender<Outgoing>,
    /// The keys this socket holds now, shared with the game seat it occupies.
    pub input: SharedInput,
    /// Cancelled when a message found the queue full.
    overwhelmed: CancellationToken,
}

impl Connection {
    /// A handle for the socket whose send task reads `out`.
    pub fn new(participant_id: i64, id: u64, out: mpsc::Sender<Outgoing>) -> Self {
        Connection {
            participant_id,
            id,
            out,
            input: Arc::new(Mutex::new(SeatInput::default())),
            overwhelmed: CancellationToken::new(),
        }
    }

    /// Queues a message.
    pub fn send(&self, message: ServerMessage) {
        self.control(Outgoing::Message(Box::new(message)));
    }

    /// Queues a control instruction for the send task.
    pub fn control(&self, outgoing: Outgoing) {
        if let Err(TrySendError::Full(_)) = self.out.try_send(outgoing) {
            self.overwhelmed.cancel();
        }
    }

    /// Completes once a message found this socket's queue full.
    pub fn overwhelmed(&self) -> WaitForCancellationFuture<'_> {
        self.overwhelmed.cancelled()
    }

    /// Whether a message found this socket's queue full.
    pub fn is_overwhelmed(&self) -> bool {
        self.overwhelmed.is_cancelled()
    }
}

/// The keys a socket holds now, the keys pressed since the game last read them,
/// and the input message that set them.
#[derive(Clone, Debug, Default)]
pub struct SeatInput {
    pub keys: Vec<String>,
    /// Keys that went down since the last tick, in order, even if already
    /// released: a tap shorter than a tick still counts (feedback, chords).
    pub pressed: Vec<String>,
    pub seq: Option<u64>,
    pub frame: Option<u64>,
    pub ts: Option<f64>,
    /// Where the keys went at the game's last tick: `(game, episode)`, so the
    /// session can record each input with them. Set by the game, cleared when
    /// the socket leaves its seat.
    pub place: Option<(i64, Option<i64>)>,
}

/// The most key presses kept between two ticks; more is a stuck key or abuse.
pub const MAX_PRESSED: usize = 32;

impl SeatInput {
    /// Replaces the held keys, remembering the ones that went down.
    pub fn update(&mut self, keys: Vec<String>, seq: u64, frame: Option<u64>, ts: Option<f64>) {
        for key in &keys {
            if !self.keys.contains(key) && self.pressed.len() < MAX_PRESSED {
                self.pressed.push(key.clone());
            }
        }
        self.keys = keys;
        self.seq = Some(seq);
        self.frame = frame;
        self.ts = ts;
    }

    /// A copy for this tick; the presses are handed over and cleared.
    pub fn take(&mut self) -> SeatInput {
        let snapshot = self.clone();
        self.pressed.clear();
        snapshot
    }
}

/// Written by the socket's receive loop, read by the game once per tick.
pub type SharedInput = Arc<Mutex<SeatInput>>;

/// Reads and clears a socket's input for one tick, noting where it goes.
pub fn take_input(input: &SharedInput, place: (i64, Option<i64>)) -> SeatInput {
    let mut held = lock(input);
    held.place = Some(place);
    held.take()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A socket's channel holds about 64 slots of `Outgoing` (two blocks of 32)
    /// for as long as it is open: a large variant here is memory per session.
    #[test]
    fn outgoing_stays_small() {
        let size = std::mem::size_of::<Outgoing>();
        assert!(size <= 32, "Outgoing is {size} bytes");
    }
}
