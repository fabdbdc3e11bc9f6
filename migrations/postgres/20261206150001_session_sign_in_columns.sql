-- The sign-in's provider and start as typed columns beside `user_id` (issue 23): what is
-- asked of sessions (which provider, since when) is read from columns, not from the JSON the
-- session layer keeps. The store fills them from the session's data on every write; rows
-- already there take them from their data now (every row's data is the JSON the store wrote).
ALTER TABLE session ADD COLUMN provider TEXT;
ALTER TABLE session ADD COLUMN signed_in_at BIGINT;
UPDATE session
   SET provider = (data::jsonb) -> 'signed_in' ->> 'provider',
       signed_in_at = ((data::jsonb) -> 'signed_in' ->> 'since_ms')::bigint
 WHERE (data::jsonb) ? 'signed_in';
