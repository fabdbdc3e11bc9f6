//! Two cookies of one name: never resolved in anyone's favour.
//!
//! A browser sends every cookie whose domain and path match, so it can hold two of one name:
//! its own, and one another host of a shared `session.cookie_domain` tossed in for the whole
//! domain (or for a longer path, which the browser then sends first). Reading "the last one",
//! as the session layer would, lets that other host silently switch a signed-in person to an
//! account of its choosing (login CSRF). So a request bringing two different values of the
//! session cookie is answered as signed out, and both are removed: [`single_value`] is the
//! only way this crate reads a cookie it trusts, and [`sign_out_twins`] keeps the session
//! layer from ever seeing twins.

use axum::{
    extract::{Request, State},
    http::{HeaderMap, HeaderValue, header},
    middleware::Next,
    response::Response,
};
use tower_sessions::cookie::{Cookie, SameSite};

use super::cookie_guard::SessionCookie;

/// The value of the cookie `name` in the request's `Cookie` headers (HTTP/2 sends one header
/// per cookie): `None` when there is none, or when there are several that disagree. The same
/// value twice (a proxy that repeats the header) is still that value.
pub(super) fn single_value(headers: &HeaderMap, name: &str) -> Option<String> {
    let mut values = values_of(headers, name);
    let first = values.next()?;
    values.all(|other| other == first).then_some(first)
}

fn values_of<'h>(headers: &'h HeaderMap, name: &'h str) -> impl Iterator<Item = String> + 'h {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .filter(move |cookie| cookie.name() == name)
        .map(|cookie| cookie.value().to_owned())
}

/// Whether the request brings two or more different values of the cookie `name`.
fn has_twins(headers: &HeaderMap, name: &str) -> bool {
    let mut values = values_of(headers, name);
    values
        .next()
        .is_some_and(|first| values.any(|other| other != first))
}

/// Middleware, outside the session layer and its cookie guard: a request with twin session
/// cookies reaches the session layer without either (so it is answered as signed out, and a
/// session it starts gets a fresh id), and its answer removes both: the host-only one and, with
/// `session.cookie_domain`, the one for the domain. A removal is left out where the answer
/// already sets a new session cookie of that scope, which it would otherwise delete again.
pub async fn sign_out_twins(
    State(cookie): State<SessionCookie>,
    mut request: Request,
    next: Next,
) -> Response {
    if !has_twins(request.headers(), &cookie.name) {
        return next.run(request).await;
    }
    tracing::info!("two different session cookies: answered as signed out, both removed");
    strip(request.headers_mut(), &cookie.name);
    let mut response = next.run(request).await;
    // Host-only, and the shared domain's when there is one.
    let scopes = std::iter::once(None).chain(cookie.domain.as_deref().map(Some));
    for domain in scopes {
        if sets_cookie_for(response.headers(), &cookie.name, domain) {
            continue;
        }
        if let Ok(value) = HeaderValue::from_str(&removal(&cookie, domain).to_string()) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    response
}

/// Takes every `name=…` pair out of the request's `Cookie` headers, leaving the others as the
/// browser sent them (a header left empty is dropped).
fn strip(headers: &mut HeaderMap, name: &str) {
    let kept: Vec<HeaderValue> = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| {
            let Ok(text) = value.to_str() else {
                // Not text: no cookie of ours can be read from it either.
                return Some(value.clone());
            };
            let rest: Vec<&str> = text
                .split(';')
                .map(str::trim)
                .filter(|pair| !pair.is_empty())
                .filter(|pair| pair.split('=').next().map(str::trim) != Some(name))
                .collect();
            (!rest.is_empty())
                .then(|| HeaderValue::from_str(&rest.join("; ")).ok())
                .flatten()
        })
        .collect();
    headers.remove(header::COOKIE);
    for value in kept {
        headers.append(header::COOKIE, value);
    }
}

/// Whether the response sets (not removes) the cookie `name` for `domain` (`None`: host-only).
fn sets_cookie_for(headers: &HeaderMap, name: &str, domain: Option<&str>) -> bool {
    headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|value| Cookie::parse(value.to_str().ok()?.to_owned()).ok())
        .any(|set| {
            set.name() == name
                && set.max_age() != Some(tower_sessions::cookie::time::Duration::ZERO)
                && set.domain() == domain
        })
}

/// The removal of the session cookie in one scope, with the attributes it was set with (a
/// browser ignores the removal of a `__Host-` or `__Secure-` cookie that is not `Secure`).
fn removal(cookie: &SessionCookie, domain: Option<&str>) -> Cookie<'static> {
    let mut removal = Cookie::build((cookie.name.to_string(), ""))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(cookie.secure)
        .build();
    if let Some(domain) = domain {
        removal.set_domain(domain.to_owned());
    }
    removal.make_removal();
    removal
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(header::COOKIE, HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    #[test]
    fn one_value_is_read_and_disagreeing_twins_are_none() {
        let sid = "sid";
        assert_eq!(single_value(&headers(&["a=1; sid=x; b=2"]), sid).as_deref(), Some("x"));
        assert_eq!(single_value(&headers(&["sid=x; sid=x"]), sid).as_deref(), Some("x"));
        assert_eq!(single_value(&headers(&["sid=x; sid=y"]), sid), None);
        assert_eq!(single_value(&headers(&["sid=x", "sid=y"]), sid), None);
        assert_eq!(single_value(&headers(&["a=1"]), sid), None);
        assert_eq!(single_value(&HeaderMap::new(), sid), None);
        assert!(has_twins(&headers(&["sid=y", "a=1; sid=x"]), sid));
        assert!(!has_twins(&headers(&["sid=x", "sid=x"]), sid));
        assert!(!has_twins(&headers(&["sid=x; sidx=y"]), sid));
    }

    #[test]
    fn stripping_keeps_the_other_cookies_as_sent() {
        let mut map = headers(&["a=1; sid=x; b=\"q\"", "sid=y", "c=3"]);
        strip(&mut map, "sid");
        let left: Vec<&str> = map
            .get_all(header::COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect();
        assert_eq!(left, ["a=1; b=\"q\"", "c=3"]);
    }

    #[test]
    fn removals_match_the_scope_they_remove() {
        let cookie = SessionCookie {
            name: Arc::from("__Secure-sid"),
            secure: true,
            domain: Some(Arc::from("example.com")),
        };
        let shared = removal(&cookie, Some("example.com")).to_string();
        for part in ["__Secure-sid=;", "Max-Age=0", "Domain=example.com", "Secure", "Path=/"] {
            assert!(shared.contains(part), "{part} in {shared}");
        }
        let own = removal(&cookie, None).to_string();
        assert!(!own.contains("Domain"), "{own}");
        let mut set = HeaderMap::new();
        set.append(
            header::SET_COOKIE,
            HeaderValue::from_static("__Secure-sid=abc; Domain=example.com; Path=/"),
        );
        assert!(sets_cookie_for(&set, "__Secure-sid", Some("example.com")));
        assert!(!sets_cookie_for(&set, "__Secure-sid", None));
        set.append(header::SET_COOKIE, HeaderValue::from_str(&own).unwrap());
        assert!(!sets_cookie_for(&set, "__Secure-sid", None));
    }
}
