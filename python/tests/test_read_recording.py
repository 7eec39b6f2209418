"""The README's Python decoder, and ``tandem.recording``, read what Tandem's recorder stores.

A real recording is made by the store's `obs_bytes` example: 3,000 real Atari
Breakout frames (testdata/atari) written through the recorder into SQLite, where
pixel observations are zstd-compressed XOR deltas against the previous step. The
decoder below is the README's, verbatim in substance; every frame must come back
exactly as in the fixture.
"""

from __future__ import annotations

import json
import os
import sqlite3
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import zstandard

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "python"))

from tandem.recording import Recording, decode_obs as package_decode_obs  # noqa: E402


def decode_obs(b: bytes, prev: np.ndarray | None = None) -> np.ndarray:
    tag, ndim = b[0], b[1]
    dtype = {1: "<f4", 2: "u1", 3: "<i8"}[tag & 0x0F]
    shape = struct.unpack_from(f"<{ndim}I", b, 2)
    payload = b[2 + 4 * ndim :]
    if tag & 0x10:
        payload = zstandard.ZstdDecompressor().decompress(payload)
    if tag & 0x20:
        assert prev is not None, "a delta needs the previous observation"
        payload = (np.frombuffer(payload, "u1") ^ np.frombuffer(prev.tobytes(), "u1")).tobytes()
    return np.frombuffer(payload, dtype).reshape(shape)


def load_fixture() -> tuple[np.ndarray, list[int]]:
    """The fixture's frames as `[n, h, w, 3]` and the indices where episodes start
    (format in testdata/atari/fixture.rs)."""
    data = (ROOT / "testdata/atari/breakout.frames").read_bytes()
    assert data[:8] == b"TNDPIX1\n"
    width, height, channels, count, meta_len = struct.unpack_from("<5I", data, 8)
    at = 28 + meta_len
    flags = data[at : at + count]
    raw = zstandard.ZstdDecompressor().decompress(data[at + count :], max_output_size=width * height * channels * count)
    frames = np.frombuffer(raw, "u1").reshape(count, height, width, channels)
    return frames, [i for i, f in enumerate(flags) if f & 1]


@pytest.fixture(scope="module")
def atari_db(tmp_path_factory) -> Path:
    db_path = tmp_path_factory.mktemp("atari") / "atari.db"
    subprocess.run(
        ["cargo", "run", "-q", "-p", "tandem-store", "--example", "obs_bytes", "--", "--keep", str(db_path)],
        cwd=ROOT,
        check=True,
        env=os.environ.copy(),
    )
    return db_path


def test_readme_decoder_reads_recorded_atari_frames(atari_db: Path) -> None:
    db = sqlite3.connect(atari_db)
    (spaces,) = db.execute("SELECT spaces FROM games").fetchone()
    json.loads(spaces)
    episodes = [row[0] for row in db.execute("SELECT id FROM episodes ORDER BY id")]
    fixture, starts = load_fixture()
    assert len(episodes) == len(starts)
    frames = 0
    deltas = 0
    for episode_id, start in zip(episodes, starts):
        (reset,) = db.execute(
            "SELECT reset_obs FROM episode_agents WHERE episode_id = ? AND agent = 0", (episode_id,)
        ).fetchone()
        prev = decode_obs(reset)
        assert prev.shape == (210, 160, 3) and prev.dtype == np.uint8
        assert np.array_equal(prev, fixture[start])
        rows = db.execute("SELECT t, obs FROM steps WHERE episode_id = ? AND agent = 0 ORDER BY t", (episode_id,))
        for t, obs in rows:
            deltas += bool(obs[0] & 0x20)
            prev = decode_obs(obs, prev)
            assert np.array_equal(prev, fixture[start + t]), f"episode {episode_id} step {t}"
            frames += 1
    assert frames > 2000
    assert deltas > frames // 2, "most pixel frames are stored as deltas"


def test_recording_gives_whole_episodes_as_arrays(atari_db: Path) -> None:
    fixture, starts = load_fixture()
    with Recording(atari_db) as rec:
        infos = rec.episodes()
        assert len(infos) == len(starts)
        spaces = rec.spaces(infos[0]["game_id"])
        assert all("observation" in s and "action" in s for s in spaces.values())
        for info, start in zip(infos, starts):
            episode = rec.episode(info["id"])
            (agent,) = episode.agents.values()
            n = len(agent.actions)
            assert agent.observations.shape == (n + 1, 210, 160, 3)
            assert np.array_equal(agent.observations, fixture[start : start + n + 1])
            assert agent.rewards.shape == agent.terminations.shape == agent.truncations.shape == (n,)
            assert len(agent.actors) == len(agent.sources) == n


def test_recording_refuses_what_it_cannot_read(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no Tandem recording"):
        Recording(tmp_path / "missing.db")
    with pytest.raises(ValueError, match="needs the previous one"):
        package_decode_obs(bytes([0x22, 1, 4, 0, 0, 0, 1, 2, 3, 4]))
    with pytest.raises(ValueError, match="unknown tag"):
        package_decode_obs(bytes([0x07, 0]))
