//! The one place that decides who the client is, for rate limits and logs.
//!
//! The peer of the TCP connection is the client, unless it is one of
//! `server.trusted_proxies`: then the client is the address that proxy appended to
//! `X-Forwarded-For`. A client writes that header too, and a proxy keeps what it was sent in
//! front of its own entry, so only entries a trusted hop wrote are read: from the right, each
//! address that is a trusted proxy vouches for the entry to its left, and the first address
//! that is not one is the client. What a client puts further left is never reached.
//!
//! One rule that no added header can move: a client that is limited stays limited whatever it
//! sends. So `Forwarded` (RFC 7239) is not read at all: a proxy that sets `X-Forwarded-For`
//! (nginx, Caddy, Traefik, HAProxy's `forwardfor`) passes a client's own `Forwarded` on
//! untouched, and a rule that consulted it (believe it, or fall back when the two disagree)
//! would let that client pick another bucket. And where the walk meets an entry it cannot
//! read, the client is the last trusted hop it reached (the peer, behind one proxy): that entry
//! was written by that hop, never by the client, so only a broken proxy lands its clients in
//! its own shared bucket. The alternatives are worse: skipping the entry reads on into what
//! the client wrote, and refusing the request lets a broken proxy take the site down.

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    sync::Arc,
};

use axum::{
    extract::{ConnectInfo, Request, State},
    http::{Extensions, HeaderMap, HeaderName},
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

    /// The client of a request that came from `peer` with `headers`: see the module.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.contains(peer) {
            return peer;
        }
        // Each trusted hop wrote the entry to its left; an entry that cannot be read ends the
        // walk at the hop that wrote it.
        let mut last_trusted = peer;
        for entry in x_forwarded_for(headers) {
            match entry {
                Some(ip) if self.contains(ip) => last_trusted = ip,
                Some(ip) => return ip,
                None => break,
            }
        }
        last_trusted
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

/// The entries of every `X-Forwarded-For` header, right to left, each an address or `None`
/// when it cannot be read. Split as bytes, not as text: HTTP allows bytes past ASCII in a
/// value, and a proxy keeps the client's in the same value as its own entry, which must stay
/// readable whatever the client put before it.
fn x_forwarded_for(headers: &HeaderMap) -> impl Iterator<Item = Option<IpAddr>> {
    headers
        .get_all(&X_FORWARDED_FOR)
        .iter()
        .rev()
        .flat_map(|value| value.as_bytes().rsplit(|byte| *byte == b','))
        .map(|entry| {
            let text = std::str::from_utf8(entry.trim_ascii()).ok()?;
            node(text)
        })
}

/// One node: `192.0.2.1`, `192.0.2.1:4711`, `2001:db8::1`, `[2001:db8::1]` or
/// `[2001:db8::1]:4711`. `unknown`, an empty entry and anything else are `None`.
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
    use axum::http::HeaderValue;

    use super::*;

    fn trusted(list: &[&str]) -> TrustedProxies {
        TrustedProxies::new(list.iter().map(|net| net.parse().unwrap()).collect())
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn headers(pairs: &[(&str, &[u8])]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_bytes(value).unwrap(),
            );
        }
        map
    }

    const PROXY: &str = "10.0.0.1";

    fn client_of(pairs: &[(&str, &[u8])]) -> IpAddr {
        trusted(&["10.0.0.0/8", "192.168.1.1/32"]).client(ip(PROXY), &headers(pairs))
    }

    fn xff(value: &str) -> IpAddr {
        client_of(&[("x-forwarded-for", value.as_bytes())])
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_says() {
        let proxies = trusted(&["10.0.0.0/8"]);
        let spoofed = headers(&[
            ("x-forwarded-for", b"203.0.113.9"),
            ("forwarded", b"for=203.0.113.9"),
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
        assert_eq!(xff("203.0.113.9"), ip("203.0.113.9"));
        // A client's own entries on the left are never reached.
        assert_eq!(xff("1.2.3.4, 203.0.113.9"), ip("203.0.113.9"));
        // Trusted hops on the right are skipped, across headers too.
        assert_eq!(
            client_of(&[
                ("x-forwarded-for", b"1.2.3.4, 203.0.113.9"),
                ("x-forwarded-for", b"192.168.1.1,10.9.9.9"),
            ]),
            ip("203.0.113.9")
        );
        // All trusted: the leftmost.
        assert_eq!(xff("10.1.1.1, 10.2.2.2"), ip("10.1.1.1"));
        assert_eq!(
            xff("203.0.113.9:4711, [2001:db8::1]:80"),
            ip("2001:db8::1")
        );
        assert_eq!(xff("[2001:db8::1]"), ip("2001:db8::1"));
        assert_eq!(xff("::ffff:203.0.113.9"), ip("203.0.113.9"));
    }

    #[test]
    fn forwarded_is_never_read() {
        // A proxy that sets X-Forwarded-For passes a client's own Forwarded on untouched.
        for value in ["for=203.0.113.9", "for=unknown", "garbage", ""] {
            assert_eq!(
                client_of(&[("forwarded", value.as_bytes())]),
                ip(PROXY),
                "{value}"
            );
            assert_eq!(
                client_of(&[
                    ("x-forwarded-for", b"198.51.100.7"),
                    ("forwarded", value.as_bytes()),
                ]),
                ip("198.51.100.7"),
                "{value}"
            );
        }
    }

    #[test]
    fn an_unreadable_entry_ends_the_walk_at_the_last_trusted_hop() {
        for value in [
            "unknown",
            "_hidden",
            "",
            "203.0.113.9, not-an-address",
            "203.0.113.9,,",
            "999.1.1.1",
            "203.0.113.9, [2001:db8::1",
        ] {
            assert_eq!(xff(value), ip(PROXY), "{value}");
        }
        // Written by the balancer at 10.0.0.7, which the proxy vouches for: its bucket.
        assert_eq!(xff("203.0.113.9, unknown, 10.0.0.7"), ip("10.0.0.7"));
        assert_eq!(
            client_of(&[("x-forwarded-for", b"203.0.113.9\xff")]),
            ip(PROXY)
        );
        assert_eq!(
            client_of(&[
                ("x-forwarded-for", b"203.0.113.9"),
                ("x-forwarded-for", b"\xff"),
            ]),
            ip(PROXY)
        );
    }

    #[test]
    fn what_a_client_writes_before_its_proxys_entry_never_makes_that_entry_unreadable() {
        for value in [
            &b"\xff\xfe, 203.0.113.9"[..],
            b"1.2.3.4\xff, 203.0.113.9",
            b"not an address, , unknown,203.0.113.9",
        ] {
            assert_eq!(
                client_of(&[("x-forwarded-for", value)]),
                ip("203.0.113.9"),
                "{}",
                value.escape_ascii()
            );
        }
        // A header of its own before the proxy's.
        assert_eq!(
            client_of(&[
                ("x-forwarded-for", b"\xff"),
                ("x-forwarded-for", b"203.0.113.9"),
            ]),
            ip("203.0.113.9")
        );
    }
}
