-- Facebook Data Deletion requests and self-service account deletions: what was deleted, so the
-- status page at /deletion/{confirmation_code} can tell the person. Holds no personal data.
CREATE TABLE deletion_request (
    id                 INTEGER PRIMARY KEY,
    confirmation_code  TEXT    NOT NULL UNIQUE,
    provider           TEXT    NOT NULL,
    identity_deleted   INTEGER NOT NULL,
    profile_deleted    INTEGER NOT NULL,
    created_at         INTEGER NOT NULL
);
