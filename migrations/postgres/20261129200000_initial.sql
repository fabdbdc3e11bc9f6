-- The whole schema on PostgreSQL, equal to what the SQLite migrations build up to: times are
-- milliseconds since the epoch (BIGINT), ids are never reused (identity columns), deleting a
-- person deletes their identities, operations and sessions.

CREATE TABLE user_profile (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    first_name      TEXT    NOT NULL,
    last_name       TEXT    NOT NULL,
    display_name    TEXT,
    email           TEXT,
    email_verified  BOOLEAN NOT NULL DEFAULT FALSE,
    created_at      BIGINT  NOT NULL,
    updated_at      BIGINT  NOT NULL
);
-- `link_by_verified_email` looks people up by address, ASCII case aside.
CREATE INDEX user_profile_email_lower ON user_profile (lower(email));

CREATE TABLE user_identity (
    id                BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_profile_id   BIGINT NOT NULL REFERENCES user_profile (id) ON DELETE CASCADE,
    provider          TEXT   NOT NULL,
    provider_user_id  TEXT   NOT NULL,
    issuer            TEXT,
    created_at        BIGINT NOT NULL,
    last_login_at     BIGINT NOT NULL,
    UNIQUE (provider, provider_user_id)
);
CREATE INDEX user_identity_user_profile_id ON user_identity (user_profile_id);

CREATE TABLE async_operation_status (
    id    BIGINT PRIMARY KEY,
    code  TEXT   NOT NULL UNIQUE
);
INSERT INTO async_operation_status (id, code) VALUES (1, 'pending'), (2, 'ok'), (3, 'error');

CREATE TABLE async_operation (
    id                         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    async_operation_status_id  BIGINT NOT NULL REFERENCES async_operation_status (id),
    user_profile_id            BIGINT REFERENCES user_profile (id) ON DELETE CASCADE,
    link_user_profile_id       BIGINT REFERENCES user_profile (id) ON DELETE CASCADE,
    provider                   TEXT   NOT NULL,
    error                      TEXT,
    created_at                 BIGINT NOT NULL,
    updated_at                 BIGINT NOT NULL,
    consumed_at                BIGINT
);
CREATE INDEX async_operation_status_created
    ON async_operation (async_operation_status_id, created_at);
CREATE INDEX async_operation_user_profile_id ON async_operation (user_profile_id);
CREATE INDEX async_operation_link_user_profile_id ON async_operation (link_user_profile_id);

CREATE TABLE session (
    id          TEXT   PRIMARY KEY,
    data        TEXT   NOT NULL,
    expires_at  BIGINT NOT NULL,
    user_id     BIGINT REFERENCES user_profile (id) ON DELETE CASCADE
);
CREATE INDEX session_expires_at ON session (expires_at);
CREATE INDEX session_user_id ON session (user_id);

CREATE TABLE deletion_request (
    id                 BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    confirmation_code  TEXT    NOT NULL UNIQUE,
    provider           TEXT    NOT NULL,
    identity_deleted   BOOLEAN NOT NULL,
    profile_deleted    BOOLEAN NOT NULL,
    created_at         BIGINT  NOT NULL
);
