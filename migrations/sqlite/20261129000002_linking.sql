-- One person, several identities (issue 10).
--
-- `display_name`: what pages call the person, "first last" or what the provider gives.
-- `email_verified`: whether a provider vouched for the address; false for Facebook, which
-- gives no such flag. Neither is ever used to merge two people: linking is explicit.
ALTER TABLE user_profile ADD COLUMN display_name TEXT;
ALTER TABLE user_profile ADD COLUMN email_verified INTEGER NOT NULL DEFAULT 0;
UPDATE user_profile SET display_name = NULLIF(TRIM(first_name || ' ' || last_name), '');

-- For OpenID Connect issuers later: `provider_user_id` is the `sub`, and the issuer is kept
-- beside it. NULL for plain OAuth providers (Facebook, GitHub).
ALTER TABLE user_identity ADD COLUMN issuer TEXT;

-- A sign-in started from "Sign-in methods" to add an identity to this person rather than sign
-- anyone in. Set from the server-side session only. Deleting the person deletes the pending
-- link with them, so a late exchange finds nothing to attach to.
ALTER TABLE async_operation ADD COLUMN link_user_profile_id INTEGER
    REFERENCES user_profile (id) ON DELETE CASCADE;
