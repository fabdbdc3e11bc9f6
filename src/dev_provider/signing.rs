//! The development provider's own HMAC-SHA256 code: `appsecret_proof` and `signed_request`,
//! computed here rather than borrowed from the client it imitates, so a bug in the client's
//! computation cannot be mirrored by the stand-in and pass unnoticed.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// `hex(HMAC-SHA256(key = app secret, message = access token))`, as Facebook expects it.
pub fn appsecret_proof(app_secret: &str, access_token: &str) -> String {
    hex::encode(hmac(app_secret, access_token.as_bytes()))
}

/// Facebook's `signed_request`: `base64url(HMAC-SHA256(payload)).base64url(payload JSON)`,
/// the HMAC taken over the encoded payload as sent.
#[cfg(any(test, feature = "test-support"))]
pub fn signed_request(payload_json: &str, app_secret: &str) -> String {
    use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};

    let payload = URL_SAFE_NO_PAD.encode(payload_json);
    let signature = URL_SAFE_NO_PAD.encode(hmac(app_secret, payload.as_bytes()));
    format!("{signature}.{payload}")
}

fn hmac(key: &str, message: &[u8]) -> Vec<u8> {
    // HMAC takes keys of any length, so this cannot fail.
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appsecret_proof_is_rfc_4231_and_matches_the_client() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        let proof = appsecret_proof("Jefe", "what do ya want for nothing?");
        assert_eq!(
            proof,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        let client = crate::auth::facebook::appsecret_proof(
            &oauth2::ClientSecret::new("app-secret".to_owned()),
            "token",
        );
        assert_eq!(appsecret_proof("app-secret", "token"), client);
    }

    #[test]
    fn signed_requests_verify_with_the_client_and_match_its_signing() {
        let payload = r#"{"algorithm":"HMAC-SHA256","user_id":"218471","issued_at":1291836800}"#;
        let request = signed_request(payload, "secret");
        assert_eq!(
            request,
            crate::auth::signed_request::sign(payload, "secret")
        );
        let verified = crate::auth::signed_request::verify_at(&request, "secret", 1_291_836_860);
        assert_eq!(verified.map(|r| r.user_id), Ok("218471".to_owned()));
    }
}
