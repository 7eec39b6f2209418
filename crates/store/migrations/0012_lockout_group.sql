-- Studies that share a lockout group: a Prolific or MTurk id that has started
-- any of them may not start another (NULL: the study stands alone). The
-- indexes find a person across studies (the unique ones lead with the study).
ALTER TABLE experiments ADD COLUMN lockout_group TEXT;
CREATE INDEX participants_by_prolific_pid ON participants (prolific_pid) WHERE prolific_pid IS NOT NULL;
CREATE INDEX participants_by_worker_id ON participants (worker_id) WHERE worker_id IS NOT NULL;
