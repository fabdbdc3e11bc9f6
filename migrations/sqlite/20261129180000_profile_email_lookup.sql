-- `providers.<name>.link_by_verified_email`: a first sign-in looks people up by address,
-- ASCII case aside, inside the sign-in's write transaction. An index keeps that lookup short
-- however many people there are.
CREATE INDEX user_profile_email_nocase ON user_profile (email COLLATE NOCASE);
