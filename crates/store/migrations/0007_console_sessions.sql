-- Console logins. The browser holds a random token in an HttpOnly cookie; the
-- database holds only its SHA-256, so a copy of the database opens no
-- session. Each session has its own CSRF token, which every request that
-- changes something must carry, and a fixed end.
CREATE TABLE console_sessions (
    token_hash TEXT PRIMARY KEY NOT NULL,
    user_id    INTEGER NOT NULL REFERENCES console_users (id),
    csrf       TEXT NOT NULL,
    created_us INTEGER NOT NULL,
    expires_us INTEGER NOT NULL
);
CREATE INDEX console_sessions_user ON console_sessions (user_id);
