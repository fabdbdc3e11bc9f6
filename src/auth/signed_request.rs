//! Facebook's `signed_request`: `base64url(signature).base64url(payload)`, the signature an
//! HMAC-SHA256 of the payload (as sent) keyed by the app secret. Used by the Deauthorize and
//! Data Deletion callbacks.

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;

/// The one algorithm Facebook signs with; anything else is refused.
const ALGORITHM: &str = "HMAC-SHA256";

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
}

#[derive(Deserialize)]
struct Payload {
    algorithm: Option<String>,
    user_id: Option<UserIdValue>,
}

/// Facebook sends `user_id` as a string; accept a number too rather than fail on it.
#[derive(Deserialize)]
#[serde(untagged)]
enum UserIdValue {
    Text(String),
    Number(u64),
}

/// Verifies `signed_request` with `app_secret` and reads the user id from it.
///
/// ```
/// use loginwith::auth::signed_request::{sign, verify};
///
/// let request = sign(r#"{"algorithm":"HMAC-SHA256","user_id":"218471"}"#, "secret");
/// assert_eq!(verify(&request, "secret").unwrap().user_id, "218471");
/// assert!(verify(&request, "another secret").is_err());
/// ```
pub fn verify(signed_request: &str, app_secret: &str) -> Result<SignedRequest, SignedRequestError> {
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

    #[test]
    fn padding_is_tolerated() {
        // Signature over the payload exactly as sent, padding included.
        let payload = format!(
            "{}==",
            URL_SAFE_NO_PAD.encode(r#"{"algorithm":"HMAC-SHA256","user_id":"1"}"#)
        );
        let mut mac = mac(SECRET);
        mac.update(payload.as_bytes());
        let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        let padded = format!("{signature}=.{payload}");
        assert_eq!(verify(&padded, SECRET).unwrap().user_id, "1");
    }

    #[test]
    fn forged_wrong_algorithm_malformed_and_userless_are_refused() {
        let good = sign(r#"{"algorithm":"HMAC-SHA256","user_id":"1"}"#, SECRET);
        let (_, payload) = good.split_once('.').unwrap();
        assert_eq!(
            verify(&format!("AAAA.{payload}"), SECRET),
            Err(SignedRequestError::BadSignature)
        );
        assert_eq!(
            verify(
                &sign(r#"{"algorithm":"none","user_id":"1"}"#, SECRET),
                SECRET
            ),
            Err(SignedRequestError::WrongAlgorithm)
        );
        assert_eq!(
            verify(&sign(r#"{"user_id":"1"}"#, SECRET), SECRET),
            Err(SignedRequestError::WrongAlgorithm)
        );
        assert_eq!(
            verify(&sign(r#"{"algorithm":"HMAC-SHA256"}"#, SECRET), SECRET),
            Err(SignedRequestError::NoUser)
        );
        for garbage in ["", ".", "no-dot", "!!.??", "a.b.c"] {
            assert!(verify(garbage, SECRET).is_err(), "{garbage}");
        }
        assert_eq!(
            verify(&sign("not json", SECRET), SECRET),
            Err(SignedRequestError::Malformed)
        );
    }

    #[test]
    fn numeric_user_ids_are_read() {
        let request = sign(r#"{"algorithm":"HMAC-SHA256","user_id":218471}"#, SECRET);
        assert_eq!(verify(&request, SECRET).unwrap().user_id, "218471");
    }
}
