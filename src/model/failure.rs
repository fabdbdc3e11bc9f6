//! Why a sign-in did not complete, as every layer names it.

/// Why a sign-in did not complete: stored in `async_operation.error` as its code and turned
/// into a sentence for the person on the error page. Never carries provider text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureReason {
    /// The provider refused the code or the token (used, expired, wrong client, PKCE mismatch).
    Denied,
    /// The provider did not answer within `login.exchange_timeout_secs`.
    Timeout,
    /// The provider answered with an error of its own (a 5xx, an unexpected status).
    ProviderError,
    /// The provider answered something we cannot read (malformed JSON, no user id).
    InvalidResponse,
    /// The provider could not be reached at all (connection refused, DNS, TLS).
    Unreachable,
    /// Our own fault (the database, or this site's client credentials refused by the
    /// provider), never the person's or the provider's.
    Internal,
    /// Adding an identity from "Sign-in methods": it already belongs to someone else here.
    /// Nothing was changed.
    IdentityTaken,
    /// The provider signed the person in, but not with an account this site accepts: one
    /// matching no `[access]` condition, or (Google's `hosted_domain`) an ID token without
    /// that Workspace domain in `hd`. Nothing about them was kept.
    NotAllowed,
}

impl FailureReason {
    /// The machine-readable code kept in the database.
    pub const fn code(self) -> &'static str {
        match self {
            Self::Denied => "denied",
            Self::Timeout => "timeout",
            Self::ProviderError => "provider_error",
            Self::InvalidResponse => "invalid_response",
            Self::Unreachable => "unreachable",
            Self::Internal => "internal",
            Self::IdentityTaken => "identity_taken",
            Self::NotAllowed => "not_allowed",
        }
    }

    /// Reads a stored code; anything unknown reads as `Internal`.
    pub fn from_code(code: &str) -> Self {
        match code {
            "denied" => Self::Denied,
            "timeout" => Self::Timeout,
            "provider_error" => Self::ProviderError,
            "invalid_response" => Self::InvalidResponse,
            "unreachable" => Self::Unreachable,
            "identity_taken" => Self::IdentityTaken,
            "not_allowed" => Self::NotAllowed,
            _ => Self::Internal,
        }
    }

    /// What the person reads: what happened and what to do, in their words.
    pub fn message(self, provider: &str) -> String {
        match self {
            Self::Denied => format!(
                "{provider} did not accept this sign-in. It may have taken too long or been used already. Please try again."
            ),
            Self::Timeout => {
                format!("{provider} did not answer in time. Please try again in a moment.")
            }
            Self::ProviderError => format!(
                "{provider} had a problem completing the sign-in. Please try again in a moment."
            ),
            Self::InvalidResponse => {
                format!("{provider} sent an answer we could not understand. Please try again.")
            }
            Self::Unreachable => {
                format!("We could not reach {provider}. Please check back in a moment.")
            }
            Self::Internal => {
                "Something went wrong on our side. Please try again in a moment.".to_owned()
            }
            Self::IdentityTaken => format!(
                "This {provider} account is already used by someone else here. Sign out and sign in with it, or use another {provider} account."
            ),
            // The error page says it with the address and the site's name when it has them.
            Self::NotAllowed => {
                format!("This account ({provider}) may not sign in here.")
            }
        }
    }
}

impl std::fmt::Display for FailureReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}
