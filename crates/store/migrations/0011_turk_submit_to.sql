-- MTurk's `turkSubmitTo` from the study link (an allowed origin only): where
-- the participant's page posts the assignment when they finish.
ALTER TABLE participants ADD COLUMN turk_submit_to TEXT;
