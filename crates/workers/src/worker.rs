//! One worker process: started, greeted, and asked one request at a time,
//! each with a deadline.
//!
//! Reads happen on a thread of their own that hands each message over a
//! channel, so that a request can wait with a timeout: a worker that hangs
//! costs its game the deadline, never a blocked thread forever. The last
//! lines the worker wrote to its standard error are kept (bounded) so that a
//! crash can be reported with what Python printed. Dropping a worker kills
//! its process.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Map, Value, json};

use crate::protocol::{Kind, Message, PROTOCOL_VERSION, ProtocolError};

/// How workers are started.
#[derive(Clone, Debug)]
pub struct WorkerConfig {
    /// The Python interpreter.
    pub python: PathBuf,
    /// The folder holding the `tandem` package (see `package::install`).
    pub package_path: PathBuf,
    /// Folders where the experiment's own Python code lives (for `python:`
    /// factories): the experiment file's folder, by default.
    pub python_path: Vec<PathBuf>,
    /// How long a worker may take to start and make an environment (imports
    /// of gymnasium and ale_py take a second or two).
    pub start_deadline: Duration,
    /// How long a reset may take.
    pub reset_deadline: Duration,
    /// How long a step may take before the worker is taken to hang.
    pub step_deadline: Duration,
}

impl WorkerConfig {
    /// The defaults: `.venv/bin/python` when the current folder has one (the
    /// project's virtual environment), else `python3`; 60 s to start, 10 s to
    /// reset, 1 s to step.
    pub fn new(package_path: PathBuf) -> WorkerConfig {
        WorkerConfig {
            python: default_python(),
            package_path,
            python_path: Vec::new(),
            start_deadline: Duration::from_secs(60),
            reset_deadline: Duration::from_secs(10),
            step_deadline: Duration::from_secs(1),
        }
    }
}

/// The interpreter used when none is given.
pub fn default_python() -> PathBuf {
    let venv = PathBuf::from(".venv/bin/python");
    if venv.exists() {
        venv
    } else {
        PathBuf::from("python3")
    }
}

/// Why a worker could not do what it was asked. Each says what happened in
/// words a researcher can act on.
#[derive(Clone, Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("could not start the Python worker ({python}): {cause}")]
    Start { python: String, cause: String },
    #[error("the Python worker exited{}", tail_suffix(.tail))]
    Died { tail: String },
    #[error("the Python worker did not answer {what} within {seconds:.1} s")]
    Timeout { what: &'static str, seconds: f64 },
    #[error("the Python worker broke the protocol: {0}")]
    Protocol(String),
    #[error("{last_line}")]
    Raised {
        exception: String,
        last_line: String,
    },
    #[error("the environment cannot be hosted: {0}")]
    Unsupported(String),
}

fn tail_suffix(tail: &str) -> String {
    if tail.is_empty() {
        String::new()
    } else {
        format!("; it last printed: {tail}")
    }
}

/// A running worker.
pub struct Worker {
    child: Child,
    stdin: ChildStdin,
    replies: Receiver<Result<Message, ProtocolError>>,
    stderr_tail: Arc<Mutex<VecDeque<String>>>,
    /// What the worker said in its `hello`.
    pub hello: Map<String, Value>,
}

/// Lines of a worker's standard error kept for error messages.
const TAIL_LINES: usize = 8;
/// Characters kept of each such line.
const TAIL_LINE_CHARS: usize = 300;

impl Worker {
    /// Starts a worker process and greets it.
    pub fn start(config: &WorkerConfig) -> Result<Worker, WorkerError> {
        // The package first, so this server's protocol wins over any
        // installed copy; then the experiment's folders; then the caller's.
        let inherited = std::env::var_os("PYTHONPATH").filter(|p| !p.is_empty());
        let folders = std::iter::once(config.package_path.clone())
            .chain(config.python_path.iter().cloned())
            .chain(inherited.iter().flat_map(std::env::split_paths));
        let python_path = std::env::join_paths(folders).map_err(|e| WorkerError::Start {
            python: config.python.display().to_string(),
            cause: format!("a Python path folder cannot be used: {e}"),
        })?;
        let mut child = Command::new(&config.python)
            .args(["-m", "tandem.worker", "--stdio"])
            .env("PYTHONPATH", python_path)
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| WorkerError::Start {
                python: config.python.display().to_string(),
                cause: e.to_string(),
            })?;
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            let _ = child.kill();
            return Err(WorkerError::Start {
                python: config.python.display().to_string(),
                cause: "its pipes were not set up".into(),
            });
        };
        // A bound of one: the worker answers one request at a time, and a
        // worker that sends unasked floods blocks on its own pipe.
        let (replies_tx, replies) = sync_channel(1);
        let reader = std::thread::Builder::new()
            .name("worker reader".into())
            .spawn(move || {
                let mut stdout = BufReader::with_capacity(256 * 1024, stdout);
                loop {
                    let message = Message::read_from(&mut stdout);
                    let stop = message.is_err();
                    if replies_tx.send(message).is_err() || stop {
                        return;
                    }
                }
            });
        let stderr_tail = Arc::new(Mutex::new(VecDeque::new()));
        let tail = Arc::clone(&stderr_tail);
        let logger = std::thread::Builder::new()
            .name("worker stderr".into())
            .spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    tracing::debug!(target: "tandem::worker", "{line}");
                    let mut tail = tail.lock().unwrap_or_else(|p| p.into_inner());
                    if tail.len() == TAIL_LINES {
                        tail.pop_front();
                    }
                    tail.push_back(line.chars().take(TAIL_LINE_CHARS).collect());
                }
            });
        if let Err(e) = reader.and(logger) {
            let _ = child.kill();
            return Err(WorkerError::Start {
                python: config.python.display().to_string(),
                cause: format!("could not start a thread: {e}"),
            });
        }
        let mut worker = Worker {
            child,
            stdin,
            replies,
            stderr_tail,
            hello: Map::new(),
        };
        let hello = worker.receive("its hello", config.start_deadline)?;
        if hello.kind != Kind::Hello {
            return Err(WorkerError::Protocol(format!(
                "it began with {:?}, not hello",
                hello.kind
            )));
        }
        let version = hello.header.get("protocol").and_then(Value::as_u64);
        if version != Some(PROTOCOL_VERSION) {
            let message = format!(
                "the worker speaks protocol {}, this server {PROTOCOL_VERSION}: install the tandem package of this server's version",
                version.map_or("(none)".to_string(), |v| v.to_string())
            );
            let _ = worker.send(&Message::new(Kind::Error, json!({"message": message})));
            return Err(WorkerError::Protocol(message));
        }
        worker.hello = hello.header;
        worker.send(&Message::new(
            Kind::Welcome,
            json!({"protocol": PROTOCOL_VERSION}),
        ))?;
        Ok(worker)
    }

    /// Sends `request` and waits up to `deadline` for the reply of kind
    /// `expect`. A worker that answered with `error` is still usable after
    /// `close` (its environment raised); any other failure leaves it unusable.
    pub fn request(
        &mut self,
        request: &Message,
        expect: Kind,
        what: &'static str,
        deadline: Duration,
    ) -> Result<Message, WorkerError> {
        self.send(request)?;
        let reply = self.receive(what, deadline)?;
        if reply.kind == expect {
            return Ok(reply);
        }
        if reply.kind != Kind::Error {
            return Err(WorkerError::Protocol(format!(
                "it answered {what} with {:?}",
                reply.kind
            )));
        }
        let text = |key: &str| {
            reply
                .header
                .get(key)
                .and_then(Value::as_str)
                .map(|s| s.chars().take(300).collect::<String>())
        };
        let message = text("message").unwrap_or_else(|| "(no message)".into());
        Err(match text("kind").as_deref() {
            Some("exception") => WorkerError::Raised {
                exception: text("exception").unwrap_or_default(),
                last_line: text("last_line").unwrap_or(message),
            },
            Some("unsupported") => WorkerError::Unsupported(message),
            _ => WorkerError::Protocol(format!("it refused {what}: {message}")),
        })
    }

    fn send(&mut self, message: &Message) -> Result<(), WorkerError> {
        message.write_to(&mut self.stdin).map_err(|_| self.died())
    }

    fn receive(&mut self, what: &'static str, deadline: Duration) -> Result<Message, WorkerError> {
        match self.replies.recv_timeout(deadline) {
            Ok(Ok(message)) => Ok(message),
            Ok(Err(ProtocolError::Malformed(why))) => Err(WorkerError::Protocol(why)),
            Ok(Err(_)) | Err(RecvTimeoutError::Disconnected) => Err(self.died()),
            Err(RecvTimeoutError::Timeout) => Err(WorkerError::Timeout {
                what,
                seconds: deadline.as_secs_f64(),
            }),
        }
    }

    /// The error for a worker whose stream ended: its exit, with the last
    /// lines it printed (given a moment to arrive).
    fn died(&mut self) -> WorkerError {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::thread::sleep(Duration::from_millis(20));
        let tail = self
            .stderr_tail
            .lock()
            .map(|t| t.iter().cloned().collect::<Vec<_>>().join(" | "))
            .unwrap_or_default();
        WorkerError::Died { tail }
    }

    /// The worker's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
