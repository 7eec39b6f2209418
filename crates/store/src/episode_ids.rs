//! Episode ids, assigned by the database in blocks (hi/lo) and handed out by the
//! recorder without a round trip per episode.
//!
//! Why blocks: `Recorder::start_episode` must answer at once (a game loop must not
//! stall between episodes, and the episode itself is only written with the next
//! batch), yet ids must stay unique when several server processes share one
//! database. So the database hands out the *blocks*: one short
//! `UPDATE id_blocks ... RETURNING` moves a shared counter up by
//! [`BLOCK_SIZE`] and gives the recorder those ids for itself alone (see
//! `sqlite/id_blocks.rs`); the recorder numbers episodes from its block in memory.
//!
//! Design, in the order it matters:
//! - **Unique.** A block belongs to one recorder. Every id at or above the
//!   counter is unheld: a reservation moves the counter past the block, and a
//!   give-back (below) moves it down only over ids of the giver's that were never
//!   handed out. A reservation also starts above the highest stored id, so files
//!   from before migration 0003, and files edited by hand, keep working. Hence
//!   each recorder's blocks, and so its ids, also increase.
//! - **No waiting.** The next block is reserved in the background once the
//!   current one is half used, and the first when the recorder starts, so
//!   `start_episode` waits only if a burst outruns a reservation. Reservations are
//!   serialized per recorder: a burst never reserves more than one block at once.
//! - **Dense when possible.** At shutdown the unused tail is given back if no
//!   other recorder reserved a block since, so a server that restarts cleanly
//!   continues from its last id. Otherwise the ids are skipped: ids increase per
//!   recorder and never repeat, but need not be consecutive.

use std::ops::Range;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};
use tracing::{debug, warn};

use crate::StoreError;
use crate::backend::IdBlocks;

/// Ids per block: one reservation (one small commit) per this many episodes. A
/// server that stops uncleanly skips at most twice this many ids.
pub(crate) const BLOCK_SIZE: i64 = 1000;

/// A recorder's supply of episode ids. Shared by every clone of the recorder
/// and by its writer, which closes it at exit.
pub(crate) struct EpisodeIds {
    blocks: Box<dyn IdBlocks>,
    block_size: i64,
    /// A std mutex: held only to take an id or swap a block in, never across an
    /// await.
    held: Mutex<Held>,
    /// Held for the whole of a reservation (and of the give-back at close), so at
    /// most one is in flight.
    reserving: Arc<AsyncMutex<()>>,
}

/// The ids a recorder holds and has not handed out.
#[derive(Debug, Default)]
struct Held {
    /// Handed out from the front.
    current: Range<i64>,
    /// The block reserved ahead, always after `current` in the database's order.
    spare: Option<Range<i64>>,
    /// Set when the writer has exited: no more ids are handed out.
    closed: bool,
}

impl EpisodeIds {
    pub(crate) fn new(blocks: Box<dyn IdBlocks>, block_size: i64) -> Arc<Self> {
        Arc::new(EpisodeIds {
            blocks,
            block_size,
            held: Mutex::new(Held::default()),
            reserving: Arc::new(AsyncMutex::new(())),
        })
    }

    /// The next id. Waits only if no id is held, for a reservation.
    pub(crate) async fn next(self: &Arc<Self>) -> Result<i64, StoreError> {
        loop {
            if let Some(id) = self.take()? {
                return Ok(id);
            }
            let _reserving = self.reserving.lock().await;
            // The reservation we may have waited behind could have refilled us.
            if self.is_supplied()? {
                continue;
            }
            let block = self.blocks.reserve(self.block_size).await?;
            self.add(block);
        }
    }

    /// Reserves the next block in the background, unless one is already held
    /// spare or being reserved. Needs a Tokio runtime; without one it does
    /// nothing and the next `next` reserves instead.
    pub(crate) fn reserve_ahead(self: &Arc<Self>) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let Ok(reserving) = Arc::clone(&self.reserving).try_lock_owned() else {
            return;
        };
        let ids = Arc::clone(self);
        runtime.spawn(async move { ids.reserve_spare(reserving).await });
    }

    async fn reserve_spare(&self, _reserving: OwnedMutexGuard<()>) {
        {
            let held = self.lock();
            if held.closed || held.spare.is_some() {
                return;
            }
        }
        match self.blocks.reserve(self.block_size).await {
            Ok(block) => self.add(block),
            Err(e) => warn!(
                cause = %e,
                "could not reserve episode ids ahead; trying again at the next episode"
            ),
        }
    }

    /// Stops handing out ids and gives the unused tail back to the database if
    /// it still can (see the module doc). Called by the writer's thread when it
    /// exits, after its last commit.
    pub(crate) async fn close(&self) {
        let _reserving = self.reserving.lock().await;
        let unused = {
            let mut held = self.lock();
            held.closed = true;
            unused_tail(&held)
        };
        let Some(unused) = unused else { return };
        match self.blocks.give_back(unused.clone()).await {
            Ok(true) => debug!(?unused, "unused episode ids given back"),
            Ok(false) => debug!(
                ?unused,
                "another recorder reserved ids since; these are skipped"
            ),
            Err(e) => {
                warn!(cause = %e, ?unused, "could not give back unused episode ids; they are skipped")
            }
        }
    }

    /// An id from what is held, if any; starts a reservation ahead when the
    /// current block is half used.
    fn take(self: &Arc<Self>) -> Result<Option<i64>, StoreError> {
        let mut held = self.lock();
        if held.closed {
            return Err(StoreError::RecorderClosed);
        }
        if held.current.is_empty()
            && let Some(spare) = held.spare.take()
        {
            held.current = spare;
        }
        let Some(id) = held.current.next() else {
            return Ok(None);
        };
        let low =
            held.spare.is_none() && held.current.end - held.current.start <= self.block_size / 2;
        drop(held);
        if low {
            self.reserve_ahead();
        }
        Ok(Some(id))
    }

    fn is_supplied(&self) -> Result<bool, StoreError> {
        let held = self.lock();
        if held.closed {
            return Err(StoreError::RecorderClosed);
        }
        Ok(!held.current.is_empty() || held.spare.is_some())
    }

    /// Takes a newly reserved block: as the current one if that is used up, else
    /// as the spare. Reservations are serialized and made only when there is no
    /// spare, so there is always room.
    fn add(&self, block: Range<i64>) {
        let mut held = self.lock();
        if held.current.is_empty() {
            held.current = block;
        } else if held.spare.is_none() {
            held.spare = Some(block);
        } else {
            debug!(
                ?block,
                "an episode id block was not needed; its ids are skipped"
            );
        }
    }

    /// The state is a pair of ranges updated in single assignments, so it is
    /// consistent even if a thread panicked while holding the lock.
    fn lock(&self) -> MutexGuard<'_, Held> {
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The unused ids that end where the recorder's last block ends, which the
/// database can take back if its counter is still there. Blocks are reserved in
/// order, so `spare` (if any) lies after `current`; the rest of `current` can go
/// back with it only if the two blocks are adjacent.
fn unused_tail(held: &Held) -> Option<Range<i64>> {
    let current = held.current.clone();
    let tail = match held.spare.clone() {
        None => current,
        Some(spare) if current.end == spare.start => current.start..spare.end,
        Some(spare) => spare,
    };
    (!tail.is_empty()).then_some(tail)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::backend::BoxFuture;

    /// A database's counter, in memory: what `id_blocks` does, minus the disk.
    #[derive(Default)]
    struct Counter {
        next: Mutex<i64>,
        reservations: AtomicUsize,
    }

    impl IdBlocks for Arc<Counter> {
        fn reserve(&self, n: i64) -> BoxFuture<'_, Result<Range<i64>, StoreError>> {
            Box::pin(async move {
                self.reservations.fetch_add(1, Ordering::SeqCst);
                let mut next = self.next.lock().unwrap_or_else(PoisonError::into_inner);
                let start = *next;
                *next += n;
                Ok(start..*next)
            })
        }

        fn give_back(&self, unused: Range<i64>) -> BoxFuture<'_, Result<bool, StoreError>> {
            Box::pin(async move {
                let mut next = self.next.lock().unwrap_or_else(PoisonError::into_inner);
                let taken = *next == unused.end;
                if taken {
                    *next = unused.start;
                }
                Ok(taken)
            })
        }
    }

    fn counter_at(next: i64) -> Arc<Counter> {
        let counter = Arc::new(Counter::default());
        *counter.next.lock().unwrap_or_else(PoisonError::into_inner) = next;
        counter
    }

    fn reservations(counter: &Counter) -> usize {
        counter.reservations.load(Ordering::SeqCst)
    }

    /// Ids run on from block to block without a gap or a repeat.
    #[tokio::test]
    async fn ids_run_on_across_blocks() {
        let counter = counter_at(1);
        let ids = EpisodeIds::new(Box::new(Arc::clone(&counter)), 3);
        let mut got = Vec::new();
        for _ in 0..10 {
            got.push(ids.next().await.expect("id"));
        }
        assert_eq!(got, (1..=10).collect::<Vec<_>>());
        assert!(reservations(&counter) >= 4, "blocks of 3 for 10 ids");
    }

    /// The next block is reserved in the background once the current one is half
    /// used, so the id after the block's last does not wait for the database.
    #[tokio::test]
    async fn the_next_block_is_reserved_ahead() {
        let counter = counter_at(1);
        let ids = EpisodeIds::new(Box::new(Arc::clone(&counter)), 4);
        assert_eq!(ids.next().await.expect("id"), 1);
        assert_eq!(reservations(&counter), 1);
        assert_eq!(ids.next().await.expect("id"), 2);
        // Half used: the spare is being reserved by a task of its own.
        for _ in 0..100 {
            if reservations(&counter) == 2 {
                break;
            }
            tokio::task::yield_now().await;
        }
        assert_eq!(reservations(&counter), 2);
        assert!(ids.is_supplied().expect("open"));
        for want in 3..=8 {
            assert_eq!(ids.next().await.expect("id"), want);
        }
    }

    /// Closing gives the unused tail back, so the next recorder continues where
    /// this one stopped; a closed supply refuses.
    #[tokio::test]
    async fn close_gives_back_the_unused_tail() {
        let counter = counter_at(1);
        let ids = EpisodeIds::new(Box::new(Arc::clone(&counter)), 10);
        assert_eq!(ids.next().await.expect("id"), 1);
        assert_eq!(ids.next().await.expect("id"), 2);
        ids.close().await;
        assert!(matches!(ids.next().await, Err(StoreError::RecorderClosed)));

        let again = EpisodeIds::new(Box::new(Arc::clone(&counter)), 10);
        assert_eq!(again.next().await.expect("id"), 3);
    }

    /// Once another recorder has reserved a block, closing gives nothing back:
    /// the unused ids are skipped, never handed out twice.
    #[tokio::test]
    async fn close_after_another_reservation_skips_the_tail() {
        let counter = counter_at(1);
        let first = EpisodeIds::new(Box::new(Arc::clone(&counter)), 10);
        let second = EpisodeIds::new(Box::new(Arc::clone(&counter)), 10);
        assert_eq!(first.next().await.expect("id"), 1);
        assert_eq!(second.next().await.expect("id"), 11);
        first.close().await;
        assert_eq!(second.next().await.expect("id"), 12);
        second.close().await;
        let third = EpisodeIds::new(Box::new(Arc::clone(&counter)), 10);
        assert_eq!(third.next().await.expect("id"), 13);
    }

    /// The unused tail takes the rest of the current block only when the spare
    /// follows it directly.
    #[test]
    fn unused_tail_is_what_ends_at_the_last_block() {
        let held = |current: Range<i64>, spare: Option<Range<i64>>| Held {
            current,
            spare,
            closed: false,
        };
        assert_eq!(unused_tail(&held(5..10, None)), Some(5..10));
        assert_eq!(unused_tail(&held(10..10, None)), None);
        assert_eq!(unused_tail(&held(8..10, Some(10..20))), Some(8..20));
        assert_eq!(unused_tail(&held(8..10, Some(30..40))), Some(30..40));
    }
}
