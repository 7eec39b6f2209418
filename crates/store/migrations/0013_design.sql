-- Study design: the between-subject condition each participant was assigned
-- (NULL in a study without conditions) and the scenes they are shown, in
-- order, as a JSON array of scene ids (their plan; NULL for participants
-- recorded before plans existed, who see the file's scenes in order). The
-- index serves the per-condition counts that balance assignment.
ALTER TABLE participants ADD COLUMN condition TEXT;
ALTER TABLE participants ADD COLUMN scene_plan TEXT;
CREATE INDEX participants_condition ON participants (experiment_id, condition);
