-- Episode indices within a game are reserved in blocks before use, so that
-- an episode whose start a crash kept from the disk does not have its index
-- (and so, with a fixed scene seed, its seed) used again after the restart.
-- A clean stop gives the unused part of the block back.
ALTER TABLE games ADD COLUMN episode_idx_reserved INTEGER NOT NULL DEFAULT 0;

-- Games created before this column reserved nothing: their recorded episodes
-- are all there is.
UPDATE games SET episode_idx_reserved =
    (SELECT COALESCE(MAX(idx) + 1, 0) FROM episodes WHERE episodes.game_id = games.id);
