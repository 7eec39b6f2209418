//! The roster's rules on paused time: leaving, coming back, grace running out,
//! and what is told and recorded at each.

use std::time::Duration;

use tandem_experiment::GameScene;
use tandem_policy::Registry;
use tandem_wire::{NoticeCode, ServerMessage};
use tokio::sync::mpsc;

use super::*;
use crate::connection::Outgoing;

/// A two-chef kitchen with both seats human, `fallback` on both, grace 20 s.
fn kitchen(fallback: &str) -> GameScene {
    let seats = crate::test_support::two_humans(fallback);
    crate::test_support::kitchen("reconnect_grace_s = 20", &seats)
}

/// Participants 1 and 2 in the kitchen's two seats.
fn roster(scene: &GameScene) -> Roster {
    let registry = Registry::builtin();
    let seats = scene
        .seats
        .iter()
        .zip([1, 2])
        .map(|(config, participant)| {
            SeatRuntime::new(config, Some(participant), &registry, &scene.env_spec)
        })
        .collect::<Result<Vec<_>, _>>();
    match seats {
        Ok(seats) => Roster::new(
            seats,
            scene.reconnect_grace_s,
            tokio::sync::watch::channel(None).1,
        ),
        Err(e) => panic!("{e}"),
    }
}

/// A socket of `participant` and what it receives.
fn socket(participant: i64, id: u64) -> (Connection, mpsc::Receiver<Outgoing>) {
    let (tx, rx) = mpsc::channel(crate::connection::SOCKET_QUEUE);
    (Connection::new(participant, id, tx), rx)
}

/// The kitchen's roster with both players' sockets attached before play
/// (their `seat` messages already read), and what each socket receives next.
type Inbox = mpsc::Receiver<Outgoing>;
fn seated(fallback: &str) -> (Roster, Inbox, Inbox) {
    let mut roster = roster(&kitchen(fallback));
    let (a, mut a_rx) = socket(1, 10);
    let (b, mut b_rx) = socket(2, 20);
    roster.attach(a, true);
    roster.attach(b, true);
    received(&mut a_rx);
    received(&mut b_rx);
    (roster, a_rx, b_rx)
}

/// The JSON messages a socket received, by `type` (and `code` for notices).
fn received(rx: &mut mpsc::Receiver<Outgoing>) -> Vec<String> {
    let mut kinds = Vec::new();
    while let Ok(message) = rx.try_recv() {
        kinds.push(match message {
            Outgoing::Message(m) => match *m {
                ServerMessage::Notice(n) => format!("notice:{}", n.code.as_str()),
                m => m.type_name().to_string(),
            },
            Outgoing::Watch { .. } => "watch".into(),
            Outgoing::Unwatch(_) => "unwatch".into(),
            Outgoing::Close(code, _) => format!("close:{code}"),
            Outgoing::Ping => "ping".into(),
        });
    }
    kinds
}

fn kinds(events: &[RosterEvent]) -> Vec<&str> {
    events.iter().map(|e| e.kind).collect()
}

/// Both seated before play: joining is neither a reconnect nor a seat change,
/// and each is sent their seat.
#[tokio::test(start_paused = true)]
async fn joining_before_play_records_nothing() {
    let scene = kitchen("fallback = \"scripted\"");
    let mut roster = roster(&scene);
    let (a, mut a_rx) = socket(1, 10);
    let (b, mut b_rx) = socket(2, 20);
    assert!(!roster.is_ready());
    roster.attach(a, true);
    roster.attach(b, true);
    assert!(roster.is_ready());
    assert!(roster.take_events().is_empty());
    assert_eq!(received(&mut a_rx), vec!["seat"]);
    assert_eq!(received(&mut b_rx), vec!["seat"]);
}

/// A participant who leaves is replaced by the fallback at once and gets the
/// seat back within the grace period; the partner hears both.
#[tokio::test(start_paused = true)]
async fn leaving_and_returning_within_grace() {
    let (mut roster, _a_rx, mut b_rx) = seated("fallback = \"scripted\"");

    roster.detach(1, 10, false);
    assert_eq!(roster.seats[0].actor(), "policy:scripted");
    assert!(roster.is_ready(), "the fallback plays on");
    assert_eq!(
        kinds(&roster.take_events()),
        vec!["disconnected", "seat_change"]
    );
    assert_eq!(received(&mut b_rx), vec!["notice:partner_left"]);

    tokio::time::advance(Duration::from_secs(19)).await;
    assert!(roster.expire_grace().is_none());
    let (a_again, mut a2_rx) = socket(1, 11);
    roster.attach(a_again, false);
    assert_eq!(roster.seats[0].actor(), "participant:1");
    assert_eq!(
        kinds(&roster.take_events()),
        vec!["reconnected", "seat_change"]
    );
    assert_eq!(received(&mut b_rx), vec!["notice:partner_back"]);
    assert_eq!(received(&mut a2_rx), vec!["seat"]);
    assert!(roster.take_forfeits().is_empty());
}

/// Past the grace period the fallback keeps the seat for good: the
/// participant is forfeited (reported again if they come back).
#[tokio::test(start_paused = true)]
async fn grace_expiry_with_fallback_forfeits_the_seat() {
    let (mut roster, _a_rx, mut b_rx) = seated("fallback = \"scripted\"");
    roster.detach(1, 10, false);
    roster.take_events();
    received(&mut b_rx);
    assert_eq!(
        roster.next_wake(),
        tokio::time::Instant::now() + Duration::from_secs(20)
    );

    tokio::time::advance(Duration::from_secs(20)).await;
    assert!(roster.expire_grace().is_none(), "the game goes on");
    assert_eq!(kinds(&roster.take_events()), vec!["grace_expired"]);
    assert_eq!(roster.take_forfeits(), vec![1]);
    assert_eq!(received(&mut b_rx), vec!["notice:partner_gone"]);
    assert_eq!(roster.staying(), vec![2]);

    let (late, mut late_rx) = socket(1, 12);
    roster.attach(late, false);
    assert_eq!(received(&mut late_rx), vec!["unwatch"]);
    assert_eq!(roster.take_forfeits(), vec![1]);
    assert_eq!(roster.seats[0].actor(), "policy:scripted");
}

/// Without a fallback the game waits; past the grace period, with the other
/// participant still playing, it ends for everyone.
#[tokio::test(start_paused = true)]
async fn grace_expiry_without_fallback_ends_the_game() {
    let (mut roster, _a_rx, mut b_rx) = seated("");
    roster.detach(2, 20, false);
    assert!(!roster.is_ready(), "nothing can play chef_1");
    tokio::time::advance(Duration::from_secs(20)).await;
    let exit = roster.expire_grace();
    assert!(
        matches!(&exit, Some(GameExit::EndedEarly { code: NoticeCode::PartnerDidNotReturn, reason, .. }) if reason == "participant_left: chef_1"),
        "{:?}",
        exit.map(|_| ())
    );
    assert!(received(&mut b_rx).is_empty(), "b's socket was detached");
}

/// When every participant has forfeited, the game is abandoned.
#[tokio::test(start_paused = true)]
async fn everyone_gone_abandons_the_game() {
    let (mut roster, _a_rx, _b_rx) = seated("fallback = \"scripted\"");
    roster.detach(1, 10, false);
    roster.detach(2, 20, false);
    assert!(roster.is_empty());
    tokio::time::advance(Duration::from_secs(20)).await;
    let exit = roster.expire_grace();
    assert!(
        matches!(
            exit,
            Some(GameExit::EndedEarly {
                code: NoticeCode::Abandoned,
                ..
            })
        ),
        "expected abandoned"
    );
    assert_eq!(roster.take_forfeits(), vec![1, 2]);
}

/// An old socket closing after a newer one took the seat changes nothing, and
/// sockets closing because the server stops record nothing.
#[tokio::test(start_paused = true)]
async fn stale_and_stopping_detaches_record_nothing() {
    let scene = kitchen("fallback = \"scripted\"");
    let mut roster = roster(&scene);
    let (old, _old_rx) = socket(1, 10);
    let (new, _new_rx) = socket(1, 11);
    let (b, _b_rx) = socket(2, 20);
    roster.attach(old, true);
    roster.attach(new, true);
    roster.attach(b, true);
    roster.detach(1, 10, false);
    assert_eq!(roster.seats[0].actor(), "participant:1");
    roster.detach(2, 20, true);
    assert!(roster.seats[1].occupant.is_none());
    assert!(roster.take_events().is_empty());
}
