//! What an ID token and a userinfo answer say, and whether to believe it: every check on the
//! ID token (openidconnect's and ours), then the person read from its claims, their groups
//! bounded, and what userinfo adds. The client in `oidc.rs` calls these in that order.

use super::*;

/// Why an ID token was not accepted: a key we may not have yet, or anything else.
pub(super) enum Checked {
    UnknownKey,
    Invalid(ExchangeError),
}

/// Every ID-token check: openidconnect's (signature with an allowed algorithm, `iss` unless
/// `issuer_fixed` is false and the caller checks it, `aud`, `exp`, `nonce`) and ours (`iat`,
/// `azp`, `at_hash`).
pub(super) fn check_id_token(
    discovered: &Discovered,
    id_token: &IdTokenWithOthers,
    token: &CoreTokenResponse,
    client_id: &ClientId,
    nonce: &str,
    issuer_fixed: bool,
) -> Result<IdTokenClaimsWithOthers, Checked> {
    let verifier: CoreIdTokenVerifier<'_> = discovered
        .client
        .id_token_verifier()
        .require_issuer_match(issuer_fixed)
        .set_allowed_algs(ALLOWED_ALGS)
        // The crate leaves `iat` alone: a token issued in the future is forged or from a
        // clock we should not trust.
        .set_issue_time_verifier_fn(|iat| {
            let latest = chrono::Utc::now() + IAT_LEEWAY;
            if iat > latest {
                Err(format!("iat {iat} is in the future"))
            } else {
                Ok(())
            }
        });
    let claims = id_token
        .claims(&verifier, &Nonce::new(nonce.to_owned()))
        .map_err(|error| match error {
            ClaimsVerificationError::SignatureVerification(
                SignatureVerificationError::NoMatchingKey,
            ) => Checked::UnknownKey,
            other => Checked::Invalid(invalid(format!(
                "id_token: {}",
                excerpt(&error_chain(&other), 200)
            ))),
        })?;
    check_authorized_party(claims, client_id).map_err(Checked::Invalid)?;
    check_access_token_hash(claims, id_token, &verifier, token).map_err(Checked::Invalid)?;
    Ok(claims.clone())
}

/// `at_hash`, which openidconnect does not check: when present it must be the left half of
/// the access token's hash, or the access token was swapped for another.
pub(super) fn check_access_token_hash(
    claims: &IdTokenClaimsWithOthers,
    id_token: &IdTokenWithOthers,
    verifier: &CoreIdTokenVerifier<'_>,
    token: &CoreTokenResponse,
) -> Result<(), ExchangeError> {
    let Some(expected) = claims.access_token_hash() else {
        return Ok(());
    };
    let alg = id_token
        .signing_alg()
        .map_err(|e| invalid(format!("id_token: {e}")))?;
    let key = id_token
        .signing_key(verifier)
        .map_err(|e| invalid(format!("id_token: {e}")))?;
    let actual = AccessTokenHash::from_token(token.access_token(), alg, key)
        .map_err(|e| invalid(format!("id_token: at_hash: {e}")))?;
    if actual == *expected {
        Ok(())
    } else {
        Err(invalid("id_token: at_hash does not match the access token"))
    }
}

/// `azp`, which openidconnect does not check: when present it must be us, or the token was
/// issued to another client.
pub(super) fn check_authorized_party(
    claims: &IdTokenClaimsWithOthers,
    client_id: &ClientId,
) -> Result<(), ExchangeError> {
    match claims.authorized_party() {
        Some(azp) if azp != client_id => Err(invalid(format!(
            "id_token: azp {:?} is another client",
            excerpt(azp, 50)
        ))),
        _ => Ok(()),
    }
}

/// The person from the ID token: `sub` is the identity (stable, never reused), never the
/// address.
pub(super) fn profile_from_id_token(claims: &IdTokenClaimsWithOthers) -> Profile {
    let (first_name, last_name) = names(
        claims
            .given_name()
            .and_then(|n| n.get(None))
            .map(|n| n.to_string()),
        claims
            .family_name()
            .and_then(|n| n.get(None))
            .map(|n| n.to_string()),
        claims
            .name()
            .and_then(|n| n.get(None))
            .map(|n| n.to_string()),
    );
    let email = clean(claims.email().map(|e| e.to_string()));
    Profile {
        provider_user_id: claims.subject().to_string(),
        first_name,
        last_name,
        email_verified: email.is_some() && claims.email_verified() == Some(true),
        email,
        issuer: Some(claims.issuer().to_string()),
        membership: Default::default(),
        provider_sid: session_id(claims.additional_claims()),
        names_withheld: false,
    }
}

/// The issuer's session id (`sid`, OpenID Connect Front- and Back-Channel Logout), kept
/// with the sign-in so that a logout token naming it ends it. A value that is not a short
/// string is no session id.
pub(super) fn session_id(claims: &OtherClaims) -> Option<String> {
    match claims.get("sid") {
        Some(Value::String(sid)) if !sid.is_empty() && sid.len() <= MAX_SID_LEN => {
            Some(sid.clone())
        }
        _ => None,
    }
}

/// The longest `sid` kept (issuers send UUIDs or shorter).
pub(super) const MAX_SID_LEN: usize = 255;

/// What a groups claim holds.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Claimed {
    /// No such claim.
    Absent,
    /// The strings of a string or of a list (its other members left out), as written.
    Groups(Vec<String>),
    /// A claim of another type (`null` included), named for the log.
    OtherType(&'static str),
}

/// The top-level claim `name` as groups: one string is one group, a list keeps its strings
/// and leaves out anything else (a number among names is the issuer's quirk, not a reason to
/// lose the rest).
pub(super) fn claimed_groups(claims: &OtherClaims, name: &str) -> Claimed {
    match claims.get(name) {
        None => Claimed::Absent,
        Some(Value::String(group)) => Claimed::Groups(vec![group.clone()]),
        Some(Value::Array(values)) => Claimed::Groups(
            values
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
        ),
        Some(Value::Null) => Claimed::OtherType("null"),
        Some(Value::Bool(_)) => Claimed::OtherType("a boolean"),
        Some(Value::Number(_)) => Claimed::OtherType("a number"),
        Some(Value::Object(_)) => Claimed::OtherType("an object"),
    }
}

/// Sorted, without duplicates or empty values, at most [`MAX_GROUPS`] of at most
/// [`MAX_GROUP_LEN`] bytes. A longer value is left out rather than cut (a cut name could be
/// another group's); beyond the count, the first in sorted order are kept.
pub(super) fn bounded(mut groups: Vec<String>, provider: &str) -> Vec<String> {
    groups.retain(|g| !g.is_empty() && g.len() <= MAX_GROUP_LEN);
    groups.sort_unstable();
    groups.dedup();
    if groups.len() > MAX_GROUPS {
        debug!(
            provider,
            given = groups.len(),
            "more groups than {MAX_GROUPS}: the first {MAX_GROUPS} in sorted order are kept"
        );
        groups.truncate(MAX_GROUPS);
    }
    groups
}

/// Fills what the ID token left empty from userinfo (already checked to be the same `sub`).
pub(super) fn fill_from_userinfo(profile: &mut Profile, userinfo: &UserInfoWithOthers) {
    if profile.first_name.is_empty() {
        let (first, last) = names(
            userinfo
                .given_name()
                .and_then(|n| n.get(None))
                .map(|n| n.to_string()),
            userinfo
                .family_name()
                .and_then(|n| n.get(None))
                .map(|n| n.to_string()),
            userinfo
                .name()
                .and_then(|n| n.get(None))
                .map(|n| n.to_string()),
        );
        profile.first_name = first;
        profile.last_name = last;
    }
    if profile.email.is_none() {
        profile.email = clean(userinfo.email().map(|e| e.to_string()));
        profile.email_verified = profile.email.is_some() && userinfo.email_verified() == Some(true);
    }
}

/// `given_name`/`family_name` when given, else `name` split at its first space.
pub(super) fn names(given: Option<String>, family: Option<String>, name: Option<String>) -> (String, String) {
    match (clean(given), clean(family), clean(name)) {
        (Some(first), last, _) => (first, last.unwrap_or_default()),
        (None, Some(last), _) => (String::new(), last),
        (None, None, Some(name)) => match name.split_once(char::is_whitespace) {
            Some((first, rest)) => (first.to_owned(), rest.trim().to_owned()),
            None => (name, String::new()),
        },
        (None, None, None) => (String::new(), String::new()),
    }
}
