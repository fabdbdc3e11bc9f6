-- Server-side sessions, owned by the store like every other table (before this, the
-- tower-sessions-sqlx-store crate created its own `tower_sessions` table at start-up).
-- `data` is the session's JSON; `expires_at` Unix milliseconds.
DROP TABLE IF EXISTS tower_sessions;

CREATE TABLE session (
    id          TEXT    PRIMARY KEY NOT NULL,
    data        TEXT    NOT NULL,
    expires_at  INTEGER NOT NULL
);

CREATE INDEX session_expires_at ON session (expires_at);
