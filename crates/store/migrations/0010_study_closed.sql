-- A researcher closed the study from the console (µs since the epoch, NULL
-- while open): new arrivals see that it has ended; participants already in
-- finish. Kept across restarts.
ALTER TABLE experiments ADD COLUMN closed_us INTEGER;
