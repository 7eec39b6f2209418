"""Environments that fail on purpose, for the worker fault tests.

Each is a ``python:`` factory (``fault_envs:<name>``) for a tiny Gymnasium
environment that behaves until its third step and then fails its own way:
the process exits, the step hangs, it raises, or it writes garbage into the
worker's protocol stream.
"""

import os
import stat
import sys
import time

import gymnasium
import numpy as np


class _Tiny(gymnasium.Env):
    metadata = {"render_modes": ["rgb_array"], "render_fps": 30}

    def __init__(self, fail, render_mode=None):
        self.observation_space = gymnasium.spaces.Box(-1.0, 1.0, (4,), np.float32)
        self.action_space = gymnasium.spaces.Discrete(2)
        self.render_mode = render_mode
        self._fail = fail
        self._steps = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self._steps = 0
        return np.zeros(4, np.float32), {}

    def step(self, action):
        self._steps += 1
        if self._steps == 3:
            self._fail()
        return np.full(4, 0.5, np.float32), 1.0, False, False, {}

    def render(self):
        return np.zeros((8, 8, 3), np.uint8)


def _exit():
    print("fault_envs: exiting on purpose", file=sys.stderr, flush=True)
    os._exit(3)


def _hang():
    time.sleep(60)


def _raise():
    raise ValueError("the pole broke on purpose")


def _garbage():
    # The protocol's output is a private copy of the worker's stdout: a
    # write-only pipe other than stderr.
    stderr = os.fstat(2).st_ino
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd < 3:
            continue
        try:
            info = os.fstat(fd)
            flags = os.get_blocking(fd), os.O_ACCMODE & __import__("fcntl").fcntl(fd, 3)
        except OSError:
            continue
        if stat.S_ISFIFO(info.st_mode) and flags[1] == os.O_WRONLY and info.st_ino != stderr:
            os.write(fd, b"\xff\xfe garbage, not a message" * 4)
    time.sleep(60)


def _noisy():
    # Bytes that are not UTF-8, and a line far longer than the server keeps:
    # the server must go on draining stderr, or the next print would fail.
    os.write(2, b"\xff\xfe not utf-8\n")
    os.write(2, b"x" * 100_000)
    os.write(2, b"\n")


class _Noisy(_Tiny):
    def step(self, action):
        _noisy()
        print("a print after the noise", flush=True)
        return super().step(action)


def noisy(render_mode=None):
    return _Noisy(lambda: None, render_mode)


def exiting(render_mode=None):
    return _Tiny(_exit, render_mode)


def hanging(render_mode=None):
    return _Tiny(_hang, render_mode)


def raising(render_mode=None):
    return _Tiny(_raise, render_mode)


def garbage(render_mode=None):
    return _Tiny(_garbage, render_mode)


def healthy(render_mode=None):
    return _Tiny(lambda: None, render_mode)


class _Counting(_Tiny):
    """Ends after five steps; its info counts them (a statistic to average)."""

    def step(self, action):
        self._steps += 1
        info = {"bricks": self._steps, "lives": 3, "note": "not a number"}
        return np.full(4, 0.5, np.float32), 1.0, self._steps == 5, False, info


def counting(render_mode=None):
    return _Counting(lambda: None, render_mode)
