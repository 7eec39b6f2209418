-- Multiplayer: lobby matches, human feedback beside the reward.

-- The scalar feedback a participant gave on this agent's step (TAMER-style:
-- the sum of the values of the feedback keys they pressed since the previous
-- step), recorded beside the environment's reward. NULL when none was given.
ALTER TABLE steps ADD COLUMN feedback REAL;

-- One row per group the lobby formed into a game.
CREATE TABLE matches (
    id            INTEGER PRIMARY KEY,
    game_id       INTEGER NOT NULL REFERENCES games (id),
    experiment_id TEXT NOT NULL REFERENCES experiments (id),
    scene_index   INTEGER NOT NULL,
    formed_us     INTEGER NOT NULL,
    -- 'full': enough humans arrived; 'human_timeout': the longest wait reached
    -- the scene's human_timeout_s and empty human seats went to their fallback.
    reason        TEXT NOT NULL,
    humans        INTEGER NOT NULL,
    -- Human seats given to their fallback policy at the start.
    filled        INTEGER NOT NULL
);
CREATE INDEX matches_game ON matches (game_id);

-- One row per participant per lobby visit: who waited, from when, for how
-- long, and how the wait ended.
CREATE TABLE lobby_waits (
    id             INTEGER PRIMARY KEY,
    participant_id INTEGER NOT NULL REFERENCES participants (id),
    experiment_id  TEXT NOT NULL REFERENCES experiments (id),
    scene_index    INTEGER NOT NULL,
    joined_us      INTEGER NOT NULL,
    left_us        INTEGER,
    -- 'matched' (match_id says where), 'left' (closed the tab), 'no_partner'
    -- (human_timeout_s passed and the empty seats have no fallback), or NULL
    -- while waiting.
    outcome        TEXT,
    match_id       INTEGER REFERENCES matches (id),
    -- The agent index the participant was seated as.
    agent          INTEGER
);
CREATE INDEX lobby_waits_participant ON lobby_waits (participant_id);
