//! The Tandem server: participants' pages and sockets, the flow through an
//! experiment's scenes, the lobby, the game loops, and the wiring to the recorder.
//!
//! Layout (modules import down this list, never up):
//! - `serve`: the accept loop: a cap on connections, a deadline for headers.
//! - [`web`]: the one router: participant page, static files, socket, health.
//! - `arrival`: `GET /`: who a browser is (cookie, recruiting ids), new participants.
//! - `admission`: limits on new participants, per address and per study.
//! - `token_bucket`: the rate limit behind admission and the timing budgets.
//! - [`accounts`]: researcher accounts for the console: name rules, argon2id
//!   password hashes.
//! - [`console`]: the researcher console: logins, the live dashboard, watching
//!   and replaying games, the study controls, and `/metrics`.
//! - `assets`: the participant page and its modules, compiled in.
//! - `app_error`: a handler's failure, logged in full and told briefly.
//! - `headers`: security headers (CSP with framing for crowd platforms, nosniff).
//! - `session`: one participant's WebSocket (send task and receive loop).
//! - `flow`: the path through the scenes, joining games, and carrying out what
//!   game tasks and the lobby report.
//! - `placement`: the one owner of where every participant is (socket, lobby
//!   queue, seat) and of the running games' registry; [`Snapshot`] of it.
//! - `lobby`: the lobby's rules, as plain functions over a queue and a clock.
//! - `deferred`: work the flow hands to its outcomes task instead of doing inline.
//! - `game`: one task per running game: clock, seats, policies, env, frames.
//! - `connection`: the handle the rest of the server holds of one socket.
//! - `frames`: published frames and their per-socket encoding.
//! - [`policies`]: checks that every policy an experiment names can serve its seat.
//! - `state`: the shared state handed to every handler of one study.
//! - [`studies`]: several studies on one server, for the console.
//! - [`Options`]: what a server runs with besides its experiment and database.
//! - `sync`: a poison-proof lock and waiting for the stop signal.
//!
//! [`run`] is the whole server: the binary calls it with a bound listener and a
//! shutdown future, and so do the tests.

pub mod accounts;
mod admission;
mod app_error;
mod arrival;
mod assets;
mod connection;
pub mod console;
mod deferred;
mod flow;
mod frames;
mod game;
mod headers;
mod lobby;
mod options;
mod page_timing;
mod pixel_delta;
mod placement;
pub mod policies;
mod serve;
mod session;
mod state;
pub mod studies;
mod sync;
pub mod telemetry;
#[cfg(test)]
mod test_support;
mod token_bucket;
pub mod web;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tandem_experiment::Experiment;
use tandem_policy::Registry;
use tandem_store::{RecorderConfig, Store};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

pub use admission::AdmissionLimits;
pub use arrival::plausible_id;
pub use frames::{
    Encoded, FrameContent, FrameEncoder, PIXEL_FRAME_V1, PixelContent, PublishedFrame, encode_png,
};
pub use headers::frame_ancestor;
pub use options::{
    DEFAULT_FRAME_ANCESTORS, DEFAULT_HEADER_TIMEOUT, DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_SOCKETS,
    DEFAULT_MTURK_SUBMIT_TO, ExtraMetrics, Liveness, Options,
};
pub use pixel_delta::PixelDeltaEncoder;
pub use placement::{GamePlace, ParticipantPlace, Snapshot, SpotView};
pub use state::AppState;

/// How long shutdown waits for games to record their interrupted episodes.
const GAME_SHUTDOWN_LIMIT: Duration = Duration::from_secs(10);

/// Serves `experiment` on `listener`, recording into `store`, until `shutdown`
/// completes. Then it stops taking participants, records every running episode as
/// interrupted, flushes every recorded step, and returns.
pub async fn run(
    listener: TcpListener,
    experiment: Experiment,
    store: Store,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    run_with(listener, experiment, store, Options::default(), shutdown).await
}

/// [`run`] with a policy registry that holds more than the built-ins (the
/// experiment's ONNX models, loaded by the caller).
pub async fn run_with_policies(
    listener: TcpListener,
    experiment: Experiment,
    store: Store,
    policies: Registry,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let options = Options {
        policies,
        ..Options::default()
    };
    run_with(listener, experiment, store, options, shutdown).await
}

/// [`run`] with its [`Options`]. Every policy the experiment names is checked
/// against its seats before the server takes anyone.
pub async fn run_with(
    listener: TcpListener,
    experiment: Experiment,
    store: Store,
    options: Options,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let study = Study {
        experiment,
        policies: options.policies.clone(),
    };
    run_studies(listener, vec![study], store, options, shutdown).await
}

/// One study for [`run_studies`]: its experiment and the policies it may
/// name (the built-ins and its own).
pub struct Study {
    pub experiment: Experiment,
    pub policies: Registry,
}

/// Serves every study on `listener`, each at `/s/ID/` (and a lone study at
/// `/` too), sharing the database, the recorder, the cap on sockets and the
/// console; `options.policies` is ignored for each study's own.
pub async fn run_studies(
    listener: TcpListener,
    studies: Vec<Study>,
    store: Store,
    options: Options,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let limits = serve::Limits {
        max_connections: options.max_connections,
        header_timeout: options.header_timeout,
    };
    check_study_ids(&studies)?;
    for study in &studies {
        if let Err(problems) = policies::check(&study.experiment, &study.policies) {
            anyhow::bail!("{}: {}", study.experiment.id, problems.join("\n"));
        }
        let e = &study.experiment;
        store.upsert_experiment(&e.id, &e.title, &e.source).await?;
        store
            .set_lockout_group(&e.id, e.lockout_group.as_deref())
            .await?;
    }
    let interrupted = store.interrupt_unfinished("server_restart").await?;
    if interrupted > 0 {
        warn!(
            episodes = interrupted,
            "episodes left running by an earlier run are now marked interrupted"
        );
    }
    let closed = store.close_open_lobby_waits("server_restart").await?;
    if closed > 0 {
        warn!(
            waits = closed,
            "lobby waits left open by an earlier run are now closed"
        );
    }
    let (recorder, writer) = store.recorder(RecorderConfig::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    let sockets = Arc::new(tokio::sync::Semaphore::new(options.max_sockets));
    let telemetry = Arc::new(telemetry::Telemetry::default());
    let lone = studies.len() == 1;
    let mut states = Vec::new();
    let mut outcome_tasks = Vec::new();
    let outcomes_done = CancellationToken::new();
    for study in studies {
        let id = study.experiment.id.clone();
        let shared = state::Shared {
            sockets: Arc::clone(&sockets),
            telemetry: Arc::clone(&telemetry),
            base_path: if lone {
                "/".to_string()
            } else {
                format!("/s/{id}/")
            },
            cookie_name: if lone {
                arrival::PARTICIPANT_COOKIE.to_string()
            } else {
                format!("{}_{id}", arrival::PARTICIPANT_COOKIE)
            },
        };
        let participants = store.count_participants(&id).await?;
        let options = Options {
            policies: study.policies,
            ..options.clone()
        };
        let (state, outcomes) = AppState::new(
            Arc::new(study.experiment),
            store.clone(),
            recorder.clone(),
            options,
            participants,
            stop_rx.clone(),
            shared,
        );
        restore_controls(&state).await?;
        outcome_tasks.push(tokio::spawn(flow::run_outcomes(
            state.clone(),
            outcomes.games,
            outcomes.deferred,
            outcomes_done.clone(),
        )));
        tokio::spawn(flow::run_lobby_ticker(state.clone()));
        states.push(state);
    }
    let mut states = states.into_iter();
    let Some(first) = states.next() else {
        anyhow::bail!("no study to serve");
    };
    let studies = studies::Studies::new(first, states.collect());
    let app = web::app_for(&studies);

    let signal = {
        let studies = studies.clone();
        async move {
            shutdown.await;
            info!("shutting down: no new participants; recording interrupted episodes");
            for state in studies.all() {
                state.placement.stop();
            }
            let _ = stop_tx.send(true);
        }
    };
    serve::serve(listener, app, limits, signal).await;

    // Game tasks stop and record their interrupted episodes; a game that
    // ended meanwhile still reports, and its report is carried out (players
    // moved on, the game marked ended) before the recorder's last flush.
    let trackers: Vec<_> = studies.all().map(|s| s.games.tasks.clone()).collect();
    for tasks in &trackers {
        tasks.close();
    }
    let drained = tokio::time::timeout(GAME_SHUTDOWN_LIMIT, async {
        for tasks in &trackers {
            tasks.wait().await;
        }
        outcomes_done.cancel();
        for task in outcome_tasks {
            let _ = task.await;
        }
        for tasks in &trackers {
            tasks.wait().await;
        }
    })
    .await;
    if drained.is_err() {
        let left: usize = trackers.iter().map(|t| t.len()).sum();
        warn!(tasks = left, "some games did not stop in time");
    }
    if let Err(e) = recorder.flush().await {
        warn!(cause = %e, "the final flush failed; the writer retries on shutdown");
    }
    if let Err(e) = store.close_open_lobby_waits("server_shutdown").await {
        warn!(cause = %e, "could not close the lobby waits");
    }
    drop(studies);
    drop(recorder);
    writer.shutdown().await?;
    let left = store.interrupt_unfinished("server_shutdown").await?;
    if left > 0 {
        warn!(
            episodes = left,
            "episodes still open at exit were marked interrupted"
        );
    }
    info!("all recorded steps are flushed; bye");
    Ok(())
}

/// Study ids are unique and fit in a link.
fn check_study_ids(studies: &[Study]) -> anyhow::Result<()> {
    let mut seen = std::collections::HashSet::new();
    for study in studies {
        let id = &study.experiment.id;
        if !seen.insert(id.as_str()) {
            anyhow::bail!("two experiment files have the id {id:?}; each study needs its own");
        }
        let fits = !id.is_empty()
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if studies.len() > 1 && !fits {
            anyhow::bail!(
                "the study id {id:?} cannot be part of a link: use letters, digits, '-', '_' or '.'"
            );
        }
    }
    Ok(())
}

/// What researchers set from the console, kept in the database: admissions
/// paused, the study closed, a participant cap.
async fn restore_controls(state: &AppState) -> anyhow::Result<()> {
    let id = &state.experiment.id;
    let paused = state.store.admissions_paused(id).await?;
    state
        .admissions_paused
        .store(paused, std::sync::atomic::Ordering::SeqCst);
    if paused {
        warn!(
            study = id,
            "admissions are paused (from the console): new arrivals are turned away"
        );
    }
    if let Some(closed_us) = state.store.study_closed(id).await? {
        warn!(
            study = id,
            closed_us,
            "the study was closed (from the console): new arrivals are told it has ended"
        );
        state
            .study_closed
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }
    if let Some(cap) = state.store.participant_cap(id).await? {
        info!(
            study = id,
            cap, "the participant cap set from the console applies"
        );
        state.admission.set_cap(Some(cap));
    }
    Ok(())
}
