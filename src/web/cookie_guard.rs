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

/// Middleware, outside the session layer: drops session-cookie removals nobody asked for.
pub async fn keep_cookie_unless_signed_out(
    State(cookie_name): State<Arc<str>>,
    mut request: Request,
    next: Next,
) -> Response {
    let intent = SignOutIntent::default();
    request.extensions_mut().insert(intent.clone());
    let mut response = next.run(request).await;
    if !intent.declared() && response.headers().contains_key(header::SET_COOKIE) {
        let kept: Vec<HeaderValue> = response
            .headers()
            .get_all(header::SET_COOKIE)
            .iter()
            .filter(|value| !is_removal_of(value, &cookie_name))
            .cloned()
            .collect();
        let headers = response.headers_mut();
        if headers.get_all(header::SET_COOKIE).iter().count() != kept.len() {
            headers.remove(header::SET_COOKIE);
            for value in kept {
                headers.append(header::SET_COOKIE, value);
            }
        }
    }
    response
}

/// `name=; ... Max-Age=0 ...`: how tower-cookies removes a cookie.
fn is_removal_of(value: &HeaderValue, cookie_name: &str) -> bool {
    let Ok(text) = value.to_str() else {
        return false;
    };
    text.strip_prefix(cookie_name)
        .and_then(|rest| rest.strip_prefix('='))
        .is_some_and(|rest| rest.split(';').any(|part| part.trim() == "Max-Age=0"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_removals_of_our_cookie_match() {
        let removal = HeaderValue::from_static(
            "sid=; HttpOnly; SameSite=Lax; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT",
        );
        assert!(is_removal_of(&removal, "sid"));
        assert!(!is_removal_of(&removal, "other"));
        let set = HeaderValue::from_static("sid=abc; HttpOnly; Path=/; Max-Age=2592000");
        assert!(!is_removal_of(&set, "sid"));
        assert!(!is_removal_of(&removal, "si"));
    }
}
