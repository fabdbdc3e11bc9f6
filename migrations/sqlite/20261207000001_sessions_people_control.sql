-- Sessions people and operators control (issue 25).
--
-- Each sign-in keeps what "Where you're signed in" shows and what an issuer's logout names:
-- `device` (a short label read from the User-Agent at sign-in, never the header itself),
-- `last_seen_at` (Unix milliseconds, moved forward at most once an hour), and `provider_sid`
-- (the OpenID Connect issuer's session id, the ID token's `sid`, for back-channel logout).
ALTER TABLE session ADD COLUMN device TEXT;
ALTER TABLE session ADD COLUMN last_seen_at INTEGER;
ALTER TABLE session ADD COLUMN provider_sid TEXT;
UPDATE session SET last_seen_at = signed_in_at WHERE signed_in_at IS NOT NULL;
CREATE INDEX session_provider_sid ON session (provider, provider_sid);

-- The exchange hands the issuer's `sid` to `/success` with the rest of the sign-in.
ALTER TABLE async_operation ADD COLUMN provider_sid TEXT;

-- A person an operator blocked: every session ended, every sign-in refused until unblocked.
ALTER TABLE user_profile ADD COLUMN blocked_at INTEGER;
ALTER TABLE user_profile ADD COLUMN blocked_reason TEXT;

-- "Recent activity": sign-ins and refused sign-ins of a person, kept `audit.retention_days`.
CREATE TABLE sign_in_event (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    user_profile_id  INTEGER NOT NULL REFERENCES user_profile (id) ON DELETE CASCADE,
    outcome          TEXT    NOT NULL CHECK (outcome IN ('signed_in', 'refused')),
    provider         TEXT    NOT NULL,
    device           TEXT,
    at               INTEGER NOT NULL
);
CREATE INDEX sign_in_event_person ON sign_in_event (user_profile_id, at);
CREATE INDEX sign_in_event_at ON sign_in_event (at);

-- Back-channel logout tokens seen, by issuer and `jti`, until they expire: a replay is
-- refused on every instance.
CREATE TABLE logout_token_seen (
    issuer      TEXT    NOT NULL,
    jti         TEXT    NOT NULL,
    expires_at  INTEGER NOT NULL,
    PRIMARY KEY (issuer, jti)
);
CREATE INDEX logout_token_seen_expires_at ON logout_token_seen (expires_at);
