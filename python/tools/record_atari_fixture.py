"""Records real Atari frames as a compact test fixture for Tandem's benchmarks.

The pixel-encoding benchmarks (PNG on the wire, the observation codec in storage)
must run on real game frames, not noise: noise does not compress, and real
frames compress very well, so noise would make every codec look useless. This
script plays ``ALE/Breakout-v5`` from ``ale-py`` (its ROMs ship with it) with a
seeded random policy and writes every frame to one small file.

Choices, so the frames look like what a person in the browser would see:

- ``frameskip=1``: a person sees every emulator frame at 60 Hz, where an agent
  usually sees every 4th; the wire and the recorder handle every frame.
- ``repeat_action_probability=0.25``: the v5 default (sticky actions).
- The policy picks a uniformly random action and holds it for a uniformly random
  4 to 30 frames (67 to 500 ms at 60 Hz), as a person holds a key, rather than
  changing action every frame, which no human does.
- When an episode ends the env is reset and recording goes on: the frame after a
  reset is marked in the file, since a delta codec would start afresh there.

Deterministic given ``--seed`` (same ale-py, same zstandard, same bytes).

Run from the repository root (the exact command that wrote the committed file)::

    .venv/bin/pip install -r python/requirements-tools.txt
    .venv/bin/python python/tools/record_atari_fixture.py \
        --seed 0 --frames 3000 --out testdata/atari/breakout.frames

File format (all integers little-endian; read by ``testdata/atari/fixture.rs``)::

    8 bytes          magic b"TNDPIX1\\n"
    u32              width (160)
    u32              height (210)
    u32              channels (3, RGB)
    u32              frame count n
    u32              m, then m bytes of UTF-8 JSON: how the file was made
    n bytes          per frame flags: bit 0 set on the first frame of an episode
    rest             one zstd frame (with its content size) holding the n frames
                     back to back, each height x width x channels bytes, row-major

The frames are compressed as one stream so that zstd finds each frame's
repetitions in the previous one: that is what keeps 3,000 frames (302 MB raw)
down to about 0.2 MB.
"""

from __future__ import annotations

import argparse
import json
import struct
import sys
from pathlib import Path

import ale_py
import gymnasium as gym
import numpy as np
import zstandard

MAGIC = b"TNDPIX1\n"
ENV_ID = "ALE/Breakout-v5"
REPEAT_ACTION_PROBABILITY = 0.25
HOLD_FRAMES = (4, 30)
# High, since the file is written once and read many times; long-distance
# matching is unnecessary because every match is within the previous frame.
ZSTD_LEVEL = 19


def record(seed: int, frames: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Plays until ``frames`` frames are seen; returns them, their episode-start
    flags and the number of episodes begun."""
    gym.register_envs(ale_py)
    env = gym.make(
        ENV_ID,
        frameskip=1,
        repeat_action_probability=REPEAT_ACTION_PROBABILITY,
        obs_type="rgb",
    )
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    out = np.empty((frames, *obs.shape), dtype=np.uint8)
    flags = np.zeros(frames, dtype=np.uint8)
    out[0], flags[0] = obs, 1
    episodes, i = 1, 1
    action, hold = 0, 0
    while i < frames:
        if hold == 0:
            action = int(rng.integers(env.action_space.n))
            hold = int(rng.integers(HOLD_FRAMES[0], HOLD_FRAMES[1] + 1))
        hold -= 1
        obs, _, terminated, truncated, _ = env.step(action)
        out[i] = obs
        i += 1
        if (terminated or truncated) and i < frames:
            # The last frame of an episode is kept; the next is the reset one.
            obs, _ = env.reset()
            out[i], flags[i] = obs, 1
            episodes += 1
            i += 1
            hold = 0
    env.close()
    return out, flags, episodes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--frames", type=int, default=3000)
    parser.add_argument("--out", type=Path, default=Path("testdata/atari/breakout.frames"))
    args = parser.parse_args()

    frames, flags, episodes = record(args.seed, args.frames)
    n, height, width, channels = frames.shape
    meta = {
        "env": ENV_ID,
        "frameskip": 1,
        "repeat_action_probability": REPEAT_ACTION_PROBABILITY,
        "seed": args.seed,
        "policy": f"uniform random action held {HOLD_FRAMES[0]}-{HOLD_FRAMES[1]} frames",
        "episodes": episodes,
        "ale_py": ale_py.__version__,
        "zstd_level": ZSTD_LEVEL,
    }
    meta_bytes = json.dumps(meta, sort_keys=True).encode()
    raw = frames.tobytes()
    packed = zstandard.ZstdCompressor(level=ZSTD_LEVEL, write_content_size=True).compress(raw)

    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("wb") as f:
        f.write(MAGIC)
        f.write(struct.pack("<5I", width, height, channels, n, len(meta_bytes)))
        f.write(meta_bytes)
        f.write(flags.tobytes())
        f.write(packed)
    size = args.out.stat().st_size
    print(
        f"wrote {args.out}: {n} frames of {width}x{height}x{channels} from {ENV_ID} "
        f"(seed {args.seed}, {episodes} episode(s)), {len(raw) / 1e6:.1f} MB raw -> "
        f"{size / 1e6:.2f} MB ({size / n:.0f} bytes/frame)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
