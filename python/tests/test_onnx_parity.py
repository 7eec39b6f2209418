"""Parity between tract (Tandem's ONNX runtime, in Rust) and onnxruntime.

The models are rebuilt with ``python/tools/make_onnx_models.py`` into a
temporary folder, run on fresh random inputs by onnxruntime and by the Rust
example ``onnx_eval`` (crates/policy-onnx/examples), and compared within
``TOLERANCE``. Other cases check that the committed models and their expected
outputs in ``testdata/onnx`` are what the tool makes and what onnxruntime
computes, since the Rust tests hold tract to those files.

The ``onnx_eval`` binary is ``$TANDEM_ONNX_EVAL`` if set (used as is);
otherwise it is built with ``cargo build`` (a no-op when up to date, so a
stale binary is never used) and found from cargo's own report of where it put
it, which follows ``CARGO_TARGET_DIR``. If cargo is not on the path, an
existing ``$CARGO_TARGET_DIR/debug/examples/onnx_eval`` or
``target/debug/examples/onnx_eval`` is used.

Run from anywhere: ``pytest python/tests``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import onnx
import onnxruntime as ort
import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "python" / "tools"))

import make_onnx_models as tool  # noqa: E402

# tract and onnxruntime both compute in f32, in different orders.
TOLERANCE = 1e-4


def _existing_binary() -> Path | None:
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    candidates = (target, REPO / "target")
    for candidate in (t / "debug" / "examples" / "onnx_eval" for t in candidates):
        if candidate.is_file():
            return candidate
    return None


@pytest.fixture(scope="session")
def onnx_eval() -> Path:
    """The Rust ``onnx_eval`` example binary."""
    if given := os.environ.get("TANDEM_ONNX_EVAL"):
        return Path(given)
    if shutil.which("cargo") is None:
        found = _existing_binary()
        assert found is not None, "no cargo to build onnx_eval, and no built binary"
        return found
    proc = subprocess.run(
        [
            "cargo", "build", "-q", "-p", "tandem-policy-onnx", "--example", "onnx_eval",
            "--message-format=json",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    for line in proc.stdout.splitlines():
        message = json.loads(line)
        if message.get("target", {}).get("name") == "onnx_eval" and message.get("executable"):
            return Path(message["executable"])
    raise AssertionError("cargo built onnx_eval but did not say where")


def tract_outputs(binary: Path, model: Path, inputs: np.ndarray) -> np.ndarray:
    request = {"inputs": [x.ravel().tolist() for x in inputs], "shape": list(inputs.shape[1:])}
    proc = subprocess.run(
        [str(binary), str(model)],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return np.asarray(json.loads(proc.stdout)["outputs"], dtype=np.float64)


def fresh_inputs(name: str, rng: np.random.Generator) -> np.ndarray:
    """Inputs unlike the committed ones: full-precision floats, several scales.

    Scales stay moderate because the tolerance is absolute: outputs in the
    hundreds differ by a unit in the last place, about 3e-5 there.
    """
    if name == "cartpole_mlp":
        scale = rng.choice([0.05, 1.0, 3.0], size=(64, 1))
        return (rng.normal(size=(64, 4)) * scale).astype(np.float32)
    return rng.random(size=(3, 4, 84, 84), dtype=np.float32)


@pytest.mark.parametrize("name", sorted(tool.MODELS))
def test_tract_matches_onnxruntime(name: str, onnx_eval: Path, tmp_path: Path) -> None:
    model = tool.MODELS[name].build()
    path = tmp_path / f"{name}.onnx"
    path.write_bytes(model.SerializeToString())
    inputs = fresh_inputs(name, np.random.default_rng(12345))
    want = tool.run_onnxruntime(model, inputs).astype(np.float64)
    got = tract_outputs(onnx_eval, path, inputs)
    assert got.shape == want.shape
    assert np.max(np.abs(got - want)) < TOLERANCE


@pytest.mark.parametrize("name", sorted(tool.MODELS))
def test_committed_model_is_what_the_tool_builds(name: str) -> None:
    committed = onnx.load(REPO / tool.MODELS[name].path)
    assert committed == tool.MODELS[name].build(), (
        f"{tool.MODELS[name].path} differs from what make_onnx_models.py builds; rerun it"
    )


@pytest.mark.parametrize("name", sorted(tool.MODELS))
def test_committed_expected_outputs_match_onnxruntime(name: str) -> None:
    spec = tool.MODELS[name]
    expected = json.loads((REPO / "testdata" / "onnx" / f"{name}.json").read_text())
    assert tuple(expected["shape"]) == spec.shape
    inputs = np.asarray(expected["inputs"], dtype=np.float32).reshape(-1, *spec.shape)
    outputs = tool.run_onnxruntime(REPO / spec.path, inputs)
    assert np.max(np.abs(outputs - np.asarray(expected["outputs"]))) < 1e-6


def test_cartpole_mlp_balances_in_gymnasium() -> None:
    """The example model is a real policy: greedy play lasts all 500 steps."""
    path = REPO / tool.MODELS["cartpole_mlp"].path
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    env = gym.make("CartPole-v1")
    for seed in range(3):
        obs, _ = env.reset(seed=seed)
        steps, done = 0, False
        while not done:
            logits = session.run(None, {"obs": obs[None]})[0]
            obs, _, terminated, truncated, _ = env.step(int(np.argmax(logits[0])))
            steps, done = steps + 1, terminated or truncated
        assert steps == 500, f"seed {seed}: fell after {steps} steps"
