"""A two-agent PettingZoo parallel environment for the server's tests.

A runner and a chaser on a line of 11 cells; each moves left, stays or moves
right. The chaser is rewarded for catching the runner, the runner for every
step it stays free. Drawn as a 32x32 picture: the runner blue, the chaser red.
"""

import numpy as np
from gymnasium import spaces

try:
    from pettingzoo import ParallelEnv
except ImportError:  # the tests install pettingzoo; the module still imports
    ParallelEnv = object


class Duo(ParallelEnv):
    metadata = {"render_modes": ["rgb_array"], "name": "duo_v0", "render_fps": 30}

    def __init__(self, render_mode=None, length=200):
        self.render_mode = render_mode
        self.possible_agents = ["runner", "chaser"]
        self.agents = []
        self.length = length
        self.positions = {"runner": 7, "chaser": 3}
        self.t = 0

    def observation_space(self, agent):
        return spaces.Box(0.0, 10.0, shape=(2,), dtype=np.float32)

    def action_space(self, agent):
        return spaces.Discrete(3)

    def _observations(self):
        both = np.array([self.positions["runner"], self.positions["chaser"]], np.float32)
        return {a: both.copy() for a in self.agents}

    def reset(self, seed=None, options=None):
        rng = np.random.default_rng(seed)
        self.t = 0
        self.agents = list(self.possible_agents)
        self.positions = {"runner": int(rng.integers(6, 11)), "chaser": int(rng.integers(0, 5))}
        return self._observations(), {a: {} for a in self.agents}

    def step(self, actions):
        self.t += 1
        for agent, action in actions.items():
            self.positions[agent] = min(10, max(0, self.positions[agent] + int(action) - 1))
        caught = self.positions["runner"] == self.positions["chaser"]
        rewards = {"runner": -1.0 if caught else 0.1, "chaser": 1.0 if caught else 0.0}
        terminations = {a: caught for a in self.agents}
        truncations = {a: self.t >= self.length for a in self.agents}
        observations = self._observations()
        infos = {a: {"t": self.t} for a in self.agents}
        if caught or self.t >= self.length:
            self.agents = []
        return observations, rewards, terminations, truncations, infos

    def render(self):
        picture = np.full((32, 32, 3), 240, np.uint8)
        picture[12:20, 3 * self.positions["runner"] : 3 * self.positions["runner"] + 3] = (40, 90, 220)
        picture[20:28, 3 * self.positions["chaser"] : 3 * self.positions["chaser"] + 3] = (220, 50, 40)
        return picture

    def close(self):
        pass


def parallel_env(render_mode=None, length=200):
    return Duo(render_mode, length)
