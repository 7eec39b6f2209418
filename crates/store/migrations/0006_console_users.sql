-- Researchers who may use the console. A password is kept only as its
-- argon2id hash (a PHC string with its own salt and parameters); there is no
-- default user and no default password: the first is added with
-- `tandem admin add-user NAME`.
CREATE TABLE console_users (
    id            INTEGER PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    created_us    INTEGER NOT NULL
);
