//! Shared harness for the integration tests: a real server on a random port with
//! its own SQLite file, and a participant that speaks HTTP and the WebSocket.
//!
//! The participant builds its messages with `tandem-wire`, as the bench's bots
//! do, so tests send what the protocol defines ([`Client::advance`],
//! [`Client::submit`], [`Client::hold`]); tests that mean to send something
//! malformed or hostile use [`Client::send_raw`]. It reads server messages as
//! JSON values, which keeps assertions short, but first checks that each one
//! decodes as a message `tandem-wire` knows, so the server cannot send what the
//! protocol's types (and `docs/WIRE.md`) do not describe.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use sqlx::sqlite::SqlitePool;
use tandem_wire::{ClientMessage, Input, ServerMessage};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long a test waits for any one expected message before failing.
pub const WAIT: Duration = Duration::from_secs(20);

/// A short experiment that exercises every scene kind quickly.
pub const QUICK_EXPERIMENT: &str = r#"
id = "quick"
title = "Quick test"

[[scene]]
kind = "info"
id = "consent"
title = "Consent"
markdown = "Do you agree?"
checkbox = "I agree"

[[scene]]
kind = "info"
id = "instructions"
title = "Instructions"
markdown = "Use the **arrow keys**."

[[scene]]
kind = "game"
id = "play"
title = "Play"
env = "CartPole-v1"
fps = 60
episodes = 2
max_steps = 30
default_action = 0
instructions = "Keep the pole up."
[scene.keys]
ArrowLeft = 0
ArrowRight = 1

[[scene]]
kind = "survey"
id = "survey"
title = "Survey"
[[scene.question]]
id = "difficulty"
prompt = "How hard was it?"
kind = "likert"
scale = 5
[[scene.question]]
id = "hand"
prompt = "Which hand did you use?"
kind = "single"
options = ["left", "right"]
[[scene.question]]
id = "comments"
prompt = "Anything else?"
kind = "text"
required = false

[[scene]]
kind = "end"
id = "end"
title = "Thank you"
markdown = "All done."
completion_code = "C0DE42"
redirect = "https://example.org/done?cc={completion_code}&pid={PROLIFIC_PID}"
"#;

/// Panics on the server's runtime threads, across every test of this binary. A
/// panic inside a spawned task never fails a test by itself; the server must
/// never panic, so `TestServer::stop` fails when this is not zero.
static SERVER_PANICS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

fn count_server_panics() {
    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            // Test bodies run on the test's own thread; the server's tasks run on
            // Tokio's workers.
            if std::thread::current().name() == Some("tokio-rt-worker") {
                SERVER_PANICS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
            default(info);
        }));
    });
}

/// A server running in this process on 127.0.0.1 with a fresh database file.
pub struct TestServer {
    pub addr: SocketAddr,
    pub db_path: PathBuf,
    stop: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<anyhow::Result<()>>>,
}

impl TestServer {
    /// Starts a server for `experiment` (TOML text) recording to `db_path`.
    pub async fn start_at(experiment: &str, db_path: &Path) -> TestServer {
        TestServer::start_with(experiment, db_path, tandem_policy::Registry::builtin()).await
    }

    /// [`TestServer::start_at`] with its own policy registry.
    pub async fn start_with(
        experiment: &str,
        db_path: &Path,
        policies: tandem_policy::Registry,
    ) -> TestServer {
        let options = tandem_server::Options {
            policies,
            ..tandem_server::Options::default()
        };
        TestServer::start_with_options(experiment, db_path, options).await
    }

    /// [`TestServer::start_at`] with its own [`tandem_server::Options`]; the
    /// experiment is read with the options' environment catalog.
    pub async fn start_with_options(
        experiment: &str,
        db_path: &Path,
        options: tandem_server::Options,
    ) -> TestServer {
        let study = tandem_server::Study {
            experiment: tandem_experiment::parse_with(experiment, "test.toml", &options.envs)
                .expect("test experiment parses"),
            policies: options.policies.clone(),
        };
        TestServer::serve(vec![study], db_path, options).await
    }

    /// A server running several studies (each at `/s/ID/`); `experiments`
    /// are TOML texts.
    pub async fn start_studies(experiments: &[&str], db_path: &Path) -> TestServer {
        let envs = tandem_envs::Catalog::builtin();
        let studies = experiments
            .iter()
            .map(|text| tandem_server::Study {
                experiment: tandem_experiment::parse_with(text, "test.toml", &envs)
                    .expect("test experiment parses"),
                policies: tandem_policy::Registry::builtin(),
            })
            .collect();
        TestServer::serve(studies, db_path, tandem_server::Options::default()).await
    }

    /// Serves `studies` on 127.0.0.1, recording to `db_path`.
    async fn serve(
        studies: Vec<tandem_server::Study>,
        db_path: &Path,
        options: tandem_server::Options,
    ) -> TestServer {
        count_server_panics();
        let store = tandem_store::Store::open(db_path.to_str().expect("utf-8 path"))
            .await
            .expect("database opens");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let (stop, stopped) = oneshot::channel::<()>();
        let handle = tokio::spawn(tandem_server::run_studies(
            listener,
            studies,
            store,
            options,
            async {
                let _ = stopped.await;
            },
        ));
        TestServer {
            addr,
            db_path: db_path.to_path_buf(),
            stop: Some(stop),
            handle: Some(handle),
        }
    }

    pub fn url(&self, path_and_query: &str) -> String {
        format!("http://{}{}", self.addr, path_and_query)
    }

    /// Shuts the server down as Ctrl-C would, and waits until it has exited.
    pub async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(handle) = self.handle.take() {
            tokio::time::timeout(Duration::from_secs(30), handle)
                .await
                .expect("server stops within 30 s")
                .expect("server task did not panic")
                .expect("server exits cleanly");
        }
        assert_eq!(
            SERVER_PANICS.load(std::sync::atomic::Ordering::SeqCst),
            0,
            "a server task panicked (see the output above)"
        );
    }

    /// A connection to the server's database file, for checking what was recorded.
    pub async fn db(&self) -> SqlitePool {
        SqlitePool::connect(&format!("sqlite://{}", self.db_path.display()))
            .await
            .expect("open database for checks")
    }
}

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A participant: the cookie from `GET /`, and a WebSocket opened with it.
pub struct Client {
    pub cookie: String,
    pub ws: Socket,
    pub seq: u64,
    /// The origin of the times it answers clock probes with.
    pub opened: std::time::Instant,
    /// How long it waits before answering a clock probe: a slow connection.
    pub clock_delay: Duration,
    /// The sprites the binary sprite frames received so far leave, as a page
    /// holds them.
    pub sprites: tandem_wire::SpriteState,
}

/// `GET /` with `query`, returning the participant cookie (`name=value`).
pub async fn visit(server: &TestServer, query: &str, cookie: Option<&str>) -> String {
    visit_addr(server.addr, query, cookie).await
}

/// `GET /` on the server at `addr`; see [`visit`].
pub async fn visit_addr(addr: SocketAddr, query: &str, cookie: Option<&str>) -> String {
    let client = reqwest::Client::new();
    let mut request = client.get(format!("http://{addr}/{query}"));
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    let response = request.send().await.expect("GET / answers");
    assert!(
        response.status().is_success(),
        "GET / status {}",
        response.status()
    );
    let cookie = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("tandem_participant="))
        .and_then(|v| v.split(';').next())
        .expect("participant cookie is set")
        .to_string();
    let body = response.text().await.expect("page body");
    assert!(body.contains("<html") || body.contains("<!doctype") || body.contains("<!DOCTYPE"));
    cookie
}

/// Opens the participant socket with `cookie` (or none).
pub async fn open_socket(addr: SocketAddr, cookie: Option<&str>) -> Socket {
    open_socket_at(addr, "/ws", cookie, None).await
}

/// Opens the socket at `path` with `cookie` (or none), offering `protocols`
/// (a `Sec-WebSocket-Protocol` value such as `tandem.v1, tandem.key.K`).
pub async fn open_socket_at(
    addr: SocketAddr,
    path: &str,
    cookie: Option<&str>,
    protocols: Option<&str>,
) -> Socket {
    let mut request = format!("ws://{addr}{path}")
        .into_client_request()
        .expect("request");
    let headers = request.headers_mut();
    if let Some(cookie) = cookie {
        headers.insert("cookie", cookie.parse().expect("cookie header"));
    }
    if let Some(protocols) = protocols {
        headers.insert(
            "sec-websocket-protocol",
            protocols.parse().expect("protocol header"),
        );
    }
    let (ws, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("socket opens");
    ws
}

impl Client {
    /// A new participant arriving with `query` (e.g. `?PROLIFIC_PID=abc`).
    pub async fn arrive(server: &TestServer, query: &str) -> Client {
        let cookie = visit(server, query, None).await;
        Client::connect(server, &cookie).await
    }

    /// Opens a (new) socket for an existing cookie.
    pub async fn connect(server: &TestServer, cookie: &str) -> Client {
        Client::connect_addr(server.addr, cookie).await
    }

    /// Opens a socket for `cookie` on the server at `addr`.
    pub async fn connect_addr(addr: SocketAddr, cookie: &str) -> Client {
        let ws = open_socket(addr, Some(cookie)).await;
        Client {
            cookie: cookie.to_string(),
            ws,
            seq: 0,
            opened: std::time::Instant::now(),
            clock_delay: Duration::ZERO,
            sprites: tandem_wire::SpriteState::default(),
        }
    }

    /// Wraps a socket opened some other way (no cookie, a forged one).
    pub fn from_socket(ws: Socket) -> Client {
        Client {
            cookie: String::new(),
            ws,
            seq: 0,
            opened: std::time::Instant::now(),
            clock_delay: Duration::ZERO,
            sprites: tandem_wire::SpriteState::default(),
        }
    }

    /// Sends one protocol message.
    pub async fn send(&mut self, message: &ClientMessage) {
        self.ws
            .send(Message::Text(message.to_text().into()))
            .await
            .expect("send");
    }

    /// Sends anything at all: for tests of malformed and hostile input.
    pub async fn send_raw(&mut self, message: Message) {
        self.ws.send(message).await.expect("send raw");
    }

    /// Leaves the info scene `scene`, with the consent box ticked or not.
    pub async fn advance(&mut self, scene: usize, checked: bool) {
        self.send(&ClientMessage::Advance { scene, checked }).await;
    }

    /// Answers the survey scene `scene` (`answers`: question id → answer).
    pub async fn submit(&mut self, scene: usize, answers: Value) {
        self.send(&ClientMessage::Submit { scene, answers }).await;
    }

    /// Sends the set of held keys as the next input.
    pub async fn hold(&mut self, keys: &[&str]) {
        self.seq += 1;
        let seq = self.seq;
        self.send(&ClientMessage::Input(Input {
            seq,
            frame: Some(seq),
            ts: Some(seq as f64),
            tick: None,
            keys: keys.iter().map(|k| k.to_string()).collect(),
        }))
        .await;
    }

    /// The next message of any kind, as JSON (binary frames as `{"type":"binary"}`).
    /// Clock probes are answered, as the page does, and not returned.
    pub async fn next(&mut self) -> Option<Value> {
        loop {
            let message = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("a message within the wait")?;
            match message {
                Ok(Message::Text(text)) => {
                    match ServerMessage::from_text(text.as_str()) {
                        Ok(ServerMessage::Unknown) => {
                            panic!("the server sent a type tandem-wire does not know: {text}")
                        }
                        Ok(ServerMessage::Clock(probe)) => {
                            tokio::time::sleep(self.clock_delay).await;
                            let t = self.opened.elapsed().as_secs_f64() * 1000.0;
                            self.send(&ClientMessage::Clock { id: probe.id, t }).await;
                            continue;
                        }
                        Ok(_) => {}
                        Err(e) => panic!(
                            "the server sent a message tandem-wire cannot read ({e}): {text}"
                        ),
                    }
                    return Some(serde_json::from_str(text.as_str()).expect("server sends JSON"));
                }
                Ok(Message::Binary(bytes))
                    if bytes.first() == Some(&tandem_wire::SPRITE_FRAME_V1) =>
                {
                    // Sprite frames read as the `frame` text message would.
                    let frame = self
                        .sprites
                        .apply(&bytes)
                        .unwrap_or_else(|e| panic!("the server sent a bad sprite frame: {e}"));
                    let mut value = serde_json::to_value(frame).expect("a frame as JSON");
                    value["type"] = json!("frame");
                    return Some(value);
                }
                Ok(Message::Binary(bytes)) => {
                    return Some(json!({"type": "binary", "len": bytes.len(), "byte0": bytes[0]}));
                }
                Ok(Message::Close(frame)) => {
                    let code = frame.map(|f| u16::from(f.code)).unwrap_or(0);
                    return Some(json!({"type": "closed", "code": code}));
                }
                Ok(_) => continue,
                Err(_) => return None,
            }
        }
    }

    /// Skips messages until one of type `kind` arrives.
    pub async fn expect(&mut self, kind: &str) -> Value {
        loop {
            let message = self
                .next()
                .await
                .unwrap_or_else(|| panic!("socket closed waiting for {kind}"));
            if message["type"] == kind {
                return message;
            }
            assert_ne!(
                message["type"], "closed",
                "socket closed waiting for {kind}: {message}"
            );
        }
    }

    /// Skips messages until a `scene` message arrives, and returns its scene.
    pub async fn expect_scene(&mut self) -> Value {
        self.expect("scene").await
    }
}

/// Polls a query returning one integer until it is above zero (the recorder
/// writes within its flush interval); returns the last value.
pub async fn eventually(db: &SqlitePool, sql: &'static str) -> i64 {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let n = count(db, sql).await;
        if n > 0 || tokio::time::Instant::now() > deadline {
            return n;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Runs a query returning one integer.
pub async fn count(db: &SqlitePool, sql: &'static str) -> i64 {
    sqlx::query_scalar::<_, i64>(sql)
        .fetch_one(db)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// A `tandem serve` child process on a random port, for tests that stop the
/// server as a deployment would: with a signal, or by killing it.
pub struct ServeProcess {
    pub child: std::process::Child,
    pub addr: SocketAddr,
    /// The server's log lines so far (the last [`LOG_LINES_KEPT`]).
    pub log: std::sync::Arc<std::sync::Mutex<std::collections::VecDeque<String>>>,
}

/// Log lines a [`ServeProcess`] keeps.
pub const LOG_LINES_KEPT: usize = 10_000;

impl ServeProcess {
    /// Starts `tandem serve --addr 127.0.0.1:0 --db DB` plus `args`, and waits
    /// for the line that names its URL.
    pub async fn start(db: &Path, args: &[&str]) -> ServeProcess {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_tandem"));
        command
            .args(["serve", "--addr", "127.0.0.1:0", "--db"])
            .arg(db)
            .args(args);
        ServeProcess::start_command(command).await
    }

    /// Writes `study` to `dir/study.toml` and serves it, recording to
    /// `dir/db_name`; returns the server and the database's path.
    pub async fn with_study(dir: &Path, study: &str, db_name: &str) -> (ServeProcess, PathBuf) {
        let path = dir.join("study.toml");
        std::fs::write(&path, study).expect("study written");
        let db = dir.join(db_name);
        let server = ServeProcess::start(&db, &[path.to_str().expect("UTF-8 path")]).await;
        (server, db)
    }

    /// Starts `command`, which runs `tandem serve` (perhaps through a shell
    /// that sets limits first), and waits for the line that names its URL.
    pub async fn start_command(mut command: std::process::Command) -> ServeProcess {
        use std::io::{BufRead, BufReader};
        let mut child = command
            .stdout(std::process::Stdio::piped())
            // `TANDEM_TEST_LOG=1` shows the server's log while debugging a test.
            .stderr(if std::env::var_os("TANDEM_TEST_LOG").is_some() {
                std::process::Stdio::inherit()
            } else {
                std::process::Stdio::null()
            })
            .spawn()
            .expect("tandem serve starts");
        let stdout = child.stdout.take().expect("stdout");
        let (line_tx, line_rx) = oneshot::channel();
        let log = std::sync::Arc::new(std::sync::Mutex::new(std::collections::VecDeque::new()));
        let kept = std::sync::Arc::clone(&log);
        // The log goes to stdout after the URL: keep reading it, so that the
        // server never writes to a closed pipe.
        std::thread::spawn(move || {
            let mut stdout = BufReader::new(stdout);
            let mut line = String::new();
            let _ = line_tx.send(stdout.read_line(&mut line).map(|_| line));
            let show = std::env::var_os("TANDEM_TEST_LOG").is_some();
            for line in stdout.lines().map_while(Result::ok) {
                if show {
                    eprintln!("{line}");
                }
                if let Ok(mut kept) = kept.lock() {
                    if kept.len() == LOG_LINES_KEPT {
                        kept.pop_front();
                    }
                    kept.push_back(line);
                }
            }
        });
        let line = line_rx
            .await
            .expect("reader answers")
            .expect("serve prints its URL");
        let url = line
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap_or_else(|| panic!("no URL in {line:?}"));
        let addr = url
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .expect("URL has an address");
        ServeProcess { child, addr, log }
    }

    /// The log lines kept so far that contain `text`.
    pub fn log_lines_with(&self, text: &str) -> Vec<String> {
        self.log
            .lock()
            .map(|log| log.iter().filter(|l| l.contains(text)).cloned().collect())
            .unwrap_or_default()
    }

    /// Sends `signal` (`TERM`, `KILL`) and waits for the process to exit.
    pub async fn signal(mut self, signal: &str) -> std::process::ExitStatus {
        let status = std::process::Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{signal} failed");
        tokio::task::spawn_blocking(move || self.child.wait())
            .await
            .expect("waiter joins")
            .expect("the server exits")
    }
}
