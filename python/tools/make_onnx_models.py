"""Builds the small ONNX models Tandem's policy tests and examples use, and the
expected outputs the Rust tests compare tract against.

Two models, written with ``onnx.helper`` (no training framework needed):

- ``examples/models/cartpole_mlp.onnx``: ``obs`` [batch, 4] → Gemm 16 → Relu →
  Gemm 2 → ``logits`` [batch, 2], a CartPole-v1 policy. Two hidden units are set
  by hand to ``relu(±s)`` with ``s = 0.5 x + x_dot + 10 theta + 2 theta_dot``
  and feed "push right" and "push left", so greedy play balances the pole (a
  linear rule that lasts all 500 steps on Gymnasium's seeds); the other 14 units
  are seeded random with small output weights, so the network is a real MLP
  rather than a disguised linear rule, yet still plays well.
- ``testdata/onnx/pixel_cnn.onnx``: ``obs`` [batch, 4, 84, 84] (four stacked
  84 × 84 grayscale frames, as Atari preprocessing makes them) → Conv 8 × 8,
  stride 4, 8 channels → Relu → Flatten → Gemm → ``logits`` [batch, 4]
  (Breakout's action count). Seeded random weights, scaled so outputs are of
  order one. About 60 KB.

Then it runs onnxruntime on a few seeded inputs and writes
``testdata/onnx/<model>.json`` as ``{"inputs": [[...flat...], ...], "shape":
[...one input, no batch axis...], "outputs": [[...], ...]}`` for
``crates/policy-onnx/tests``. The pixel inputs take only the values 0, 0.5 and
1 so that file stays small (≈ 150 KB); the parity test in
``python/tests/test_onnx_parity.py`` covers arbitrary values.

Everything is seeded: the same onnx and numpy versions write the same bytes.
Run from the repository root (the exact command that wrote the committed files)::

    .venv/bin/pip install -r python/requirements-test.txt
    .venv/bin/python python/tools/make_onnx_models.py
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

REPO = Path(__file__).resolve().parents[2]

# Opset 17 and IR version 8 are old enough for every runtime Tandem meets
# (tract, onnxruntime) and new enough for everything used here.
OPSET = 17
IR_VERSION = 8


def _model(
    name: str,
    doc: str,
    input_shape: list[int | str],
    output_shape: list[int | str],
    nodes: list[onnx.NodeProto],
    weights: dict[str, np.ndarray],
) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes,
        name,
        inputs=[helper.make_tensor_value_info("obs", TensorProto.FLOAT, input_shape)],
        outputs=[helper.make_tensor_value_info("logits", TensorProto.FLOAT, output_shape)],
        initializer=[
            numpy_helper.from_array(w.astype(np.float32), name=k) for k, w in weights.items()
        ],
    )
    model = helper.make_model(
        graph,
        producer_name="tandem make_onnx_models.py",
        opset_imports=[helper.make_opsetid("", OPSET)],
        doc_string=doc,
    )
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model, full_check=True)
    return model


def cartpole_mlp(seed: int = 0) -> onnx.ModelProto:
    """The CartPole MLP; see the module docstring for how it is set."""
    rng = np.random.default_rng(seed)
    hidden = 16
    w1 = rng.normal(0.0, 0.5, size=(hidden, 4))
    b1 = rng.normal(0.0, 0.1, size=hidden)
    w2 = rng.normal(0.0, 0.02, size=(2, hidden))
    b2 = np.zeros(2)
    # The balancing rule: unit 0 is relu(s), unit 1 is relu(-s).
    rule = np.array([0.5, 1.0, 10.0, 2.0])
    w1[0], w1[1] = rule, -rule
    b1[0] = b1[1] = 0.0
    w2[:, :2] = [[0.0, 1.0], [1.0, 0.0]]  # logit 0 = left, logit 1 = right
    nodes = [
        helper.make_node("Gemm", ["obs", "w1", "b1"], ["h"], transB=1),
        helper.make_node("Relu", ["h"], ["a"]),
        helper.make_node("Gemm", ["a", "w2", "b2"], ["logits"], transB=1),
    ]
    return _model(
        "cartpole_mlp",
        "CartPole-v1 policy: obs [batch, 4] -> logits [batch, 2] (0 = push left, 1 = right)",
        ["batch", 4],
        ["batch", 2],
        nodes,
        {"w1": w1, "b1": b1, "w2": w2, "b2": b2},
    )


def pixel_cnn(seed: int = 1) -> onnx.ModelProto:
    """The pixel CNN; see the module docstring."""
    rng = np.random.default_rng(seed)
    channels, kernel, stride, frames, size, actions = 8, 8, 4, 4, 84, 4
    side = (size - kernel) // stride + 1  # 20
    features = channels * side * side
    fan_in = frames * kernel * kernel
    weights = {
        "conv_w": rng.normal(0.0, fan_in**-0.5, size=(channels, frames, kernel, kernel)),
        "conv_b": rng.normal(0.0, 0.1, size=channels),
        "fc_w": rng.normal(0.0, features**-0.5, size=(actions, features)),
        "fc_b": rng.normal(0.0, 0.1, size=actions),
    }
    nodes = [
        helper.make_node(
            "Conv",
            ["obs", "conv_w", "conv_b"],
            ["conv"],
            kernel_shape=[kernel, kernel],
            strides=[stride, stride],
        ),
        helper.make_node("Relu", ["conv"], ["act"]),
        helper.make_node("Flatten", ["act"], ["flat"], axis=1),
        helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["logits"], transB=1),
    ]
    return _model(
        "pixel_cnn",
        "Atari-style policy: 4 stacked 84x84 grayscale frames -> 4 logits",
        ["batch", frames, size, size],
        ["batch", actions],
        nodes,
        weights,
    )


def cartpole_inputs(rng: np.random.Generator, n: int) -> np.ndarray:
    """CartPole-like observations, some well outside the usual range."""
    scale = np.array([2.4, 2.0, 0.25, 2.5], dtype=np.float32)
    return (rng.normal(size=(n, 4)).astype(np.float32) * scale).astype(np.float32)


def pixel_inputs(rng: np.random.Generator, n: int) -> np.ndarray:
    """Stacked frames with values 0, 0.5 or 1 (short to write as JSON)."""
    return (rng.integers(0, 3, size=(n, 4, 84, 84)) / 2).astype(np.float32)


@dataclass(frozen=True)
class Spec:
    """One model: how to build it, where it goes, and its test inputs."""

    build: Callable[[], onnx.ModelProto]
    path: str
    shape: tuple[int, ...]
    inputs: Callable[[np.random.Generator, int], np.ndarray]
    count: int


MODELS: dict[str, Spec] = {
    "cartpole_mlp": Spec(
        cartpole_mlp, "examples/models/cartpole_mlp.onnx", (4,), cartpole_inputs, 8
    ),
    "pixel_cnn": Spec(
        pixel_cnn, "testdata/onnx/pixel_cnn.onnx", (4, 84, 84), pixel_inputs, 2
    ),
}


def run_onnxruntime(model: onnx.ModelProto | Path, inputs: np.ndarray) -> np.ndarray:
    """The model's first output for a batch of inputs, on onnxruntime's CPU."""
    source = model.SerializeToString() if isinstance(model, onnx.ModelProto) else str(model)
    session = ort.InferenceSession(source, providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: inputs})[0]


def _compact(values: np.ndarray) -> list[float | int]:
    # Whole numbers as JSON integers ("0" rather than "0.0"): a third smaller.
    return [int(v) if float(v).is_integer() else float(v) for v in values.ravel()]


def expected_json(inputs: np.ndarray, outputs: np.ndarray) -> str:
    """The ``{"inputs", "shape", "outputs"}`` document for one model."""
    doc = {
        "inputs": [_compact(x) for x in inputs],
        "shape": list(inputs.shape[1:]),
        "outputs": [[float(v) for v in y.ravel()] for y in outputs],
    }
    return json.dumps(doc, separators=(",", ":")) + "\n"


def write_all(root: Path, seed: int = 0) -> dict[str, Path]:
    """Writes every model and its expected outputs under ``root``; returns the
    model paths by name."""
    paths = {}
    for i, (name, spec) in enumerate(MODELS.items()):
        model = spec.build()
        path = root / spec.path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(model.SerializeToString())
        inputs = spec.inputs(np.random.default_rng(seed + i), spec.count)
        outputs = run_onnxruntime(model, inputs)
        expected = root / "testdata" / "onnx" / f"{name}.json"
        expected.parent.mkdir(parents=True, exist_ok=True)
        expected.write_text(expected_json(inputs, outputs))
        paths[name] = path
        print(f"wrote {path} ({path.stat().st_size} bytes) and {expected}")
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=REPO, help="where to write (repo root)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the test inputs")
    args = parser.parse_args()
    write_all(args.root, args.seed)


if __name__ == "__main__":
    main()
