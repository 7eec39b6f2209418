"""Parity between Tandem's built-in envs and the real Gymnasium ones.

Each case starts Gymnasium (through ``gymnasium.make``, so ``TimeLimit`` applies)
and the Rust example ``trajectory`` (through ``cargo run``) from the same seed or
the same exact state, applies the same actions, and compares every observation
within ``TOLERANCE`` plus every reward and termination/truncation flag exactly.
Action sequences that come from a policy are computed on Gymnasium's side and
replayed verbatim in Rust, so both see identical inputs.

Run from anywhere: ``pytest python/tests``. ``CARGO_TARGET_DIR`` is inherited.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
TOLERANCE = 1e-5
CARGO = ["cargo", "run", "-q", "-p", "tandem-envs", "--example", "trajectory"]

Policy = Callable[[np.ndarray], int]


@pytest.fixture(scope="session", autouse=True)
def built_example() -> None:
    """Builds the example once, so a cold build does not count against a case."""
    subprocess.run(
        ["cargo", "build", "-q", "-p", "tandem-envs", "--example", "trajectory"],
        cwd=REPO,
        check=True,
        timeout=900,
    )


def rust_trajectory(request: dict[str, Any]) -> dict[str, Any]:
    proc = subprocess.run(
        CARGO,
        cwd=REPO,
        input=json.dumps(request),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def gym_trajectory(
    env_id: str,
    *,
    seed: int,
    state: Sequence[float] | None,
    actions: Sequence[int] | Policy,
    max_steps: int = 1000,
) -> dict[str, Any]:
    """Gymnasium's side, in the Rust example's output form, plus the actions it took."""
    env = gym.make(env_id)
    obs, _ = env.reset(seed=seed)
    if state is not None:
        env.unwrapped.state = np.array(state, dtype=np.float64)
        obs = np.array(state, dtype=np.float32)
    out: dict[str, Any] = {
        "initial": obs.astype(np.float64).tolist(),
        "states": [],
        "rewards": [],
        "terminated": [],
        "truncated": [],
        "actions": [],
    }
    fixed = None if callable(actions) else list(actions)
    for i in range(len(fixed) if fixed is not None else max_steps):
        action = fixed[i] if fixed is not None else int(actions(obs))
        obs, reward, terminated, truncated, _ = env.step(action)
        out["actions"].append(action)
        out["states"].append(obs.astype(np.float64).tolist())
        out["rewards"].append(float(reward))
        out["terminated"].append(bool(terminated))
        out["truncated"].append(bool(truncated))
        if terminated or truncated:
            break
    env.close()
    return out


def pseudo_random(n: int, choices: int, salt: int) -> list[int]:
    """A fixed action pattern (a 64-bit LCG's high bits), the same on every run."""
    x = salt
    actions = []
    for _ in range(n):
        x = (x * 6364136223846793005 + 1442695040888963407) % 2**64
        actions.append((x >> 33) % choices)
    return actions


def balance(obs: np.ndarray) -> int:
    """Keeps the pole up long enough to be truncated at 500 steps."""
    x, x_dot, theta, theta_dot = (float(v) for v in obs)
    return int(0.1 * x + 0.5 * x_dot + 10.0 * theta + 2.0 * theta_dot > 0.0)


def pump(obs: np.ndarray) -> int:
    """Rocks the car in the direction it moves, which reaches the flag."""
    return 2 if float(obs[1]) >= 0.0 else 0


CASES = [
    # (id, seed, state, actions or policy)
    ("CartPole-v1", 0, [0.0, 0.0, 0.0, 0.0], pseudo_random(200, 2, 1)),
    ("CartPole-v1", 0, [0.01, -0.02, 0.03, -0.04], pseudo_random(200, 2, 2)),
    ("CartPole-v1", 0, [-1.0, 0.5, -0.1, 0.8], pseudo_random(200, 2, 3)),
    ("CartPole-v1", 0, [0.0, 0.0, 0.2, 0.0], [1] * 50),
    ("CartPole-v1", 0, [2.0, 1.5, 0.0, 0.0], [1] * 50),
    ("CartPole-v1", 0, [0.02, 0.0, -0.01, 0.0], balance),
    ("CartPole-v1", 11, None, balance),
    ("MountainCar-v0", 0, [-0.5, 0.0], pseudo_random(250, 3, 4)),
    ("MountainCar-v0", 0, [-1.1, -0.06], pseudo_random(250, 3, 5)),
    ("MountainCar-v0", 0, [0.3, 0.05], [2] * 50),
    ("MountainCar-v0", 0, [-0.5, 0.0], pump),
    ("MountainCar-v0", 3, None, pump),
    ("MountainCar-v0", 0, [-1.15, -0.07], [0] * 20 + [1] * 230),
]


def case_id(case: tuple[Any, ...]) -> str:
    env_id, seed, state, actions = case
    how = actions.__name__ if callable(actions) else f"{len(actions)}-actions"
    start = f"state={state}" if state is not None else f"seed={seed}"
    return f"{env_id}-{start}-{how}"


@pytest.mark.parametrize("case", CASES, ids=[case_id(c) for c in CASES])
def test_trajectories_match_gymnasium(case: tuple[Any, ...]) -> None:
    """Rust and Gymnasium agree step by step, including where episodes end."""
    env_id, seed, state, actions = case
    expected = gym_trajectory(env_id, seed=seed, state=state, actions=actions)
    request: dict[str, Any] = {"env": env_id, "seed": seed, "actions": expected["actions"]}
    if state is not None:
        request["state"] = state
    got = rust_trajectory(request)

    assert got["initial"] == expected["initial"]
    assert len(got["states"]) == len(expected["states"])
    error = np.max(np.abs(np.array(got["states"]) - np.array(expected["states"])))
    assert error <= TOLERANCE, f"max abs error {error}"
    assert got["rewards"] == expected["rewards"]
    assert got["terminated"] == expected["terminated"]
    assert got["truncated"] == expected["truncated"]


def test_cases_cover_every_ending() -> None:
    """The cases above include terminations and truncations of both envs."""
    endings = set()
    for env_id, seed, state, actions in CASES:
        run = gym_trajectory(env_id, seed=seed, state=state, actions=actions)
        endings.add((env_id, "terminated", run["terminated"][-1]))
        endings.add((env_id, "truncated", run["truncated"][-1]))
    for env_id in ("CartPole-v1", "MountainCar-v0"):
        assert (env_id, "terminated", True) in endings
        assert (env_id, "truncated", True) in endings


@pytest.mark.parametrize("env_id", ["CartPole-v1", "MountainCar-v0"])
@pytest.mark.parametrize("seed", [0, 1, 42, 12345, 2**40 + 5, 2**64 - 1])
def test_reset_seeds_match_gymnasium(env_id: str, seed: int) -> None:
    """`reset(seed)` starts exactly where Gymnasium's `reset(seed=seed)` does."""
    expected, _ = gym.make(env_id).reset(seed=seed)
    got = rust_trajectory({"env": env_id, "seed": seed, "actions": []})
    assert got["initial"] == expected.astype(np.float64).tolist()
