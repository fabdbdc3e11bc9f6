//! Facebook's `signed_request`: `base64url(signature).base64url(payload)`, the signature an
//! HMAC-SHA256 of the payload (as sent) keyed by the app secret. Used by the Deauthorize and
//! Data Deletion callbacks.
//!
//! A signature proves who wrote a request, not when it is used: one captured on its way (a
//! proxy's or a log's copy) would delete the person whenever it is replayed. Its `issued_at`
//! must therefore be recent: at most [`MAX_AGE_SECS`] old, at most [`MAX_SKEW_SECS`] ahead.
//! Facebook describes `issued_at` as the Unix time the request was signed, and its payloads
//! carry it (`{"user_id":…,"algorithm":"HMAC-SHA256","issued_at":1291836800,…}` in
//! `docs/providers/facebook.md`), so a request without one is not Facebook's and is refused too.

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;

use crate::model::now_ms;

/// The one algorithm Facebook signs with; anything else is refused.
const ALGORITHM: &str = "HMAC-SHA256";

/// The oldest `issued_at` accepted, in seconds: an hour. Facebook posts these callbacks when
/// the person acts, so a genuine one is seconds old; an hour leaves room for a slow or retried
/// delivery and for clocks that disagree, and still turns a captured request useless soon.
pub const MAX_AGE_SECS: i64 = 60 * 60;

/// How far ahead of this server's clock `issued_at` may be, in seconds: clocks that disagree
/// by a few minutes, never a request dated later to outlive [`MAX_AGE_SECS`].
pub const MAX_SKEW_SECS: i64 = 5 * 60;

/// What a verified signed request tells us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedRequest {
    /// The app-scoped id of the person concerned.
    pub user_id: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignedRequestError {
    #[error("not of the form signature.payload in base64url")]
    Malformed,
    #[error("the signature does not match")]
    BadSignature,
    #[error("the algorithm is not HMAC-SHA256")]
    WrongAlgorithm,
    #[error("the payload names no user")]
    NoUser,
    #[error("issued_at is missing or not a whole number of seconds")]
    NoIssuedAt,
    #[error("issued more than an hour ago (issued_at)")]
    TooOld,
    #[error("issued in the future (issued_at)")]
    FromTheFuture,
}

#[derive(Deserialize)]
struct Payload {
    algorithm: Option<String>,
    user_id: Option<UserIdValue>,
    /// Read as any JSON value, so that a string or a fraction is refused as "not a number of
    /// seconds" rather than as an unreadable payload.
    issued_at: Option<serde_json::Value>,
}

/// Facebook sends `user_id` as a string; accept a number too rather than fail on it.
#[derive(Deserialize)]
#[serde(untagged)]
enum UserIdValue {
    Text(String),
    Number(u64),
}

/// Verifies `signed_request` with `app_secret` and reads the user id from it; refused unless it
/// was issued within the last [`MAX_AGE_SECS`] by this server's clock (see [`verify_at`]).
pub fn verify(signed_request: &str, app_secret: &str) -> Result<SignedRequest, SignedRequestError> {
    verify_at(signed_request, app_secret, now_ms() / 1000)
}

/// [`verify`] at `now` (seconds since the epoch): the signature, the algorithm, then an
/// `issued_at` no older than [`MAX_AGE_SECS`] and no more than [`MAX_SKEW_SECS`] ahead of
/// `now`, then the user.
///
/// ```
/// use loginwith::auth::signed_request::{sign, verify_at};
///
/// let issued_at = 1_291_836_800;
/// let request = sign(
///     r#"{"algorithm":"HMAC-SHA256","user_id":"218471","issued_at":1291836800}"#,
///     "secret",
/// );
/// assert_eq!(verify_at(&request, "secret", issued_at + 5).unwrap().user_id, "218471");
/// assert!(verify_at(&request, "another secret", issued_at + 5).is_err());
/// // The same request a day later is refused.
/// assert!(verify_at(&request, "secret", issued_at + 86_400).is_err());
/// ```
pub fn verify_at(
    signed_request: &str,
    app_secret: &str,
    now: i64,
) -> Result<SignedRequest, SignedRequestError> {
    let (signature, payload) = signed_request
        .trim()
        .split_once('.')
        .ok_or(SignedRequestError::Malformed)?;
    let signature = decode(signature)?;
    let mut mac = mac(app_secret);
    mac.update(payload.as_bytes());
    // `verify_slice` compares in constant time.
    mac.verify_slice(&signature)
        .map_err(|_| SignedRequestError::BadSignature)?;
    let payload: Payload =
        serde_json::from_slice(&decode(payload)?).map_err(|_| SignedRequestError::Malformed)?;
    if payload
        .algorithm
        .is_none_or(|a| !a.eq_ignore_ascii_case(ALGORITHM))
    {
        return Err(SignedRequestError::WrongAlgorithm);
    }
    let issued_at = payload
        .issued_at
        .as_ref()
        .and_then(serde_json::Value::as_i64)
        .ok_or(SignedRequestError::NoIssuedAt)?;
    if issued_at < now.saturating_sub(MAX_AGE_SECS) {
        return Err(SignedRequestError::TooOld);
    }
    if issued_at > now.saturating_add(MAX_SKEW_SECS) {
        return Err(SignedRequestError::FromTheFuture);
    }
    let user_id = match payload.user_id {
        Some(UserIdValue::Text(id)) if !id.trim().is_empty() && id.len() <= 64 => id,
        Some(UserIdValue::Number(id)) => id.to_string(),
        _ => return Err(SignedRequestError::NoUser),
    };
    Ok(SignedRequest { user_id })
}

/// Signs a JSON payload as Facebook does (for the development provider and tests).
#[cfg(any(test, feature = "test-support"))]
pub fn sign(payload_json: &str, app_secret: &str) -> String {
    let payload = URL_SAFE_NO_PAD.encode(payload_json);
    let mut mac = mac(app_secret);
    mac.update(payload.as_bytes());
    let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{signature}.{payload}")
}

fn mac(app_secret: &str) -> Hmac<Sha256> {
    Hmac::<Sha256>::new_from_slice(app_secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"))
}

/// base64url with or without `=` padding.
fn decode(part: &str) -> Result<Vec<u8>, SignedRequestError> {
    URL_SAFE_NO_PAD
        .decode(part.trim_end_matches('='))
        .map_err(|_| SignedRequestError::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "app-secret";
    /// The time the tests verify at, and their requests' `issued_at`.
    const NOW: i64 = 1_291_836_800;

    /// A payload signed with [`SECRET`]: `fields` (JSON object members) and `issued_at`.
    fn signed(fields: &str, issued_at: i64) -> String {
        sign(&format!(r#"{{{fields},"issued_at":{issued_at}}}"#), SECRET)
    }

    #[test]
    fn padding_is_tolerated() {
        // Signature over the payload exactly as sent, padding included.
        let payload = format!(
            "{}==",
            URL_SAFE_NO_PAD.encode(format!(
                r#"{{"algorithm":"HMAC-SHA256","user_id":"1","issued_at":{NOW}}}"#
            ))
        );
        let mut mac = mac(SECRET);
        mac.update(payload.as_bytes());
        let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        let padded = format!("{signature}=.{payload}");
        assert_eq!(verify_at(&padded, SECRET, NOW).unwrap().user_id, "1");
    }

    #[test]
    fn forged_wrong_algorithm_malformed_and_userless_are_refused() {
        let good = signed(r#""algorithm":"HMAC-SHA256","user_id":"1""#, NOW);
        let (_, payload) = good.split_once('.').unwrap();
        let at_now = |request: &str| verify_at(request, SECRET, NOW);
        assert_eq!(
            at_now(&format!("AAAA.{payload}")),
            Err(SignedRequestError::BadSignature)
        );
        assert_eq!(
            at_now(&signed(r#""algorithm":"none","user_id":"1""#, NOW)),
            Err(SignedRequestError::WrongAlgorithm)
        );
        assert_eq!(
            at_now(&signed(r#""user_id":"1""#, NOW)),
            Err(SignedRequestError::WrongAlgorithm)
        );
        assert_eq!(
            at_now(&signed(r#""algorithm":"HMAC-SHA256""#, NOW)),
            Err(SignedRequestError::NoUser)
        );
        for garbage in ["", ".", "no-dot", "!!.??", "a.b.c"] {
            assert!(at_now(garbage).is_err(), "{garbage}");
        }
        assert_eq!(
            at_now(&sign("not json", SECRET)),
            Err(SignedRequestError::Malformed)
        );
    }

    #[test]
    fn numeric_user_ids_are_read() {
        let request = signed(r#""algorithm":"HMAC-SHA256","user_id":218471"#, NOW);
        assert_eq!(
            verify_at(&request, SECRET, NOW).unwrap().user_id,
            "218471"
        );
    }

    #[test]
    fn only_a_request_issued_within_the_last_hour_is_accepted() {
        const USER: &str = r#""algorithm":"HMAC-SHA256","user_id":"1""#;
        let at_now = |issued_at: i64| verify_at(&signed(USER, issued_at), SECRET, NOW);
        assert!(at_now(NOW).is_ok());
        assert!(at_now(NOW - MAX_AGE_SECS).is_ok(), "an hour old, to the second");
        assert_eq!(at_now(NOW - MAX_AGE_SECS - 1), Err(SignedRequestError::TooOld));
        assert_eq!(at_now(NOW - 30 * 86_400), Err(SignedRequestError::TooOld));
        assert_eq!(at_now(0), Err(SignedRequestError::TooOld));
        assert_eq!(at_now(i64::MIN), Err(SignedRequestError::TooOld));
        // A clock a few minutes ahead of ours, but not a request dated to outlive the hour.
        assert!(at_now(NOW + MAX_SKEW_SECS).is_ok());
        assert_eq!(
            at_now(NOW + MAX_SKEW_SECS + 1),
            Err(SignedRequestError::FromTheFuture)
        );
        assert_eq!(at_now(i64::MAX), Err(SignedRequestError::FromTheFuture));
        // Time is no reason to skip the signature: a forged one is refused as forged.
        let old = signed(USER, NOW - 86_400);
        let (_, payload) = old.split_once('.').unwrap();
        assert_eq!(
            verify_at(&format!("AAAA.{payload}"), SECRET, NOW),
            Err(SignedRequestError::BadSignature)
        );
    }

    #[test]
    fn a_request_without_a_whole_number_issued_at_is_refused() {
        let user = r#""algorithm":"HMAC-SHA256","user_id":"1""#;
        let without = sign(&format!("{{{user}}}"), SECRET);
        assert_eq!(
            verify_at(&without, SECRET, NOW),
            Err(SignedRequestError::NoIssuedAt)
        );
        for issued_at in [
            format!(r#""{NOW}""#),
            "null".to_owned(),
            format!("{NOW}.5"),
            "1.2918368e9".to_owned(),
            "[]".to_owned(),
        ] {
            let request = sign(&format!(r#"{{{user},"issued_at":{issued_at}}}"#), SECRET);
            assert_eq!(
                verify_at(&request, SECRET, NOW),
                Err(SignedRequestError::NoIssuedAt),
                "{issued_at}"
            );
        }
    }

    #[test]
    fn verify_reads_this_servers_clock() {
        let now = now_ms() / 1000;
        let user = r#""algorithm":"HMAC-SHA256","user_id":"1""#;
        assert!(verify(&signed(user, now), SECRET).is_ok());
        assert_eq!(
            verify(&signed(user, now - 2 * MAX_AGE_SECS), SECRET),
            Err(SignedRequestError::TooOld)
        );
    }
}
