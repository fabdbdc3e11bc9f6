//! An issuer's back-channel logout token (OpenID Connect Back-Channel Logout 1.0, 2.4 and
//! 2.6): a signed JWT naming the sign-ins to end. Every check the specification asks for, in
//! its order: the signature with the issuer's published keys and an allowed public-key
//! algorithm (openidconnect's key types verify it), `iss`, `aud`, `iat`, the logout event, no
//! `nonce`, a `sid` and/or `sub`, and a `jti` (whose replay the store refuses).
//!
//! openidconnect reads ID tokens only, whose `sub`, `exp` and `nonce` rules differ, so the
//! token's compact form is taken apart here; the cryptography stays the crate's.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use openidconnect::{
    JsonWebKey, JsonWebKeyAlgorithm, JsonWebKeyId, JsonWebKeyUse, JwsSigningAlgorithm,
    core::CoreJsonWebKey,
};

use super::*;

/// The event a logout token carries (2.4).
pub const BACKCHANNEL_LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// A token issued longer ago than this is refused: issuers send them at once, and an old one
/// is a replay whose `jti` may have been forgotten.
pub const MAX_AGE: Duration = Duration::from_secs(5 * 60);

/// The longest token read (issuers' are well under 2 KiB).
const MAX_TOKEN_LEN: usize = 16 * 1024;

/// The longest `jti`, `sid` or `sub` kept.
const MAX_CLAIM_LEN: usize = 255;

/// What a verified logout token asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedLogout {
    /// The token's `iss`: the configured issuer.
    pub issuer: String,
    pub jti: String,
    /// The issuer's session to end, when named.
    pub sid: Option<String>,
    /// The person whose sign-ins to end, when named.
    pub sub: Option<String>,
    /// Until when the `jti` must be remembered to refuse a replay (Unix milliseconds): past
    /// this the token is refused as too old anyway.
    pub remember_until_ms: i64,
}

/// Why a logout token ended nothing, as the route answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogoutTokenError {
    /// The token fails a check (400): the description says which.
    Invalid(String),
    /// Its issuer's keys cannot be had right now (503): the issuer may send it again.
    Unavailable(String),
}

/// Why a logout token was not accepted.
pub(super) enum Refused {
    /// Signed with a key we do not have: the issuer may have rotated its keys.
    UnknownKey,
    Invalid(String),
}

/// The JOSE header members read.
#[derive(Deserialize)]
struct Header {
    alg: Value,
    kid: Option<String>,
    typ: Option<String>,
    crit: Option<Value>,
}

/// Checks `token` against the issuer's keys and this client, at `now_ms`.
pub(super) fn verify(
    jwks: &openidconnect::JsonWebKeySet<CoreJsonWebKey>,
    issuer: &str,
    client_id: &str,
    token: &str,
    now_ms: i64,
) -> Result<VerifiedLogout, Refused> {
    let invalid = |why: &str| Refused::Invalid(why.to_owned());
    if token.len() > MAX_TOKEN_LEN {
        return Err(invalid("logout_token is too long"));
    }
    let mut parts = token.split('.');
    let (Some(header_b64), Some(claims_b64), Some(signature_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid("logout_token is not a signed JWT (three parts)"));
    };
    let decode = |part: &str, what: &str| {
        URL_SAFE_NO_PAD
            .decode(part)
            .map_err(|_| Refused::Invalid(format!("logout_token: its {what} is not base64url")))
    };
    let header: Header = serde_json::from_slice(&decode(header_b64, "header")?)
        .map_err(|_| invalid("logout_token: its header is not a JSON object"))?;
    if header.crit.is_some() {
        return Err(invalid("logout_token: a critical header extension is not understood"));
    }
    // 2.6 recommends explicit typing; an issuer without it sends plain `JWT` or nothing. An ID
    // token's or an access token's type is something else, and refused.
    if let Some(typ) = header.typ.as_deref()
        && !["logout+jwt", "application/logout+jwt", "JWT"]
            .iter()
            .any(|t| t.eq_ignore_ascii_case(typ))
    {
        return Err(invalid("logout_token: typ is not logout+jwt"));
    }
    let alg: CoreJwsSigningAlgorithm = serde_json::from_value(header.alg)
        .map_err(|_| invalid("logout_token: alg is not a signature algorithm"))?;
    if !ALLOWED_ALGS.contains(&alg) {
        return Err(invalid(
            "logout_token: alg is not an allowed public-key algorithm",
        ));
    }
    let signature = decode(signature_b64, "signature")?;
    let kid = header.kid.map(JsonWebKeyId::new);
    let keys: Vec<&CoreJsonWebKey> = jwks
        .keys()
        .iter()
        .filter(|key| kid.is_none() || key.key_id() == kid.as_ref())
        .filter(|key| fits(key, &alg))
        .collect();
    if keys.is_empty() {
        return Err(Refused::UnknownKey);
    }
    let signed = &token[..header_b64.len() + 1 + claims_b64.len()];
    if !keys
        .iter()
        .any(|key| key.verify_signature(&alg, signed.as_bytes(), &signature).is_ok())
    {
        return Err(invalid("logout_token: the signature does not verify"));
    }
    let claims: Map<String, Value> = serde_json::from_slice(&decode(claims_b64, "claims")?)
        .map_err(|_| invalid("logout_token: its claims are not a JSON object"))?;
    check_claims(&claims, issuer, client_id, now_ms)
}

/// Whether `key` may verify a signature made with `alg`: a signing key of its type, for that
/// algorithm or any.
fn fits(key: &CoreJsonWebKey, alg: &CoreJwsSigningAlgorithm) -> bool {
    if key.key_use().is_some_and(|key_use| !key_use.allows_signature()) {
        return false;
    }
    if alg.key_type().as_ref() != Some(key.key_type()) {
        return false;
    }
    match key.signing_alg() {
        JsonWebKeyAlgorithm::Unspecified => true,
        JsonWebKeyAlgorithm::Algorithm(key_alg) => key_alg == alg,
        _ => false,
    }
}

/// The claims' checks (2.6, steps 3 to 6), once the signature holds.
fn check_claims(
    claims: &Map<String, Value>,
    issuer: &str,
    client_id: &str,
    now_ms: i64,
) -> Result<VerifiedLogout, Refused> {
    let invalid = |why: &str| Refused::Invalid(format!("logout_token: {why}"));
    let text = |name: &str| -> Result<Option<String>, Refused> {
        match claims.get(name) {
            None => Ok(None),
            Some(Value::String(value)) if !value.is_empty() && value.len() <= MAX_CLAIM_LEN => {
                Ok(Some(value.clone()))
            }
            Some(_) => Err(Refused::Invalid(format!(
                "logout_token: {name} is not a short string"
            ))),
        }
    };
    if text("iss")?.as_deref() != Some(issuer) {
        return Err(invalid("iss is not the configured issuer"));
    }
    let audience_ok = match claims.get("aud") {
        Some(Value::String(aud)) => aud == client_id,
        Some(Value::Array(auds)) => auds.iter().any(|a| a.as_str() == Some(client_id)),
        _ => false,
    };
    if !audience_ok {
        return Err(invalid("aud does not name this client"));
    }
    let seconds = |name: &str| claims.get(name).and_then(Value::as_i64);
    let iat_ms = seconds("iat")
        .ok_or_else(|| invalid("iat is missing"))?
        .saturating_mul(1000);
    let leeway_ms = crate::model::millis(IAT_LEEWAY);
    if iat_ms > now_ms.saturating_add(leeway_ms) {
        return Err(invalid("iat is in the future"));
    }
    let oldest = now_ms.saturating_sub(crate::model::millis(MAX_AGE));
    if iat_ms < oldest {
        return Err(invalid("iat is too old"));
    }
    let exp_ms = match claims.get("exp") {
        None => None,
        Some(exp) => Some(
            exp.as_i64()
                .ok_or_else(|| invalid("exp is not a number"))?
                .saturating_mul(1000),
        ),
    };
    if exp_ms.is_some_and(|exp| exp.saturating_add(leeway_ms) <= now_ms) {
        return Err(invalid("exp has passed"));
    }
    let event = claims
        .get("events")
        .and_then(Value::as_object)
        .and_then(|events| events.get(BACKCHANNEL_LOGOUT_EVENT));
    if !matches!(event, Some(Value::Object(_))) {
        return Err(invalid("events does not carry the back-channel logout event"));
    }
    if claims.contains_key("nonce") {
        return Err(invalid("a nonce is present (an ID token, not a logout token)"));
    }
    let sid = text("sid")?;
    let sub = text("sub")?;
    if sid.is_none() && sub.is_none() {
        return Err(invalid("neither sid nor sub is present"));
    }
    let jti = text("jti")?.ok_or_else(|| invalid("jti is missing"))?;
    // Remembered as long as the token could be accepted: until it is too old, or expires.
    let too_old_at = iat_ms.saturating_add(crate::model::millis(MAX_AGE) + leeway_ms);
    let remember_until_ms = exp_ms.map_or(too_old_at, |exp| exp.max(too_old_at));
    Ok(VerifiedLogout {
        issuer: issuer.to_owned(),
        jti,
        sid,
        sub,
        remember_until_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ISSUER: &str = "https://sso.example";
    const NOW: i64 = 1_800_000_000_000;

    fn claims(edit: impl FnOnce(&mut Map<String, Value>)) -> Map<String, Value> {
        let mut claims = serde_json::json!({
            "iss": ISSUER,
            "aud": ["loginwith", "other"],
            "iat": NOW / 1000 - 10,
            "exp": NOW / 1000 + 110,
            "jti": "b4e1",
            "sid": "08a5019c",
            "events": { BACKCHANNEL_LOGOUT_EVENT: {} },
        })
        .as_object()
        .cloned()
        .expect("an object");
        edit(&mut claims);
        claims
    }

    fn check(claims: &Map<String, Value>) -> Result<VerifiedLogout, String> {
        check_claims(claims, ISSUER, "loginwith", NOW).map_err(|refused| match refused {
            Refused::UnknownKey => "unknown key".to_owned(),
            Refused::Invalid(why) => why,
        })
    }

    #[test]
    fn a_logout_token_as_the_specification_writes_it_is_accepted() {
        let verified = check(&claims(|_| {})).expect("accepted");
        assert_eq!(verified.sid.as_deref(), Some("08a5019c"));
        assert_eq!(verified.sub, None);
        assert_eq!(verified.jti, "b4e1");
        // Until it would be refused as too old anyway (later than its `exp` here).
        let too_old = (NOW / 1000 - 10) * 1000
            + crate::model::millis(MAX_AGE)
            + crate::model::millis(IAT_LEEWAY);
        assert_eq!(verified.remember_until_ms, too_old);
        // `sub` alone, `aud` a string, no `exp`: remembered until too old.
        let verified = check(&claims(|c| {
            c.remove("sid");
            c.remove("exp");
            c.insert("sub".into(), "248289761001".into());
            c.insert("aud".into(), "loginwith".into());
        }))
        .expect("accepted");
        assert_eq!(verified.sub.as_deref(), Some("248289761001"));
        assert!(verified.remember_until_ms > NOW);
    }

    #[test]
    fn every_claim_the_specification_requires_is_checked() {
        type Edit = Box<dyn Fn(&mut Map<String, Value>)>;
        let refused: [(&str, Edit); 13] = [
            ("iss", Box::new(|c| { c.insert("iss".into(), "https://evil.example".into()); })),
            ("iss", Box::new(|c| { c.remove("iss"); })),
            ("aud", Box::new(|c| { c.insert("aud".into(), "someone-else".into()); })),
            ("iat is missing", Box::new(|c| { c.remove("iat"); })),
            ("future", Box::new(|c| { c.insert("iat".into(), (NOW / 1000 + 3600).into()); })),
            ("too old", Box::new(|c| { c.insert("iat".into(), (NOW / 1000 - 3600).into()); })),
            ("exp has passed", Box::new(|c| { c.insert("exp".into(), (NOW / 1000 - 3600).into()); })),
            ("events", Box::new(|c| { c.remove("events"); })),
            ("events", Box::new(|c| { c.insert("events".into(), serde_json::json!({"other": {}})); })),
            ("nonce", Box::new(|c| { c.insert("nonce".into(), "n".into()); })),
            ("neither sid nor sub", Box::new(|c| { c.remove("sid"); })),
            ("jti", Box::new(|c| { c.remove("jti"); })),
            ("sid is not a short string", Box::new(|c| { c.insert("sid".into(), "x".repeat(300).into()); })),
        ];
        for (why, edit) in refused {
            let error = check(&claims(|c| edit(c))).expect_err(why);
            assert!(error.contains(why), "{why}: {error}");
        }
    }
}
