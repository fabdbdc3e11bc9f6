//! Keeps a stale request from signing the browser out.
//!
//! At sign-in the session id changes. A request already on its way with the old id (a
//! long poll, another tab) finds no record, and tower-sessions answers it with a cookie
//! *removal*; cookies are removed by name, not by value, so that removal would delete the
//! new signed-in cookie. Only a deliberate sign-out may remove the cookie: handlers say so
//! through [`SignOutIntent`], and this middleware drops any other removal.

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use axum::{
    extract::{Request, State},
    http::{HeaderValue, header},
    middleware::Next,
    response::Response,
};
use tower_sessions::cookie::{Cookie, time::Duration};

/// Set by [`super::WebSession::sign_out`] for the request it handles.
#[derive(Clone, Default)]
pub struct SignOutIntent(Arc<AtomicBool>);

impl SignOutIntent {
    pub fn declare(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    fn declared(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// The session cookie as the session layer sets it.
#[derive(Clone)]
pub struct SessionCookie {
    pub name: Arc<str>,
    /// `session.secure`: the cookie is `Secure`, and so must its removal be.
    pub secure: bool,
    /// `session.cookie_domain`: a cookie set with a `Domain` is only removed by a removal
    /// with the same one (a host-only removal would leave it in the browser).
    pub domain: Option<Arc<str>>,
    /// `server.public_url`'s host when it is a name (not an address): the domains a cookie
    /// of the name could have been tossed in for are this one and those it is inside.
    pub host: Option<Arc<str>>,
}

/// Middleware, outside the session layer: drops session-cookie removals nobody asked for, and
/// makes the ones a sign-out asked for `Secure` when the cookie is. tower-sessions builds a
/// removal from the name and path alone, and a browser ignores a removal of a `__Host-`
/// cookie without `Secure`: the signed-out cookie would stay in it.
pub async fn keep_cookie_unless_signed_out(
    State(cookie): State<SessionCookie>,
    mut request: Request,
    next: Next,
) -> Response {
    let intent = SignOutIntent::default();
    request.extensions_mut().insert(intent.clone());
    let mut response = next.run(request).await;
    if !response.headers().contains_key(header::SET_COOKIE) {
        return response;
    }
    let signing_out = intent.declared();
    let kept: Vec<HeaderValue> = response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|value| match removal_of(value, &cookie.name) {
            None => Some(value.clone()),
            Some(_) if !signing_out => None,
            Some(mut removal) => {
                removal.set_secure(cookie.secure);
                if let Some(domain) = &cookie.domain {
                    removal.set_domain(domain.to_string());
                }
                HeaderValue::from_str(&removal.to_string()).ok()
            }
        })
        .collect();
    let headers = response.headers_mut();
    headers.remove(header::SET_COOKIE);
    for value in kept {
        headers.append(header::SET_COOKIE, value);
    }
    response
}

/// The cookie in `value` when it removes `cookie_name` (`Max-Age=0`, how tower-cookies
/// removes a cookie).
fn removal_of(value: &HeaderValue, cookie_name: &str) -> Option<Cookie<'static>> {
    let cookie = Cookie::parse(value.to_str().ok()?.to_owned()).ok()?;
    (cookie.name() == cookie_name && cookie.max_age() == Some(Duration::ZERO)).then_some(cookie)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_removals_of_our_cookie_match() {
        let removal = HeaderValue::from_static(
            "sid=; HttpOnly; SameSite=Lax; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT",
        );
        assert!(removal_of(&removal, "sid").is_some());
        assert!(removal_of(&removal, "other").is_none());
        let set = HeaderValue::from_static("sid=abc; HttpOnly; Path=/; Max-Age=2592000");
        assert!(removal_of(&set, "sid").is_none());
        assert!(removal_of(&removal, "si").is_none());
    }
}
