-- The groups, GitHub organisations and teams a provider named at sign-in (issue 21), as JSON
-- (`{"groups":[...],"github_orgs":[...],"github_teams":[...]}`), NULL when it named none.
--
-- They travel from the exchange (which read them from the provider) to `/success`, which
-- keeps them with the signed-in session: `[access]` conditions on groups, organisations and
-- teams are evaluated against them on every check. They belong to the sign-in, not to the
-- person (the provider's word at that moment), so `user_profile` never holds them, and the
-- operation row, and with it this column, is deleted with the other finished operations.
ALTER TABLE async_operation ADD COLUMN membership TEXT;
