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
//! In a `group = "same"` scene, participants who played an earlier game
//! together wait for each other instead (see [`decide`]).
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
    /// In a `group = "same"` scene, the group they played with before.
    pub team: Option<Team>,
}

/// The group a participant played an earlier multiplayer game with: the
/// game's id, and how many people played it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Team {
    pub id: i64,
    pub size: usize,
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
    if scene.group_same {
        decide_teams(queue, scene, now)
    } else {
        decide_strangers(queue, scene, now)
    }
}

/// A `group = "same"` scene: a team whose members are all here forms at
/// once; participants without a team meet as strangers do; a team with
/// someone behind waits until its first member has waited the timeout, then
/// starts with fallbacks in the missing seats, or, where a missing seat has
/// no fallback, is told no partner came.
fn decide_teams(queue: &mut Vec<Waiter>, scene: &GameScene, now: Instant) -> Option<Decision> {
    let humans = scene.humans as usize;
    let mut teams: Vec<Team> = Vec::new();
    for w in queue.iter() {
        if let Some(team) = w.team
            && !teams.iter().any(|t| t.id == team.id)
        {
            teams.push(team);
        }
    }
    let in_team = |id: i64| move |w: &Waiter| w.team.is_some_and(|t| t.id == id);
    for team in &teams {
        let here = queue.iter().filter(|w| in_team(team.id)(w)).count();
        if here >= team.size.min(humans) {
            return Some(Decision::Form {
                group: take(queue, in_team(team.id), humans),
                reason: MatchReason::Full,
            });
        }
    }
    let mut strangers = take(queue, |w: &Waiter| w.team.is_none(), usize::MAX);
    let decided = decide_strangers(&mut strangers, scene, now);
    queue.extend(strangers);
    queue.sort_by_key(|w| w.joined);
    if decided.is_some() {
        return decided;
    }
    let timeout = Duration::from_secs(u64::from(scene.human_timeout_s?));
    let overdue = queue
        .iter()
        .find(|w| w.team.is_some() && now.saturating_duration_since(w.joined) >= timeout)?
        .team?;
    let members = take(queue, in_team(overdue.id), humans);
    if members.len() >= seats_only_people_fill(scene).max(1) {
        Some(Decision::Form {
            group: members,
            reason: MatchReason::HumanTimeout,
        })
    } else {
        Some(Decision::NoPartner(members))
    }
}

/// Takes out of `queue`, in order, up to `limit` waiters that `keep` picks.
fn take(queue: &mut Vec<Waiter>, keep: impl Fn(&Waiter) -> bool, limit: usize) -> Vec<Waiter> {
    let mut taken = Vec::new();
    queue.retain(|w| {
        if taken.len() < limit && keep(w) {
            taken.push(w.clone());
            false
        } else {
            true
        }
    });
    taken
}

/// Human seats without a fallback: only a person can fill them.
fn seats_only_people_fill(scene: &GameScene) -> usize {
    scene
        .human_seats()
        .filter(|s| s.fallback().is_none())
        .count()
}

/// Strangers: first come, first served (see the module docs).
fn decide_strangers(queue: &mut Vec<Waiter>, scene: &GameScene, now: Instant) -> Option<Decision> {
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
    let needed = seats_only_people_fill(scene);
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
            team: None,
        }
    }

    fn member(id: i64, team: i64) -> Waiter {
        Waiter {
            team: Some(Team { id: team, size: 2 }),
            ..waiter(id)
        }
    }

    /// In a `group = "same"` scene a team forms when its members are all
    /// here, whoever arrived between them; a stranger waits for a stranger.
    #[tokio::test(start_paused = true)]
    async fn teams_wait_for_each_other() {
        let mut scene = kitchen("human_timeout_s = 60", "");
        scene.group_same = true;
        let mut queue = vec![member(1, 7), waiter(9), member(3, 8)];
        assert_eq!(decide(&mut queue, &scene, Instant::now()), None);
        queue.push(member(2, 7));
        let decision = decide(&mut queue, &scene, Instant::now());
        assert!(
            matches!(&decision, Some(Decision::Form { group, reason: MatchReason::Full }) if ids(group) == vec![1, 2]),
            "{decision:?}"
        );
        queue.push(waiter(10));
        let decision = decide(&mut queue, &scene, Instant::now());
        assert!(
            matches!(&decision, Some(Decision::Form { group, .. }) if ids(group) == vec![9, 10]),
            "strangers meet strangers: {decision:?}"
        );
        assert_eq!(ids(&queue), vec![3]);
    }

    /// A team member who never comes: after the timeout the one waiting
    /// plays with the fallback, or without one is told no partner came.
    #[tokio::test(start_paused = true)]
    async fn a_team_member_behind_is_waited_for_until_the_timeout() {
        let mut scene = kitchen("human_timeout_s = 30", "fallback = \"scripted\"");
        scene.group_same = true;
        let mut queue = vec![member(1, 7)];
        tokio::time::advance(Duration::from_secs(29)).await;
        assert_eq!(decide(&mut queue, &scene, Instant::now()), None);
        tokio::time::advance(Duration::from_secs(1)).await;
        let decision = decide(&mut queue, &scene, Instant::now());
        assert!(
            matches!(&decision, Some(Decision::Form { group, reason: MatchReason::HumanTimeout }) if ids(group) == vec![1]),
            "{decision:?}"
        );

        let mut strict = kitchen("human_timeout_s = 30", "");
        strict.group_same = true;
        let mut queue = vec![member(4, 8)];
        tokio::time::advance(Duration::from_secs(30)).await;
        let decision = decide(&mut queue, &strict, Instant::now());
        assert!(
            matches!(&decision, Some(Decision::NoPartner(gone)) if ids(gone) == vec![4]),
            "{decision:?}"
        );
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
