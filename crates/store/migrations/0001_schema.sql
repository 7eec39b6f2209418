-- Tandem's first schema.
--
-- Conventions: times are INTEGER microseconds since the Unix epoch (columns end in
-- `_us`); JSON is stored as TEXT; observations are BLOBs in the `obs_codec` format
-- (see crates/store/src/obs_codec.rs). Agents are numbered by their index in the
-- environment's spec; every per-agent row also carries the agent's name so a table
-- can be read on its own.

-- One row per experiment id. `config` is the experiment file text last loaded;
-- every distinct text ever loaded is kept in `experiment_configs`.
CREATE TABLE experiments (
    id            TEXT PRIMARY KEY NOT NULL,
    title         TEXT NOT NULL,
    config        TEXT NOT NULL,
    first_seen_us INTEGER NOT NULL,
    updated_us    INTEGER NOT NULL
);

-- The history of an experiment's file: researchers edit files between pilot and
-- study, and an analysis must know which text a participant ran under
-- (compare `first_seen_us` with `participants.created_us`).
CREATE TABLE experiment_configs (
    id            INTEGER PRIMARY KEY,
    experiment_id TEXT NOT NULL REFERENCES experiments (id),
    config        TEXT NOT NULL,
    first_seen_us INTEGER NOT NULL,
    UNIQUE (experiment_id, config)
);

CREATE TABLE participants (
    id               INTEGER PRIMARY KEY,
    -- The cookie secret: never shown, never logged.
    token            TEXT NOT NULL UNIQUE,
    -- Shown to the participant and the researcher.
    public_id        TEXT NOT NULL UNIQUE,
    experiment_id    TEXT NOT NULL REFERENCES experiments (id),
    prolific_pid     TEXT,
    study_id         TEXT,
    session_id       TEXT,
    worker_id        TEXT,
    assignment_id    TEXT,
    hit_id           TEXT,
    user_agent       TEXT,
    created_us       INTEGER NOT NULL,
    -- Where the participant stands now, and since when. `scene_entered_us` is NULL
    -- until the first scene is entered: that is what makes the first entry
    -- guardable like every later one.
    scene_index      INTEGER NOT NULL DEFAULT 0,
    scene_entered_us INTEGER,
    finished_us      INTEGER,
    completion_code  TEXT
);

-- A returning Prolific or MTurk id gets its participant back, so there is at most
-- one participant per external id and experiment; the unique index also settles
-- the race of two first requests arriving together.
CREATE UNIQUE INDEX participants_prolific ON participants (experiment_id, prolific_pid)
    WHERE prolific_pid IS NOT NULL;
CREATE UNIQUE INDEX participants_mturk ON participants (experiment_id, worker_id)
    WHERE worker_id IS NOT NULL;

CREATE TABLE scene_events (
    id             INTEGER PRIMARY KEY,
    participant_id INTEGER NOT NULL REFERENCES participants (id),
    scene_index    INTEGER NOT NULL,
    scene_id       TEXT NOT NULL,
    event          TEXT NOT NULL CHECK (event IN ('entered', 'left')),
    at_us          INTEGER NOT NULL
);
CREATE INDEX scene_events_participant ON scene_events (participant_id);

-- Append-only: a second submission of the same question is a second row, and the
-- latest (highest id) is the answer that counts.
CREATE TABLE responses (
    id             INTEGER PRIMARY KEY,
    participant_id INTEGER NOT NULL REFERENCES participants (id),
    scene_index    INTEGER NOT NULL,
    scene_id       TEXT NOT NULL,
    question_id    TEXT NOT NULL,
    answer         TEXT NOT NULL,
    at_us          INTEGER NOT NULL
);
CREATE INDEX responses_participant ON responses (participant_id);

CREATE TABLE games (
    id            INTEGER PRIMARY KEY,
    experiment_id TEXT NOT NULL REFERENCES experiments (id),
    scene_index   INTEGER NOT NULL,
    scene_id      TEXT NOT NULL,
    env_id        TEXT NOT NULL,
    env_version   INTEGER NOT NULL,
    -- {"<agent name>": {"observation": <space JSON>, "action": <space JSON>}, ...}
    spaces        TEXT NOT NULL,
    fps           INTEGER NOT NULL,
    -- The scene's game settings as resolved for this game (JSON).
    config        TEXT NOT NULL,
    started_us    INTEGER NOT NULL,
    ended_us      INTEGER,
    end_reason    TEXT
);

-- Who was given which seat when the game was created. Seats can change hands
-- during a game (an AI takes over from a participant who left); `steps.actor`
-- records who actually chose each action.
CREATE TABLE game_seats (
    game_id        INTEGER NOT NULL REFERENCES games (id),
    agent          INTEGER NOT NULL,
    agent_name     TEXT NOT NULL,
    participant_id INTEGER REFERENCES participants (id),
    policy         TEXT,
    PRIMARY KEY (game_id, agent)
);
CREATE INDEX game_seats_participant ON game_seats (participant_id);

CREATE TABLE episodes (
    id           INTEGER PRIMARY KEY,
    game_id      INTEGER NOT NULL REFERENCES games (id),
    idx          INTEGER NOT NULL,
    -- The u64 seed's bits, read as a signed 64-bit integer (SQLite has no u64).
    seed         INTEGER NOT NULL,
    env_id       TEXT NOT NULL,
    env_version  INTEGER NOT NULL,
    started_us   INTEGER NOT NULL,
    ended_us     INTEGER,
    steps        INTEGER,
    outcome      TEXT CHECK (outcome IN ('complete', 'interrupted')),
    reason       TEXT,
    -- The sum of every agent's return (per-agent returns are in episode_agents).
    total_return REAL,
    UNIQUE (game_id, idx)
);

CREATE TABLE episode_agents (
    episode_id     INTEGER NOT NULL REFERENCES episodes (id),
    agent          INTEGER NOT NULL,
    agent_name     TEXT NOT NULL,
    actor          TEXT NOT NULL,
    reset_obs      BLOB NOT NULL,
    episode_return REAL,
    PRIMARY KEY (episode_id, agent)
);

-- One row per agent per step. `t` is 1-based: step t's observation is the one
-- after the t-th action, and the observation before step 1 is
-- episode_agents.reset_obs.
--
-- A rowid table rather than WITHOUT ROWID: a WITHOUT ROWID table keeps whole rows
-- in its interior b-tree cells, which SQLite advises only for rows under ~200
-- bytes, and pixel observations are kilobytes. Steps arrive in key order, so the
-- primary-key index is appended to, not scattered.
CREATE TABLE steps (
    episode_id   INTEGER NOT NULL REFERENCES episodes (id),
    t            INTEGER NOT NULL,
    agent        INTEGER NOT NULL,
    action       TEXT NOT NULL,
    actor        TEXT NOT NULL,
    source       TEXT NOT NULL,
    keys         TEXT,
    reward       REAL NOT NULL,
    terminated   INTEGER NOT NULL,
    truncated    INTEGER NOT NULL,
    obs          BLOB NOT NULL,
    input_seq    INTEGER,
    client_frame INTEGER,
    client_ts    REAL,
    server_us    INTEGER NOT NULL,
    PRIMARY KEY (episode_id, t, agent)
);

CREATE TABLE events (
    id             INTEGER PRIMARY KEY,
    at_us          INTEGER NOT NULL,
    participant_id INTEGER REFERENCES participants (id),
    game_id        INTEGER REFERENCES games (id),
    kind           TEXT NOT NULL,
    detail         TEXT NOT NULL
);
CREATE INDEX events_participant ON events (participant_id);
CREATE INDEX events_game ON events (game_id);
