"""Exporting a Tandem recording to the formats researchers load in one line.

``python -m tandem.export --format minari|parquet DB OUT`` (``tandem export``
runs it with the server's copy of this package):

- ``minari``: one Minari dataset per game scene and agent, named
  ``tandem/<experiment>-<scene>-<agent>-v0``, written under ``OUT`` (load it
  with ``MINARI_DATASETS_PATH=OUT`` and ``minari.load_dataset(name)``). Each
  complete episode is an episode: observations (steps + 1), actions, rewards,
  terminations, truncations, and infos with who chose each action
  (``actor``), how (``source``), the participant's ``feedback`` (NaN when
  none), the server time (``server_us``) and the tick of the frame shown
  after the step (``tick``); the first info belongs to the reset. Interrupted episodes are left out: they did not end.
- ``parquet``: a table per kind of record, ``OUT/<table>.parquet``: steps
  (without observations: those are in the Minari datasets), inputs (every
  input message), frame_displays (when the page drew each frame),
  clock_samples, episodes, participants (with their condition and scene
  plan, without their secret token), responses, events, games, scene_events,
  lobby_waits and matches, with the scene and participant on each step. pandas, polars and DuckDB read them directly.

Filters: ``--scene`` (repeatable), ``--completed`` (only participants who
finished), ``--since``/``--until`` (episodes, steps and answers of that time
range, ISO 8601 in UTC or microseconds since the epoch).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from tandem.recording import Recording

EXIT_OK = 0
EXIT_USAGE = 2


class Progress:
    """A progress bar on standard error (a line now and then when it is not a terminal)."""

    def __init__(self, total: int, what: str):
        self.total = max(total, 1)
        self.what = what
        self.done = 0
        self.tty = sys.stderr.isatty()
        self.last = 0.0

    def step(self, n: int = 1) -> None:
        self.done += n
        now = time.monotonic()
        if now - self.last < (0.1 if self.tty else 5.0) and self.done < self.total:
            return
        self.last = now
        filled = int(30 * self.done / self.total)
        line = f"[{'#' * filled}{' ' * (30 - filled)}] {self.done}/{self.total} {self.what}"
        print(("\r" + line) if self.tty else line, end="" if self.tty else "\n", file=sys.stderr, flush=True)

    def finish(self) -> None:
        if self.tty:
            print(file=sys.stderr, flush=True)


def parse_time(text: str) -> int:
    """Microseconds since the Unix epoch from ISO 8601 (UTC unless it says) or a number."""
    if re.fullmatch(r"\d+", text):
        return int(text)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is neither ISO 8601 nor microseconds since the epoch") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return int(moment.timestamp() * 1_000_000)


class Filter:
    """Which episodes, participants and answers an export keeps."""

    def __init__(self, scenes: list[str], completed: bool, since: int | None, until: int | None):
        self.scenes = scenes
        self.completed = completed
        self.since = since
        self.until = until

    def sql(self, time_column: str, participant_column: str | None, scene_column: str | None) -> tuple[str, list]:
        """A WHERE clause (starting with AND) and its arguments."""
        clause, args = "", []
        if self.scenes and scene_column:
            clause += f" AND {scene_column} IN ({','.join('?' * len(self.scenes))})"
            args += self.scenes
        if self.completed and participant_column:
            clause += f" AND {participant_column} IN (SELECT id FROM participants WHERE finished_us IS NOT NULL)"
        if self.since is not None:
            clause += f" AND {time_column} >= ?"
            args.append(self.since)
        if self.until is not None:
            clause += f" AND {time_column} < ?"
            args.append(self.until)
        return clause, args


# The participant an episode belongs to, for the --completed filter: the
# first human seat of its game (`e` is the episode).
_EPISODE_PARTICIPANT = (
    "(SELECT gs.participant_id FROM game_seats gs"
    " WHERE gs.game_id = e.game_id AND gs.participant_id IS NOT NULL LIMIT 1)"
)


def _name_part(text: str) -> str:
    """A piece of a Minari dataset name: letters, digits, `_` and `-` only."""
    return re.sub(r"[^A-Za-z0-9_]+", "_", text).strip("_") or "x"


def _episode_ids(rec: Recording, flt: Filter) -> list[dict[str, Any]]:
    # An episode belongs to a participant through its game's seats.
    clause, args = flt.sql(
        "e.started_us",
        _EPISODE_PARTICIPANT,
        "g.scene_id",
    )
    rows = rec.db.execute(
        f"""SELECT e.id, e.game_id, e.seed, g.scene_id, g.experiment_id
            FROM episodes e JOIN games g ON g.id = e.game_id
            WHERE e.outcome = 'complete' AND e.steps > 0 {clause} ORDER BY e.id""",
        args,
    ).fetchall()
    return [dict(r) for r in rows]


def _actions(actions: np.ndarray, space: Any) -> np.ndarray:
    from gymnasium import spaces

    if isinstance(space, spaces.Discrete):
        return actions.astype(np.int64).reshape(-1)
    if isinstance(space, spaces.MultiDiscrete):
        return actions.astype(np.int64).reshape((-1, *space.shape))
    return actions.astype(space.dtype).reshape((-1, *space.shape))


def _observations(observations: np.ndarray, space: Any) -> np.ndarray:
    from gymnasium import spaces

    if isinstance(space, spaces.Discrete):
        return observations.astype(np.int64).reshape(-1)
    return observations.astype(space.dtype).reshape((-1, *space.shape))


def export_minari(rec: Recording, out: Path, flt: Filter) -> list[str]:
    """Writes the datasets; returns their names."""
    os.environ["MINARI_DATASETS_PATH"] = str(out)
    import minari
    from minari.data_collector import EpisodeBuffer
    from minari.serialization import deserialize_space

    episodes = _episode_ids(rec, flt)
    progress = Progress(len(episodes), "episodes")
    buffers: dict[str, list] = {}
    spaces_of: dict[str, tuple[Any, Any]] = {}
    for info in episodes:
        episode = rec.episode(info["id"])
        game_spaces = rec.spaces(info["game_id"])
        for name, agent in episode.agents.items():
            dataset = f"tandem/{_name_part(info['experiment_id'])}-{_name_part(info['scene_id'])}-{_name_part(name)}-v0"
            space_json = game_spaces[name]
            observation_space = deserialize_space(json.dumps(space_json["observation"]))
            action_space = deserialize_space(json.dumps(space_json["action"]))
            spaces_of.setdefault(dataset, (observation_space, action_space))
            n = len(agent.actions)
            text = lambda values: np.array([b""] + [v.encode() for v in values], dtype="S")  # noqa: E731
            seed = episode.seed if episode.seed < 2**63 else None
            buffers.setdefault(dataset, []).append(
                EpisodeBuffer(
                    id=len(buffers.get(dataset, [])),
                    seed=seed,
                    observations=_observations(agent.observations, observation_space),
                    actions=_actions(agent.actions, action_space),
                    rewards=list(agent.rewards),
                    terminations=list(agent.terminations),
                    truncations=list(agent.truncations),
                    infos={
                        "actor": text(agent.actors),
                        "source": text(agent.sources),
                        "feedback": np.concatenate([[math.nan], agent.feedback]),
                        "server_us": np.concatenate([[0], agent.server_us]).astype(np.int64),
                        "tick": np.concatenate([[-1], agent.ticks]).astype(np.int64),
                        "tandem_episode_id": np.full(n + 1, episode.id, dtype=np.int64),
                    },
                )
            )
        progress.step()
    progress.finish()
    names = []
    for dataset, episode_buffers in buffers.items():
        observation_space, action_space = spaces_of[dataset]
        if dataset in minari.list_local_datasets():
            minari.delete_dataset(dataset)
        minari.create_dataset_from_buffers(
            dataset,
            episode_buffers,
            observation_space=observation_space,
            action_space=action_space,
            algorithm_name="tandem: participants and AI policies",
            author="Tandem",
            description="Exported by tandem export from a Tandem recording; infos hold who chose "
            "each action (actor), how (source), the participant's feedback and the server time.",
            data_format="hdf5",
        )
        names.append(dataset)
    return names


_TABLES = {
    # table: (query, time column, participant column, scene column)
    "steps": (
        """SELECT s.episode_id, e.game_id, g.scene_id, e.idx AS episode_index, s.t, s.agent,
                  a.agent_name, s.action, s.actor, s.source, s.keys, s.reward, s.terminated,
                  s.truncated, s.feedback, s.input_seq, s.client_frame, s.client_ts, s.server_us, s.tick,
                  (SELECT p.public_id FROM game_seats gs JOIN participants p ON p.id = gs.participant_id
                   WHERE gs.game_id = e.game_id AND gs.agent = s.agent) AS participant
           FROM steps s JOIN episodes e ON e.id = s.episode_id JOIN games g ON g.id = e.game_id
           JOIN episode_agents a ON a.episode_id = s.episode_id AND a.agent = s.agent WHERE 1 = 1""",
        "s.server_us",
        "(SELECT gs.participant_id FROM game_seats gs WHERE gs.game_id = e.game_id AND gs.agent = s.agent)",
        "g.scene_id",
    ),
    "inputs": (
        """SELECT p.public_id AS participant, i.game_id, g.scene_id, i.episode_id, i.seq, i.keys,
                  i.client_ts, i.client_frame, i.tick, i.server_us
           FROM inputs i JOIN participants p ON p.id = i.participant_id
           LEFT JOIN games g ON g.id = i.game_id WHERE 1 = 1""",
        "i.server_us",
        "i.participant_id",
        "g.scene_id",
    ),
    "frame_displays": (
        """SELECT p.public_id AS participant, d.game_id, g.scene_id, d.tick, d.client_ts, d.server_us
           FROM frame_displays d JOIN participants p ON p.id = d.participant_id
           LEFT JOIN games g ON g.id = d.game_id WHERE 1 = 1""",
        "d.server_us",
        "d.participant_id",
        "g.scene_id",
    ),
    "clock_samples": (
        """SELECT p.public_id AS participant, c.server_us, c.rtt_us, c.offset_us
           FROM clock_samples c JOIN participants p ON p.id = c.participant_id WHERE 1 = 1""",
        "c.server_us",
        "c.participant_id",
        None,
    ),
    "episodes": (
        """SELECT e.id, e.game_id, g.scene_id, e.idx AS episode_index, e.seed, e.env_id, e.env_version,
                  e.started_us, e.ended_us, e.steps, e.outcome, e.reason, e.total_return,
                  {final_info}
           FROM episodes e JOIN games g ON g.id = e.game_id WHERE 1 = 1""",
        "e.started_us",
        _EPISODE_PARTICIPANT,
        "g.scene_id",
    ),
    "participants": (
        """SELECT public_id AS participant, experiment_id, prolific_pid, study_id, session_id, worker_id,
                  assignment_id, hit_id, user_agent, created_us, scene_index, finished_us, completion_code,
                  {design}
           FROM participants WHERE 1 = 1""",
        "created_us",
        "id",
        None,
    ),
    "responses": (
        """SELECT p.public_id AS participant, r.scene_index, r.scene_id, r.question_id, r.answer, r.at_us
           FROM responses r JOIN participants p ON p.id = r.participant_id WHERE 1 = 1""",
        "r.at_us",
        "r.participant_id",
        "r.scene_id",
    ),
    "events": (
        """SELECT ev.id, ev.at_us, p.public_id AS participant, ev.game_id, ev.kind, ev.detail
           FROM events ev LEFT JOIN participants p ON p.id = ev.participant_id WHERE 1 = 1""",
        "ev.at_us",
        None,
        None,
    ),
    "scene_events": (
        """SELECT p.public_id AS participant, se.scene_index, se.scene_id, se.event, se.at_us
           FROM scene_events se JOIN participants p ON p.id = se.participant_id WHERE 1 = 1""",
        "se.at_us",
        "se.participant_id",
        "se.scene_id",
    ),
    "games": (
        """SELECT id, experiment_id, scene_index, scene_id, env_id, env_version, spaces, fps, config,
                  started_us, ended_us, end_reason FROM games WHERE 1 = 1""",
        "started_us",
        None,
        "scene_id",
    ),
    "lobby_waits": (
        """SELECT lw.id, p.public_id AS participant, lw.experiment_id, lw.scene_index, lw.joined_us,
                  lw.left_us, lw.outcome, lw.match_id, lw.agent
           FROM lobby_waits lw JOIN participants p ON p.id = lw.participant_id WHERE 1 = 1""",
        "lw.joined_us",
        "lw.participant_id",
        None,
    ),
    "matches": (
        "SELECT id, game_id, experiment_id, scene_index, formed_us, reason, humans, filled FROM matches WHERE 1 = 1",
        "formed_us",
        None,
        None,
    ),
}


def export_parquet(rec: Recording, out: Path, flt: Filter) -> list[str]:
    """Writes a Parquet file per table; returns their paths."""
    import pandas as pd

    out.mkdir(parents=True, exist_ok=True)
    progress = Progress(len(_TABLES), "tables")
    written = []
    # Recordings made before study designs and episode infos existed have
    # neither column.
    columns = {row[1] for row in rec.db.execute("PRAGMA table_info(participants)")}
    design = (
        "condition, scene_plan"
        if {"condition", "scene_plan"} <= columns
        else "NULL AS condition, NULL AS scene_plan"
    )
    episode_columns = {row[1] for row in rec.db.execute("PRAGMA table_info(episodes)")}
    final_info = "e.final_info" if "final_info" in episode_columns else "NULL AS final_info"
    for table, (query, time_column, participant_column, scene_column) in _TABLES.items():
        query = query.replace("{design}", design).replace("{final_info}", final_info)
        clause, args = flt.sql(time_column, participant_column, scene_column)
        frame = pd.read_sql_query(query + clause, rec.db, params=args)
        for flag in ("terminated", "truncated"):
            if flag in frame:
                frame[flag] = frame[flag].astype(bool)
        if "seed" in frame:
            # SQLite holds the u64 seed's bits as a signed integer.
            frame["seed"] = frame["seed"].astype("int64").astype("uint64")
        path = out / f"{table}.parquet"
        frame.to_parquet(path, index=False)
        written.append(str(path))
        progress.step()
    progress.finish()
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="tandem export", description="Exports a Tandem recording to Minari datasets or Parquet tables."
    )
    parser.add_argument("--format", choices=("minari", "parquet"), required=True)
    parser.add_argument("db", type=Path, help="the recording (a SQLite file)")
    parser.add_argument("out", type=Path, help="the folder to write into")
    parser.add_argument("--scene", action="append", default=[], help="only this game scene (repeatable)")
    parser.add_argument("--completed", action="store_true", help="only participants who finished the study")
    parser.add_argument("--since", type=parse_time, help="from this time (ISO 8601, UTC by default)")
    parser.add_argument("--until", type=parse_time, help="up to (not including) this time")
    args = parser.parse_args(argv)
    flt = Filter(args.scene, args.completed, args.since, args.until)
    try:
        rec = Recording(args.db)
    except FileNotFoundError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE
    with rec:
        if args.format == "minari":
            names = export_minari(rec, args.out, flt)
            for name in names:
                print(f"wrote Minari dataset {name} under {args.out}")
            if not names:
                print("no complete episodes matched: nothing written", file=sys.stderr)
        else:
            for path in export_parquet(rec, args.out, flt):
                print(f"wrote {path}")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
