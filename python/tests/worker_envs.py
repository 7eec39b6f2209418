"""Small environments for test_worker.py, loaded by the worker by name.

Each one exercises one thing the worker must survive or convert: an
environment that raises, one that prints to stdout and reads stdin, one with
a Dict observation space and awkward infos, one whose keyboard mapping uses
every key format Gymnasium's ``play`` accepts, one that renders nothing, and
a two-agent PettingZoo parallel environment in which an agent leaves. The
module itself also has ``parallel_env``, so ``pettingzoo:worker_envs`` works.
"""

from __future__ import annotations

import os
import sys

import gymnasium as gym
import numpy as np
from gymnasium import spaces

# The worker must have moved stdout aside before importing this module.
print("worker_envs imported (this line must not reach the protocol stream)")


class Counter(gym.Env):
    """Counts steps; observation is the count, reward 1 per step."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(self, render_mode=None, fail_at=None, noisy=False, length=20, error=ValueError):
        self.render_mode = render_mode
        self.observation_space = spaces.Box(0, 1000, shape=(1,), dtype=np.float32)
        self.action_space = spaces.Discrete(3)
        self.fail_at = fail_at
        self.error = error
        self.noisy = noisy
        self.length = length
        self.count = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.count = int(self.np_random.integers(0, 10))
        if self.noisy:
            print("reset: printing to stdout")
            # Anything that reads stdin must not eat the protocol's bytes.
            assert sys.stdin.read() == ""
        return np.array([self.count], np.float32), {"start": self.count}

    def step(self, action):
        if self.noisy:
            print("step: printing to stdout", action)
            sys.stdout.flush()
            os.write(1, b"step: written straight to fd 1\n")
        self.count += 1
        if self.fail_at is not None and self.count >= self.fail_at:
            raise self.error(f"boom at count {self.count}")
        done = self.count >= self.length
        return np.array([self.count], np.float32), 1.0, done, False, {}

    def render(self):
        if self.render_mode != "rgb_array":
            return None
        frame = np.zeros((8, 12, 3), np.uint8)
        frame[:, : self.count % 12] = 255
        return frame


def make_raising(render_mode=None, fail_at=3):
    return Counter(render_mode=render_mode, fail_at=fail_at)


def make_broken_pipe(render_mode=None):
    """Raises BrokenPipeError in its third step, as an environment talking to a
    simulator whose pipe broke would: the environment's failure, not the server's."""
    return Counter(render_mode=render_mode, fail_at=3, error=BrokenPipeError)


def make_printing(render_mode=None):
    return Counter(render_mode=render_mode, noisy=True)


def make_silent(render_mode=None):
    """Ignores render_mode: the worker must report no frames."""
    return Counter(render_mode=None)


class DictObservations(gym.Env):
    """A Dict observation space (flattened by the worker), a Box action and messy infos."""

    metadata = {"render_modes": ["rgb_array"]}

    def __init__(self, render_mode=None):
        self.render_mode = render_mode
        self.observation_space = spaces.Dict(
            {"position": spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32), "mode": spaces.Discrete(3)}
        )
        self.action_space = spaces.Box(-1.0, 1.0, shape=(2, 1), dtype=np.float32)
        self.position = np.zeros(2, np.float32)

    def _observation(self):
        return {"position": self.position.copy(), "mode": int(self.position[0] > 0)}

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.position = self.np_random.uniform(-0.5, 0.5, 2).astype(np.float32)
        return self._observation(), {}

    def step(self, action):
        assert action.shape == (2, 1) and action.dtype == np.float32
        self.position = np.clip(self.position + action[:, 0], -1, 1)
        info = {
            "scalar": np.float32(0.5),
            "count": np.int64(7),
            "flag": np.bool_(True),
            "small": np.arange(3),
            "big": np.zeros((84, 84), np.float32),
            "nan": float("nan"),
            (1, 2): "tuple key",
            "object": object(),
            "nested": {"deep": [np.uint8(3), (1.5, None)]},
        }
        return self._observation(), float(action.sum()), False, False, info


def make_dict(render_mode=None):
    return DictObservations(render_mode)


class WithKeys(Counter):
    """A keyboard mapping in every format ``gymnasium.utils.play`` accepts."""

    def get_keys_to_action(self):
        return {
            (): 0,
            (ord(" "),): 1,
            ("a",): 2,
            (1073741906,): 1,  # pygame.K_UP
            (1073741904, ord("d")): 2,  # K_LEFT with d
            "ws": 0,
            (1073742049,): 1,  # pygame.K_LSHIFT: no browser name here, so left out
        }


def make_with_keys(render_mode=None):
    return WithKeys(render_mode=render_mode)


class BadActions(Counter):
    def __init__(self, render_mode=None):
        super().__init__(render_mode)
        self.action_space = spaces.Dict({"a": spaces.Discrete(2)})


def make_bad_actions(render_mode=None):
    return BadActions(render_mode)


def make_not_an_env(render_mode=None):
    return "not an environment"


class TwoAgents:
    """A PettingZoo parallel environment: "b" leaves after two steps, "a" after four."""

    metadata = {"render_modes": ["rgb_array"], "name": "two_agents_v0", "render_fps": 5}

    def __init__(self, render_mode=None):
        self.render_mode = render_mode
        self.possible_agents = ["a", "b"]
        self.agents = []
        self.t = 0

    def observation_space(self, agent):
        return spaces.Box(0, 10, shape=(2,), dtype=np.int32)

    def action_space(self, agent):
        return spaces.Discrete(2) if agent == "a" else spaces.MultiDiscrete([2, 3])

    def reset(self, seed=None, options=None):
        self.t = 0
        self.agents = list(self.possible_agents)
        observations = {a: np.array([0, i], np.int32) for i, a in enumerate(self.agents)}
        return observations, {a: {"seed": seed} for a in self.agents}

    def step(self, actions):
        assert set(actions) == set(self.agents), (actions, self.agents)
        self.t += 1
        observations = {a: np.array([self.t, i], np.int32) for i, a in enumerate(self.agents)}
        rewards = {
            a: float(actions[a]) if a == "a" else float(sum(actions[a])) for a in self.agents
        }
        terminations = {a: (a == "b" and self.t >= 2) or self.t >= 4 for a in self.agents}
        truncations = {a: False for a in self.agents}
        infos = {a: {} for a in self.agents}
        self.agents = [a for a in self.agents if not terminations[a]]
        return observations, rewards, terminations, truncations, infos

    def render(self):
        return np.full((4, 6, 3), self.t, np.uint8) if self.render_mode == "rgb_array" else None

    def close(self):
        pass


def parallel_env(render_mode=None):
    return TwoAgents(render_mode)


def make_parallel(render_mode=None):
    return TwoAgents(render_mode)


# --- policies ----------------------------------------------------------------


class Mirror:
    """A policy that acts the rounded first observation value (mod n) and keeps
    everything ``observe`` hands it, so tests can read it back through ``act``."""

    def __init__(self, observation_space, action_space, offset=0, raise_in=None):
        self.observation_space = observation_space
        self.action_space = action_space
        self.offset = offset
        self.raise_in = raise_in
        self.seeds = []
        self.seen = []

    def reset(self, seed):
        self.seeds.append(seed)

    def act(self, observation):
        if self.raise_in == "act":
            raise RuntimeError("the policy gave up")
        if self.raise_in == "garbage":
            return "left"
        assert isinstance(observation, np.ndarray), type(observation)
        assert observation.dtype == self.observation_space.dtype
        assert observation.shape == self.observation_space.shape
        return int(round(float(observation.reshape(-1)[0])) + self.offset) % self.action_space.n

    def observe(self, observation, action, reward, feedback, done):
        if self.raise_in == "observe":
            raise ValueError("cannot learn from this")
        self.seen.append((observation.tolist(), action, reward, feedback, done))


def no_act(observation_space, action_space):
    return object()


class ScreenImpostor(gym.Env):
    """Looks like ale-py's Atari environment with RGB observations (its
    module and ``_obs_type``), but its frame is not its observation: the
    worker must notice at reset and go back to rendering every step."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 60}

    def __init__(self, render_mode=None):
        self.render_mode = render_mode
        self._obs_type = "rgb"
        self.observation_space = spaces.Box(0, 255, shape=(4, 4, 3), dtype=np.uint8)
        self.action_space = spaces.Discrete(2)
        self.count = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.count = 0
        return np.zeros((4, 4, 3), np.uint8), {}

    def step(self, action):
        self.count += 1
        return np.full((4, 4, 3), self.count, np.uint8), 0.0, False, False, {}

    def render(self):
        return np.full((4, 4, 3), 200, np.uint8)


ScreenImpostor.__module__ = "ale_py.impostor"


def make_screen_impostor(render_mode=None):
    return ScreenImpostor(render_mode=render_mode)
