//! The pre-sign-in cookie: a sign-in in progress, kept by the browser that started it, sealed
//! ([`Sealer`]) so that it can neither read nor change it.
//!
//! `/authorize` writes nothing anywhere but this cookie: the `state`, the PKCE verifier and
//! the nonce, the provider, `return_to` and, for "Sign-in methods", the signed-in person the
//! identity is for. The callback takes its sign-in out of the cookie (single use on every
//! instance comes from the operation's unique state digest, see
//! [`Store::begin_operation`](crate::store::Store::begin_operation)) and puts the operation
//! it started in, which `/preloader`, `/get-status` and `/success` read from here rather
//! than from a session.
//!
//! The cookie never carries a `Domain` and, whenever cookies are `Secure` (always in
//! production), is named `__Host-…`, which browsers accept only from this host itself: a
//! sibling host of a shared `session.cookie_domain` can neither plant one nor read it, so a
//! session id it plants or learns finishes nobody's sign-in.

use std::time::Duration;

use axum::{
    extract::FromRequestParts,
    http::{HeaderValue, header, request::Parts},
    response::Response,
};
use oauth2::{CsrfToken, PkceCodeVerifier};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use tower_sessions::cookie::{Cookie, SameSite};

use super::{AppError, AppState, sealing::Sealer, twin_cookies::single_value};
use crate::{
    model::{millis, now_ms},
    store::{OperationId, UserId},
};

/// A `state` is good for this long after `/authorize`.
pub const STATE_LIFETIME: Duration = Duration::from_secs(10 * 60);
/// Sign-ins started in other tabs of the same browser that stay valid side by side.
const MAX_STARTED: usize = 4;
/// How long the cookie lives after it was last written: well past the 10 minutes a `state`
/// is good for and the exchange after it, so that a slow sign-in still finds it. Also how
/// long a replaced sealing key keeps opening (`sealing::KEY_LIFETIME`).
const COOKIE_LIFETIME: Duration = super::sealing::KEY_LIFETIME;
/// Browsers keep at least 4,096 bytes per cookie, name and attributes included: the oldest
/// started sign-ins give way past this many bytes of sealed value.
const MAX_SEALED_LEN: usize = 3600;

/// The cookie's name and whether it is `Secure`, from the configuration.
#[derive(Debug, Clone)]
pub struct PreSignInCookie {
    /// `__Host-{session.cookie_name}_signin` whenever `session.secure`, `{…}_signin`
    /// otherwise.
    pub name: String,
    pub secure: bool,
}

/// The signed-in person who started adding an identity, and when their sign-in began: the
/// identity is added only while that same sign-in lasts (a sign-out and a sign-in again,
/// even as the same person, ends it; the sealed cookie outlives a sign-out).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkOwner {
    #[serde(rename = "u")]
    pub user: UserId,
    #[serde(rename = "t")]
    pub since_ms: i64,
}

/// One started sign-in: what the callback must find to accept the provider's answer.
#[derive(Serialize, Deserialize)]
pub struct Started {
    /// The provider it was started for: a callback on another provider's path is refused.
    #[serde(rename = "p")]
    pub provider: String,
    #[serde(rename = "s")]
    state: CsrfToken,
    #[serde(rename = "v")]
    pub verifier: PkceCodeVerifier,
    /// The OpenID Connect nonce sent with the authorization request; the ID token must carry
    /// it back.
    #[serde(rename = "n")]
    pub nonce: String,
    #[serde(rename = "t")]
    issued_at_ms: i64,
    /// Started from "Sign-in methods": the callback adds the identity to this person.
    #[serde(rename = "l", default, skip_serializing_if = "Option::is_none")]
    pub link_for: Option<LinkOwner>,
    /// Where to go once signed in (`return_to`, already checked; checked again at the end).
    #[serde(rename = "r", default, skip_serializing_if = "Option::is_none")]
    pub return_to: Option<String>,
}

impl Started {
    /// A sign-in started now with a fresh `state` and PKCE verifier.
    pub fn new(
        provider: &str,
        state: CsrfToken,
        verifier: PkceCodeVerifier,
        nonce: String,
        link_for: Option<LinkOwner>,
        return_to: Option<String>,
    ) -> Self {
        Self {
            provider: provider.to_owned(),
            state,
            verifier,
            nonce,
            issued_at_ms: now_ms(),
            link_for,
            return_to,
        }
    }

    /// The `state` it was started with (the callback records its digest).
    pub fn state(&self) -> &str {
        self.state.secret()
    }

    fn is_fresh(&self, now: i64) -> bool {
        let age = now.saturating_sub(self.issued_at_ms);
        (0..=millis(STATE_LIFETIME)).contains(&age)
    }
}

/// The exchange this browser waits for, and what to do once it is done.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Waiting {
    #[serde(rename = "o")]
    pub operation: OperationId,
    /// The provider it was started for (the preloader names it).
    #[serde(rename = "p", default)]
    pub provider: String,
    #[serde(rename = "r", default, skip_serializing_if = "Option::is_none")]
    pub return_to: Option<String>,
    #[serde(rename = "l", default, skip_serializing_if = "Option::is_none")]
    pub link_for: Option<LinkOwner>,
}

/// A sign-in the provider declined before any exchange (the person cancelled, or the provider
/// answered with an error), for the error page.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Declined {
    #[serde(rename = "p")]
    pub provider: String,
    /// `access_denied`: the person cancelled.
    #[serde(rename = "c")]
    pub cancelled: bool,
    #[serde(rename = "r", default, skip_serializing_if = "Option::is_none")]
    pub return_to: Option<String>,
}

#[derive(Default, Serialize, Deserialize)]
struct Contents {
    #[serde(rename = "s", default, skip_serializing_if = "Vec::is_empty")]
    started: Vec<Started>,
    #[serde(rename = "w", default, skip_serializing_if = "Option::is_none")]
    waiting: Option<Waiting>,
    #[serde(rename = "d", default, skip_serializing_if = "Option::is_none")]
    declined: Option<Declined>,
}

impl Contents {
    fn is_empty(&self) -> bool {
        self.started.is_empty() && self.waiting.is_none() && self.declined.is_none()
    }
}

/// The pre-sign-in cookie of this request, opened (empty when the browser brought none, or
/// one that does not open). Handlers change it and [`attach`](Self::attach) it to their
/// answer, which then carries the cookie sealed again (or removed, once empty).
pub struct PreSignIn {
    contents: Contents,
    /// Whether the browser brought a cookie that opened.
    brought: bool,
    changed: bool,
    cookie: PreSignInCookie,
    sealer: Sealer,
}

impl FromRequestParts<AppState> for PreSignIn {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let cookie = state.settings.pre_sign_in.clone();
        let sealer = state.sealer.clone();
        let mut contents = None;
        // Two different values (one tossed in by another host) are as none.
        if let Some(value) = single_value(&parts.headers, &cookie.name)
            && let Some(plain) = sealer.open(&cookie.name, &value).await
        {
            // Sealed by this program from this type; should it ever not read back (an older
            // shape), the sign-in in progress starts again, the safe way round.
            contents = serde_json::from_str::<Contents>(&plain).ok();
        }
        Ok(Self {
            brought: contents.is_some(),
            contents: contents.unwrap_or_default(),
            changed: false,
            cookie,
            sealer,
        })
    }
}

impl PreSignIn {
    /// Adds a started sign-in. Older ones stay valid (a second tab), up to a few, and so does
    /// the exchange another tab's preloader waits for; a declined sign-in is forgotten (this
    /// is a new attempt).
    pub fn start(&mut self, started: Started) {
        let now = now_ms();
        let contents = &mut self.contents;
        contents.started.retain(|s| s.is_fresh(now));
        if contents.started.len() >= MAX_STARTED {
            contents.started.remove(0);
        }
        contents.started.push(started);
        contents.declined = None;
        self.changed = true;
    }

    /// Takes the started sign-in whose `state` matches, for `provider`, still fresh. Single
    /// use in this cookie: a match is removed; a miss (wrong, expired, another provider's)
    /// clears every started sign-in, since someone is feeding this browser callbacks it did
    /// not ask for.
    pub fn take(&mut self, provider: &str, state: &str) -> Option<Started> {
        let now = now_ms();
        let started = &mut self.contents.started;
        // Compare against every entry so the time taken does not tell which one matched.
        let mut matched = None;
        for (index, login) in started.iter().enumerate() {
            if bool::from(login.state.secret().as_bytes().ct_eq(state.as_bytes())) {
                matched = Some(index);
            }
        }
        let found = matched
            .map(|index| started.remove(index))
            .filter(|login| login.provider == provider && login.is_fresh(now));
        self.changed |= matched.is_some();
        if found.is_none() {
            self.clear_started();
        }
        found
    }

    /// Drops every started sign-in (a bad callback).
    pub fn clear_started(&mut self) {
        if !self.contents.started.is_empty() {
            self.contents.started.clear();
            self.changed = true;
        }
    }

    /// The exchange `operation`, started by the callback that took `started`, is what this
    /// browser now waits for.
    pub fn wait_for(&mut self, operation: OperationId, started: &Started) {
        self.contents.waiting = Some(Waiting {
            operation,
            provider: started.provider.clone(),
            return_to: started.return_to.clone(),
            link_for: started.link_for,
        });
        self.changed = true;
    }

    /// The exchange this browser waits for.
    pub fn waiting(&self) -> Option<&Waiting> {
        self.contents.waiting.as_ref()
    }

    /// The provider declined `started` before any exchange.
    pub fn decline(&mut self, started: &Started, cancelled: bool) {
        self.contents.declined = Some(Declined {
            provider: started.provider.clone(),
            cancelled,
            return_to: started.return_to.clone(),
        });
        self.changed = true;
    }

    /// Takes the declined sign-in, for the error page.
    pub fn take_declined(&mut self) -> Option<Declined> {
        let declined = self.contents.declined.take();
        self.changed |= declined.is_some();
        declined
    }

    /// Forgets the exchange waited for (it is finished with).
    pub fn stop_waiting(&mut self) {
        if self.contents.waiting.take().is_some() {
            self.changed = true;
        }
    }

    /// Forgets everything (signed in: nothing is in progress any more).
    pub fn clear(&mut self) {
        if !self.contents.is_empty() {
            self.contents = Contents::default();
            self.changed = true;
        }
    }

    /// `response` with the cookie sealed again when it changed, or removed once empty.
    pub fn attach(mut self, mut response: Response) -> Response {
        if let Some(value) = self.set_cookie() {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
        response
    }

    fn set_cookie(&mut self) -> Option<HeaderValue> {
        if !self.changed {
            return None;
        }
        let name = self.cookie.name.clone();
        let secure = self.cookie.secure;
        let builder = |value: String| {
            Cookie::build((name.clone(), value))
                .path("/")
                .http_only(true)
                // The provider's redirect back is a cross-site top-level GET, which must bring it.
                .same_site(SameSite::Lax)
                .secure(secure)
        };
        let cookie = if self.contents.is_empty() {
            if !self.brought {
                return None;
            }
            builder(String::new())
                .max_age(tower_sessions::cookie::time::Duration::ZERO)
                .build()
        } else {
            let sealed = self.sealed();
            let max_age = tower_sessions::cookie::time::Duration::try_from(COOKIE_LIFETIME).ok()?;
            builder(sealed).max_age(max_age).build()
        };
        HeaderValue::from_str(&cookie.to_string()).ok()
    }

    /// The contents sealed, the oldest started sign-ins dropped while it is too long.
    fn sealed(&mut self) -> String {
        loop {
            // Serialising these plain types cannot fail; should it, the cookie is emptied.
            let plain = serde_json::to_string(&self.contents).unwrap_or_default();
            let sealed = self.sealer.seal(&self.cookie.name, &plain);
            if sealed.len() <= MAX_SEALED_LEN || self.contents.started.is_empty() {
                return sealed;
            }
            self.contents.started.remove(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::web::sealing::new_secret;

    fn empty(sealer: &Sealer) -> PreSignIn {
        PreSignIn {
            contents: Contents::default(),
            brought: false,
            changed: false,
            cookie: PreSignInCookie {
                name: "__Host-s_signin".to_owned(),
                secure: true,
            },
            sealer: sealer.clone(),
        }
    }

    fn started(provider: &str, return_to: Option<String>) -> Started {
        let (_, verifier) = oauth2::PkceCodeChallenge::new_random_sha256();
        Started::new(
            provider,
            CsrfToken::new_random_len(32),
            verifier,
            CsrfToken::new_random_len(32).into_secret(),
            None,
            return_to,
        )
    }

    #[test]
    fn four_started_sign_ins_fit_and_the_oldest_give_way_to_long_return_addresses() {
        let sealer = Sealer::configured(&new_secret());
        let mut pre = empty(&sealer);
        for _ in 0..6 {
            pre.start(started("facebook", Some(format!("/{}", "a".repeat(300)))));
        }
        assert_eq!(pre.contents.started.len(), MAX_STARTED);
        assert!(pre.sealed().len() <= MAX_SEALED_LEN);
        assert_eq!(pre.contents.started.len(), MAX_STARTED);
        let long = Some(format!("/{}", "a".repeat(super::super::return_to::MAX_LEN - 2)));
        pre.start(started("facebook", long.clone()));
        let sealed = pre.sealed();
        assert!(sealed.len() <= MAX_SEALED_LEN, "{}", sealed.len());
        assert_eq!(pre.contents.started.len(), 1, "the newest stays");
        assert_eq!(pre.contents.started[0].return_to, long);
    }

    #[test]
    fn a_state_is_taken_once_and_only_for_its_provider() {
        let sealer = Sealer::configured(&new_secret());
        let mut pre = empty(&sealer);
        let first = started("facebook", None);
        let state = first.state().to_owned();
        pre.start(first);
        pre.start(started("github", None));
        assert!(pre.take("github", &state).is_none(), "another provider's path");
        assert!(pre.contents.started.is_empty(), "a miss clears them all");
        let first = started("facebook", None);
        let state = first.state().to_owned();
        pre.start(first);
        pre.start(started("github", None));
        assert!(pre.take("facebook", &state).is_some());
        assert_eq!(pre.contents.started.len(), 1, "the other tab's stays");
        assert!(pre.take("facebook", &state).is_none(), "single use");
    }
}
