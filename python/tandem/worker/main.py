"""The worker's command line and request loop.

``--stdio``: the server started this process and talks over its stdin and
stdout. Before anything else is imported, the protocol takes private copies
of fds 0 and 1, fd 1 is pointed at stderr and fd 0 at /dev/null, so an
environment (or a C library under it) that prints or reads cannot touch the
stream. That is why this module imports only the standard library at the top.

``--connect HOST:PORT``: a worker on another machine connects to the server,
says which environments it offers and serves them over the one connection.

Either way the loop is the same: ``hello``, wait for ``welcome``, then answer
requests one at a time until the input ends. An environment that raises costs
one ``error`` reply, never the worker; bytes that cannot be parsed end it with
a non-zero status, since nothing after them can be trusted to be in frame.
"""

from __future__ import annotations

import argparse
import os
import platform
import socket
import sys
import traceback
from typing import Any

from tandem.worker.versions import version_of

EXIT_OK = 0
EXIT_REFUSED = 1
EXIT_PROTOCOL = 2

MAX_TEXT = 1000


def _take_stdio() -> tuple[int, int]:
    """Private fds for the protocol; fd 1 becomes stderr and fd 0 /dev/null."""
    sys.stdout.flush()
    protocol_in = os.dup(0)
    protocol_out = os.dup(1)
    os.dup2(2, 1)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    # sys.stdout still writes to fd 1, now stderr; line buffering keeps what
    # environments print in order with the worker's own messages.
    try:
        sys.stdout.reconfigure(line_buffering=True)
    except (AttributeError, ValueError):
        pass
    try:
        import fcntl

        # A 600x400 frame is 720 KB; a 1 MiB pipe takes it in one write
        # instead of a dozen 64 KiB handoffs between the two processes.
        fcntl.fcntl(protocol_out, fcntl.F_SETPIPE_SZ, 1 << 20)
    except (ImportError, AttributeError, OSError):
        pass
    return protocol_in, protocol_out


def _log(text: str) -> None:
    print(f"tandem worker: {text}", file=sys.stderr, flush=True)


def _cut(text: str) -> str:
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


def _libraries() -> dict[str, str]:
    out = {}
    for key, distribution in (
        ("numpy", "numpy"),
        ("gymnasium", "gymnasium"),
        ("ale_py", "ale-py"),
        ("pettingzoo", "pettingzoo"),
    ):
        version = version_of(distribution)
        if version is not None:
            out[key] = version
    return out


def hello_header(token: str | None = None, offers: list[dict[str, str]] | None = None) -> dict[str, Any]:
    from tandem import __version__
    from tandem.worker.protocol import PROTOCOL_VERSION

    header: dict[str, Any] = {
        "protocol": PROTOCOL_VERSION,
        "worker": __version__,
        "python": platform.python_version(),
        "libraries": _libraries(),
    }
    if token is not None:
        header["token"] = token
    if offers is not None:
        header["offers"] = offers
    return header


class Worker:
    """The state of one conversation: at most one hosted environment or policy."""

    def __init__(self, reader: Any, writer: Any, offers: list[dict[str, str]] | None = None):
        from tandem.worker import protocol

        self.p = protocol
        self.reader = reader
        self.writer = writer
        self.offers = offers
        self.host: Any = None
        self.policy: Any = None
        self.target = ""
        self.reset_since_make = False
        self.handlers = {
            protocol.MAKE: self.make,
            protocol.RESET: self.reset,
            protocol.STEP: self.step,
            protocol.RENDER: self.render,
            protocol.CLOSE: self.close,
            protocol.POLICY: self.make_policy,
            protocol.POLICY_RESET: self.reset_policy,
            protocol.ACT: self.act,
            protocol.OBSERVE: self.observe,
        }

    # --- replies ---------------------------------------------------------

    def send_error(self, kind: str, message: str, **extra: Any) -> None:
        self.writer.send(self.p.ERROR, {"message": _cut(message), "kind": kind, **extra})

    def send_exception(self, error: BaseException, doing: str) -> None:
        text = "".join(traceback.format_exception(error)).rstrip()
        lines = text.splitlines()
        last_line = _cut(lines[-1] if lines else type(error).__name__)
        # The whole traceback goes to stderr, where the server logs it; the
        # reply carries only what a person needs to recognise the failure.
        _log(f"{doing} raised:\n{text}")
        self.send_error(
            "exception",
            f"{doing} raised {last_line}",
            exception=type(error).__name__,
            last_line=last_line,
        )

    def _frame(self, arrays: list, checked: bool = True) -> Any:
        """The frame, as a reference into ``arrays`` (appended if new).

        With ``checked=False`` (steps), a host whose frame is by construction
        its first observation is not rendered at all; resets render and
        compare, and a mismatch ends that trust for good.
        """
        if not checked and self.host.frame_is_observation and arrays:
            return {"$array": 0}
        frame = self.host.render() if self.host.renders else None
        if frame is None:
            return None
        # Atari's observation is the screen the frame shows: send it once and
        # refer to it twice, which halves the bytes of a pixel step.
        import numpy as np

        same = next(
            (
                index
                for index, array in enumerate(arrays)
                if getattr(array, "shape", None) == getattr(frame, "shape", ())
                and getattr(array, "dtype", None) == getattr(frame, "dtype", None)
                and np.array_equal(array, frame)
            ),
            None,
        )
        if self.host.frame_is_observation and same != 0:
            _log(f"{self.target}: its frame is not its observation after all; rendering every step")
            self.host.frame_is_observation = False
        if same is not None:
            return {"$array": same}
        arrays.append(frame)
        return {"$array": len(arrays) - 1}

    # --- requests --------------------------------------------------------

    def make(self, message: Any) -> None:
        from tandem.worker.hosting import construct, describe

        header = message.header
        source, target, kwargs = header.get("source"), header.get("target"), header.get("kwargs", {})
        self._need_nothing_open("make")
        if not isinstance(source, str) or not isinstance(target, str):
            raise self.p.ProtocolError('make needs string "source" and "target"')
        if not isinstance(kwargs, dict):
            raise self.p.ProtocolError('"kwargs" must be an object')
        if self.offers is not None and {"source": source, "target": target} not in self.offers:
            raise self.p.Unsupported(f"this worker does not offer {source}:{target}")
        self.target = target
        host, description = construct(source, target, kwargs)
        try:
            made = describe(host, description)
        except BaseException:
            try:
                host.close()
            except Exception:
                pass
            raise
        self.host = host
        self.reset_since_make = False
        self.writer.send(self.p.MADE, made)

    def _need_nothing_open(self, what: str) -> None:
        if self.host is not None or self.policy is not None:
            open_now = "an environment" if self.host is not None else "a policy"
            raise self.p.ProtocolError(f"{what} while {open_now} is open; close it first")

    def _need_host(self, what: str) -> Any:
        if self.host is None:
            raise self.p.ProtocolError(f"{what} before make")
        return self.host

    def reset(self, message: Any) -> None:
        host = self._need_host("reset")
        seed = message.header.get("seed")
        if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < 2**63:
            raise self.p.ProtocolError(f'"seed" must be an integer in [0, 2^63), not {seed!r}')
        observations, infos = host.reset(seed)
        self.reset_since_make = True
        arrays = list(observations)
        refs = [{"$array": i} for i in range(len(arrays))]
        frame = self._frame(arrays)
        self.writer.send(
            self.p.RESET_DONE, {"observations": refs, "infos": infos, "frame": frame}, arrays
        )

    def step(self, message: Any) -> None:
        host = self._need_host("step")
        if not self.reset_since_make:
            raise self.p.ProtocolError("step before reset")
        observations, rewards, terminated, truncated, infos = host.step(message.header.get("actions"), message)
        arrays = list(observations)
        refs = [{"$array": i} for i in range(len(arrays))]
        frame = self._frame(arrays, checked=False)
        self.writer.send(
            self.p.STEP_DONE,
            {
                "observations": refs,
                "rewards": rewards,
                "terminated": terminated,
                "truncated": truncated,
                "infos": infos,
                "frame": frame,
            },
            arrays,
        )

    def render(self, message: Any) -> None:
        self._need_host("render")
        arrays: list = []
        frame = self._frame(arrays)
        self.writer.send(self.p.RENDERED, {"frame": frame}, arrays)

    def close(self, message: Any) -> None:
        # Idempotent, so a server cleaning up after an error need not know
        # whether the make had succeeded.
        host, self.host = self.host, None
        policy, self.policy = self.policy, None
        if host is not None:
            host.close()
        if policy is not None:
            policy.close()
        self.writer.send(self.p.CLOSED, {})

    # --- policies --------------------------------------------------------

    def make_policy(self, message: Any) -> None:
        from tandem.worker.policies import construct_policy

        self._need_nothing_open("policy")
        if self.offers is not None:
            raise self.p.Unsupported("a remote worker hosts only the environments it offers; policies run beside the server")
        entry = message.header.get("entry")
        self.target = entry if isinstance(entry, str) else ""
        policy = construct_policy(message.header)
        self.policy = policy
        self.writer.send(
            self.p.POLICY_READY,
            {"description": f"python {policy.entry}", "observes": policy.observes},
        )

    def _need_policy(self, what: str) -> Any:
        if self.policy is None:
            raise self.p.ProtocolError(f"{what} before policy")
        return self.policy

    def reset_policy(self, message: Any) -> None:
        policy = self._need_policy("policy_reset")
        seed = message.header.get("seed")
        if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < 2**64:
            raise self.p.ProtocolError(f'"seed" must be an integer in [0, 2^64), not {seed!r}')
        policy.reset(seed)
        self.writer.send(self.p.POLICY_RESET_DONE, {})

    def act(self, message: Any) -> None:
        action = self._need_policy("act").act(message)
        self.writer.send(self.p.ACTED, {"action": action})

    def observe(self, message: Any) -> None:
        self._need_policy("observe").observe(message)
        self.writer.send(self.p.OBSERVED, {})

    # --- the loop --------------------------------------------------------

    def handshake(self, hello: dict[str, Any]) -> int | None:
        """Sends hello and reads welcome; an exit status if that failed, else None."""
        p = self.p
        self.writer.send(p.HELLO, hello)
        try:
            message = self.reader.read()
        except p.ProtocolError as e:
            return self.protocol_failure(str(e))
        if message is None:
            _log("the server closed the stream before welcome")
            return EXIT_REFUSED
        if message.kind == p.ERROR:
            _log(f"the server refused this worker: {message.header.get('message')}")
            return EXIT_REFUSED
        if message.kind != p.WELCOME:
            return self.protocol_failure(f"expected welcome, got message kind {message.kind}")
        version = message.header.get("protocol")
        if version != p.PROTOCOL_VERSION:
            return self.protocol_failure(
                f"the server speaks protocol {version!r}; this worker speaks {p.PROTOCOL_VERSION}"
            )
        return None

    def protocol_failure(self, text: str) -> int:
        _log(f"protocol error: {text}")
        try:
            self.send_error("protocol", text)
        except OSError:
            pass
        return EXIT_PROTOCOL

    def serve(self) -> int:
        p = self.p
        while True:
            try:
                message = self.reader.read()
            except p.ProtocolError as e:
                return self.protocol_failure(str(e))
            if message is None:
                return EXIT_OK
            handler = self.handlers.get(message.kind)
            if handler is None:
                if message.kind == p.ERROR:
                    _log(f"the server reported: {message.header.get('message')}")
                    continue
                self.send_error("protocol", f"unexpected message kind {message.kind}")
                continue
            try:
                handler(message)
            except (p.CannotSend, p.Unsupported) as e:
                self.send_error("unsupported", str(e))
            except p.ProtocolError as e:
                self.send_error("protocol", str(e))
            except _stream_errors():
                raise
            except (Exception, SystemExit) as e:
                self.send_exception(e, self._doing(message.kind))

    def _doing(self, kind: int) -> str:
        return f"{self.target}.{self.p.KIND_NAMES.get(kind, kind)}" if self.target else "request"

    def shutdown(self) -> None:
        for what, hosted in (("the environment", self.host), ("the policy", self.policy)):
            if hosted is not None:
                try:
                    hosted.close()
                except Exception as e:
                    _log(f"closing {what} raised {type(e).__name__}: {e}")
        self.host = self.policy = None


def _stream_errors() -> tuple[type[BaseException], ...]:
    """The server went away: nothing to reply to. Only the protocol's own
    reads and writes raise this; an environment's broken pipe is its exception."""
    from tandem.worker.protocol import ServerGone

    return (ServerGone,)


def run(reader: Any, writer: Any, hello: dict[str, Any], offers: list[dict[str, str]] | None = None) -> int:
    worker = Worker(reader, writer, offers)
    try:
        status = worker.handshake(hello)
        if status is not None:
            return status
        return worker.serve()
    except _stream_errors():
        _log("the server went away")
        return EXIT_OK
    finally:
        worker.shutdown()


def parse_offer(text: str) -> dict[str, str]:
    source, _, target = text.partition(":")
    if source not in ("gymnasium", "pettingzoo", "python") or not target:
        raise argparse.ArgumentTypeError(
            f"an offer is SOURCE:TARGET with SOURCE gymnasium, pettingzoo or python, not {text!r}"
        )
    return {"source": source, "target": target}


def parse_address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    host = host.strip("[]")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, not {text!r}")
    return host, int(port)


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tandem.worker",
        description="Hosts Python environments for a Tandem server (protocol in docs/WORKER.md).",
    )
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--stdio", action="store_true", help="talk over stdin/stdout (the server started this worker)")
    mode.add_argument("--connect", type=parse_address, metavar="HOST:PORT", help="connect to a server's worker port")
    parser.add_argument(
        "--token",
        default=os.environ.get("TANDEM_WORKER_TOKEN"),
        help="the server's worker token (default: $TANDEM_WORKER_TOKEN, which keeps it out of ps)",
    )
    parser.add_argument(
        "--offer",
        action="append",
        type=parse_offer,
        default=[],
        metavar="SOURCE:TARGET",
        help="an environment this worker serves, e.g. gymnasium:CartPole-v1 (repeatable)",
    )
    args = parser.parse_args(argv)
    if args.connect is not None:
        if not args.token:
            parser.error("--connect needs --token (or $TANDEM_WORKER_TOKEN)")
        if not args.offer:
            parser.error("--connect needs at least one --offer")
    elif args.offer:
        parser.error("--offer goes with --connect")
    return args


def _exit_with_the_server() -> None:
    """Ends this worker when the server that started it is gone.

    A worker waiting for a request sees its input end when the server dies;
    one whose environment or policy hangs inside a call never reads again,
    and would outlive a server killed with SIGKILL (its process group is its
    own, so the server's group is not signalled). A daemon thread notices the
    parent change instead.
    """
    import threading
    import time

    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(0.5)
            if os.getppid() != parent:
                try:
                    _log("the server that started this worker is gone; exiting")
                except OSError:
                    pass  # stderr was the server's pipe, closed with it
                os._exit(EXIT_OK)

    threading.Thread(target=watch, name="tandem server watch", daemon=True).start()


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    if args.stdio:
        protocol_in, protocol_out = _take_stdio()
        _exit_with_the_server()
    try:
        if args.stdio:
            from tandem.worker.protocol import Reader, Writer

            reader = Reader(open(protocol_in, "rb", buffering=1 << 16))
            return run(reader, Writer.for_fd(protocol_out), hello_header())
        return _connect(args)
    except KeyboardInterrupt:
        return 130


def _connect(args: argparse.Namespace) -> int:
    from tandem.worker.protocol import Reader, Writer

    host, port = args.connect
    try:
        sock = socket.create_connection((host, port), timeout=30)
    except OSError as e:
        _log(f"cannot connect to {host}:{port}: {e}")
        return EXIT_REFUSED
    with sock:
        sock.settimeout(None)
        # Requests and replies are small and strictly alternate: Nagle's
        # algorithm would hold each reply back waiting for an ACK.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        reader = Reader(sock.makefile("rb", buffering=1 << 16))
        offers = args.offer
        return run(reader, Writer.for_socket(sock), hello_header(args.token, offers), offers)


if __name__ == "__main__":
    sys.exit(main())
