//! The sign-in key: a random value in a cookie of its own that binds a sign-in in progress to
//! the browser that started it.
//!
//! The session cookie may be shared with a whole domain (`session.cookie_domain`, for forward
//! authentication), and then any host of that domain can plant a session id of its choosing in
//! a visitor's browser. The key's cookie never carries a `Domain` and, in production, is named
//! `__Host-…`, which browsers only accept from this host itself: no other host can set it, read
//! it or overwrite it. `/authorize` keeps the key's digest with the started sign-in, and the
//! callback and everything after it only continue a sign-in whose digest matches the key the
//! browser brings. So a session id planted before the sign-in (or learnt after it) finishes
//! nobody's sign-in but the planter's own.

use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue};
use oauth2::CsrfToken;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tower_sessions::cookie::{Cookie, SameSite};

use super::twin_cookies::single_value;

/// How long the key's cookie lives after the last `/authorize`: well past the 10 minutes a
/// `state` is good for and the exchange after it, so that a slow sign-in still finds it.
const LIFETIME: Duration = Duration::from_secs(60 * 60);

/// 256 random bits, base64url without padding.
const KEY_LEN: usize = 43;

/// The key cookie's name and whether it is `Secure`, from the configuration.
#[derive(Debug, Clone)]
pub struct SignInKeyCookie {
    /// `__Host-{session.cookie_name}_signin` in production, `{…}_signin` in development.
    pub name: String,
    pub secure: bool,
}

/// A browser's sign-in key.
pub struct SignInKey(String);

impl SignInKey {
    /// The key the request's cookie carries, if it carries one (and only one) of the right
    /// shape: anything else is as if there were none.
    pub fn from_request(headers: &HeaderMap, cookie: &SignInKeyCookie) -> Option<Self> {
        single_value(headers, &cookie.name)
            .filter(|value| {
                value.len() == KEY_LEN
                    && value
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            })
            .map(Self)
    }

    /// A new random key.
    pub fn generate() -> Self {
        Self(CsrfToken::new_random_len(32).into_secret())
    }

    /// What the server keeps: the key's SHA-256, so the session table alone does not give
    /// anyone the key.
    pub fn digest(&self) -> String {
        hex::encode(Sha256::digest(self.0.as_bytes()))
    }

    /// Whether `stored` (a [`digest`](Self::digest) kept with a sign-in) is this key's, in
    /// time that does not depend on where they differ. An empty `stored` matches nothing.
    pub fn opens(&self, stored: &str) -> bool {
        !stored.is_empty() && bool::from(self.digest().as_bytes().ct_eq(stored.as_bytes()))
    }

    /// The `Set-Cookie` value that gives the browser this key: host-only (no `Domain`, ever),
    /// `Path=/`, `HttpOnly`, `SameSite=Lax` (the provider's redirect back is a cross-site
    /// top-level GET, which must bring it), `Secure` with `session.secure`.
    pub fn set_cookie(&self, cookie: &SignInKeyCookie) -> Option<HeaderValue> {
        let max_age = tower_sessions::cookie::time::Duration::try_from(LIFETIME).ok()?;
        let set = Cookie::build((cookie.name.as_str(), self.0.as_str()))
            .path("/")
            .http_only(true)
            .same_site(SameSite::Lax)
            .secure(cookie.secure)
            .max_age(max_age)
            .build();
        HeaderValue::from_str(&set.to_string()).ok()
    }
}

#[cfg(test)]
mod tests {
    use axum::http::header;

    use super::*;

    fn cookie() -> SignInKeyCookie {
        SignInKeyCookie {
            name: "__Host-s_signin".to_owned(),
            secure: true,
        }
    }

    fn request_with(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn a_key_opens_only_its_own_digest() {
        let key = SignInKey::generate();
        let other = SignInKey::generate();
        assert!(key.opens(&key.digest()));
        assert!(!key.opens(&other.digest()));
        assert!(!key.opens(""));
        assert_eq!(key.digest().len(), 64);
    }

    #[test]
    fn only_one_well_formed_key_is_read() {
        let key = SignInKey::generate();
        let read = |value: String| SignInKey::from_request(&request_with(&value), &cookie());
        let name = "__Host-s_signin";
        assert!(read(format!("{name}={}", key.0)).is_some_and(|k| k.opens(&key.digest())));
        assert!(read(format!("{name}=short")).is_none());
        assert!(read(format!("{name}={}!", &key.0[1..])).is_none());
        let other = SignInKey::generate();
        assert!(read(format!("{name}={}; {name}={}", key.0, other.0)).is_none());
        assert!(read(format!("s_signin={}", key.0)).is_none());
    }

    #[test]
    fn the_cookie_is_host_only_and_secure() {
        let set = SignInKey::generate().set_cookie(&cookie()).unwrap();
        let set = set.to_str().unwrap();
        for part in ["__Host-s_signin=", "Path=/", "HttpOnly", "SameSite=Lax", "Secure", "Max-Age=3600"] {
            assert!(set.contains(part), "{part} in {set}");
        }
        assert!(!set.contains("Domain"), "{set}");
    }
}
