//! The Tandem server: participants' pages and sockets, the flow through an
//! experiment's scenes, the game loops, and the wiring to the recorder.
//!
//! Layout:
//! - [`web`]: the one router: participant page, static files, socket, health.
//! - `session`: one participant's WebSocket (send task and receive loop).
//! - `flow`: where each participant stands, and the only ways to move on.
//! - `lobby`: groups participants of multiplayer scenes into games; timeouts.
//! - `game`: one task per running game: clock, seats, policies, env, frames.
//! - [`policies`]: checks that every policy an experiment names can serve its seat.
//! - `frames`: published frames and their per-socket encoding.
//! - `wire`: the socket's message types (`docs/WIRE.md`).
//! - `state`: the shared state handed to every handler and task.
//!
//! [`run`] is the whole server: the binary calls it with a bound listener and a
//! shutdown future, and so do the tests.

mod flow;
mod frames;
mod game;
mod lobby;
pub mod policies;
mod session;
mod state;
pub mod web;
mod wire;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::serve::ListenerExt;
use tandem_experiment::Experiment;
use tandem_policy::Registry;
use tandem_store::{RecorderConfig, Store};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::{info, warn};

pub use frames::{Encoded, FrameContent, FrameEncoder, PIXEL_FRAME_V1, PublishedFrame, encode_png};
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
    run_with_policies(listener, experiment, store, Registry::builtin(), shutdown).await
}

/// [`run`] with a policy registry that holds more than the built-ins (the
/// experiment's ONNX models, loaded by the caller). Every policy the experiment
/// names is checked against its seats before the server takes anyone.
pub async fn run_with_policies(
    listener: TcpListener,
    experiment: Experiment,
    store: Store,
    policies: Registry,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    if let Err(problems) = policies::check(&experiment, &policies) {
        anyhow::bail!("{}", problems.join("\n"));
    }
    store
        .upsert_experiment(&experiment.id, &experiment.title, &experiment.source)
        .await?;
    let interrupted = store.interrupt_unfinished("server_restart").await?;
    if interrupted > 0 {
        warn!(
            episodes = interrupted,
            "episodes left running by an earlier run are now marked interrupted"
        );
    }
    let (recorder, writer) = store.recorder(RecorderConfig::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    let state = AppState::new(
        Arc::new(experiment),
        store.clone(),
        recorder.clone(),
        policies,
        stop_rx,
    );
    let closed = store.close_open_lobby_waits("server_restart").await?;
    if closed > 0 {
        warn!(
            waits = closed,
            "lobby waits left open by an earlier run are now closed"
        );
    }
    tokio::spawn(lobby::run_ticker(state.clone()));
    let app = web::app(state.clone());

    let signal = async move {
        shutdown.await;
        info!("shutting down: no new participants; recording interrupted episodes");
        let _ = stop_tx.send(true);
    };
    // Frames are small writes every tick: without TCP_NODELAY, Nagle's algorithm
    // holds one back until the browser acknowledges the previous one.
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            warn!(cause = %e, "could not set TCP_NODELAY on a connection");
        }
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(signal)
        .await?;

    if !state.games.wait_for_all(GAME_SHUTDOWN_LIMIT).await {
        warn!(
            games = state.games.running_count(),
            "some games did not stop in time"
        );
    }
    if let Err(e) = recorder.flush().await {
        warn!(cause = %e, "the final flush failed; the writer retries on shutdown");
    }
    if let Err(e) = store.close_open_lobby_waits("server_shutdown").await {
        warn!(cause = %e, "could not close the lobby waits");
    }
    drop(state);
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
