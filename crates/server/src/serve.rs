//! The accept loop: TCP connections in, HTTP/1.1 (and its WebSocket
//! upgrades) served, within limits a hostile client cannot wear down.
//!
//! `axum::serve` would do, but it reads request headers without a deadline,
//! so a client that opens connections and says nothing holds them forever,
//! and it has no cap on connections. Here:
//! - every connection holds a permit of [`Limits::max_connections`] for its
//!   whole life, WebSocket included (the permit travels inside the stream, so
//!   an upgraded socket keeps it); one over the cap is answered `503` and
//!   closed, and the server goes on accepting;
//! - request headers must arrive within [`Limits::header_timeout`], on a new
//!   connection and between requests of a kept-alive one;
//! - accept errors (out of file descriptors) back off, doubling up to a
//!   second, instead of spinning;
//! - each request carries the peer's address (`ConnectInfo`), for the
//!   per-address limits.
//!
//! Shutdown: no new connections once `shutdown` completes; open HTTP
//! connections finish their request and close; sockets close themselves (see
//! `session`).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tower::ServiceExt;
use tracing::{debug, warn};

/// The limits of the accept loop.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// The most TCP connections open at once (pages, static files and sockets).
    pub max_connections: usize,
    /// How long a client may take to send a request's headers.
    pub header_timeout: Duration,
}

/// The longest pause after a failed accept.
const MAX_ACCEPT_BACKOFF: Duration = Duration::from_secs(1);

/// How long the refusal of a connection over the cap may take to write.
const REFUSAL_WRITE_LIMIT: Duration = Duration::from_secs(2);

/// What a connection over the cap is told before it is closed.
const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
Retry-After: 10\r\n\
Connection: close\r\n\
Content-Length: 52\r\n\
\r\n\
The study server is busy. Please try again shortly.\n";

/// Serves `app` on `listener` until `shutdown` completes, then waits for open
/// HTTP connections to finish.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    // Connections watch this to start a graceful close, and hold a clone of
    // `open` until they end, so shutdown can wait for them.
    let (stop_tx, stop_rx) = watch::channel(false);
    let (open_tx, open_rx) = watch::channel(());
    let mut shutdown = std::pin::pin!(shutdown);
    let mut backoff = Duration::from_millis(5);
    let mut refused: u64 = 0;
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let (tcp, peer) = match accepted {
            Ok(accepted) => {
                backoff = Duration::from_millis(5);
                accepted
            }
            Err(e) => {
                warn!(cause = %e, pause_ms = backoff.as_millis() as u64, "could not accept a connection");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_ACCEPT_BACKOFF);
                continue;
            }
        };
        // Frames are small writes every tick: without TCP_NODELAY, Nagle's
        // algorithm holds one back until the browser acknowledges the last.
        if let Err(e) = tcp.set_nodelay(true) {
            debug!(cause = %e, "could not set TCP_NODELAY on a connection");
        }
        let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
            refused += 1;
            // Once, then every 1,000th: a flood must not become a log flood.
            if refused == 1 || refused.is_multiple_of(1000) {
                warn!(
                    refused,
                    limit = limits.max_connections,
                    "refusing connections: as many are open as the server allows"
                );
            }
            tokio::spawn(refuse(tcp));
            continue;
        };
        let io = TokioIo::new(Permitted {
            tcp,
            _permit: permit,
        });
        let app = app.clone();
        let mut stop = stop_rx.clone();
        let open = open_rx.clone();
        tokio::spawn(async move {
            let service = app.map_request(move |mut request: axum::http::Request<Incoming>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                request.map(axum::body::Body::new)
            });
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_timeout);
            let connection = builder
                .serve_connection(io, TowerToHyperService::new(service))
                .with_upgrades();
            let mut connection = std::pin::pin!(connection);
            loop {
                tokio::select! {
                    result = connection.as_mut() => {
                        if let Err(e) = result {
                            debug!(cause = %e, "a connection ended with an error");
                        }
                        break;
                    }
                    _ = stop.wait_for(|stop| *stop) => connection.as_mut().graceful_shutdown(),
                }
            }
            drop(open);
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    drop(open_rx);
    open_tx.closed().await;
}

/// Tells a connection over the cap to come back later, and closes it.
async fn refuse(mut tcp: TcpStream) {
    let _ = tokio::time::timeout(REFUSAL_WRITE_LIMIT, async {
        tcp.write_all(BUSY).await?;
        tcp.shutdown().await
    })
    .await;
}

/// A TCP stream that holds its place under the connection cap until dropped,
/// which for a WebSocket is when the socket closes.
struct Permitted {
    tcp: TcpStream,
    _permit: OwnedSemaphorePermit,
}

impl AsyncRead for Permitted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_read(cx, buf)
    }
}

impl AsyncWrite for Permitted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }
}
