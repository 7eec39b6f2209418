"""The Python worker (python -m tandem.worker), driven as the server drives it.

Most tests run the real worker as a subprocess over pipes and talk to it with
the framing in ``tandem.worker.protocol``, checking each reply against what
Gymnasium or PettingZoo give when called directly. Helper environments live
in ``worker_envs.py`` beside this file. A few tests call the conversion
functions in-process, where a subprocess would only add time.

Run: ``.venv/bin/python -m pytest python/tests/test_worker.py -q``.
"""

from __future__ import annotations

import io
import os
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import types
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

PYTHON_DIR = Path(__file__).resolve().parents[1]
TESTS_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(PYTHON_DIR))
sys.path.insert(0, str(TESTS_DIR))

from tandem.worker import protocol as p  # noqa: E402
from tandem.worker import values  # noqa: E402

ENV = {
    **os.environ,
    "PYTHONPATH": os.pathsep.join([str(PYTHON_DIR), str(TESTS_DIR)]),
    "SDL_AUDIODRIVER": "dummy",
    "PYGAME_HIDE_SUPPORT_PROMPT": "1",
}
TIMEOUT = 60


def has(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


class Worker:
    """A worker subprocess and the server's end of its pipes."""

    def __init__(self, welcome: dict[str, Any] | None = {"protocol": 1}, start_only: bool = False):
        self.stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tandem.worker", "--stdio"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            env=ENV,
        )
        # A hung worker fails its test instead of hanging the suite.
        self._watchdog = threading.Timer(TIMEOUT, self.proc.kill)
        self._watchdog.daemon = True
        self._watchdog.start()
        self.reader = p.Reader(self.proc.stdout)
        self.writer = p.Writer.for_fd(self.proc.stdin.fileno())
        if not start_only:
            self.handshake(welcome)

    def handshake(self, welcome: dict[str, Any] | None = {"protocol": 1}) -> Worker:
        """Reads hello and answers welcome (unless None: the test answers)."""
        self.hello = self.reader.read()
        assert self.hello is not None and self.hello.kind == p.HELLO, self.stderr_text()
        if welcome is not None:
            self.writer.send(p.WELCOME, welcome)
        return self

    def request(self, kind: int, header: dict[str, Any], arrays=()) -> p.Message:
        self.writer.send(kind, header, arrays)
        reply = self.reader.read()
        assert reply is not None, f"the worker ended: {self.stderr_text()}"
        return reply

    def make(self, source: str, target: str, **kwargs: Any) -> p.Message:
        return self.request(p.MAKE, {"source": source, "target": target, "kwargs": kwargs})

    def reset(self, seed: int) -> p.Message:
        return self.request(p.RESET, {"seed": seed})

    def step(self, *actions: Any) -> p.Message:
        return self.request(p.STEP, {"actions": list(actions)})

    def close_env(self) -> None:
        assert self.request(p.CLOSE, {}).kind == p.CLOSED

    def finish(self) -> int:
        """Ends the worker's input and returns its exit status."""
        try:
            self.proc.stdin.close()
        except BrokenPipeError:
            pass
        status = self.proc.wait(TIMEOUT)
        self._watchdog.cancel()
        self.proc.stdout.close()
        return status

    def stderr_text(self) -> str:
        self.stderr.seek(0)
        return self.stderr.read().decode(errors="replace")


def resolve(message: p.Message, value: Any) -> Any:
    array = message.array(value)
    return value if array is None else array


SPARES = 6


@pytest.fixture(scope="module")
def spares():
    """Workers started together, for the tests that need one of their own.

    A worker takes a few tenths of a second to import numpy; starting them at
    once lets that overlap.
    """
    pool = [Worker(start_only=True) for _ in range(SPARES)]
    yield pool
    for w in pool:
        w.finish()


def spare(spares, welcome: dict[str, Any] | None = {"protocol": 1}) -> Worker:
    return spares.pop().handshake(welcome)


@pytest.fixture(scope="module")
def worker():
    w = Worker()
    yield w
    assert w.finish() == 0, w.stderr_text()


@pytest.fixture
def fresh(worker):
    """The shared worker, with no environment open before or after the test."""
    worker.close_env()
    yield worker
    worker.close_env()


def assert_error(reply: p.Message, kind: str, contains: str = "") -> dict[str, Any]:
    assert reply.kind == p.ERROR, reply
    assert reply.header["kind"] == kind, reply.header
    assert contains in reply.header["message"], reply.header
    return reply.header


# --- handshake -------------------------------------------------------------


def test_hello_names_the_protocol_and_libraries(worker):
    hello = worker.hello
    assert hello.kind == p.HELLO
    assert hello.header["protocol"] == 1
    assert hello.header["worker"] == "0.1.0"
    assert hello.header["python"] == ".".join(map(str, sys.version_info[:3]))
    assert hello.header["libraries"]["numpy"] == np.__version__
    assert hello.header["libraries"]["gymnasium"] == gym.__version__
    assert "token" not in hello.header and "offers" not in hello.header


def test_wrong_protocol_version_in_welcome_is_refused(spares):
    w = spare(spares, welcome={"protocol": 2})
    reply = w.reader.read()
    header = assert_error(reply, "protocol", "protocol 2")
    assert "speaks 1" in header["message"]
    assert w.finish() == 2


def test_error_instead_of_welcome_ends_the_worker(spares):
    w = spare(spares, welcome=None)
    w.writer.send(p.ERROR, {"message": "wrong token"})
    assert w.reader.read() is None
    assert w.finish() == 1
    assert "wrong token" in w.stderr_text()


# --- unparseable input -----------------------------------------------------


def _message(kind: int, header: bytes, payload: bytes = b"") -> bytes:
    return struct.pack("<IBI", 5 + len(header) + len(payload), kind, len(header)) + header + payload


GARBAGE = [
    (b"\xff" * 16, "over the limit"),
    (struct.pack("<I", 3) + b"abc", "too short"),
    (struct.pack("<I", 100) + b"\x0c", "ended inside a message"),
    (b"\x01\x00", "inside a message's length"),
    (_message(p.RESET, b"{not json"), "not UTF-8 JSON"),
    (_message(p.RESET, b"\xff\xfe"), "not UTF-8 JSON"),
    (_message(p.RESET, b"[1, 2]"), "not a JSON object"),
    (_message(p.RESET, b'{"seed": NaN}'), "not UTF-8 JSON"),
    (struct.pack("<IBI", 9, p.RESET, 50) + b"{}{}", "does not fit"),
    (_message(p.STEP, b'{"arrays": [{"dtype": "uint8", "shape": [4]}]}', b"ab"), "payload holds 2"),
    (_message(p.STEP, b'{"arrays": [{"dtype": "float16", "shape": [1]}]}', b"ab"), "unknown dtype"),
    (_message(p.STEP, b'{"arrays": [{"dtype": "uint8", "shape": [-1]}]}'), "bad shape"),
    (_message(p.STEP, b'{"arrays": {"dtype": "uint8"}}'), "not a list"),
]


@pytest.mark.parametrize("garbage, why", GARBAGE)
def test_reader_rejects_garbage(garbage, why):
    reader = p.Reader(io.BufferedReader(io.BytesIO(garbage)))
    with pytest.raises(p.ProtocolError, match=why):
        reader.read()


@pytest.mark.parametrize("case", [0, 2, 4])
def test_garbage_gets_a_protocol_error_and_a_nonzero_exit(spares, case):
    # The reader's cases are all checked above; here the worker's answer to a few.
    garbage, why = GARBAGE[case]
    w = spare(spares)
    w.proc.stdin.write(garbage)
    w.proc.stdin.flush()
    w.proc.stdin.close()
    assert_error(w.reader.read(), "protocol", why)
    assert w.finish() == 2


def test_garbage_instead_of_welcome(spares):
    w = spare(spares, welcome=None)
    w.proc.stdin.write(b"GET / HTTP/1.1\r\n\r\n")
    w.proc.stdin.flush()
    assert_error(w.reader.read(), "protocol")
    assert w.finish() == 2


# --- requests out of order or malformed ----------------------------------------


def test_requests_before_make_and_malformed_requests(fresh):
    w = fresh
    assert_error(w.step(0), "protocol", "step before make")
    assert_error(w.reset(1), "protocol", "reset before make")
    assert_error(w.request(p.RENDER, {}), "protocol", "render before make")
    assert_error(w.request(99, {}), "protocol", "kind 99")
    assert_error(w.request(p.WELCOME, {"protocol": 1}), "protocol")
    assert_error(w.make("nowhere", "CartPole-v1"), "protocol", "unknown source")
    assert_error(w.request(p.MAKE, {"source": "gymnasium"}), "protocol")
    assert_error(w.request(p.MAKE, {"source": "gymnasium", "target": "CartPole-v1", "kwargs": [1]}), "protocol")
    assert_error(w.make("python", "worker_envs"), "protocol", "module:function")

    assert w.make("gymnasium", "CartPole-v1").kind == p.MADE
    assert_error(w.step(0), "protocol", "step before reset")
    assert_error(w.make("gymnasium", "CartPole-v1"), "protocol", "close it first")
    for seed in (-1, 2**63, 1.5, "3", True, None):
        assert_error(w.reset(seed), "protocol", "seed")
    assert w.reset(2**63 - 1).kind == p.RESET_DONE
    for actions in ([], [0, 1], ["left"], [1.0], [True], None):
        assert_error(w.request(p.STEP, {"actions": actions}), "protocol")
    assert w.step(1).kind == p.STEP_DONE


def test_unsupported_environments(fresh):
    w = fresh
    assert_error(w.make("python", "worker_envs:make_bad_actions"), "unsupported", "Dict")
    assert_error(w.make("python", "worker_envs:make_not_an_env"), "unsupported", "str")
    assert_error(w.make("python", "worker_envs:no_such_function"), "unsupported", "no_such_function")
    assert_error(w.make("pettingzoo", "json"), "unsupported", "neither parallel_env nor env")
    header = assert_error(w.make("python", "no_such_module:make"), "exception")
    assert header["exception"] == "ModuleNotFoundError"
    header = assert_error(w.make("gymnasium", "NoSuchEnv-v0"), "exception")
    assert header["exception"] == "NameNotFound"
    # None of these left an environment open.
    assert w.make("gymnasium", "CartPole-v1").kind == p.MADE


# --- CartPole through the worker equals CartPole called directly ----------------

ACTIONS = [1, 0, 0, 1, 1, 0, 1, 0, 0, 0, 1, 1, 0, 1, 0, 1] * 4 + [1] * 40


def test_cartpole_made_describes_the_spaces(fresh):
    made = fresh.make("gymnasium", "CartPole-v1")
    assert made.kind == p.MADE
    env = gym.make("CartPole-v1")
    high = env.observation_space.high
    bound = [float(high[0]), "inf", float(high[2]), "inf"]
    assert made.header == {
        "agents": [
            {
                "name": "agent",
                "observation_space": {
                    "type": "Box",
                    "dtype": "float32",
                    "shape": [4],
                    "low": [-bound[0], "-inf", -bound[2], "-inf"],
                    "high": bound,
                },
                "action_space": {"type": "Discrete", "dtype": "int64", "start": 0, "n": 2},
            }
        ],
        "render": {"kind": "pixels", "width": 600, "height": 400},
        "fps": 50,
        "max_episode_steps": 500,
        "keys_to_action": None,
        "description": f"gymnasium {gym.__version__} CartPole-v1",
    }


def test_cartpole_matches_gymnasium_exactly(fresh):
    env = gym.make("CartPole-v1", render_mode="rgb_array")
    observation, _ = env.reset(seed=3)
    expected = [(observation, None, False, False, env.render())]
    for action in ACTIONS:
        observation, reward, terminated, truncated, _ = env.step(action)
        expected.append((observation, reward, terminated, truncated, env.render()))
        if terminated or truncated:
            break
    assert expected[-1][2], "the action sequence should end the episode"

    w = fresh
    w.make("gymnasium", "CartPole-v1")
    got = w.reset(3)
    assert got.kind == p.RESET_DONE
    assert got.header["infos"] == [{}]
    for i, (observation, reward, terminated, truncated, frame) in enumerate(expected):
        if i > 0:
            got = w.step(ACTIONS[i - 1])
            assert got.kind == p.STEP_DONE, got
            assert got.header["rewards"] == [reward]
            assert got.header["terminated"] == [terminated]
            assert got.header["truncated"] == [truncated]
            assert got.header["infos"] == [{}]
        [ours] = [resolve(got, o) for o in got.header["observations"]]
        assert ours.dtype == np.float32 and ours.shape == (4,)
        assert np.array_equal(ours, observation)
        ours_frame = resolve(got, got.header["frame"])
        assert ours_frame.dtype == np.uint8 and ours_frame.shape == (400, 600, 3)
        assert np.array_equal(ours_frame, frame)

    rendered = w.request(p.RENDER, {})
    assert rendered.kind == p.RENDERED
    assert np.array_equal(resolve(rendered, rendered.header["frame"]), expected[-1][4])

    # The same seed again gives the same start.
    again = w.reset(3)
    assert np.array_equal(resolve(again, again.header["observations"][0]), expected[0][0])


# --- environments that raise, print, or render nothing ---------------------------


def test_an_exception_in_step_is_an_error_reply_and_the_worker_goes_on(fresh):
    w = fresh
    made = w.make("python", "worker_envs:make_raising")
    assert made.header["render"] == {"kind": "pixels", "width": 12, "height": 8}
    assert made.header["fps"] == 10
    assert made.header["max_episode_steps"] is None
    assert made.header["description"].startswith("python worker_envs:make_raising (gymnasium ")
    start = resolve(w.reset(5), {"$array": 0})[0]
    fail_at = 3
    steps = 0
    while start + steps + 1 < fail_at:
        assert w.step(0).kind == p.STEP_DONE
        steps += 1
    header = assert_error(w.step(0), "exception", "step raised ValueError: boom")
    assert header["exception"] == "ValueError"
    assert header["last_line"].startswith("ValueError: boom at count")

    # The environment stays usable, and so does the worker after close.
    assert w.reset(1).kind == p.RESET_DONE
    w.close_env()
    assert w.make("gymnasium", "CartPole-v1").kind == p.MADE
    assert w.reset(0).kind == p.RESET_DONE
    assert w.step(1).kind == p.STEP_DONE


def test_an_environments_broken_pipe_is_its_exception_not_the_server_leaving(fresh):
    w = fresh
    w.make("python", "worker_envs:make_broken_pipe")
    start = resolve(w.reset(5), {"$array": 0})[0]
    steps = 0
    while start + steps + 1 < 3:
        assert w.step(0).kind == p.STEP_DONE
        steps += 1
    header = assert_error(w.step(0), "exception")
    assert header["exception"] == "BrokenPipeError"
    assert w.reset(1).kind == p.RESET_DONE


def test_an_exception_in_make_is_an_error_reply(fresh):
    header = assert_error(fresh.make("python", "worker_envs:make_raising", unknown_argument=1), "exception")
    assert header["exception"] == "TypeError"
    assert "unknown_argument" in header["last_line"]


def test_printing_environment_does_not_corrupt_the_stream(fresh):
    w = fresh
    made = w.make("python", "worker_envs:make_printing")
    assert made.kind == p.MADE
    w.reset(0)
    for _ in range(5):
        reply = w.step(1)
        assert reply.kind == p.STEP_DONE and reply.header["rewards"] == [1.0]
    log = w.stderr_text()
    assert "worker_envs imported" in log
    assert "step: printing to stdout 1" in log
    assert "step: written straight to fd 1" in log


def test_an_environment_without_rgb_array_has_no_frames(fresh):
    w = fresh
    made = w.make("python", "worker_envs:make_silent")
    assert made.header["render"] is None
    assert w.reset(0).header["frame"] is None
    assert w.step(0).header["frame"] is None
    assert w.request(p.RENDER, {}).header == {"frame": None}


def test_dict_observations_are_flattened_and_infos_reduced(fresh):
    import worker_envs

    w = fresh
    made = w.make("python", "worker_envs:make_dict")
    assert made.header["render"] is None  # render() is not implemented
    [agent] = made.header["agents"]
    assert agent["observation_space"]["type"] == "Box"
    assert agent["observation_space"]["shape"] == [5]
    assert agent["action_space"] == {
        "type": "Box",
        "dtype": "float32",
        "shape": [2, 1],
        "low": [[-1.0], [-1.0]],
        "high": [[1.0], [1.0]],
    }
    env = worker_envs.make_dict()
    observation, _ = env.reset(seed=9)
    got = w.reset(9)
    flat = gym.spaces.flatten(env.observation_space, observation)
    assert np.array_equal(resolve(got, got.header["observations"][0]), flat)

    action = [0.25, -0.5]
    observation, reward, *_ = env.step(np.array(action, np.float32).reshape(2, 1))
    got = w.step(action)
    assert got.kind == p.STEP_DONE, got
    assert np.array_equal(
        resolve(got, got.header["observations"][0]), gym.spaces.flatten(env.observation_space, observation)
    )
    assert got.header["rewards"] == [reward]
    info = got.header["infos"][0]
    assert info["scalar"] == 0.5 and info["count"] == 7 and info["flag"] is True
    assert info["small"] == [0, 1, 2]
    assert info["big"] == "<array float32 (84, 84)>"
    assert info["nan"] == "nan"
    assert info["(1, 2)"] == "tuple key"
    assert info["object"].startswith("<object object at")
    assert info["nested"] == {"deep": [3, [1.5, None]]}

    # A Box action may also come as an array in the payload.
    got = w.request(p.STEP, {"actions": [{"$array": 0}]}, [np.array([0.0, 0.0], np.float32)])
    assert got.kind == p.STEP_DONE, got


# --- keyboard mappings -----------------------------------------------------


def test_keys_to_action_uses_browser_key_names(fresh):
    made = fresh.make("python", "worker_envs:make_with_keys")
    assert made.header["keys_to_action"] == [
        {"keys": ["Space"], "action": 1},
        {"keys": ["a"], "action": 2},
        {"keys": ["ArrowUp"], "action": 1},
        {"keys": ["ArrowLeft", "d"], "action": 2},
        {"keys": ["w", "s"], "action": 0},
    ]


def test_key_names():
    assert values.key_name(ord(" ")) == "Space"
    assert values.key_name(" ") == "Space"
    assert values.key_name(1073741905) == "ArrowDown"
    assert values.key_name(1073741903) == "ArrowRight"
    assert values.key_name(np.int64(ord("x"))) == "x"
    assert values.key_name("ab") is None
    assert values.key_name(1073742049) is None
    assert values.key_name(None) is None


# --- PettingZoo ------------------------------------------------------------


@pytest.mark.skipif(not has("pettingzoo"), reason="pettingzoo is not installed")
@pytest.mark.parametrize("source, target", [("pettingzoo", "worker_envs"), ("python", "worker_envs:make_parallel")])
def test_parallel_environment_keeps_removed_agents(fresh, source, target):
    w = fresh
    made = w.make(source, target)
    assert made.kind == p.MADE, made
    assert [a["name"] for a in made.header["agents"]] == ["a", "b"]
    assert made.header["agents"][1]["action_space"] == {
        "type": "MultiDiscrete",
        "dtype": "int64",
        "nvec": [2, 3],
        "start": [0, 0],
    }
    assert made.header["agents"][0]["observation_space"]["dtype"] == "int64"
    assert made.header["render"] == {"kind": "pixels", "width": 6, "height": 4}
    assert made.header["fps"] == 5
    got = w.reset(4)
    assert got.header["infos"] == [{"seed": 4}, {"seed": 4}]
    expected_rewards = [[1.0, 3.0], [0.0, 2.0], [1.0, 0.0], [1.0, 0.0]]
    expected_terminated = [[False, False], [False, True], [False, True], [True, True]]
    for t in range(4):
        got = w.step([1, 0, 1, 1][t], [1, 2] if t == 0 else [0, 2])
        assert got.kind == p.STEP_DONE, got
        assert got.header["rewards"] == expected_rewards[t]
        assert got.header["terminated"] == expected_terminated[t]
        assert got.header["truncated"] == [False, False]
        a, b = (resolve(got, o) for o in got.header["observations"])
        # The environment's int32 observations arrive widened to int64, a
        # dtype the server holds.
        assert a.tolist() == [t + 1, 0] and a.dtype == np.int64
        assert b.tolist() == ([t + 1, 1] if t < 2 else [0, 0])
        assert resolve(got, got.header["frame"]).shape == (4, 6, 3)


@pytest.mark.skipif(not has("pettingzoo"), reason="pettingzoo is not installed")
def test_aec_environment_is_converted_in_process(monkeypatch):
    """A PettingZoo module with only an AEC ``env``, as most PettingZoo games are."""
    from pettingzoo.utils.conversions import parallel_to_aec

    import worker_envs
    from tandem.worker import hosting

    module = types.ModuleType("aec_only")
    module.env = lambda **kwargs: parallel_to_aec(worker_envs.parallel_env(**kwargs))
    monkeypatch.setitem(sys.modules, "aec_only", module)
    host, description = hosting.construct("pettingzoo", "aec_only", {})
    made = hosting.describe(host, description)
    assert [a["name"] for a in made["agents"]] == ["a", "b"]
    observations, _ = host.reset(1)
    assert [o.tolist() for o in observations] == [[0, 0], [0, 1]]
    _, rewards, terminated, _, _ = host.step([1, [1, 1]], p.Message(p.STEP, {}, []))
    assert rewards == [1.0, 2.0] and terminated == [False, False]


@pytest.mark.skipif(not (has("pettingzoo") and has("pygame")), reason="pettingzoo or pygame is not installed")
def test_real_pettingzoo_environment(fresh):
    from pettingzoo.classic import rps_v2

    w = fresh
    made = w.make("pettingzoo", "pettingzoo.classic.rps_v2")
    assert made.kind == p.MADE, made
    assert [a["name"] for a in made.header["agents"]] == ["player_0", "player_1"]
    assert made.header["agents"][0]["observation_space"] == {"type": "Discrete", "dtype": "int64", "start": 0, "n": 4}
    env = rps_v2.parallel_env()
    observations, _ = env.reset(seed=2)
    got = w.reset(2)
    ours = [resolve(got, o) for o in got.header["observations"]]
    assert all(o.shape == () and o.dtype == np.int64 for o in ours)
    assert [int(o) for o in ours] == [int(observations[a]) for a in env.possible_agents]
    # Rock (0) against paper (1): paper wins.
    _, rewards, *_ = env.step({"player_0": 0, "player_1": 1})
    got = w.step(0, 1)
    assert got.header["rewards"] == [rewards["player_0"], rewards["player_1"]] == [-1.0, 1.0]
    assert resolve(got, got.header["frame"]).shape[2] == 3


# --- Atari -----------------------------------------------------------------


@pytest.mark.skipif(not has("ale_py"), reason="ale-py is not installed")
def test_breakout(fresh):
    w = fresh
    made = w.make("gymnasium", "ALE/Breakout-v5")
    assert made.kind == p.MADE, made
    header = made.header
    assert header["render"] == {"kind": "pixels", "width": 160, "height": 210}
    assert header["agents"][0]["action_space"] == {"type": "Discrete", "dtype": "int64", "start": 0, "n": 4}
    assert header["agents"][0]["observation_space"]["shape"] == [210, 160, 3]
    keys = {tuple(k["keys"]): k["action"] for k in header["keys_to_action"]}
    assert keys[("Space",)] == 1 and keys[("d",)] == 2 and keys[("a",)] == 3
    got = w.reset(7)
    assert got.header["infos"][0]["lives"] == 5
    assert resolve(got, got.header["frame"]).shape == (210, 160, 3)
    got = w.step(1)
    observation = resolve(got, got.header["observations"][0])
    assert observation.shape == (210, 160, 3) and observation.dtype == np.uint8
    assert resolve(got, got.header["frame"]).shape == (210, 160, 3)


@pytest.mark.skipif(not has("ale_py"), reason="ale-py is not installed")
def test_breakout_frames_are_its_screen_without_rendering_twice(fresh):
    # The worker sends Atari's RGB observation as the frame without a second
    # render: the frame must still be exactly what render() shows, step after
    # step, as an environment driven directly here renders it.
    import ale_py

    gym.register_envs(ale_py)
    w = fresh
    kwargs = {"frameskip": 1, "repeat_action_probability": 0.0}
    assert w.make("gymnasium", "ALE/Breakout-v5", **kwargs).kind == p.MADE
    direct = gym.make("ALE/Breakout-v5", render_mode="rgb_array", **kwargs)
    direct.reset(seed=11)
    w.reset(11)
    for action in [1, 0, 2, 2, 3, 1, 0, 0, 2, 3] * 3:
        direct.step(action)
        got = w.step(action)
        assert got.header["frame"] == {"$array": 0}, "the frame refers to the observation"
        assert len(got.arrays) == 1, "one screen per step on the wire"
        assert np.array_equal(resolve(got, got.header["frame"]), direct.render())
    direct.close()


def test_a_frame_that_only_looks_like_the_observation_is_rendered(fresh):
    # Claims to be ale-py's (module and _obs_type) but renders something else:
    # the reset's check catches it, and every step then sends the real render.
    w = fresh
    assert w.make("python", "worker_envs:make_screen_impostor").kind == p.MADE
    w.reset(1)
    for _ in range(3):
        got = w.step(0)
        frame = resolve(got, got.header["frame"])
        assert got.header["frame"] != {"$array": 0}
        assert np.array_equal(frame, np.full((4, 4, 3), 200, np.uint8))


# --- remote workers --------------------------------------------------------


def _remote(*extra: str):
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(TIMEOUT)
    port = server.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "tandem.worker", "--connect", f"127.0.0.1:{port}", *extra],
        stdin=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=ENV,
    )
    conn, _ = server.accept()
    server.close()
    conn.settimeout(TIMEOUT)
    return proc, conn, p.Reader(conn.makefile("rb")), p.Writer.for_socket(conn)


# --- policies ----------------------------------------------------------------

BOX_1 = {"type": "Box", "dtype": "float32", "shape": [1], "low": ["-inf"], "high": ["inf"]}
DISCRETE_3 = {"type": "Discrete", "dtype": "int64", "n": 3, "start": 0}


def make_policy(w: Worker, entry: str, observation_space=BOX_1, action_space=DISCRETE_3, **kwargs) -> p.Message:
    return w.request(
        p.POLICY,
        {
            "entry": entry,
            "kwargs": kwargs,
            "agent": "agent",
            "observation_space": observation_space,
            "action_space": action_space,
        },
    )


def act(w: Worker, value: float) -> p.Message:
    return w.request(p.ACT, {"observation": {"$array": 0}}, [np.array([value], dtype=np.float32)])


def test_a_policy_acts_resets_and_observes(fresh):
    ready = make_policy(fresh, "worker_envs:Mirror", offset=1)
    assert ready.kind == p.POLICY_READY, ready
    assert ready.header == {"description": "python worker_envs:Mirror", "observes": True}
    assert fresh.request(p.POLICY_RESET, {"seed": 2**64 - 1}).kind == p.POLICY_RESET_DONE
    reply = act(fresh, 1.2)
    assert reply.kind == p.ACTED and reply.header["action"] == 2
    observed = fresh.request(
        p.OBSERVE,
        {"observation": {"$array": 0}, "action": 2, "reward": "-inf", "feedback": 0.5, "done": False},
        [np.array([1.2], dtype=np.float32)],
    )
    assert observed.kind == p.OBSERVED, observed
    # An environment cannot be made while a policy is open.
    assert_error(fresh.make("gymnasium", "CartPole-v1"), "protocol", "while a policy is open")


def test_a_policy_that_raises_or_returns_garbage_is_an_exception_reply(fresh):
    assert make_policy(fresh, "worker_envs:Mirror", raise_in="act").kind == p.POLICY_READY
    header = assert_error(act(fresh, 0), "exception", "the policy gave up")
    assert header["exception"] == "RuntimeError"
    fresh.close_env()
    assert make_policy(fresh, "worker_envs:Mirror", raise_in="garbage").kind == p.POLICY_READY
    assert_error(act(fresh, 0), "exception", "act returned 'left'")
    fresh.close_env()
    assert make_policy(fresh, "worker_envs:Mirror", raise_in="observe").kind == p.POLICY_READY
    reply = fresh.request(
        p.OBSERVE,
        {"observation": {"$array": 0}, "action": 0, "reward": 1, "feedback": None, "done": True},
        [np.array([0], dtype=np.float32)],
    )
    assert_error(reply, "exception", "cannot learn from this")


def test_bad_policy_requests(fresh):
    assert_error(act(fresh, 0), "protocol", "act before policy")
    assert_error(make_policy(fresh, "worker_envs"), "protocol", "module:Factory")
    assert_error(make_policy(fresh, "worker_envs:no_act"), "unsupported", "has no act")
    assert_error(make_policy(fresh, "worker_envs:Nothing"), "unsupported", "has no Nothing")
    assert_error(make_policy(fresh, "no_such_module:Agent"), "exception", "No module named")
    assert_error(make_policy(fresh, "worker_envs:Mirror", action_space={"type": "Tuple"}), "protocol", "Tuple")
    assert make_policy(fresh, "worker_envs:Mirror").kind == p.POLICY_READY
    # The observation must fit the space.
    reply = fresh.request(p.ACT, {"observation": {"$array": 0}}, [np.zeros(3, dtype=np.float32)])
    assert_error(reply, "protocol", "3 values for a space of 1")
    assert_error(fresh.request(p.ACT, {"observation": 1}), "protocol", "refer to an array")


def test_space_json_round_trips_through_gymnasium():
    from tandem.worker.policies import space_from_json
    from tandem.worker.spaces import space_to_json

    for space in (
        gym.spaces.Discrete(4, start=-1),
        gym.spaces.MultiDiscrete([3, 5]),
        gym.spaces.Box(-np.inf, np.inf, (2, 3), np.float32),
        gym.spaces.Box(0, 255, (4, 4, 3), np.uint8),
        gym.spaces.Box(-5, 5, (2,), np.int64),
    ):
        assert space_from_json(space_to_json(space)) == space


def test_remote_worker_says_token_and_offers_and_serves_only_them():
    proc, conn, reader, writer = _remote(
        "--token", "s3cret", "--offer", "gymnasium:CartPole-v1", "--offer", "python:worker_envs:make_raising"
    )
    with conn:
        hello = reader.read()
        assert hello.kind == p.HELLO
        assert hello.header["protocol"] == 1
        assert hello.header["token"] == "s3cret"
        assert hello.header["offers"] == [
            {"source": "gymnasium", "target": "CartPole-v1"},
            {"source": "python", "target": "worker_envs:make_raising"},
        ]
        writer.send(p.WELCOME, {"protocol": 1})

        def request(kind, header):
            writer.send(kind, header)
            return reader.read()

        refused = request(p.MAKE, {"source": "gymnasium", "target": "MountainCar-v0", "kwargs": {}})
        assert_error(refused, "unsupported", "does not offer gymnasium:MountainCar-v0")
        made = request(p.MAKE, {"source": "gymnasium", "target": "CartPole-v1", "kwargs": {}})
        assert made.kind == p.MADE and made.header["max_episode_steps"] == 500
        env = gym.make("CartPole-v1")
        observation, _ = env.reset(seed=11)
        got = request(p.RESET, {"seed": 11})
        assert np.array_equal(resolve(got, got.header["observations"][0]), observation)
        got = request(p.STEP, {"actions": [0]})
        assert np.array_equal(resolve(got, got.header["observations"][0]), env.step(0)[0])
        assert resolve(got, got.header["frame"]).shape == (400, 600, 3)
        assert request(p.CLOSE, {}).kind == p.CLOSED
        conn.shutdown(socket.SHUT_WR)
        assert reader.read() is None
    assert proc.wait(TIMEOUT) == 0, proc.stderr.read().decode()


def test_remote_worker_refused_by_the_server():
    proc, conn, reader, writer = _remote("--token", "wrong", "--offer", "gymnasium:CartPole-v1")
    with conn:
        assert reader.read().header["token"] == "wrong"
        writer.send(p.ERROR, {"message": "wrong token"})
    assert proc.wait(TIMEOUT) == 1
    assert "wrong token" in proc.stderr.read().decode()


def test_remote_worker_needs_a_token_and_offers():
    for args in (["--connect", "127.0.0.1:9", "--offer", "gymnasium:CartPole-v1"], ["--connect", "127.0.0.1:9", "--token", "t"]):
        env = {k: v for k, v in ENV.items() if k != "TANDEM_WORKER_TOKEN"}
        done = subprocess.run([sys.executable, "-m", "tandem.worker", *args], env=env, capture_output=True, timeout=TIMEOUT)
        assert done.returncode == 2 and b"needs" in done.stderr


# --- the framing, in-process -----------------------------------------------------


def test_framing_round_trips_every_dtype():
    arrays = [np.arange(6, dtype=name).reshape(2, 3) for name in sorted(p.DTYPE_NAMES) if name != "bool"]
    arrays += [np.array([True, False]), np.array(5, np.int64), np.zeros((0, 3), np.float32)]
    arrays.append(np.arange(4, dtype=">i4"))  # big-endian in, little-endian on the wire
    arrays.append(np.arange(12, dtype=np.float64).reshape(3, 4)[:, ::2])  # not contiguous
    header = {"items": [{"$array": i} for i in range(len(arrays))], "text": "é"}
    raw = b"".join(bytes(memoryview(b).cast("B")) for b in p.encode(p.STEP, header, arrays))
    message = p.Reader(io.BufferedReader(io.BytesIO(raw + raw))).read()
    assert message.kind == p.STEP and message.header["text"] == "é"
    for ref, array in zip(message.header["items"], arrays):
        got = message.array(ref)
        assert got.shape == array.shape and np.array_equal(got, array)
        assert got.dtype == array.dtype.newbyteorder("=")


def test_writer_finishes_short_writes():
    sent = bytearray()

    def dribble(buffers):
        # Takes at most 3 bytes a call, as a signal-interrupted writev might.
        chunk = b"".join(bytes(memoryview(b).cast("B")) for b in buffers)[:3]
        sent.extend(chunk)
        return len(chunk)

    p.Writer(dribble).send(p.RESET_DONE, {"frame": {"$array": 0}}, [np.arange(10, dtype=np.uint8)])
    message = p.Reader(io.BufferedReader(io.BytesIO(bytes(sent)))).read()
    assert message.array(message.header["frame"]).tolist() == list(range(10))


def test_messages_over_the_limit_are_not_sent():
    with pytest.raises(p.CannotSend):
        p.encode(p.STEP_DONE, {}, [np.zeros(p.MAX_LENGTH, np.uint8)])
    with pytest.raises(p.CannotSend):
        p.encode(p.STEP_DONE, {}, [np.zeros(3, np.float16)])


def test_reduce_info_bounds_its_output():
    info = values.reduce_info({"list": list(range(100)), "text": "x", "inf": np.float64("-inf")})
    assert info["list"].startswith("[0, 1, 2") and len(info["list"]) <= values.MAX_REPR
    assert info["inf"] == "-inf"
    deep: dict = {}
    cursor = deep
    for _ in range(20):
        cursor["d"] = {}
        cursor = cursor["d"]
    assert isinstance(values.reduce_info({"deep": deep}), dict)
