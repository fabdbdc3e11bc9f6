//! Sign in with Apple's departures from a plain issuer (the facts: `docs/providers/apple.md`).
//!
//! - There is no client secret to configure: the client authenticates with a JWT it signs
//!   itself, ES256 with the `.p8` key Apple issued (`kid` = the key id, `iss` = the team id,
//!   `sub` = the Services ID, `aud` = `https://appleid.apple.com`). One is made for every
//!   token request, valid for five minutes: nothing long-lived to leak or to expire unseen
//!   (Apple allows six months).
//! - Apple posts its answer (`response_mode=form_post`, required with the `name` and `email`
//!   scopes) from its own site: the web layer relays it through a same-site step
//!   (`web/form_post.rs`), since the session cookie is `SameSite=Lax`.
//! - The person's name arrives once, in the first answer's `user` field, beside the code and
//!   not in the ID token: the web layer carries it to the exchange, which keeps it only then.

use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use p256::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _};
use serde::Serialize;

/// The audience of every client secret.
pub const APPLE_AUDIENCE: &str = "https://appleid.apple.com";
/// How long a client secret is good for: one token request's worth, with room for clocks.
const SECRET_LIFETIME_SECS: u64 = 5 * 60;

/// What signs Sign in with Apple's client secrets. Its `Debug` names the ids, never the key.
#[derive(Clone)]
pub struct AppleSecret {
    team_id: String,
    key_id: String,
    client_id: String,
    key: EncodingKey,
}

impl std::fmt::Debug for AppleSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppleSecret")
            .field("team_id", &self.team_id)
            .field("key_id", &self.key_id)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// Why a key cannot sign client secrets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a P-256 private key in PKCS #8 PEM (the AuthKey_<key id>.p8 file Apple let you download)")]
pub struct BadKey;

/// The client secret's claims (Apple's "Creating a client secret").
#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    iat: u64,
    exp: u64,
    aud: &'a str,
    sub: &'a str,
}

impl AppleSecret {
    /// From the `.p8` file's text; the ids as configuration gives them.
    pub fn new(team_id: &str, key_id: &str, client_id: &str, pem: &str) -> Result<Self, BadKey> {
        // Read by p256 (which also proves it is a P-256 key), handed on as PKCS #8 DER.
        let secret = p256::SecretKey::from_pkcs8_pem(pem.trim()).map_err(|_| BadKey)?;
        let der = secret.to_pkcs8_der().map_err(|_| BadKey)?;
        Ok(Self {
            team_id: team_id.to_owned(),
            key_id: key_id.to_owned(),
            client_id: client_id.to_owned(),
            key: EncodingKey::from_ec_der(der.as_bytes()),
        })
    }

    /// A fresh client secret, issued now.
    pub fn mint(&self) -> Result<String, jsonwebtoken::errors::Error> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        self.mint_at(now)
    }

    fn mint_at(&self, now: u64) -> Result<String, jsonwebtoken::errors::Error> {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.key_id.clone());
        let claims = Claims {
            iss: &self.team_id,
            iat: now,
            exp: now + SECRET_LIFETIME_SECS,
            aud: APPLE_AUDIENCE,
            sub: &self.client_id,
        };
        jsonwebtoken::encode(&header, &claims, &self.key)
    }
}

/// The `user` field of Apple's first answer: `{"name":{"firstName":…,"lastName":…},
/// "email":…}`.
#[derive(serde::Deserialize)]
struct UserField {
    #[serde(default)]
    name: Option<UserName>,
}

#[derive(serde::Deserialize)]
struct UserName {
    #[serde(default, rename = "firstName")]
    first_name: Option<String>,
    #[serde(default, rename = "lastName")]
    last_name: Option<String>,
}

/// The person's first and last name from Apple's `user` field, when it holds any. Only the
/// name is taken: the address in it is not signed (the ID token's is), and the whole field
/// comes through the browser, so it is no more than what the person says their name is.
pub fn names_from_user_field(json: &str) -> Option<(String, String)> {
    let field: UserField = serde_json::from_str(json).ok()?;
    let name = field.name?;
    let first = crate::auth::oauth::clean(name.first_name).unwrap_or_default();
    let last = crate::auth::oauth::clean(name.last_name).unwrap_or_default();
    (!first.is_empty() || !last.is_empty()).then_some((first, last))
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{DecodingKey, Validation, decode, decode_header};
    use p256::{ecdsa::SigningKey, pkcs8::LineEnding};

    #[derive(serde::Deserialize, Debug)]
    struct Read {
        iss: String,
        iat: u64,
        exp: u64,
        aud: String,
        sub: String,
    }

    #[test]
    fn the_secret_is_an_es256_jwt_apple_can_verify_with_the_public_key() {
        let signing = SigningKey::from_slice(&[7; 32]).unwrap();
        let pem = p256::SecretKey::from(&signing)
            .to_pkcs8_pem(LineEnding::LF)
            .unwrap();
        let apple = AppleSecret::new("ABCDE12345", "XYZ987ABCD", "com.example.web", &pem).unwrap();
        assert!(!format!("{apple:?}").contains("PRIVATE"));
        let secret = apple.mint_at(1_800_000_000).unwrap();
        let header = decode_header(&secret).unwrap();
        assert_eq!(header.alg, Algorithm::ES256);
        assert_eq!(header.kid.as_deref(), Some("XYZ987ABCD"));
        let point = signing.verifying_key().to_sec1_point(false);
        let public = DecodingKey::from_ec_der(point.as_bytes());
        let mut validation = Validation::new(Algorithm::ES256);
        validation.set_audience(&[APPLE_AUDIENCE]);
        validation.set_issuer(&["ABCDE12345"]);
        validation.validate_exp = false;
        let read = decode::<Read>(&secret, &public, &validation).unwrap().claims;
        assert_eq!(
            (read.iss.as_str(), read.aud.as_str(), read.sub.as_str()),
            ("ABCDE12345", APPLE_AUDIENCE, "com.example.web")
        );
        assert_eq!((read.iat, read.exp), (1_800_000_000, 1_800_000_300));
        let other = SigningKey::from_slice(&[8; 32]).unwrap();
        let wrong = DecodingKey::from_ec_der(other.verifying_key().to_sec1_point(false).as_bytes());
        assert!(decode::<Read>(&secret, &wrong, &validation).is_err());
    }

    #[test]
    fn the_name_comes_from_the_user_field_and_nothing_else_does() {
        assert_eq!(
            names_from_user_field(
                r#"{"name":{"firstName":"Ada <b>","lastName":"Lovelace 🍎"},"email":"x@privaterelay.appleid.com"}"#
            ),
            Some(("Ada <b>".to_owned(), "Lovelace 🍎".to_owned()))
        );
        assert_eq!(
            names_from_user_field(r#"{"name":{"firstName":"Ada"}}"#),
            Some(("Ada".to_owned(), String::new()))
        );
        for nothing in [
            r#"{"email":"x@privaterelay.appleid.com"}"#,
            r#"{"name":{"firstName":"  ","lastName":""}}"#,
            r#"{"name":"Ada"}"#,
            "not json",
            "",
        ] {
            assert_eq!(names_from_user_field(nothing), None, "{nothing}");
        }
    }

    #[test]
    fn what_is_not_a_p256_pkcs8_key_is_refused() {
        for bad in ["", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----", "secret"] {
            assert_eq!(AppleSecret::new("A", "B", "c", bad).unwrap_err(), BadKey);
        }
    }
}
