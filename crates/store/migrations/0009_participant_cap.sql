-- A cap on participants a researcher set from the console (NULL: none set
-- there, and the server's --max-participants applies). Kept across restarts.
ALTER TABLE experiments ADD COLUMN participant_cap INTEGER;
