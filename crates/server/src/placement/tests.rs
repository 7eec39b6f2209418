//! Placement's transitions, without sockets or a database: what each socket
//! and game task is sent, and what the snapshot shows after each step.

use serde_json::Value;
use tandem_store::{Game, Seat};
use tokio::sync::mpsc;

use super::*;
use crate::connection::Outgoing;
use crate::lobby::Decision;

/// The pairs scene of a two-chef kitchen (both seats human, with fallbacks).
fn kitchen() -> GameScene {
    let seats = crate::test_support::two_humans("fallback = \"scripted\"");
    crate::test_support::kitchen("human_timeout_s = 60", &seats)
}

/// Game 7 at scene 0 with `participants` in its seats, in agent order.
fn game(participants: &[i64]) -> Game {
    Game {
        id: 7,
        experiment_id: "t".into(),
        scene_index: 0,
        scene_id: "k".into(),
        env_id: "Kitchen-v0".into(),
        env_version: 1,
        spaces: Value::Null,
        fps: 8,
        config: Value::Null,
        started_us: 0,
        ended_us: None,
        end_reason: None,
        seats: participants
            .iter()
            .enumerate()
            .map(|(agent, &p)| Seat {
                agent: agent as u32,
                agent_name: format!("chef_{agent}"),
                participant_id: Some(p),
                policy: Some("scripted".into()),
            })
            .collect(),
    }
}

fn socket(participant: i64, id: u64) -> (Connection, mpsc::Receiver<Outgoing>) {
    let (tx, rx) = mpsc::channel(crate::connection::SOCKET_QUEUE);
    (Connection::new(participant, id, tx), rx)
}

/// What a socket was sent, by kind (`json:<type>`, `watch:<agent>`, ...).
fn sent(rx: &mut mpsc::Receiver<Outgoing>) -> Vec<String> {
    let mut out = Vec::new();
    while let Ok(message) = rx.try_recv() {
        out.push(match message {
            Outgoing::Message(m) => format!("json:{}", m.type_name()),
            Outgoing::Watch { agent, .. } => format!("watch:{agent}"),
            Outgoing::Unwatch(_) => "unwatch".into(),
            Outgoing::Close(code, _) => format!("close:{code}"),
            Outgoing::Ping => "ping".into(),
        });
    }
    out
}

/// What a game task was sent.
fn commands(rx: &mut mpsc::UnboundedReceiver<Command>) -> Vec<String> {
    let mut out = Vec::new();
    while let Ok(command) = rx.try_recv() {
        out.push(match command {
            Command::Attach(c) => format!("attach:{}/{}", c.participant_id, c.id),
            Command::Detach {
                participant_id,
                connection,
            } => format!("detach:{participant_id}/{connection}"),
            Command::End { reason } => format!("end:{reason}"),
        });
    }
    out
}

fn waiter(participant: i64) -> Waiter {
    Waiter {
        participant_id: participant,
        wait_id: 100 + participant,
        joined: Instant::now(),
        joined_us: 1_000 * participant,
        team: None,
    }
}

fn spot_of(placement: &Placement, participant: i64) -> Option<SpotView> {
    placement
        .snapshot()
        .participants
        .into_iter()
        .find(|p| p.participant_id == participant)
        .map(|p| p.spot)
}

/// Queues `participant` (socket `id`) in the kitchen's lobby.
fn queue(
    placement: &Placement,
    scene: &GameScene,
    participant: i64,
    id: u64,
) -> mpsc::Receiver<Outgoing> {
    let (s, rx) = socket(participant, id);
    assert!(placement.connect(s).is_none());
    assert_eq!(
        placement.join(participant, id, At { scene: 0, step: 0 }, scene),
        Join::Claimed
    );
    assert!(placement.enqueue(0, scene, waiter(participant)));
    rx
}

/// A newer socket replaces the older; the older closing leaves the newer in place.
#[tokio::test(start_paused = true)]
async fn a_new_socket_replaces_the_old() {
    let placement = Placement::default();
    let (old, _) = socket(1, 10);
    let (new, _) = socket(1, 11);
    assert!(placement.connect(old).is_none());
    assert_eq!(placement.connect(new).map(|c| c.id), Some(10));
    assert_eq!(placement.disconnect(1, 10, false), None);
    assert!(placement.is_current(1, 11));
    placement.disconnect(1, 11, false);
    assert!(placement.snapshot().participants.is_empty(), "nothing held");
}

/// Only one socket can claim a participant's placement at a time; a release
/// lets the next one try.
#[tokio::test(start_paused = true)]
async fn one_claim_at_a_time() {
    let scene = kitchen();
    let placement = Placement::default();
    let (first, _) = socket(1, 10);
    placement.connect(first);
    assert_eq!(
        placement.join(1, 10, At { scene: 0, step: 0 }, &scene),
        Join::Claimed
    );
    let (second, _) = socket(1, 11);
    placement.connect(second);
    assert_eq!(
        placement.join(1, 11, At { scene: 0, step: 0 }, &scene),
        Join::Nothing
    );
    assert_eq!(
        placement.join(1, 10, At { scene: 0, step: 0 }, &scene),
        Join::Nothing,
        "not current"
    );
    assert_eq!(spot_of(&placement, 1), Some(SpotView::Placing { scene: 0 }));
    placement.release(1);
    assert_eq!(
        placement.join(1, 11, At { scene: 0, step: 0 }, &scene),
        Join::Claimed
    );
}

/// Queueing tells everyone waiting; a second tab keeps the place; closing the
/// current socket leaves the queue, but not while the server stops.
#[tokio::test(start_paused = true)]
async fn queues_keep_places_across_tabs() {
    let scene = kitchen();
    let placement = Placement::default();
    let mut a_rx = queue(&placement, &scene, 1, 10);
    assert_eq!(sent(&mut a_rx), vec!["json:lobby"]);
    assert_eq!(
        spot_of(&placement, 1),
        Some(SpotView::Waiting {
            scene: 0,
            since_us: 1_000,
            waited_s: 0.0
        })
    );
    let (tab, mut tab_rx) = socket(1, 11);
    placement.connect(tab);
    assert_eq!(
        placement.join(1, 11, At { scene: 0, step: 0 }, &scene),
        Join::Nothing
    );
    assert_eq!(sent(&mut tab_rx), vec!["json:lobby"]);
    assert_eq!(placement.disconnect(1, 10, false), None, "the old tab");
    assert_eq!(placement.counts(), (1, 0, 1));

    assert_eq!(placement.disconnect(1, 11, true), None, "stopping keeps it");
    assert_eq!(placement.counts(), (0, 0, 1));

    let _b_rx = queue(&placement, &scene, 2, 20);
    let left = placement.disconnect(2, 20, false);
    assert_eq!(left.map(|(scene, w)| (scene, w.wait_id)), Some((0, 102)));
    assert_eq!(placement.counts(), (0, 0, 1));
}

/// A full group is decided under the lock, seated in one go, and its sockets
/// watch the game and attach to its task; a reconnect attaches again, a
/// closing socket detaches.
#[tokio::test(start_paused = true)]
async fn groups_are_seated_and_attached() {
    let scene = kitchen();
    let placement = Placement::default();
    let mut a_rx = queue(&placement, &scene, 1, 10);
    let mut b_rx = queue(&placement, &scene, 2, 20);
    let decisions = placement.decide_lobby(0, &scene, Instant::now(), false);
    let [Decision::Form { group, .. }] = decisions.as_slice() else {
        panic!("expected one group, got {decisions:?}");
    };
    assert_eq!(group.len(), 2);
    assert_eq!(spot_of(&placement, 2), Some(SpotView::Placing { scene: 0 }));
    sent(&mut a_rx);
    sent(&mut b_rx);

    let Seating::Start(mut task) = placement.seat(&game(&[1, 2]), 0, &[1, 2]) else {
        panic!("a task must start");
    };
    assert_eq!(sent(&mut a_rx), vec!["watch:0"]);
    assert_eq!(sent(&mut b_rx), vec!["watch:1"]);
    assert_eq!(
        commands(&mut task.commands),
        vec!["attach:1/10", "attach:2/20"]
    );
    assert_eq!(
        spot_of(&placement, 2),
        Some(SpotView::Playing {
            game_id: 7,
            agent: 1
        })
    );
    let snapshot = placement.snapshot();
    assert_eq!(snapshot.games.len(), 1);
    assert_eq!(snapshot.games[0].seats, vec![(1, 0, true), (2, 1, true)]);

    let (again, mut again_rx) = socket(2, 21);
    placement.connect(again);
    assert_eq!(
        placement.join(2, 21, At { scene: 0, step: 0 }, &scene),
        Join::Nothing
    );
    assert_eq!(sent(&mut again_rx), vec!["watch:1"]);
    placement.disconnect(2, 20, false);
    placement.disconnect(2, 21, false);
    assert_eq!(
        commands(&mut task.commands),
        vec!["attach:2/21", "detach:2/20", "detach:2/21"]
    );
    assert_eq!(
        spot_of(&placement, 2),
        Some(SpotView::Playing {
            game_id: 7,
            agent: 1
        }),
        "a disconnected player keeps their seat"
    );
}

/// An idle game retires only when none of its players is connected, which
/// closes its task's commands; whoever returns finds the game free to start.
#[tokio::test(start_paused = true)]
async fn idle_games_retire_when_nobody_is_connected() {
    let scene = kitchen();
    let placement = Placement::default();
    let (a, _a_rx) = socket(1, 10);
    placement.connect(a);
    assert_eq!(
        placement.join(1, 10, At { scene: 0, step: 0 }, &scene),
        Join::Claimed
    );
    let Seating::Start(mut task) = placement.seat(&game(&[1]), 0, &[1]) else {
        panic!("a task must start");
    };
    assert!(
        !placement.retire_if_idle(7, task.generation),
        "1 is connected"
    );
    placement.disconnect(1, 10, false);
    assert!(
        !placement.retire_if_idle(7, task.generation + 1),
        "another task"
    );
    assert!(placement.retire_if_idle(7, task.generation));
    commands(&mut task.commands);
    assert!(task.commands.recv().await.is_none(), "commands closed");
    assert!(placement.snapshot().participants.is_empty());
}

/// A seat for someone whose socket closed while their game was made starts
/// nothing: the game starts when they return.
#[tokio::test(start_paused = true)]
async fn nobody_connected_starts_nothing() {
    let scene = kitchen();
    let placement = Placement::default();
    let (a, _a_rx) = socket(1, 10);
    placement.connect(a);
    assert_eq!(
        placement.join(1, 10, At { scene: 0, step: 0 }, &scene),
        Join::Claimed
    );
    placement.disconnect(1, 10, false);
    assert!(matches!(
        placement.seat(&game(&[1]), 0, &[1]),
        Seating::Seated
    ));
    assert_eq!(placement.counts(), (0, 0, 0));
    assert!(placement.snapshot().participants.is_empty());
}

/// A game's end marks its remaining players as moving (a reconnect waits for
/// the move) and takes it out of the registry; the move's end frees them.
#[tokio::test(start_paused = true)]
async fn ended_games_move_their_players_on() {
    let scene = kitchen();
    let placement = Placement::default();
    let _a_rx = queue(&placement, &scene, 1, 10);
    let _b_rx = queue(&placement, &scene, 2, 20);
    placement.decide_lobby(0, &scene, Instant::now(), false);
    let Seating::Start(task) = placement.seat(&game(&[1, 2]), 0, &[1, 2]) else {
        panic!("a task must start");
    };
    assert!(placement.forfeited(7, 2));
    assert!(!placement.forfeited(7, 2), "only once");
    let moving = placement.game_ended(7, task.generation, &[1]);
    assert_eq!(
        moving
            .iter()
            .map(|m| (m.participant_id, m.socket.is_some(), m.was_playing))
            .collect::<Vec<_>>(),
        vec![(1, true, true)]
    );
    assert_eq!(placement.counts(), (2, 0, 0));
    assert_eq!(spot_of(&placement, 1), Some(SpotView::Moving));
    let (again, _) = socket(1, 11);
    placement.connect(again);
    assert_eq!(
        placement.join(1, 11, At { scene: 0, step: 0 }, &scene),
        Join::Nothing
    );
    assert!(
        placement
            .moved(1, Some(At { scene: 1, step: 1 }))
            .is_some_and(|s| s.id == 11)
    );
    assert_eq!(spot_of(&placement, 1), Some(SpotView::Free));
    let snapshot = placement.snapshot();
    assert_eq!(snapshot.participants[0].scene, 1);
}

/// A lone waiter past the timeout, in a scene whose empty seat has a
/// fallback, starts a game with it.
#[tokio::test(start_paused = true)]
async fn timeouts_form_groups_with_fallbacks() {
    let scene = kitchen();
    let placement = Placement::default();
    let _a_rx = queue(&placement, &scene, 1, 10);
    tokio::time::advance(std::time::Duration::from_secs(60)).await;
    let decisions = placement.decide_lobby(0, &scene, Instant::now(), true);
    assert!(
        matches!(decisions.as_slice(), [Decision::Form { group, reason: tandem_store::MatchReason::HumanTimeout }] if group.len() == 1),
        "{decisions:?}"
    );
    assert_eq!(spot_of(&placement, 1), Some(SpotView::Placing { scene: 0 }));
}

/// Seats 1 and 2 in game 7 from the kitchen's lobby; returns the task's channels.
fn seated_pair(placement: &Placement, scene: &GameScene) -> NewTask {
    let _ = queue(placement, scene, 1, 10);
    let _ = queue(placement, scene, 2, 20);
    placement.decide_lobby(0, scene, Instant::now(), false);
    match placement.seat(&game(&[1, 2]), 0, &[1, 2]) {
        Seating::Start(task) => task,
        _ => panic!("a task must start"),
    }
}

/// A scene read before a move finished neither reaches the socket nor
/// claims the participant for the game they just left.
#[tokio::test(start_paused = true)]
async fn a_stale_scene_is_neither_shown_nor_joined() {
    let scene = kitchen();
    let placement = Placement::default();
    let task = seated_pair(&placement, &scene);
    placement.game_ended(7, task.generation, &[1, 2]);
    let (again, mut again_rx) = socket(1, 11);
    placement.connect(again.clone());
    assert!(placement.moved(1, Some(At { scene: 1, step: 1 })).is_some());
    let stale = ServerMessage::Replaced;
    assert!(
        !placement.show(&again, 0, stale, false),
        "scene 0 is behind them"
    );
    assert!(sent(&mut again_rx).is_empty());
    assert_eq!(
        placement.join(1, 11, At { scene: 0, step: 0 }, &scene),
        Join::Nothing
    );
    assert!(placement.show(&again, 1, ServerMessage::Replaced, true));
    assert_eq!(sent(&mut again_rx), vec!["unwatch", "json:replaced"]);
}

/// A game that has ended but is not yet marked so takes nobody: whoever is
/// placed in it meanwhile is moved on; once closed, it is forgotten.
#[tokio::test(start_paused = true)]
async fn an_ending_game_takes_nobody() {
    let scene = kitchen();
    let placement = Placement::default();
    let task = seated_pair(&placement, &scene);
    placement.game_ended(7, task.generation, &[1, 2]);
    placement.moved(1, None);
    assert_eq!(
        placement.join(1, 10, At { scene: 0, step: 0 }, &scene),
        Join::Claimed
    );
    assert!(matches!(
        placement.seat(&game(&[1, 2]), 0, &[1]),
        Seating::Ended
    ));
    assert_eq!(spot_of(&placement, 1), Some(SpotView::Moving));
    placement.game_closed(7);
    placement.moved(1, None);
    assert_eq!(
        placement.join(1, 10, At { scene: 0, step: 0 }, &scene),
        Join::Claimed
    );
    assert!(matches!(
        placement.seat(&game(&[1, 2]), 0, &[1]),
        Seating::Start(_)
    ));
}

/// A game's end moves on a player whose forfeit is still pending, not only
/// those it awaited; only the awaited are told why it ended.
#[tokio::test(start_paused = true)]
async fn a_games_end_moves_everyone_still_seated() {
    let scene = kitchen();
    let placement = Placement::default();
    let task = seated_pair(&placement, &scene);
    let moving = placement.game_ended(7, task.generation, &[1]);
    let mut who: Vec<(i64, bool)> = moving
        .iter()
        .map(|m| (m.participant_id, m.was_playing))
        .collect();
    who.sort_unstable();
    assert_eq!(who, vec![(1, true), (2, false)]);
}

/// Only players still seated keep an idle game alive: one who forfeited and
/// plays on elsewhere does not.
#[tokio::test(start_paused = true)]
async fn forfeited_players_do_not_keep_a_game_alive() {
    let scene = kitchen();
    let placement = Placement::default();
    let task = seated_pair(&placement, &scene);
    assert!(placement.forfeited(7, 1));
    placement.moved(1, Some(At { scene: 1, step: 1 }));
    placement.disconnect(2, 20, false);
    assert!(placement.retire_if_idle(7, task.generation));
}

/// Once the server stops, no game starts: the placed are free again.
#[tokio::test(start_paused = true)]
async fn no_game_starts_while_stopping() {
    let scene = kitchen();
    let placement = Placement::default();
    let (a, _a_rx) = socket(1, 10);
    placement.connect(a);
    assert_eq!(
        placement.join(1, 10, At { scene: 0, step: 0 }, &scene),
        Join::Claimed
    );
    placement.stop();
    assert!(matches!(
        placement.seat(&game(&[1]), 0, &[1]),
        Seating::Stopping
    ));
    assert_eq!(spot_of(&placement, 1), Some(SpotView::Free));
}
