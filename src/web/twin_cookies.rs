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
//!
//! The session layer (tower-cookies) percent-decodes cookie names, and browsers apply the
//! `__Host-` and `__Secure-` rules to the name as written: a cookie named
//! `%5F%5FHost-loginwith_session` can be set by any host of the parent domain, and would be
//! read as `__Host-loginwith_session`. Such aliases are taken out of every request before
//! the session layer sees them; this crate's own readers compare names as written.
//!
//! Headers are read as UTF-8, as the session layer reads them (not only as visible ASCII): a
//! cookie with an accent beside the twins must not hide them from us while the layer still
//! reads them.

use axum::{
    extract::{Request, State},
    http::{HeaderMap, HeaderValue, header},
    middleware::Next,
    response::Response,
};
use percent_encoding::percent_decode_str;
use tower_sessions::cookie::{Cookie, SameSite};

use super::cookie_guard::SessionCookie;

/// The most path prefixes a twin is removed for: a cookie tossed in for a deeper path than
/// this is left, and keeps only the pages below that path signed out.
const MAX_REMOVAL_PATHS: usize = 8;

/// The value of the cookie `name` in the request's `Cookie` headers (HTTP/2 sends one header
/// per cookie): `None` when there is none, or when there are several that disagree. The same
/// value twice (a proxy that repeats the header) is still that value.
pub(super) fn single_value(headers: &HeaderMap, name: &str) -> Option<String> {
    let mut values = values_of(headers, name);
    let first = values.next()?;
    values.all(|other| other == first).then_some(first)
}

/// Each `Cookie` header as text, as the session layer reads it (UTF-8; a header that is not
/// is skipped by both).
fn cookie_headers(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| std::str::from_utf8(value.as_bytes()).ok())
}

fn values_of<'h>(headers: &'h HeaderMap, name: &'h str) -> impl Iterator<Item = String> + 'h {
    cookie_headers(headers)
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

/// The name of a `name=value` pair as written, and as the session layer reads it.
fn pair_names(pair: &str) -> (&str, String) {
    let written = pair.split('=').next().unwrap_or_default().trim();
    let decoded = percent_decode_str(written).decode_utf8_lossy().into_owned();
    (written, decoded)
}

/// Whether a pair is an alias of the cookie `name`: written otherwise, read as `name`. Only a
/// name with a `%` can be one, so every other pair of every request is spared the decoding.
fn is_alias(pair: &str, name: &str) -> bool {
    if !pair.split('=').next().unwrap_or_default().contains('%') {
        return false;
    }
    let (written, decoded) = pair_names(pair);
    written != name && decoded == name
}

/// Middleware, outside the session layer and its cookie guard. Aliases of the session cookie
/// (see the module) are taken out of every request. A request with twin session cookies
/// reaches the session layer without either (so it is answered as signed out, and a session it
/// starts gets a fresh id), and its answer removes the cookie in every scope the browser could
/// have sent it from: host-only and for each domain the public host is inside, for `/` and for
/// each prefix of the path asked for. A removal is left out where the answer already sets a
/// new session cookie of that scope, which it would otherwise delete again.
pub async fn sign_out_twins(
    State(cookie): State<SessionCookie>,
    mut request: Request,
    next: Next,
) -> Response {
    let name = cookie.name.as_ref();
    if cookie_headers(request.headers())
        .flat_map(|text| text.split(';'))
        .any(|pair| is_alias(pair, name))
    {
        tracing::info!("a percent-encoded alias of the session cookie was left out");
        strip(request.headers_mut(), |pair| is_alias(pair, name));
    }
    if !has_twins(request.headers(), name) {
        return next.run(request).await;
    }
    tracing::info!("two different session cookies: answered as signed out, both removed");
    strip(request.headers_mut(), |pair| pair_names(pair).0 == name);
    let paths = removal_paths(request.uri().path());
    let mut response = next.run(request).await;
    let domains = std::iter::once(None).chain(domains_around(cookie.host.as_deref()).map(Some));
    for domain in domains {
        for path in &paths {
            if path == "/" && sets_cookie_for(response.headers(), name, domain) {
                continue;
            }
            if let Ok(value) = HeaderValue::from_str(&removal(&cookie, domain, path).to_string())
            {
                response.headers_mut().append(header::SET_COOKIE, value);
            }
        }
    }
    response
}

/// Takes every pair `drop` says out of the request's `Cookie` headers, leaving the others as
/// the browser sent them (a header left empty is dropped).
fn strip(headers: &mut HeaderMap, drop: impl Fn(&str) -> bool) {
    let kept: Vec<HeaderValue> = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| {
            let Ok(text) = std::str::from_utf8(value.as_bytes()) else {
                // Not UTF-8: the session layer skips it too.
                return Some(value.clone());
            };
            let rest: Vec<&str> = text
                .split(';')
                .map(str::trim)
                .filter(|pair| !pair.is_empty() && !drop(pair))
                .collect();
            (!rest.is_empty())
                .then(|| HeaderValue::from_bytes(rest.join("; ").as_bytes()).ok())
                .flatten()
        })
        .collect();
    headers.remove(header::COOKIE);
    for value in kept {
        headers.append(header::COOKIE, value);
    }
}

/// The public host and every domain it is inside (`login.example.com`, `example.com`,
/// `com`: a browser ignores a removal for a public suffix), none for an IP address.
fn domains_around(host: Option<&str>) -> impl Iterator<Item = &str> {
    let host = host.filter(|host| host.parse::<std::net::IpAddr>().is_err() && !host.starts_with('['));
    std::iter::successors(host, |domain| domain.split_once('.').map(|(_, parent)| parent))
}

/// `/`, and the prefixes of `path` a cookie's `Path` could be for the browser to send it
/// with this request (`/a`, `/a/`, `/a/b` for `/a/b`), at most [`MAX_REMOVAL_PATHS`].
fn removal_paths(path: &str) -> Vec<String> {
    let mut paths = vec!["/".to_owned()];
    for (at, _) in path.match_indices('/').skip(1) {
        paths.push(path[..at].to_owned());
        paths.push(path[..=at].to_owned());
    }
    if path.len() > 1 && !path.ends_with('/') {
        paths.push(path.to_owned());
    }
    paths.dedup();
    paths.truncate(MAX_REMOVAL_PATHS);
    paths
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
fn removal(cookie: &SessionCookie, domain: Option<&str>, path: &str) -> Cookie<'static> {
    let mut removal = Cookie::build((cookie.name.to_string(), ""))
        .path(path.to_owned())
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

    fn headers(values: &[&[u8]]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(header::COOKIE, HeaderValue::from_bytes(value).unwrap());
        }
        headers
    }

    #[test]
    fn one_value_is_read_and_disagreeing_twins_are_none() {
        let sid = "sid";
        assert_eq!(single_value(&headers(&[b"a=1; sid=x; b=2"]), sid).as_deref(), Some("x"));
        assert_eq!(single_value(&headers(&[b"sid=x; sid=x"]), sid).as_deref(), Some("x"));
        assert_eq!(single_value(&headers(&[b"sid=x; sid=y"]), sid), None);
        assert_eq!(single_value(&headers(&[b"sid=x", b"sid=y"]), sid), None);
        assert_eq!(single_value(&headers(&[b"a=1"]), sid), None);
        assert_eq!(single_value(&HeaderMap::new(), sid), None);
        assert!(has_twins(&headers(&[b"sid=y", b"a=1; sid=x"]), sid));
        assert!(!has_twins(&headers(&[b"sid=x", b"sid=x"]), sid));
        assert!(!has_twins(&headers(&[b"sid=x; sidx=y"]), sid));
        // A cookie that is not visible ASCII beside them hides nothing.
        let accent = "sid=x; sid=y; z=\u{e9}";
        assert!(has_twins(&headers(&[accent.as_bytes()]), sid));
        assert_eq!(single_value(&headers(&[accent.as_bytes()]), sid), None);
        // An alias is not the cookie for this crate's readers.
        assert_eq!(single_value(&headers(&[b"%73id=y"]), sid), None);
    }

    #[test]
    fn aliases_are_names_that_decode_to_the_cookie() {
        assert!(is_alias("%5F%5FHost-sid=1", "__Host-sid"));
        assert!(is_alias("sid%5Fkey=1", "sid_key"));
        assert!(!is_alias("__Host-sid=1", "__Host-sid"));
        assert!(!is_alias("other=1", "__Host-sid"));
    }

    #[test]
    fn stripping_keeps_the_other_cookies_as_sent() {
        let mut map = headers(&[b"a=1; sid=x; b=\"q\"", b"sid=y", "c=\u{e9}".as_bytes()]);
        strip(&mut map, |pair| pair_names(pair).0 == "sid");
        let left: Vec<&[u8]> = map.get_all(header::COOKIE).iter().map(|v| v.as_bytes()).collect();
        assert_eq!(left, [b"a=1; b=\"q\"".as_slice(), "c=\u{e9}".as_bytes()]);
    }

    #[test]
    fn removals_cover_every_scope_a_twin_can_come_from() {
        let domains: Vec<&str> = domains_around(Some("login.example.com")).collect();
        assert_eq!(domains, ["login.example.com", "example.com", "com"]);
        assert_eq!(domains_around(Some("127.0.0.1")).count(), 0);
        assert_eq!(domains_around(None).count(), 0);
        assert_eq!(removal_paths("/"), ["/"]);
        assert_eq!(removal_paths("/account"), ["/", "/account"]);
        assert_eq!(
            removal_paths("/account/identities/"),
            ["/", "/account", "/account/", "/account/identities", "/account/identities/"]
        );
        assert_eq!(removal_paths(&"/a".repeat(40)).len(), MAX_REMOVAL_PATHS);
        let cookie = SessionCookie {
            name: Arc::from("__Secure-sid"),
            secure: true,
            domain: Some(Arc::from("example.com")),
            host: Some(Arc::from("login.example.com")),
        };
        let shared = removal(&cookie, Some("example.com"), "/").to_string();
        for part in ["__Secure-sid=;", "Max-Age=0", "Domain=example.com", "Secure", "Path=/"] {
            assert!(shared.contains(part), "{part} in {shared}");
        }
        let own = removal(&cookie, None, "/account").to_string();
        assert!(!own.contains("Domain"), "{own}");
        assert!(own.contains("Path=/account"), "{own}");
        let mut set = HeaderMap::new();
        set.append(
            header::SET_COOKIE,
            HeaderValue::from_static("__Secure-sid=abc; Domain=example.com; Path=/"),
        );
        assert!(sets_cookie_for(&set, "__Secure-sid", Some("example.com")));
        assert!(!sets_cookie_for(&set, "__Secure-sid", None));
        set.append(
            header::SET_COOKIE,
            HeaderValue::from_str(&removal(&cookie, None, "/").to_string()).unwrap(),
        );
        assert!(!sets_cookie_for(&set, "__Secure-sid", None));
    }
}
