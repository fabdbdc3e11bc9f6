use oauth2::http::StatusCode;

use super::http::HttpError;

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
    /// Our own fault (the database), never the person's or the provider's.
    Internal,
    /// Adding an identity from "Sign-in methods": it already belongs to someone else here.
    /// Nothing was changed.
    IdentityTaken,
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
        }
    }
}

/// A provider call (token or `/me`) that gave nothing usable, reduced to what names it.
#[derive(Debug)]
pub enum CallFailure<'a> {
    /// No answer we could look at: no connection, no answer in time, a broken transport, or
    /// a success too large to read.
    Http(&'a HttpError),
    /// An answer with this status that we could not use; `oauth_error` when its body is an
    /// OAuth error (RFC 6749 `{"error":"invalid_grant"}`) or a Graph error
    /// (`{"error":{"type":"OAuthException",...}}`).
    Answer {
        status: StatusCode,
        oauth_error: bool,
    },
}

impl FailureReason {
    /// Names a failed provider call by what happened: by status first, then by body. Only a
    /// 400 or 401 carrying an OAuth error is a refusal; a 5xx or 429 is the provider's trouble
    /// whatever its body says, and a success we could not read is an invalid answer.
    pub fn of(failure: CallFailure<'_>) -> Self {
        match failure {
            CallFailure::Http(HttpError::Timeout) => Self::Timeout,
            CallFailure::Http(HttpError::Connect(_)) => Self::Unreachable,
            CallFailure::Http(HttpError::TooLarge) => Self::InvalidResponse,
            CallFailure::Http(HttpError::Transport(_)) => Self::ProviderError,
            CallFailure::Answer { status, .. } if status.is_success() => Self::InvalidResponse,
            CallFailure::Answer {
                status: StatusCode::BAD_REQUEST | StatusCode::UNAUTHORIZED,
                oauth_error: true,
            } => Self::Denied,
            // 5xx, 429, redirects (never followed), other 4xx, a 400 without an OAuth error.
            CallFailure::Answer { .. } => Self::ProviderError,
        }
    }
}

impl std::fmt::Display for FailureReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_failures_are_named_by_status_then_body() {
        use FailureReason::*;
        let answer = |status: u16, oauth_error: bool| {
            let status = StatusCode::from_u16(status).unwrap();
            FailureReason::of(CallFailure::Answer {
                status,
                oauth_error,
            })
        };
        for (status, oauth_error, reason) in [
            (500, false, ProviderError),
            (500, true, ProviderError),
            (502, false, ProviderError),
            (503, true, ProviderError),
            (429, false, ProviderError),
            (429, true, ProviderError),
            (400, true, Denied),
            (401, true, Denied),
            (400, false, ProviderError),
            (401, false, ProviderError),
            (403, true, ProviderError),
            (404, false, ProviderError),
            (302, false, ProviderError),
            (301, true, ProviderError),
            (304, false, ProviderError),
            (200, false, InvalidResponse),
            (200, true, InvalidResponse),
            (201, false, InvalidResponse),
            (204, false, InvalidResponse),
        ] {
            assert_eq!(
                answer(status, oauth_error),
                reason,
                "{status} {oauth_error}"
            );
        }
        for (error, reason) in [
            (HttpError::Timeout, Timeout),
            (HttpError::Connect("refused".into()), Unreachable),
            (HttpError::TooLarge, InvalidResponse),
            (HttpError::Transport("reset".into()), ProviderError),
        ] {
            assert_eq!(
                FailureReason::of(CallFailure::Http(&error)),
                reason,
                "{error}"
            );
        }
    }
}
