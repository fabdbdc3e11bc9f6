//! `return_to`: where a finished sign-in sends the browser, and the one check that decides
//! whether a requested target is allowed (an open redirect otherwise).

use url::{Position, Url};

use crate::config::AllowedHost;

/// The longest `return_to` kept, in bytes (after the query's own decoding).
pub const MAX_LEN: usize = 2048;

/// What a target is checked against, resolved once at start-up.
#[derive(Debug, Clone)]
pub struct ReturnRules {
    /// `server.public_url`: paths are resolved on it and must stay on its origin.
    pub public_url: Url,
    /// `gateway.allowed_hosts`.
    pub hosts: Vec<AllowedHost>,
    /// `http://` targets too (development); otherwise `https://` only.
    pub allow_http: bool,
}

/// The target to send the browser to, or `None` when `raw` is not allowed (the caller then
/// uses `/`). Allowed: a path on this site (`/`, or `/` followed by anything but `/` or `\`),
/// answered as the path, query and fragment the url crate serializes; or an absolute
/// `https://` URL (`http://` in development) without user info whose host `rules.hosts`
/// lists, answered as serialized. Control characters, whitespace and backslashes anywhere
/// refuse the target outright: the url crate (like browsers) silently drops tabs and
/// newlines and reads `\` as `/`, which is how `/\t/evil` and `/\evil` become another host.
/// Percent-encoded slashes are left alone: `/%2F%2Fevil.example` is a path on this site
/// (no browser decodes `%2F` into a separator), and `%2F%2Fevil.example` is not a path.
pub fn allowed_target(raw: &str, rules: &ReturnRules) -> Option<String> {
    if raw.is_empty()
        || raw.len() > MAX_LEN
        || raw.contains(|c: char| c.is_control() || c.is_whitespace() || c == '\\')
    {
        return None;
    }
    if raw.starts_with('/') {
        if raw.as_bytes().get(1) == Some(&b'/') {
            return None;
        }
        let url = rules.public_url.join(raw).ok()?;
        let target = &url[Position::BeforePath..];
        // Dot segments are resolved by the join: `/.//evil.example`, `/a/..//evil.example`
        // and `/%2e%2e//evil.example` all come out as `//evil.example`, which a browser reads
        // as another host. What is answered is checked, not only what was asked.
        return (url.origin() == rules.public_url.origin() && !target.starts_with("//"))
            .then(|| target.to_owned());
    }
    // Exactly `scheme://`: `https:evil.example` (which the url crate would read as
    // https://evil.example/) is not a URL we accept.
    let scheme_end = raw.find("://")?;
    let scheme = raw[..scheme_end].to_ascii_lowercase();
    if !(scheme == "https" || (scheme == "http" && rules.allow_http)) {
        return None;
    }
    let url = Url::parse(raw).ok()?;
    if url.scheme() != scheme || !url.username().is_empty() || url.password().is_some() {
        return None;
    }
    let host = url.host()?;
    let port = url.port_or_known_default()?;
    rules
        .hosts
        .iter()
        .any(|rule| rule.allows(&host, port))
        .then(|| url.to_string())
}

#[cfg(test)]
mod tests {
    use super::{MAX_LEN, ReturnRules, allowed_target};
    use crate::config::AllowedHost;
    use proptest::prelude::*;
    use url::Url;

    fn rules(hosts: &[&str], allow_http: bool) -> ReturnRules {
        ReturnRules {
            public_url: Url::parse("https://site.example").unwrap(),
            hosts: hosts
                .iter()
                .map(|h| AllowedHost::parse(h).unwrap())
                .collect(),
            allow_http,
        }
    }

    fn check(raw: &str) -> Option<String> {
        allowed_target(
            raw,
            &rules(&["app.example", ".corp.example", "api.example:8443"], false),
        )
    }

    #[test]
    fn paths_on_this_site_are_kept_with_query_and_fragment() {
        assert_eq!(check("/").as_deref(), Some("/"));
        assert_eq!(
            check("/dashboard?x=1#frag").as_deref(),
            Some("/dashboard?x=1#frag")
        );
        assert_eq!(
            check("/%2F%2Fevil.example").as_deref(),
            Some("/%2F%2Fevil.example")
        );
        assert_eq!(check("/a/../b").as_deref(), Some("/b"));
        assert_eq!(check("/../../x").as_deref(), Some("/x"));
        assert_eq!(check("/caf\u{e9}").as_deref(), Some("/caf%C3%A9"));
    }

    #[test]
    fn listed_hosts_are_kept() {
        assert_eq!(
            check("https://app.example/x").as_deref(),
            Some("https://app.example/x")
        );
        assert_eq!(
            check("HTTPS://APP.example/x").as_deref(),
            Some("https://app.example/x")
        );
        assert_eq!(
            check("https://a.corp.example/").as_deref(),
            Some("https://a.corp.example/")
        );
        assert_eq!(
            check("https://api.example:8443/v").as_deref(),
            Some("https://api.example:8443/v")
        );
    }

    #[test]
    fn open_redirect_classics_are_refused() {
        for raw in [
            "",
            "//evil.example",
            "/.//evil.example",
            "/..//evil.example",
            "/a/..//evil.example",
            "/%2e%2e//evil.example",
            "/%2E//evil.example",
            "/././/evil.example",
            "/\\evil.example",
            "/\\/evil",
            "\\\\evil.example",
            "https:evil.example",
            "https:/evil.example",
            "https:///evil.example",
            "https://site.example.evil.example",
            "https://app.example.evil.example",
            "https://app.example@evil.example",
            "https://evil.example#@app.example",
            "https://evil.example?@app.example",
            "https://user:pw@app.example/",
            "HTTPS://EVIL.example",
            "http://app.example/",
            "https://corp.example/",
            "https://api.example/",
            "https://api.example:443/",
            "%2F%2Fevil.example",
            "javascript:alert(1)",
            "JavaScript://app.example/%0aalert(1)",
            "data:text/html,x",
            "/ok\r\nLocation: https://evil.example",
            "/\t/evil.example",
            "/\n/evil.example",
            " /x",
            "/x y",
            "ftp://app.example/",
            "evil.example",
            "https://app.example\u{3002}evil.example/",
        ] {
            assert_eq!(check(raw), None, "{raw:?}");
        }
        assert_eq!(check(&format!("/{}", "a".repeat(MAX_LEN))), None);
        assert!(check(&format!("/{}", "a".repeat(MAX_LEN - 1))).is_some());
    }

    #[test]
    fn http_only_in_development() {
        let dev = rules(&["app.example"], true);
        assert_eq!(
            allowed_target("http://app.example/x", &dev).as_deref(),
            Some("http://app.example/x")
        );
        assert_eq!(allowed_target("http://evil.example/x", &dev), None);
    }

    proptest! {
        /// Whatever comes in, what goes out is a path on this site or a URL on a listed
        /// host, and never carries a control character.
        #[test]
        fn anything_allowed_stays_here_or_on_a_listed_host(raw in "\\PC{0,40}|[/\\\\:@#?%a-z. \t\r\n]{0,24}") {
            if let Some(target) = check(&raw) {
                // A valid `Location` value as it is: ASCII without control characters.
                prop_assert!(target.is_ascii() && !target.contains(|c: char| c.is_control()));
                prop_assert!(axum::http::HeaderValue::from_str(&target).is_ok());
                let base = Url::parse("https://site.example").unwrap();
                let resolved = base.join(&target).unwrap();
                let host = resolved.host_str().unwrap_or_default().to_owned();
                prop_assert!(
                    (target.starts_with('/') && !target.starts_with("//") && host == "site.example")
                        || (resolved.scheme() == "https"
                            && (host == "app.example" || host.ends_with(".corp.example") || host == "api.example")),
                    "{raw:?} -> {target:?}"
                );
            }
        }
    }
}
