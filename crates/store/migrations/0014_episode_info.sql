-- The environment's info after a complete episode's last step (Gymnasium's
-- `info`, the first agent's; JSON), whose numbers are the game scene's
-- statistics on the dashboard. NULL when the environment reports none.
ALTER TABLE episodes ADD COLUMN final_info TEXT;
