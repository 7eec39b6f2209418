-- Timing exact to the frame: every input message a page sent (not only the
-- latest per tick, which is what `steps` keeps), when the page actually drew
-- each frame, and samples relating the page's clock to the server's.

-- One row per `input` message the server accepted. `tick` is the server tick
-- of the frame on screen when the keys changed; `client_ts` and `client_frame`
-- are the page's `performance.now()` (ms) and animation-frame counter then;
-- `server_us` is when the server read the message. `game_id`/`episode_id`
-- say where the keys went (NULL between games).
CREATE TABLE inputs (
    id             INTEGER PRIMARY KEY,
    participant_id INTEGER NOT NULL REFERENCES participants (id),
    game_id        INTEGER REFERENCES games (id),
    episode_id     INTEGER,
    seq            INTEGER NOT NULL,
    keys           TEXT NOT NULL,
    client_ts      REAL,
    client_frame   INTEGER,
    tick           INTEGER,
    server_us      INTEGER NOT NULL
);
CREATE INDEX inputs_participant ON inputs (participant_id);

-- When the page drew the frame of `tick` (`client_ts`, the page's clock, ms),
-- reported in batches; `server_us` is when the report arrived.
CREATE TABLE frame_displays (
    id             INTEGER PRIMARY KEY,
    participant_id INTEGER NOT NULL REFERENCES participants (id),
    game_id        INTEGER REFERENCES games (id),
    tick           INTEGER NOT NULL,
    client_ts      REAL NOT NULL,
    server_us      INTEGER NOT NULL
);
CREATE INDEX frame_displays_participant ON frame_displays (participant_id);

-- The server sends a probe and the page answers with its clock: `rtt_us` is
-- the round trip, `offset_us` what to add to a page time (in µs) to get the
-- server's, assuming the two halves of the trip took equally long.
CREATE TABLE clock_samples (
    id             INTEGER PRIMARY KEY,
    participant_id INTEGER NOT NULL REFERENCES participants (id),
    server_us      INTEGER NOT NULL,
    rtt_us         INTEGER NOT NULL,
    offset_us      INTEGER NOT NULL
);
CREATE INDEX clock_samples_participant ON clock_samples (participant_id);

-- The tick of the frame the server published after each step: what the page
-- showed of it, and what an input's `tick` refers to. NULL for steps recorded
-- before this column existed.
ALTER TABLE steps ADD COLUMN tick INTEGER;
