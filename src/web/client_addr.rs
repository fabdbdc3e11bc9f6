//! The one place that decides who the client is, for rate limits and logs.
//!
//! The peer of the TCP connection is the client, unless it is one of
//! `server.trusted_proxies`: then the client is the address that proxy names in
//! `X-Forwarded-For` or `Forwarded` (RFC 7239). Those headers are written by whoever sent the
//! request, so they are only believed from a trusted peer, and only as far as the trust goes:
//! walking from the right (the entry the nearest proxy appended), every address that is a
//! trusted proxy is skipped and the first one that is not is the client. What a client puts
//! further left is never reached. Anything that cannot be read falls back to the peer.

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    sync::Arc,
};

use axum::{
    extract::{ConnectInfo, Request, State},
    http::{Extensions, HeaderMap, HeaderName, HeaderValue, header},
    middleware::Next,
    response::Response,
};
use ipnet::IpNet;

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// The client's address, as decided by [`resolve`]; in every request's extensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

impl ClientAddr {
    /// The client of `extensions`' request: what [`resolve`] decided, or, where it did not
    /// run, the peer itself (never a header).
    pub fn of(extensions: &Extensions) -> IpAddr {
        extensions
            .get::<ClientAddr>()
            .map(|client| client.0)
            .unwrap_or_else(|| peer(extensions))
    }
}

/// `server.trusted_proxies`, parsed at start-up.
#[derive(Debug, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    pub fn new(networks: Vec<IpNet>) -> Self {
        Self(networks)
    }

    fn contains(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// Whether the connection of the request with `extensions` comes straight from one of
    /// these proxies: only then may its headers say anything about the request.
    pub fn trusts_peer_of(&self, extensions: &Extensions) -> bool {
        self.contains(peer(extensions))
    }

    /// The client of a request that came from `peer` with `headers`.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.contains(peer) {
            return peer;
        }
        let forwarded_for = headers
            .contains_key(&X_FORWARDED_FOR)
            .then(|| self.rightmost_untrusted(x_forwarded_for(headers)));
        let forwarded = headers
            .contains_key(header::FORWARDED)
            .then(|| self.rightmost_untrusted(forwarded(headers)));
        match (forwarded_for, forwarded) {
            (Some(client), None) | (None, Some(client)) => client.unwrap_or(peer),
            // A proxy usually writes one of the two and passes the other on as the client
            // sent it. Which one is ours cannot be told, so they must agree.
            (Some(a), Some(b)) if a == b => a.unwrap_or(peer),
            _ => peer,
        }
    }

    /// Over `chain`, right to left: the first address that is not a trusted proxy; the
    /// leftmost when all are; `None` when an unreadable entry comes first (or there is none).
    fn rightmost_untrusted(&self, chain: impl Iterator<Item = Option<IpAddr>>) -> Option<IpAddr> {
        let mut leftmost = None;
        for entry in chain {
            let ip = entry?;
            if !self.contains(ip) {
                return Some(ip);
            }
            leftmost = Some(ip);
        }
        leftmost
    }
}

/// Middleware, before the rate limiters and the request span: puts the [`ClientAddr`] in
/// the request's extensions.
pub async fn resolve(
    State(trusted): State<Arc<TrustedProxies>>,
    mut request: Request,
    next: Next,
) -> Response {
    let client = trusted.client(peer(request.extensions()), request.headers());
    request.extensions_mut().insert(ClientAddr(client));
    next.run(request).await
}

/// The connection's peer; unspecified (trusted by nobody's list of proxies in practice, and
/// one shared bucket) when the server was started without connect info.
fn peer(extensions: &Extensions) -> IpAddr {
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |info| {
            info.0.ip().to_canonical()
        })
}

/// The entries of every `X-Forwarded-For` header, right to left.
fn x_forwarded_for(headers: &HeaderMap) -> impl Iterator<Item = Option<IpAddr>> {
    headers
        .get_all(&X_FORWARDED_FOR)
        .iter()
        .rev()
        .flat_map(|value| entries(value, ','))
        .map(|entry| node(entry.trim()))
}

/// The `for=` of each element of every `Forwarded` header, right to left. An element
/// without one is a hop that did not say: unreadable.
fn forwarded(headers: &HeaderMap) -> impl Iterator<Item = Option<IpAddr>> {
    headers
        .get_all(header::FORWARDED)
        .iter()
        .rev()
        .flat_map(|value| entries(value, ','))
        .map(|element| {
            let pair = split_unquoted(element, ';').into_iter().find_map(|pair| {
                let (name, value) = pair.split_once('=')?;
                name.trim().eq_ignore_ascii_case("for").then_some(value)
            })?;
            node(unquote(pair.trim()))
        })
}

/// A header's list items, right to left; a value that is not text is one unreadable item.
fn entries(value: &HeaderValue, separator: char) -> Vec<&str> {
    match value.to_str() {
        Ok(text) => {
            let mut items = split_unquoted(text, separator);
            items.reverse();
            items
        }
        // Not a readable address, so `node` refuses it.
        Err(_) => vec![""],
    }
}

/// `text` split on `separator`, except inside double quotes (RFC 7230 quoted strings, whose
/// backslash escapes a character).
fn split_unquoted(text: &str, separator: char) -> Vec<&str> {
    let mut items = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (index, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            c if c == separator && !quoted => {
                items.push(&text[start..index]);
                start = index + c.len_utf8();
            }
            _ => {}
        }
    }
    items.push(&text[start..]);
    items
}

fn unquote(value: &str) -> &str {
    value
        .strip_prefix('"')
        .and_then(|inner| inner.strip_suffix('"'))
        .unwrap_or(value)
}

/// One node: `192.0.2.1`, `192.0.2.1:4711`, `2001:db8::1`, `[2001:db8::1]` or
/// `[2001:db8::1]:4711`. `unknown`, obfuscated identifiers (`_hidden`) and anything else
/// are `None`.
fn node(text: &str) -> Option<IpAddr> {
    let ip = text
        .parse::<IpAddr>()
        .or_else(|_| text.parse::<SocketAddr>().map(|addr| addr.ip()))
        .ok()
        .or_else(|| {
            let inner = text.strip_prefix('[')?.strip_suffix(']')?;
            inner.parse::<IpAddr>().ok()
        })?;
    Some(ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trusted(list: &[&str]) -> TrustedProxies {
        TrustedProxies::new(list.iter().map(|net| net.parse().unwrap()).collect())
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_bytes(value.as_bytes()).unwrap(),
            );
        }
        map
    }

    const PROXY: &str = "10.0.0.1";

    fn client_of(pairs: &[(&str, &str)]) -> IpAddr {
        trusted(&["10.0.0.0/8", "192.168.1.1/32"]).client(ip(PROXY), &headers(pairs))
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_says() {
        let proxies = trusted(&["10.0.0.0/8"]);
        let spoofed = headers(&[
            ("x-forwarded-for", "203.0.113.9"),
            ("forwarded", "for=203.0.113.9"),
        ]);
        assert_eq!(
            proxies.client(ip("198.51.100.7"), &spoofed),
            ip("198.51.100.7")
        );
        assert_eq!(
            TrustedProxies::default().client(ip(PROXY), &spoofed),
            ip(PROXY)
        );
    }

    #[test]
    fn the_rightmost_untrusted_forwarded_for_entry_is_the_client() {
        assert_eq!(client_of(&[]), ip(PROXY));
        assert_eq!(
            client_of(&[("x-forwarded-for", "203.0.113.9")]),
            ip("203.0.113.9")
        );
        // A client's own entries on the left are never reached.
        assert_eq!(
            client_of(&[("x-forwarded-for", "1.2.3.4, 203.0.113.9")]),
            ip("203.0.113.9")
        );
        // Trusted hops on the right are skipped, across headers too.
        assert_eq!(
            client_of(&[
                ("x-forwarded-for", "1.2.3.4, 203.0.113.9"),
                ("x-forwarded-for", "192.168.1.1,10.9.9.9"),
            ]),
            ip("203.0.113.9")
        );
        // All trusted: the leftmost.
        assert_eq!(
            client_of(&[("x-forwarded-for", "10.1.1.1, 10.2.2.2")]),
            ip("10.1.1.1")
        );
        assert_eq!(
            client_of(&[("x-forwarded-for", "203.0.113.9:4711, [2001:db8::1]:80")]),
            ip("2001:db8::1")
        );
        assert_eq!(
            client_of(&[("x-forwarded-for", "::ffff:203.0.113.9")]),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn forwarded_is_read_as_rfc_7239_says() {
        for (value, client) in [
            ("for=203.0.113.9", "203.0.113.9"),
            ("For=\"203.0.113.9:4711\"", "203.0.113.9"),
            ("for=\"[2001:db8::1]:4711\";proto=https", "2001:db8::1"),
            ("for=\"[2001:db8::1]\"", "2001:db8::1"),
            ("for=1.2.3.4, proto=http;for=203.0.113.9", "203.0.113.9"),
            (
                "for=1.2.3.4, for=203.0.113.9;by=10.0.0.1, for=10.7.7.7",
                "203.0.113.9",
            ),
            // A quoted separator is part of its value, not a new element.
            ("for=203.0.113.9;ext=\"a,for=1.2.3.4\"", "203.0.113.9"),
        ] {
            assert_eq!(client_of(&[("forwarded", value)]), ip(client), "{value}");
        }
    }

    #[test]
    fn unreadable_or_hidden_clients_fall_back_to_the_peer() {
        for (name, value) in [
            ("forwarded", "for=unknown"),
            ("forwarded", "for=_hidden"),
            ("forwarded", "for=203.0.113.9, proto=https"),
            ("forwarded", "for=\"[2001:db8::1"),
            ("forwarded", ""),
            ("x-forwarded-for", ""),
            ("x-forwarded-for", "203.0.113.9, not-an-address"),
            ("x-forwarded-for", "203.0.113.9,,"),
            ("x-forwarded-for", "999.1.1.1"),
            ("x-forwarded-for", "203.0.113.9\u{ff}"),
        ] {
            assert_eq!(client_of(&[(name, value)]), ip(PROXY), "{name}: {value}");
        }
    }

    #[test]
    fn both_headers_must_agree() {
        let both =
            |xff: &str, fwd: &str| client_of(&[("x-forwarded-for", xff), ("forwarded", fwd)]);
        assert_eq!(
            both("1.2.3.4, 203.0.113.9", "for=203.0.113.9"),
            ip("203.0.113.9")
        );
        assert_eq!(both("203.0.113.9", "for=198.51.100.7"), ip(PROXY));
    }
}
