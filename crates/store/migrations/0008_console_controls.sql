-- What researchers did from the console, each with their name: pausing
-- admissions, ending a game, closing a study.
CREATE TABLE console_audit (
    id        INTEGER PRIMARY KEY,
    at_us     INTEGER NOT NULL,
    user_name TEXT NOT NULL,
    action    TEXT NOT NULL,
    detail    TEXT NOT NULL
);

-- A researcher paused admissions: new arrivals see a "not taking
-- participants now" page; participants already in go on. Kept across restarts.
ALTER TABLE experiments ADD COLUMN admissions_paused INTEGER NOT NULL DEFAULT 0;
