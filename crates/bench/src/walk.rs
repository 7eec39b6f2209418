//! Bots that walk a study from its link to its end scene, for `tandem test`:
//! the same bots as the load runs (valid answers, keys pressed in games,
//! lobbies filled by each other), started together and stopped at a time
//! limit, reporting how many finished and what went wrong on the wire.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::bot::{self, BotConfig, Trouble, Window};
use crate::live::Live;

/// What the bots of one walk did.
#[derive(Debug, Default)]
pub struct Walked {
    pub bots: usize,
    /// Reached the end scene.
    pub finished: usize,
    /// A bot's connection trouble, one line each.
    pub troubles: Vec<String>,
    /// `error` and `invalid` messages the server sent, all bots.
    pub server_errors: u64,
    /// Bots still in a lobby when the walk stopped.
    pub waiting_at_end: usize,
    /// Bots shown a screened-out page.
    pub screened_out: usize,
}

/// Walks `bots` bots through the study at `addr` until all end or `limit`
/// passes; `progress(finished, ended)` is called as bots end.
pub async fn walk(
    addr: SocketAddr,
    bots: usize,
    limit: Duration,
    mut progress: impl FnMut(usize, usize),
) -> Walked {
    let now = Instant::now();
    let (stop, stopped) = watch::channel(false);
    let live = Arc::new(Live::default());
    let mut running = JoinSet::new();
    for index in 0..bots {
        let config = BotConfig {
            index,
            addr,
            host: addr.to_string(),
            window: Window {
                start: now,
                end: now + limit,
            },
            epoch: now,
            stop: stopped.clone(),
            live: Arc::clone(&live),
        };
        running.spawn(bot::run(config));
    }
    let mut walked = Walked {
        bots,
        ..Walked::default()
    };
    let deadline = now + limit;
    let mut ended = 0;
    loop {
        let report = tokio::select! {
            report = running.join_next() => report,
            _ = tokio::time::sleep_until(deadline), if !*stop.borrow() => {
                let _ = stop.send(true);
                continue;
            }
        };
        let Some(report) = report else { break };
        ended += 1;
        match report {
            Ok(report) => {
                walked.finished += usize::from(report.finished);
                walked.server_errors += report.server_errors;
                walked.waiting_at_end += usize::from(report.waiting_at_end);
                walked.screened_out += usize::from(report.screened_out);
                match report.trouble {
                    Some(Trouble::Connect(e)) => {
                        walked.troubles.push(format!("could not connect: {e}"))
                    }
                    Some(Trouble::Disconnect(e)) if !report.finished => {
                        walked.troubles.push(format!("disconnected: {e}"))
                    }
                    _ => {}
                }
            }
            Err(e) => walked.troubles.push(format!("a bot failed: {e}")),
        }
        progress(walked.finished, ended);
    }
    walked
}
