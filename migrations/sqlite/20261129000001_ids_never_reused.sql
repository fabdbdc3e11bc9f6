-- Ids of people, identities and operations are never handed out twice.
--
-- A plain INTEGER PRIMARY KEY gives a new row max(id) + 1, so deleting the newest person
-- gave their id to the next one, and a browser still signed in as the deleted person was
-- signed in as the newcomer. AUTOINCREMENT remembers the largest id ever used
-- (sqlite_sequence) and never goes back.
--
-- SQLite cannot add AUTOINCREMENT to a table, so the three tables are rebuilt, keeping every
-- row and id. sqlx runs this in one transaction with foreign keys on, where dropping
-- user_profile would cascade into the tables that reference it: those are copied aside and
-- dropped first, so nothing references user_profile when it is dropped.
--
-- Also here, since async_operation is rebuilt anyway: `consumed_at`, set by the one /success
-- that signs the person in (one exchange, one signed-in session).

CREATE TABLE user_identity_keep AS SELECT * FROM user_identity;
CREATE TABLE async_operation_keep AS SELECT * FROM async_operation;
CREATE TABLE user_profile_keep AS SELECT * FROM user_profile;
DROP TABLE user_identity;
DROP TABLE async_operation;
DROP TABLE user_profile;

CREATE TABLE user_profile (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    first_name  TEXT    NOT NULL,
    last_name   TEXT    NOT NULL,
    email       TEXT,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
INSERT INTO user_profile (id, first_name, last_name, email, created_at, updated_at)
    SELECT id, first_name, last_name, email, created_at, updated_at FROM user_profile_keep;

-- One row per account at a provider. Facebook ids are app-scoped: accounts are keyed on them,
-- never on the email address.
CREATE TABLE user_identity (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    user_profile_id   INTEGER NOT NULL REFERENCES user_profile (id) ON DELETE CASCADE,
    provider          TEXT    NOT NULL,
    provider_user_id  TEXT    NOT NULL,
    created_at        INTEGER NOT NULL,
    last_login_at     INTEGER NOT NULL,
    UNIQUE (provider, provider_user_id)
);
INSERT INTO user_identity (id, user_profile_id, provider, provider_user_id, created_at, last_login_at)
    SELECT id, user_profile_id, provider, provider_user_id, created_at, last_login_at
    FROM user_identity_keep;
CREATE INDEX user_identity_user_profile_id ON user_identity (user_profile_id);

CREATE TABLE async_operation (
    id                         INTEGER PRIMARY KEY AUTOINCREMENT,
    async_operation_status_id  INTEGER NOT NULL REFERENCES async_operation_status (id),
    user_profile_id            INTEGER REFERENCES user_profile (id) ON DELETE CASCADE,
    provider                   TEXT    NOT NULL,
    error                      TEXT,
    created_at                 INTEGER NOT NULL,
    updated_at                 INTEGER NOT NULL,
    consumed_at                INTEGER
);
INSERT INTO async_operation
    (id, async_operation_status_id, user_profile_id, provider, error, created_at, updated_at)
    SELECT id, async_operation_status_id, user_profile_id, provider, error, created_at, updated_at
    FROM async_operation_keep;
CREATE INDEX async_operation_status_created ON async_operation (async_operation_status_id, created_at);
CREATE INDEX async_operation_user_profile_id ON async_operation (user_profile_id);

DROP TABLE user_identity_keep;
DROP TABLE async_operation_keep;
DROP TABLE user_profile_keep;

-- Who a session is signed in as, taken from its data by the store on every write, so that
-- deleting a person ends every session of theirs (by foreign key) and unlinking an identity
-- ends them in one statement.
ALTER TABLE session ADD COLUMN user_id INTEGER REFERENCES user_profile (id) ON DELETE CASCADE;
-- Sessions of people deleted before this migration still named them: they end now.
DELETE FROM session
    WHERE json_extract(data, '$.signed_in.user') IS NOT NULL
      AND json_extract(data, '$.signed_in.user') NOT IN (SELECT id FROM user_profile);
UPDATE session SET user_id = json_extract(data, '$.signed_in.user');
CREATE INDEX session_user_id ON session (user_id);
