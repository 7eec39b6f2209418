//! Workers on other machines (here: another process on loopback): a worker
//! with a wrong token or another protocol version is refused with a clear
//! message on both sides; with the right token it serves the environments it
//! offers, which this machine cannot make, and goes back to the pool after
//! each game.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Map, json};
use tandem_env::Action;
use tandem_envs::{Catalog, HostedEnv};
use tandem_workers::Pool;
use tandem_workers::protocol::{Kind, Message};

mod support;

const TOKEN: &str = "a-long-random-worker-token";

/// A pool whose own interpreter does not exist, so that only a remote worker
/// can make anything, listening on loopback.
fn remote_pool() -> (Arc<Pool>, std::net::SocketAddr, PathBuf) {
    let mut config = support::config();
    let package = config.package_path.clone();
    config.python = PathBuf::from("/no/such/python");
    let pool = Pool::with_remote(config, 1, Duration::from_secs(30));
    let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
    let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
    tandem_workers::listen_for_remote(listener, Arc::clone(&pool), TOKEN.into())
        .unwrap_or_else(|e| panic!("{e}"));
    (pool, addr, package)
}

/// Starts `python -m tandem.worker --connect` with `token`.
fn remote_worker(addr: std::net::SocketAddr, package: &PathBuf, token: &str) -> Child {
    Command::new(support::venv_python())
        .args(["-m", "tandem.worker", "--connect", &addr.to_string()])
        .args(["--offer", "gymnasium:CartPole-v1"])
        .env("TANDEM_WORKER_TOKEN", token)
        .env("PYTHONPATH", package)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn a_wrong_token_is_refused_on_both_sides() {
    let (pool, addr, package) = remote_pool();
    let worker = remote_worker(addr, &package, "not-the-token");
    let out = worker.wait_with_output().unwrap_or_else(|e| panic!("{e}"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("the refused worker printed: {}", stderr.trim());
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("no worker token, or a wrong one"),
        "{stderr}"
    );
    assert!(
        !stderr.contains(TOKEN),
        "the refusal does not name the token"
    );
    assert_eq!(pool.remote_count(), 0);
}

#[test]
fn another_protocol_version_is_refused_with_a_clear_message() {
    let (pool, addr, _) = remote_pool();
    let mut stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("{e}"));
    let hello = Message::new(
        Kind::Hello,
        json!({"protocol": 99, "token": TOKEN, "offers": [{"source": "gymnasium", "target": "CartPole-v1"}]}),
    );
    hello
        .write_to(&mut stream)
        .unwrap_or_else(|e| panic!("{e}"));
    let reply = Message::read_from(&mut stream).unwrap_or_else(|e| panic!("{e}"));
    let message = reply
        .header
        .get("message")
        .and_then(|m| m.as_str())
        .unwrap_or_default();
    assert_eq!(reply.kind, Kind::Error);
    assert!(message.contains("protocol 99"), "{message}");
    // An oversized hello from a stranger is refused before it is read.
    let mut stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("{e}"));
    stream
        .write_all(&(60_000_000u32).to_le_bytes())
        .unwrap_or_else(|e| panic!("{e}"));
    let reply = Message::read_from(&mut stream).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(reply.kind, Kind::Error);
    assert_eq!(pool.remote_count(), 0);
}

#[test]
fn a_remote_worker_serves_what_it_offers() {
    let (pool, addr, package) = remote_pool();
    let mut worker = remote_worker(addr, &package, TOKEN);
    let env = match HostedEnv::parse("gymnasium:CartPole-v1", Map::new()) {
        Some(Ok(env)) => env,
        other => panic!("{other:?}"),
    };
    let mut catalog = Catalog::empty();
    let started = Instant::now();
    tandem_workers::host(&mut catalog, &pool, &[env]);
    assert!(
        catalog.unavailable("gymnasium:CartPole-v1").is_none(),
        "{:?}",
        catalog.unavailable("gymnasium:CartPole-v1")
    );
    eprintln!("made through the remote worker in {:?}", started.elapsed());
    for game in 0..2 {
        let mut made = catalog
            .make("gymnasium:CartPole-v1")
            .unwrap_or_else(|e| panic!("{e}"));
        made.reset(game).unwrap_or_else(|e| panic!("{e}"));
        for _ in 0..5 {
            made.step(&[Action::Discrete(1)])
                .unwrap_or_else(|e| panic!("{e}"));
        }
        drop(made);
        assert_eq!(
            pool.remote_count(),
            1,
            "the worker went back to the pool after game {game}"
        );
    }
    let _ = worker.kill();
    let _ = worker.wait();
}
