//! The development issuer's Sign in with Apple mode: what Apple does differently, so that
//! `cargo run` and the tests take the whole Apple path (the client secret JWT, the posted
//! answer, the name given once) against it.
//!
//! As Apple does: the answer is posted (`response_mode=form_post`, required when `name` or
//! `email` is asked for) by a page that submits itself; the first consent of a person posts
//! a `user` field with their name, later ones do not; the client authenticates with
//! `client_secret_post`, the secret an ES256 JWT signed with the team's key (`kid`, `iss` the
//! team, `sub` the client, `aud` `https://appleid.apple.com`, not expired, issued at most six
//! months before); the ID token carries no name and writes `email_verified` and
//! `is_private_email` as the strings `"true"`/`"false"`; there is no userinfo.

use std::{
    collections::HashSet,
    sync::{Mutex, PoisonError},
};

use askama::Template;
use axum::{
    http::StatusCode,
    response::{Html, IntoResponse, Response},
};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use openidconnect::AdditionalClaims;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::TestUser;
use crate::auth::oidc::apple::{APPLE_AUDIENCE, AppleSecret};

/// Where the Apple mode is mounted inside the development provider.
pub const APPLE_PATH: &str = "/apple";
/// Apple refuses a client secret issued longer ago than this.
const MAX_SECRET_AGE_SECS: u64 = 180 * 24 * 60 * 60;

/// The client's side of a generated team key.
pub struct AppleKey {
    /// As the `.p8` file (for the tests' client, configured as people configure it).
    #[cfg(feature = "test-support")]
    pub pem: String,
    /// Ready to sign (for the development provider's own client).
    pub secret: AppleSecret,
}

/// The team and key the client's secrets must be signed with.
pub struct DevApple {
    pub team_id: String,
    pub key_id: String,
    /// The public half of the team's key (an uncompressed SEC1 point).
    pub public_key: Vec<u8>,
    /// The people who have consented before: their next answers carry no `user` field.
    consented: Mutex<HashSet<String>>,
}

impl DevApple {
    pub fn new(team_id: &str, key_id: &str, public_key: Vec<u8>) -> Self {
        Self {
            team_id: team_id.to_owned(),
            key_id: key_id.to_owned(),
            public_key,
            consented: Mutex::default(),
        }
    }

    /// A team with a fresh key, and the client's side of it: what signs its secrets, made from
    /// the key as the `.p8` file Apple would let the team download (PKCS #8 PEM).
    pub fn generate(team_id: &str, key_id: &str, client_id: &str) -> (Self, AppleKey) {
        use p256::pkcs8::{EncodePrivateKey as _, LineEnding};
        use rand::RngCore as _;
        loop {
            let mut scalar = [0u8; 32];
            rand::rngs::OsRng.fill_bytes(&mut scalar);
            // Zero or past the group order: odds below 2^-32, so try again.
            let Ok(secret) = p256::SecretKey::from_slice(&scalar) else {
                continue;
            };
            let Ok(pem) = secret.to_pkcs8_pem(LineEnding::LF) else {
                continue;
            };
            let Ok(client) = AppleSecret::new(team_id, key_id, client_id, &pem) else {
                continue;
            };
            // Uncompressed, as the key's JWK would give it (`x` and `y`).
            let public = p256::ecdsa::SigningKey::from(&secret)
                .verifying_key()
                .to_sec1_point(false)
                .as_bytes()
                .to_vec();
            let key = AppleKey {
                #[cfg(feature = "test-support")]
                pem: pem.to_string(),
                secret: client,
            };
            return (Self::new(team_id, key_id, public), key);
        }
    }

    /// The `user` field for `user`'s answer: their name and address the first time, nothing
    /// after.
    pub(super) fn user_field(&self, user: &TestUser) -> Option<String> {
        let first_time = self
            .consented
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(user.id.clone());
        first_time.then(|| {
            json!({
                "name": {"firstName": user.first_name, "lastName": user.last_name},
                "email": user.email,
            })
            .to_string()
        })
    }

    /// Checks a client secret as Apple does; why not, in Apple's terms, when it fails.
    pub(super) fn check_client_secret(&self, client_id: &str, secret: &str) -> Result<(), &'static str> {
        let header = decode_header(secret).map_err(|_| "client_secret is not a JWT")?;
        if header.alg != Algorithm::ES256 || header.kid.as_deref() != Some(&self.key_id) {
            return Err("client_secret must be ES256 with the key's id as kid");
        }
        let mut validation = Validation::new(Algorithm::ES256);
        validation.set_audience(&[APPLE_AUDIENCE]);
        validation.set_issuer(&[&self.team_id]);
        validation.sub = Some(client_id.to_owned());
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
        let key = DecodingKey::from_ec_der(&self.public_key);
        let claims = decode::<Issued>(secret, &key, &validation)
            .map_err(|_| "client_secret does not verify")?
            .claims;
        let now = u64::try_from(crate::model::now_ms() / 1000).unwrap_or_default();
        if claims.iat > now.saturating_add(60) || now.saturating_sub(claims.iat) > MAX_SECRET_AGE_SECS {
            return Err("client_secret iat is out of range");
        }
        Ok(())
    }
}

#[derive(Deserialize)]
struct Issued {
    iat: u64,
}

/// What Apple's ID token carries beyond `iss`, `aud`, `exp`, `iat`, `sub` and `nonce`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(transparent)]
pub(super) struct AppleClaims(Map<String, Value>);

impl AdditionalClaims for AppleClaims {}

impl AppleClaims {
    /// The address and Apple's string booleans; `nonce_supported` as Apple writes it.
    pub(super) fn of(user: &TestUser) -> Self {
        let mut claims = Map::new();
        if let Some(email) = &user.email {
            let relay = email.ends_with("@privaterelay.appleid.com");
            claims.insert("email".into(), json!(email));
            claims.insert(
                "email_verified".into(),
                json!(if user.email_verified { "true" } else { "false" }),
            );
            claims.insert(
                "is_private_email".into(),
                json!(if relay { "true" } else { "false" }),
            );
        }
        claims.insert("nonce_supported".into(), json!(true));
        claims.insert("real_user_status".into(), json!(2));
        Self(claims)
    }
}

#[derive(Template)]
#[template(path = "dev/form_post.html")]
struct FormPostPage<'a> {
    action: &'a str,
    fields: &'a [(String, String)],
}

/// The answer as Apple sends it: a page whose form posts `fields` to the redirect URI and
/// submits itself.
pub(super) fn form_post(action: &str, fields: &[(String, String)]) -> Response {
    let page = FormPostPage { action, fields };
    match page.render() {
        Ok(html) => Html(html).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}
