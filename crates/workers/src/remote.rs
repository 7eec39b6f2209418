//! Workers on other machines: a listener that greets each connection, checks
//! its token (in constant time) and protocol, and hands the workers it accepts
//! to the pool with the environments they offer.
//!
//! The listener is open to the network, so until a connection has shown the
//! token it is treated as hostile: its hello may be at most [`MAX_HELLO`]
//! bytes and must arrive within [`HELLO_DEADLINE`], a refusal names no secret,
//! and at most [`MAX_REMOTE`] connections are held.

use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value, json};

use crate::offer::{Offer, offers};
use crate::pool::Pool;
use crate::protocol::{Kind, Message, PROTOCOL_VERSION, ProtocolError, version_mismatch};
use crate::worker::Worker;

/// The largest hello a connection may send before it is trusted.
pub const MAX_HELLO: usize = 64 * 1024;
/// How long a new connection has to say hello.
pub const HELLO_DEADLINE: Duration = Duration::from_secs(10);
/// The most remote workers held at once.
pub const MAX_REMOTE: usize = 1024;
/// The most connections saying hello at once; more are closed at once.
pub const MAX_GREETING: usize = 64;

/// Accepts remote workers on `listener` for ever, on a thread of its own.
pub fn listen(listener: TcpListener, pool: Arc<Pool>, token: String) -> std::io::Result<()> {
    let token = Arc::new(token);
    let greeting = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    std::thread::Builder::new()
        .name("remote workers".into())
        .spawn(move || {
            for stream in listener.incoming() {
                let stream = match stream {
                    Ok(stream) => stream,
                    Err(e) => {
                        tracing::warn!(cause = %e, "could not accept a remote worker");
                        // Out of descriptors, say: never a busy loop.
                        std::thread::sleep(Duration::from_millis(100));
                        continue;
                    }
                };
                use std::sync::atomic::Ordering;
                if greeting.fetch_add(1, Ordering::SeqCst) >= MAX_GREETING {
                    greeting.fetch_sub(1, Ordering::SeqCst);
                    refuse(
                        &stream,
                        "too many workers are connecting at once; try again",
                    );
                    continue;
                }
                let (pool, token) = (Arc::clone(&pool), Arc::clone(&token));
                let done = Arc::clone(&greeting);
                let greeted = std::thread::Builder::new()
                    .name("remote worker hello".into())
                    .spawn(move || {
                        struct Greeted(Arc<std::sync::atomic::AtomicUsize>);
                        impl Drop for Greeted {
                            fn drop(&mut self) {
                                self.0.fetch_sub(1, Ordering::SeqCst);
                            }
                        }
                        let _greeted = Greeted(done);
                        let peer = stream
                            .peer_addr()
                            .map_or_else(|_| "?".to_string(), |a| a.to_string());
                        if pool.remote_count() >= MAX_REMOTE {
                            refuse(&stream, "the server holds as many remote workers as it may");
                            return;
                        }
                        match accept(stream, &token) {
                            Ok((worker, offers)) => {
                                tracing::info!(
                                    peer,
                                    offers = offers.len(),
                                    "a remote worker joined"
                                );
                                pool.add_remote(worker, offers);
                            }
                            Err(why) => tracing::warn!(peer, why, "refused a remote worker"),
                        }
                    });
                if let Err(e) = greeted {
                    greeting.fetch_sub(1, Ordering::SeqCst);
                    tracing::warn!(cause = %e, "could not start a thread for a remote worker");
                }
            }
        })?;
    Ok(())
}

/// Greets one connection: its hello must carry the token and this protocol
/// version, and offer at least one environment. On refusal the worker is
/// told why (never the token) and the connection closed.
pub fn accept(mut stream: TcpStream, token: &str) -> Result<(Worker, Vec<Offer>), String> {
    let _ = stream.set_nodelay(true);
    let greeted = read_hello(&mut stream)
        .and_then(|hello| check_hello(&hello.header, token).map(|offers| (hello, offers)));
    let (hello, offers) = match greeted {
        Ok(greeted) => greeted,
        Err(why) => {
            refuse(&stream, &why);
            return Err(why);
        }
    };
    stream.set_read_timeout(None).map_err(|e| e.to_string())?;
    let mut worker = Worker::remote(stream, hello.header).map_err(|e| e.to_string())?;
    worker
        .send(&Message::new(
            Kind::Welcome,
            json!({"protocol": PROTOCOL_VERSION}),
        ))
        .map_err(|e| e.to_string())?;
    Ok((worker, offers))
}

/// What a hello must hold: the token, this protocol's version, and at least
/// one offer; returns the offers.
fn check_hello(header: &Map<String, Value>, token: &str) -> Result<Vec<Offer>, String> {
    let given = header.get("token").and_then(Value::as_str).unwrap_or("");
    if !same_secret(given, token) {
        return Err("no worker token, or a wrong one".into());
    }
    if let Some(mismatch) = version_mismatch(header) {
        return Err(mismatch);
    }
    let offers = offers(header)?;
    if offers.is_empty() {
        return Err("the worker offers no environment".into());
    }
    Ok(offers)
}

/// Reads the hello, at most [`MAX_HELLO`] bytes, all of it within
/// [`HELLO_DEADLINE`] (not per read: a peer sending a byte at a time must not
/// hold the connection longer).
fn read_hello(stream: &mut TcpStream) -> Result<Message, String> {
    struct ByDeadline<'a> {
        stream: &'a mut TcpStream,
        deadline: std::time::Instant,
    }
    impl std::io::Read for ByDeadline<'_> {
        fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
            let left = self
                .deadline
                .saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return Err(std::io::ErrorKind::TimedOut.into());
            }
            self.stream.set_read_timeout(Some(left))?;
            self.stream.read(buffer)
        }
    }
    let mut reader = ByDeadline {
        stream,
        deadline: std::time::Instant::now() + HELLO_DEADLINE,
    };
    let message = match Message::read_limited(&mut reader, MAX_HELLO) {
        Ok(message) => message,
        Err(ProtocolError::Malformed(why)) => return Err(format!("a broken hello: {why}")),
        Err(ProtocolError::Ended) => return Err("the connection closed before hello".into()),
        Err(ProtocolError::Io(e)) => {
            return Err(format!(
                "no hello within {} s, or a hello over {MAX_HELLO} bytes ({e})",
                HELLO_DEADLINE.as_secs()
            ));
        }
    };
    if message.kind != Kind::Hello {
        return Err(format!("it began with {:?}, not hello", message.kind));
    }
    Ok(message)
}

/// Tells a refused worker why, best effort, and closes the connection.
fn refuse(mut stream: &TcpStream, why: &str) {
    let _ = Message::new(Kind::Error, json!({"message": format!("refused: {why}")}))
        .write_to(&mut stream);
    let _ = stream.shutdown(std::net::Shutdown::Both);
}

/// Compares two secrets in time that depends only on their lengths, so a
/// stranger cannot find the token a byte at a time.
fn same_secret(given: &str, expected: &str) -> bool {
    use subtle::ConstantTimeEq;
    !expected.is_empty() && bool::from(given.as_bytes().ct_eq(expected.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_compare_by_value() {
        assert!(same_secret("s3cret", "s3cret"));
        assert!(!same_secret("s3cres", "s3cret"));
        assert!(!same_secret("s3cre", "s3cret"));
        assert!(!same_secret("s3crett", "s3cret"));
        assert!(!same_secret("", ""));
    }
}
