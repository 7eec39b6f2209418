//! Several studies on one server: each experiment file is a study with its
//! own link (`/s/ID/`), its own flow, lobbies, games and admission, sharing
//! the database, the recorder, the cap on sockets and the console.
//!
//! A study is an [`AppState`], exactly what a one-study server runs, so
//! nothing inside the participant side knows there are others. Only the
//! console and `/metrics` see them all, through [`Studies`]. Ids of games and
//! episodes are the database's, unique across studies, so the console finds
//! the study that runs a game by asking each.

use std::sync::Arc;

use tandem_store::Store;

use crate::state::AppState;

/// Every study this server runs (at least one), and what the console shares.
#[derive(Clone)]
pub struct Studies(Arc<Inner>);

pub struct Inner {
    first: AppState,
    more: Vec<AppState>,
    /// One replay is built at a time (see `console::replay`).
    pub replays: tokio::sync::Semaphore,
}

impl std::ops::Deref for Studies {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl Studies {
    pub fn new(first: AppState, more: Vec<AppState>) -> Studies {
        Studies(Arc::new(Inner {
            first,
            more,
            replays: tokio::sync::Semaphore::new(1),
        }))
    }

    /// Every study, in the order the server was given them.
    pub fn all(&self) -> impl Iterator<Item = &AppState> {
        std::iter::once(&self.first).chain(&self.more)
    }

    pub fn count(&self) -> usize {
        1 + self.more.len()
    }

    /// The study with experiment id `id`.
    pub fn get(&self, id: &str) -> Option<&AppState> {
        self.all().find(|s| s.experiment.id == id)
    }

    /// The study `id` names, or the first when it names none.
    pub fn chosen(&self, id: Option<&str>) -> Option<&AppState> {
        match id {
            Some(id) if !id.is_empty() => self.get(id),
            _ => Some(&self.first),
        }
    }

    /// The first study: what a one-study server is.
    pub fn first(&self) -> &AppState {
        &self.first
    }

    /// The study whose game `game_id` is running, if one is.
    pub fn running(&self, game_id: i64) -> Option<&AppState> {
        self.all()
            .find(|s| s.placement.watch_game(game_id).is_some())
    }

    /// The database every study records to.
    pub fn store(&self) -> &Store {
        &self.first.store
    }
}
