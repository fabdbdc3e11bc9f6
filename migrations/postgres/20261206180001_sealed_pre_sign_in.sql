-- The pre-sign-in state leaves the session (issue 24): it travels in a cookie sealed with
-- AES-256-GCM, and the database keeps only what must be shared by every instance.
--
-- `sealing_key`: the keys that seal that cookie, created by the first instance and rotated by
-- `loginwith rotate-key`. The newest seals; one replaced less than an hour ago still opens
-- the cookies it sealed. Ids are never reused (a cookie names its key by id).
CREATE TABLE sealing_key (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    secret      TEXT    NOT NULL,
    created_at  BIGINT  NOT NULL
);

-- A callback's `state` is single use on every instance: the pending operation it records
-- carries the state's SHA-256, which a replay cannot insert a second time. Rows from before
-- have none (NULLs never collide).
ALTER TABLE async_operation ADD COLUMN state_digest TEXT;
CREATE UNIQUE INDEX async_operation_state_digest ON async_operation (state_digest);
