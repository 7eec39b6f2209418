"""Reading a Tandem recording (the SQLite file a server writes) in Python.

::

    from tandem.recording import Recording

    with Recording("tandem.db") as rec:
        for info in rec.episodes(outcome="complete"):
            episode = rec.episode(info["id"])
            agent = episode.agents["agent_0"]   # by agent name, as the game's spaces name it
            agent.observations   # [steps + 1, *shape]: the reset observation first
            agent.actions        # [steps, ...]
            agent.rewards, agent.terminations, agent.truncations   # [steps]
            agent.actors, agent.sources   # who chose each action, and how
        answers = rec.responses()       # a pandas DataFrame, one row per answer

The file is opened read-only, so a running server's recording can be read
while it records (SQLite's WAL lets readers and the writer proceed together).
Observations are decoded from the store's codec (``crates/store/src/
obs_codec.rs``): dtype, shape, zstd compression and XOR deltas against the
same agent's previous observation. Needs numpy and zstandard; ``responses``
needs pandas (``pip install "tandem-rl[reader]"``).
"""

from __future__ import annotations

import json
import sqlite3
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

_DTYPES = {1: np.dtype("<f4"), 2: np.dtype("u1"), 3: np.dtype("<i8")}
_COMPRESSED = 0x10
_DELTA = 0x20


def decode_obs(blob: bytes, previous: np.ndarray | None = None) -> np.ndarray:
    """One stored observation; ``previous`` is the same agent's observation
    before it, which a delta needs."""
    if len(blob) < 2:
        raise ValueError("an observation blob needs at least two bytes")
    tag, ndim = blob[0], blob[1]
    dtype = _DTYPES.get(tag & 0x0F)
    if dtype is None or tag & 0xC0:
        raise ValueError(f"an observation with an unknown tag {tag:#04x}")
    shape = struct.unpack_from(f"<{ndim}I", blob, 2)
    payload: bytes | np.ndarray = blob[2 + 4 * ndim :]
    if tag & _COMPRESSED:
        import zstandard

        payload = zstandard.ZstdDecompressor().decompress(payload)
    if tag & _DELTA:
        if previous is None:
            raise ValueError("a delta observation needs the previous one")
        payload = np.frombuffer(payload, "u1") ^ np.frombuffer(previous.tobytes(), "u1")
    return np.frombuffer(payload, dtype).reshape(shape).copy()


@dataclass
class AgentData:
    """One agent's side of an episode, as arrays over its steps."""

    name: str
    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    terminations: np.ndarray
    truncations: np.ndarray
    #: ``participant:<id>``, ``policy:<name>`` or ``nobody``, per step.
    actors: list[str]
    #: ``keys``, ``default``, ``policy``, ``fallback`` or ``correction``, per step.
    sources: list[str]
    #: The participant's feedback per step, NaN where none was given.
    feedback: np.ndarray
    #: Server time of each step, microseconds since the Unix epoch.
    server_us: np.ndarray
    #: The tick of the frame shown after each step (-1 where not recorded),
    #: which the ``inputs`` and ``frame_displays`` tables refer to.
    ticks: np.ndarray


@dataclass
class Episode:
    id: int
    game_id: int
    index: int
    seed: int
    env_id: str
    outcome: str | None
    reason: str | None
    agents: dict[str, AgentData] = field(default_factory=dict)


def _stack(values: list[np.ndarray], what: str) -> np.ndarray:
    shapes = {v.shape for v in values}
    if len(shapes) > 1:
        raise ValueError(f"{what} change shape within the episode: {sorted(shapes)}")
    return np.stack(values)


class Recording:
    """A recording, opened read-only."""

    def __init__(self, path: str | Path):
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"there is no Tandem recording at {path}")
        self.db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        self.db.row_factory = sqlite3.Row

    def __enter__(self) -> Recording:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        self.db.close()

    def episodes(self, outcome: str | None = None, scene: str | None = None) -> list[dict[str, Any]]:
        """Every episode (``outcome``: ``complete`` or ``interrupted`` to
        filter; ``scene``: a game scene's id), in recording order."""
        sql = """SELECT e.id, e.game_id, e.idx AS "index", e.seed, e.env_id, e.steps,
                        e.outcome, e.reason, e.total_return, e.started_us, e.ended_us,
                        g.scene_id
                 FROM episodes e JOIN games g ON g.id = e.game_id WHERE 1 = 1"""
        args: list[Any] = []
        if outcome is not None:
            sql += " AND e.outcome = ?"
            args.append(outcome)
        if scene is not None:
            sql += " AND g.scene_id = ?"
            args.append(scene)
        rows = self.db.execute(sql + " ORDER BY e.id", args).fetchall()
        return [dict(row) | {"seed": int(row["seed"]) & (2**64 - 1)} for row in rows]

    def spaces(self, game_id: int) -> dict[str, Any]:
        """Each agent's observation and action space of a game, in Minari's
        JSON form (load with ``minari.serialization.deserialize_space``)."""
        row = self.db.execute("SELECT spaces FROM games WHERE id = ?", (game_id,)).fetchone()
        if row is None:
            raise KeyError(f"no game {game_id}")
        return json.loads(row["spaces"])

    def episode(self, episode_id: int) -> Episode:
        """One episode with every agent's observations, actions and outcomes as arrays."""
        row = self.db.execute(
            "SELECT id, game_id, idx, seed, env_id, outcome, reason FROM episodes WHERE id = ?",
            (episode_id,),
        ).fetchone()
        if row is None:
            raise KeyError(f"no episode {episode_id}")
        episode = Episode(
            id=row["id"],
            game_id=row["game_id"],
            index=row["idx"],
            seed=int(row["seed"]) & (2**64 - 1),
            env_id=row["env_id"],
            outcome=row["outcome"],
            reason=row["reason"],
        )
        agents = self.db.execute(
            "SELECT agent, agent_name, reset_obs FROM episode_agents WHERE episode_id = ? ORDER BY agent",
            (episode_id,),
        ).fetchall()
        for agent in agents:
            episode.agents[agent["agent_name"]] = self._agent(episode_id, agent)
        return episode

    def _agent(self, episode_id: int, agent: sqlite3.Row) -> AgentData:
        previous = decode_obs(agent["reset_obs"])
        observations = [previous]
        actions, rewards, terminated, truncated = [], [], [], []
        actors, sources, feedback, server_us, ticks = [], [], [], [], []
        rows = self.db.execute(
            """SELECT t, obs, action, reward, terminated, truncated, actor, source, feedback, server_us, tick
               FROM steps WHERE episode_id = ? AND agent = ? ORDER BY t""",
            (episode_id, agent["agent"]),
        )
        for expected, step in enumerate(rows, start=1):
            if step["t"] != expected:
                raise ValueError(f"episode {episode_id}: step {expected} is missing")
            previous = decode_obs(step["obs"], previous)
            observations.append(previous)
            actions.append(json.loads(step["action"]))
            rewards.append(step["reward"])
            terminated.append(bool(step["terminated"]))
            truncated.append(bool(step["truncated"]))
            actors.append(step["actor"])
            sources.append(step["source"])
            feedback.append(np.nan if step["feedback"] is None else step["feedback"])
            server_us.append(step["server_us"])
            ticks.append(-1 if step["tick"] is None else step["tick"])
        return AgentData(
            name=agent["agent_name"],
            observations=_stack(observations, "observations"),
            actions=np.asarray(actions),
            rewards=np.asarray(rewards, dtype=np.float64),
            terminations=np.asarray(terminated, dtype=bool),
            truncations=np.asarray(truncated, dtype=bool),
            actors=actors,
            sources=sources,
            feedback=np.asarray(feedback, dtype=np.float64),
            server_us=np.asarray(server_us, dtype=np.int64),
            ticks=np.asarray(ticks, dtype=np.int64),
        )

    def responses(self, latest_only: bool = True) -> Any:
        """Survey answers as a pandas DataFrame: the participant's public id
        and recruiting ids, the scene, the question, the answer (decoded from
        JSON) and when it was given. An answer given twice counts once, the
        later, unless ``latest_only`` is false."""
        import pandas as pd

        rows = self.db.execute(
            """SELECT r.id, p.public_id AS participant, p.prolific_pid, p.worker_id,
                      r.scene_id, r.question_id, r.answer, r.at_us
               FROM responses r JOIN participants p ON p.id = r.participant_id
               ORDER BY r.id"""
        ).fetchall()
        frame = pd.DataFrame([dict(r) for r in rows], columns=[
            "id", "participant", "prolific_pid", "worker_id", "scene_id", "question_id", "answer", "at_us"
        ])
        frame["answer"] = [json.loads(a) for a in frame["answer"]]
        if latest_only and len(frame):
            frame = frame.drop_duplicates(["participant", "scene_id", "question_id"], keep="last")
        return frame.drop(columns="id").reset_index(drop=True)
