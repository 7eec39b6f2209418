-- Ids the database hands out in blocks (hi/lo), so that a recorder can number
-- episodes without a round trip per episode and several servers can share one
-- database: each reserves a block with one short UPDATE ... RETURNING and numbers
-- its episodes from it alone (crates/store/src/episode_ids.rs).

-- One row per kind of id. `next` is the first id not yet in any block; reserving
-- n ids moves it up by n, giving back an unused tail moves it down again, but
-- only if no block was reserved since.
CREATE TABLE id_blocks (
    name TEXT PRIMARY KEY NOT NULL,
    next INTEGER NOT NULL
);

-- A database created before this migration already holds episodes, numbered by
-- the recorder from MAX(id): the first block starts above them.
INSERT INTO id_blocks (name, next)
    SELECT 'episodes', COALESCE(MAX(id), 0) + 1 FROM episodes;
