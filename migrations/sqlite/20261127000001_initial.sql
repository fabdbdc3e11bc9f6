-- Users, their provider identities and the asynchronous code exchanges.
-- Times are Unix epoch milliseconds (INTEGER), which SQLite and PostgreSQL (BIGINT) both sort
-- and compare natively.

CREATE TABLE user_profile (
    id          INTEGER PRIMARY KEY,
    first_name  TEXT    NOT NULL,
    last_name   TEXT    NOT NULL,
    email       TEXT,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);

-- One row per account at a provider. Facebook ids are app-scoped: accounts are keyed on them,
-- never on the email address.
CREATE TABLE user_identity (
    id                INTEGER PRIMARY KEY,
    user_profile_id   INTEGER NOT NULL REFERENCES user_profile (id) ON DELETE CASCADE,
    provider          TEXT    NOT NULL,
    provider_user_id  TEXT    NOT NULL,
    created_at        INTEGER NOT NULL,
    last_login_at     INTEGER NOT NULL,
    UNIQUE (provider, provider_user_id)
);

CREATE INDEX user_identity_user_profile_id ON user_identity (user_profile_id);

CREATE TABLE async_operation_status (
    id    INTEGER PRIMARY KEY,
    code  TEXT    NOT NULL UNIQUE
);

INSERT INTO async_operation_status (id, code) VALUES (1, 'pending'), (2, 'ok'), (3, 'error');

CREATE TABLE async_operation (
    id                         INTEGER PRIMARY KEY,
    async_operation_status_id  INTEGER NOT NULL REFERENCES async_operation_status (id),
    user_profile_id            INTEGER REFERENCES user_profile (id) ON DELETE CASCADE,
    provider                   TEXT    NOT NULL,
    error                      TEXT,
    created_at                 INTEGER NOT NULL,
    updated_at                 INTEGER NOT NULL
);

-- The start-up sweep and the hourly clean-up look operations up by status and age.
CREATE INDEX async_operation_status_created ON async_operation (async_operation_status_id, created_at);
CREATE INDEX async_operation_user_profile_id ON async_operation (user_profile_id);
