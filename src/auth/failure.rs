//! Naming a failed provider call: from what the HTTP client saw to a [`FailureReason`].

use oauth2::http::StatusCode;

use super::http::HttpError;
use crate::model::FailureReason;

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
