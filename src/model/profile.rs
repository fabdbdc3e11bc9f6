//! A person as a provider describes them.

use super::Membership;

/// Who signed in, as the provider describes them. Never holds a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// The provider's id for this person (for Facebook: app-scoped).
    pub provider_user_id: String,
    /// As the provider gives it: may carry markup or emoji, escaped wherever it is shown.
    pub first_name: String,
    /// Likewise; may be empty.
    pub last_name: String,
    /// Absent when the person declined it or has none; not an error.
    pub email: Option<String>,
    /// Whether the provider says it verified `email`. Facebook gives no such flag: false.
    /// Never a reason to merge two people (see `docs/providers/account-linking.md`), unless the
    /// provider's `link_by_verified_email` is turned on (`EmailLinking::WhenVerified`); the
    /// store keeps which provider said so (`user_profile.email_verified_by`).
    pub email_verified: bool,
    /// The OpenID Connect issuer that vouches for `provider_user_id` (the ID token's `iss`),
    /// kept with the identity; `None` for OAuth-only providers.
    pub issuer: Option<String>,
    /// What the person belongs to at the provider: an OpenID Connect issuer's groups
    /// (`providers.<name>.groups_claim`; at most 200 of at most 200 bytes each), GitHub's
    /// organisations and teams (read only when `[access]` names some). Empty for Facebook.
    /// Kept with the sign-in, not with the person (see [`Membership`]).
    pub membership: Membership,
    /// The OpenID Connect issuer's session id for this sign-in (the ID token's `sid`), which a
    /// back-channel logout names; `None` for OAuth-only providers and issuers that send none.
    pub provider_sid: Option<String>,
    /// The provider withheld the name this time, rather than the person having none: Sign in
    /// with Apple sends it with the first consent only. The stored name is then kept; any
    /// other sign-in writes the names it brings, empty ones too.
    pub names_withheld: bool,
}
