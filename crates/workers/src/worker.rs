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
use std::io::{BufRead, BufReader, Read};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Map, Value, json};

use crate::protocol::{Kind, Message, PROTOCOL_VERSION, ProtocolError, version_mismatch};

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
    /// Writes the embedded `tandem` package under `cache` (once per version,
    /// see `package::install`) and returns the defaults around it:
    /// `.venv/bin/python` when the current folder has one (the project's
    /// virtual environment), else `python3`; 60 s to start, 10 s to reset, 1 s
    /// to step.
    pub fn install(cache: &Path) -> std::io::Result<WorkerConfig> {
        Ok(WorkerConfig {
            python: default_python(),
            package_path: crate::package::install(cache)?,
            python_path: Vec::new(),
            start_deadline: Duration::from_secs(60),
            reset_deadline: Duration::from_secs(10),
            step_deadline: Duration::from_secs(1),
        })
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

/// How the server reaches a worker.
enum Link {
    /// A child process this server started: requests go to its stdin.
    Process { child: Child, stdin: ChildStdin },
    /// A worker on another machine that connected over TCP.
    Remote { stream: TcpStream },
}

/// A running worker.
pub struct Worker {
    link: Link,
    replies: Receiver<Result<Message, ProtocolError>>,
    stderr_tail: Arc<Mutex<VecDeque<String>>>,
    /// What the worker said in its `hello`.
    pub hello: Map<String, Value>,
}

/// Lines of a worker's standard error kept for error messages.
const TAIL_LINES: usize = 8;
/// Characters kept of each such line.
const TAIL_LINE_CHARS: usize = 300;
/// The longest stderr line read whole; the rest of a longer one is skipped.
const MAX_STDERR_LINE: usize = 4096;

impl Worker {
    /// Starts a worker process and greets it.
    pub fn start(config: &WorkerConfig) -> Result<Worker, WorkerError> {
        // The package first, so this server's protocol wins over any
        // installed copy; then the experiment's folders; then the caller's.
        let inherited = std::env::var_os("PYTHONPATH").filter(|p| !p.is_empty());
        let folders = std::iter::once(config.package_path.clone())
            .chain(config.python_path.iter().cloned())
            .chain(inherited.iter().flat_map(std::env::split_paths));
        let start_error = |cause: String| WorkerError::Start {
            python: config.python.display().to_string(),
            cause,
        };
        let python_path = std::env::join_paths(folders)
            .map_err(|e| start_error(format!("a Python path folder cannot be used: {e}")))?;
        let mut command = Command::new(&config.python);
        command
            .args(["-m", "tandem.worker", "--stdio"])
            .env("PYTHONPATH", python_path)
            // Without it, `-m` puts the current folder first on sys.path, and a
            // `tandem/` or `numpy.py` there would shadow the real ones.
            .env("PYTHONSAFEPATH", "1")
            .env("PYTHONUNBUFFERED", "1");
        contain(&mut command);
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| start_error(e.to_string()))?;
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(start_error("its pipes were not set up".into()));
        };
        let reader = spawn_reader(stdout);
        let stderr_tail = Arc::new(Mutex::new(VecDeque::new()));
        let tail = Arc::clone(&stderr_tail);
        let logger = std::thread::Builder::new()
            .name("worker stderr".into())
            .spawn(move || drain_stderr(stderr, &tail));
        let replies = match reader.and_then(|replies| logger.map(|_| replies)) {
            Ok(replies) => replies,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(start_error(format!("could not start a thread: {e}")));
            }
        };
        let mut worker = Worker {
            link: Link::Process { child, stdin },
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
        if let Some(message) = version_mismatch(&hello.header) {
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

    /// A worker on another machine, greeted already (see `remote`).
    pub(crate) fn remote(stream: TcpStream, hello: Map<String, Value>) -> std::io::Result<Worker> {
        let replies = spawn_reader(stream.try_clone()?)?;
        Ok(Worker {
            link: Link::Remote { stream },
            replies,
            stderr_tail: Arc::new(Mutex::new(VecDeque::new())),
            hello,
        })
    }

    /// Whether this worker is on another machine.
    pub fn is_remote(&self) -> bool {
        matches!(self.link, Link::Remote { .. })
    }

    pub(crate) fn send(&mut self, message: &Message) -> Result<(), WorkerError> {
        let sent = match &mut self.link {
            Link::Process { stdin, .. } => message.write_to(stdin),
            Link::Remote { stream } => message.write_to(stream),
        };
        sent.map_err(|_| self.died())
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
        self.stop();
        std::thread::sleep(Duration::from_millis(20));
        let tail = self
            .stderr_tail
            .lock()
            .map(|t| t.iter().cloned().collect::<Vec<_>>().join(" | "))
            .unwrap_or_default();
        WorkerError::Died { tail }
    }

    /// Ends the worker: kills and reaps a process, closes a connection (the
    /// remote worker's input ends, and with it the reader thread).
    fn stop(&mut self) {
        match &mut self.link {
            Link::Process { child, .. } => {
                kill_group(child);
                let _ = child.kill();
                let _ = child.wait();
            }
            Link::Remote { stream } => {
                let _ = stream.shutdown(std::net::Shutdown::Both);
            }
        }
    }

    /// The worker's process id (0 for a remote worker).
    pub fn pid(&self) -> u32 {
        match &self.link {
            Link::Process { child, .. } => child.id(),
            Link::Remote { .. } => 0,
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Puts a worker in a process group of its own, so that processes its
/// environment starts end with it. (Not `PR_SET_PDEATHSIG`: it fires when the
/// *thread* that started the worker ends, and warm workers are started by
/// threads that end at once. A worker whose server dies sees its input end.)
fn contain(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    command.process_group(0);
}

/// Kills a worker's whole process group (it leads its own, see [`contain`]).
fn kill_group(child: &Child) {
    if let Ok(group) = libc::pid_t::try_from(child.id()) {
        // SAFETY: killpg takes plain integers; a group already gone is an
        // error we ignore.
        unsafe {
            libc::killpg(group, libc::SIGKILL);
        }
    }
}

/// Reads a worker's standard error to its end, keeping the last lines. Lines
/// are cut at [`MAX_STDERR_LINE`] bytes and read as lossy UTF-8, so neither a
/// progress bar without newlines nor stray bytes can grow memory or stop the
/// draining (a worker whose stderr is no longer read would block, or die of a
/// broken pipe, at its next print).
fn drain_stderr(stderr: impl Read, tail: &Mutex<VecDeque<String>>) {
    let mut stderr = BufReader::new(stderr);
    let mut line = Vec::with_capacity(MAX_STDERR_LINE);
    loop {
        line.clear();
        // Read at most a line's worth, then skip the rest of an overlong line.
        let read = (&mut stderr)
            .take(MAX_STDERR_LINE as u64)
            .read_until(b'\n', &mut line);
        match read {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        if line.last() != Some(&b'\n') && line.len() == MAX_STDERR_LINE {
            let mut rest = Vec::new();
            loop {
                rest.clear();
                match (&mut stderr)
                    .take(MAX_STDERR_LINE as u64)
                    .read_until(b'\n', &mut rest)
                {
                    Ok(0) | Err(_) => break,
                    Ok(_) if rest.last() == Some(&b'\n') => break,
                    Ok(_) => {}
                }
            }
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end();
        tracing::debug!(target: "tandem::worker", "{text}");
        let mut tail = tail.lock().unwrap_or_else(|p| p.into_inner());
        if tail.len() == TAIL_LINES {
            tail.pop_front();
        }
        tail.push_back(text.chars().take(TAIL_LINE_CHARS).collect());
    }
}

/// Reads messages on a thread of their own and hands them over a channel, so
/// that a request can wait with a deadline.
fn spawn_reader(
    input: impl Read + Send + 'static,
) -> std::io::Result<Receiver<Result<Message, ProtocolError>>> {
    // A bound of one: the worker answers one request at a time, and a worker
    // that sends unasked floods blocks on its own output.
    let (replies_tx, replies) = sync_channel(1);
    std::thread::Builder::new()
        .name("worker reader".into())
        .spawn(move || {
            let mut input = BufReader::with_capacity(256 * 1024, input);
            loop {
                let message = Message::read_from(&mut input);
                let stop = message.is_err();
                if replies_tx.send(message).is_err() || stop {
                    return;
                }
            }
        })?;
    Ok(replies)
}
