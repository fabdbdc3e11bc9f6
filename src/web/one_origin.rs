//! One origin: the pages people open are served only on `server.public_url`'s host and port.
//!
//! A browser keeps cookies per host. Someone who opens `http://127.0.0.1:3000` while the
//! public URL is `http://localhost:3000` gets a session cookie for `127.0.0.1`, while the
//! provider sends them back to `localhost` (the registered redirect URI), where that cookie
//! is not sent: every sign-in ends on "did not start in this browser". So a page opened on
//! any other host is sent, before its handler runs (no session is made), to the same path
//! and query on the public URL. Endpoints that machines call (health checks, the status
//! poll, the provider's callbacks, static files) are not behind this: a load balancer or a
//! proxy's sub-request must never be redirected.

use std::sync::Arc;

use axum::{
    extract::{Request, State},
    http::{HeaderValue, Method, StatusCode, Uri, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use url::Url;

use super::AppError;

/// `server.public_url`'s origin, resolved once at start-up.
#[derive(Debug, Clone)]
pub struct PublicOrigin {
    /// The public URL without its trailing slash, which redirect targets start with.
    base: String,
    /// Lower case; an IPv6 address in brackets, as it appears in a `Host` header.
    host: String,
    port: u16,
    /// The port a `Host` without one means: the public URL's scheme's (behind a proxy that
    /// ends TLS, the request itself arrives over plain HTTP, yet people used https).
    default_port: u16,
}

impl PublicOrigin {
    /// `public_url` is validated as an http(s) origin with a host, so neither default below
    /// is ever used.
    pub fn new(public_url: &Url) -> Self {
        let default_port = if public_url.scheme() == "https" {
            443
        } else {
            80
        };
        Self {
            base: public_url.as_str().trim_end_matches('/').to_owned(),
            host: public_url
                .host_str()
                .unwrap_or_default()
                .to_ascii_lowercase(),
            port: public_url.port_or_known_default().unwrap_or(default_port),
            default_port,
        }
    }

    /// Whether `authority` (`host[:port]`, as in a `Host` header) names this origin.
    fn is_ours(&self, authority: &str) -> bool {
        let Some((host, port)) = split_authority(authority) else {
            return false;
        };
        let port = match port {
            None | Some("") => Some(self.default_port),
            Some(digits) => digits.parse::<u16>().ok(),
        };
        host.eq_ignore_ascii_case(&self.host) && port == Some(self.port)
    }

    /// 308 to the same path and query here: the method and any body are kept, and the
    /// target is this origin whatever the request said, so it redirects nowhere else.
    fn redirect(&self, uri: &Uri) -> Response {
        let path = uri.path_and_query().map_or("/", |p| p.as_str());
        match HeaderValue::try_from(format!("{}{path}", self.base)) {
            Ok(location) => (
                StatusCode::PERMANENT_REDIRECT,
                [(header::LOCATION, location)],
            )
                .into_response(),
            // A parsed URI is always a valid header value; refused rather than served on
            // the wrong host should that ever change.
            Err(_) => AppError::BadRequest("This address cannot be opened here.").into_response(),
        }
    }
}

/// `host[:port]` into its two parts; `[v6]` and `[v6]:port` keep their brackets.
fn split_authority(authority: &str) -> Option<(&str, Option<&str>)> {
    if authority.starts_with('[') {
        let end = authority.find(']')? + 1;
        let (host, rest) = authority.split_at(end);
        return match rest {
            "" => Some((host, None)),
            _ => Some((host, Some(rest.strip_prefix(':')?))),
        };
    }
    Some(match authority.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    })
}

/// The host the request was sent to: its `Host` header, else (HTTP/2) the URI's authority.
/// `None` without either (HTTP/1.0), which is served as it is. A `Host` that is not text
/// names no host of ours.
fn requested_authority(request: &Request) -> Option<&str> {
    match request.headers().get(header::HOST) {
        Some(host) => Some(host.to_str().unwrap_or("")),
        None => request.uri().authority().map(|a| a.as_str()),
    }
}

/// Route middleware on the pages people open: a `GET` or `HEAD` on another host is
/// redirected to the public URL. Other methods pass (a form posted from a page we served
/// comes from our own host anyway).
pub async fn redirect_other_hosts(
    State(origin): State<Arc<PublicOrigin>>,
    request: Request,
    next: Next,
) -> Response {
    let is_read = matches!(*request.method(), Method::GET | Method::HEAD);
    match requested_authority(&request) {
        Some(authority) if is_read && !origin.is_ours(authority) => origin.redirect(request.uri()),
        _ => next.run(request).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin(url: &str) -> PublicOrigin {
        PublicOrigin::new(&Url::parse(url).unwrap())
    }

    #[test]
    fn hosts_compare_without_case_and_with_default_ports() {
        let http = origin("http://Localhost:3000");
        for same in ["localhost:3000", "LOCALHOST:3000"] {
            assert!(http.is_ours(same), "{same}");
        }
        for other in [
            "127.0.0.1:3000",
            "localhost",
            "localhost:80",
            "localhost:8080",
            "localhost:3000x",
            "localhost:99999",
            "",
            "[::1]:3000",
        ] {
            assert!(!http.is_ours(other), "{other}");
        }
        let https = origin("https://login.example.com");
        for same in [
            "login.example.com",
            "login.example.com:443",
            "login.example.com:",
        ] {
            assert!(https.is_ours(same), "{same}");
        }
        assert!(!https.is_ours("login.example.com:80"));
        assert!(!https.is_ours("evil.example.com"));
        let v6 = origin("http://[::1]:3000");
        assert!(v6.is_ours("[::1]:3000"));
        assert!(!v6.is_ours("[::1]"));
        assert!(!v6.is_ours("[::1"));
        assert!(!v6.is_ours("[::1]x3000"));
    }

    #[test]
    fn redirects_keep_path_and_query_on_the_public_url() {
        let origin = origin("https://login.example.com");
        let uri: Uri = "/authorize/facebook?x=1".parse().unwrap();
        let response = origin.redirect(&uri);
        assert_eq!(response.status(), StatusCode::PERMANENT_REDIRECT);
        assert_eq!(
            response.headers()[header::LOCATION],
            "https://login.example.com/authorize/facebook?x=1"
        );
        let absolute: Uri = "http://evil.example//x?y".parse().unwrap();
        assert_eq!(
            origin.redirect(&absolute).headers()[header::LOCATION],
            "https://login.example.com//x?y"
        );
    }
}
