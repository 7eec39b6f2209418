//! The lobby's rules: when the participants waiting for a multiplayer game
//! scene form a game, and when they give up waiting.
//!
//! Each multiplayer scene has one queue, first come first served. As soon as a
//! queue holds the scene's `humans`, the first ones form a game. When the
//! longest wait reaches `human_timeout_s`, the people waiting start a game
//! together with fallback policies in the empty human seats, or, if some empty
//! seat has no fallback, the ones who waited too long are told no partner was
//! found and move on.
//!
//! Only the rules live here, as plain functions over a queue and a clock, so
//! they are tested on paused time without sockets or a database. The queues
//! themselves belong to `placement` (a participant is in at most one queue or
//! game, and only one owner can keep that true); `flow` carries out what the
//! rules decide.

use std::time::Duration;

use tandem_experiment::GameScene;
use tandem_store::MatchReason;
use tokio::time::Instant;

use tandem_wire::{LobbyStatus, ServerMessage};

/// How often everyone waiting hears how long they have waited, and the
/// timeouts are applied.
pub const STATUS_INTERVAL: Duration = Duration::from_secs(1);

/// One participant waiting.
#[derive(Clone, Debug, PartialEq)]
pub struct Waiter {
    pub participant_id: i64,
    /// The wait's row in `lobby_waits`, closed with its outcome.
    pub wait_id: i64,
    pub joined: Instant,
    /// When they joined, in the database's clock (microseconds since the epoch).
    pub joined_us: i64,
}

/// What a queue does now.
#[derive(Debug, PartialEq)]
pub enum Decision {
    /// These form a game, in queue order.
    Form {
        group: Vec<Waiter>,
        reason: MatchReason,
    },
    /// These waited past the timeout and no game can take them.
    NoPartner(Vec<Waiter>),
}

/// The first decision the queue allows at `now`, taking its members out of
/// the queue; `None` when everyone keeps waiting.
pub fn decide(queue: &mut Vec<Waiter>, scene: &GameScene, now: Instant) -> Option<Decision> {
    let humans = scene.humans as usize;
    if humans > 0 && queue.len() >= humans {
        return Some(Decision::Form {
            group: queue.drain(..humans).collect(),
            reason: MatchReason::Full,
        });
    }
    let timeout = Duration::from_secs(u64::from(scene.human_timeout_s?));
    let oldest = queue.first()?;
    if now.saturating_duration_since(oldest.joined) < timeout {
        return None;
    }
    // Seats only a person can fill: human seats without a fallback.
    let needed = scene
        .human_seats()
        .filter(|s| s.fallback().is_none())
        .count();
    if queue.len() >= needed.max(1) {
        let group = queue.drain(..queue.len().min(humans.max(1))).collect();
        Some(Decision::Form {
            group,
            reason: MatchReason::HumanTimeout,
        })
    } else {
        let expired = queue
            .iter()
            .take_while(|w| now.saturating_duration_since(w.joined) >= timeout)
            .count();
        Some(Decision::NoPartner(queue.drain(..expired).collect()))
    }
}

/// The `lobby` message for one waiter of a queue of `waiting`.
pub fn status(
    scene_index: usize,
    scene: &GameScene,
    waiting: usize,
    waiter: &Waiter,
    now: Instant,
) -> ServerMessage {
    let waited_s = now.saturating_duration_since(waiter.joined).as_secs_f64();
    ServerMessage::Lobby(LobbyStatus {
        scene: scene_index,
        waiting,
        needed: scene.humans,
        // Tenths: the page shows whole seconds, and shorter text is cheaper.
        waited_s: (waited_s * 10.0).round() / 10.0,
        timeout_s: scene.human_timeout_s,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A kitchen scene for two, with `timeout` and `fallback` on both human seats.
    fn kitchen(timeout: &str, fallback: &str) -> GameScene {
        crate::test_support::kitchen(timeout, &crate::test_support::two_humans(fallback))
    }

    fn waiter(id: i64) -> Waiter {
        Waiter {
            participant_id: id,
            wait_id: 100 + id,
            joined: Instant::now(),
            joined_us: 0,
        }
    }

    fn ids(waiters: &[Waiter]) -> Vec<i64> {
        waiters.iter().map(|w| w.participant_id).collect()
    }

    /// A full group forms at once, first come first served, and the rest wait.
    #[tokio::test(start_paused = true)]
    async fn full_groups_form_in_arrival_order() {
        let scene = kitchen("human_timeout_s = 60", "fallback = \"scripted\"");
        let mut queue = vec![waiter(1), waiter(2), waiter(3)];
        let decision = decide(&mut queue, &scene, Instant::now());
        let Some(Decision::Form { group, reason }) = decision else {
            panic!("expected a group, got {decision:?}");
        };
        assert_eq!(ids(&group), vec![1, 2]);
        assert_eq!(reason, MatchReason::Full);
        assert_eq!(ids(&queue), vec![3]);
        assert_eq!(decide(&mut queue, &scene, Instant::now()), None);
    }

    /// One waiter keeps waiting until the timeout, then starts with the
    /// fallback in the empty seat.
    #[tokio::test(start_paused = true)]
    async fn timeout_fills_empty_seats_with_fallbacks() {
        let scene = kitchen("human_timeout_s = 60", "fallback = \"scripted\"");
        let mut queue = vec![waiter(1)];
        tokio::time::advance(Duration::from_secs(59)).await;
        assert_eq!(decide(&mut queue, &scene, Instant::now()), None);
        tokio::time::advance(Duration::from_secs(1)).await;
        let decision = decide(&mut queue, &scene, Instant::now());
        assert!(
            matches!(&decision, Some(Decision::Form { group, reason: MatchReason::HumanTimeout }) if ids(group) == vec![1]),
            "{decision:?}"
        );
        assert!(queue.is_empty());
    }

    /// Without fallbacks, a lone waiter past the timeout gives up; a partner
    /// arriving in time makes a full group whatever the clock says.
    #[tokio::test(start_paused = true)]
    async fn timeout_without_fallback_means_no_partner() {
        let scene = kitchen("human_timeout_s = 10", "");
        let mut queue = vec![waiter(1)];
        tokio::time::advance(Duration::from_secs(10)).await;
        queue.push(waiter(2));
        let decision = decide(&mut queue, &scene, Instant::now());
        assert!(
            matches!(
                decision,
                Some(Decision::Form {
                    reason: MatchReason::Full,
                    ..
                })
            ),
            "{decision:?}"
        );

        let mut queue = vec![waiter(3)];
        tokio::time::advance(Duration::from_secs(10)).await;
        let decision = decide(&mut queue, &scene, Instant::now());
        let Some(Decision::NoPartner(gone)) = decision else {
            panic!("expected no partner, got {decision:?}");
        };
        assert_eq!(ids(&gone), vec![3]);
    }

    /// A scene with no timeout waits for a full group forever.
    #[tokio::test(start_paused = true)]
    async fn no_timeout_waits_for_a_full_group() {
        let mut scene = kitchen("", "fallback = \"scripted\"");
        scene.human_timeout_s = None;
        let mut queue = vec![waiter(1)];
        tokio::time::advance(Duration::from_secs(86_400)).await;
        assert_eq!(decide(&mut queue, &scene, Instant::now()), None);
    }

    /// The status message counts the queue and this waiter's own wait.
    #[tokio::test(start_paused = true)]
    async fn status_reports_the_waiters_own_wait() {
        let scene = kitchen("human_timeout_s = 60", "fallback = \"scripted\"");
        let w = waiter(1);
        tokio::time::advance(Duration::from_millis(2_500)).await;
        let message = status(4, &scene, 3, &w, Instant::now());
        assert_eq!(
            message,
            ServerMessage::Lobby(LobbyStatus {
                scene: 4,
                waiting: 3,
                needed: 2,
                waited_s: 2.5,
                timeout_s: Some(60),
            })
        );
    }
}
