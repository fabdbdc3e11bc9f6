-- The sign-in's provider and start as typed columns beside `user_id` (issue 23): what is
-- asked of sessions (which provider, since when) is read from columns, not from the JSON the
-- session layer keeps. The store fills them from the session's data on every write; rows
-- already there take them from their data now.
ALTER TABLE session ADD COLUMN provider TEXT;
ALTER TABLE session ADD COLUMN signed_in_at INTEGER;
UPDATE session
   SET provider = json_extract(data, '$.signed_in.provider'),
       signed_in_at = json_extract(data, '$.signed_in.since_ms')
 WHERE json_valid(data) AND json_extract(data, '$.signed_in') IS NOT NULL;
