//! "Who is where": a copy of placement at one instant, for the researcher's
//! dashboard and for tests.
//!
//! Plain data, serializable as JSON, taken under placement's lock in one go so
//! it is consistent: a participant is never shown in a queue and a game at once.

use serde::Serialize;
use tokio::time::Instant;

use super::{Placement, Spot as PlaceSpot};
use crate::sync::lock;

/// Everyone the server is tracking, and every running game.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Snapshot {
    /// Sorted by participant id.
    pub participants: Vec<ParticipantPlace>,
    /// Sorted by game id.
    pub games: Vec<GamePlace>,
}

/// One participant.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ParticipantPlace {
    pub participant_id: i64,
    /// The scene index they were last known to be at.
    pub scene: usize,
    /// Whether a socket of theirs is open.
    pub connected: bool,
    pub spot: Spot,
}

/// Where a participant stands beyond their scene.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Spot {
    /// At their scene, in nothing.
    Free,
    /// In the lobby of game scene `scene` since `since_us` (µs since the epoch).
    Waiting {
        scene: usize,
        since_us: i64,
        waited_s: f64,
    },
    /// Their game is being found or created.
    Placing { scene: usize },
    /// Seated in running game `game_id`, as agent `agent`.
    Playing { game_id: i64, agent: usize },
    /// Being moved on to the next scene.
    Moving,
}

/// One running game.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GamePlace {
    pub game_id: i64,
    pub scene: usize,
    /// When its current task started (µs since the epoch).
    pub started_us: i64,
    /// Its human seats' participants: (participant id, agent index, connected).
    pub seats: Vec<(i64, usize, bool)>,
}

impl Placement {
    /// Who is where, in which game, waiting since when.
    pub fn snapshot(&self) -> Snapshot {
        let state = lock(&self.state);
        let now = Instant::now();
        let mut participants: Vec<ParticipantPlace> = state
            .participants
            .iter()
            .map(|(&participant_id, place)| {
                let spot = match place.spot {
                    PlaceSpot::Free => Spot::Free,
                    PlaceSpot::Moving => Spot::Moving,
                    PlaceSpot::Placing { scene } => Spot::Placing { scene },
                    PlaceSpot::Queued { scene } => state
                        .queues
                        .get(&scene)
                        .and_then(|q| q.iter().find(|w| w.participant_id == participant_id))
                        .map_or(Spot::Placing { scene }, |w| Spot::Waiting {
                            scene,
                            since_us: w.joined_us,
                            waited_s: now.saturating_duration_since(w.joined).as_secs_f64(),
                        }),
                    PlaceSpot::Seated { game_id } => Spot::Playing {
                        game_id,
                        agent: state
                            .games
                            .get(&game_id)
                            .and_then(|g| g.seats.iter().find(|(p, _)| *p == participant_id))
                            .map_or(0, |(_, agent)| *agent),
                    },
                };
                ParticipantPlace {
                    participant_id,
                    scene: place.at.scene,
                    connected: place.socket.is_some(),
                    spot,
                }
            })
            .collect();
        participants.sort_by_key(|p| p.participant_id);
        let mut games: Vec<GamePlace> = state
            .games
            .iter()
            .map(|(&game_id, game)| GamePlace {
                game_id,
                scene: game.scene,
                started_us: game.started_us,
                seats: game
                    .seats
                    .iter()
                    .map(|&(participant, agent)| {
                        let connected = state
                            .participants
                            .get(&participant)
                            .is_some_and(|p| p.socket.is_some());
                        (participant, agent, connected)
                    })
                    .collect(),
            })
            .collect();
        games.sort_by_key(|g| g.game_id);
        Snapshot {
            participants,
            games,
        }
    }
}
