//! `[gateway]`: where a finished sign-in may send people back to (`return_to`).

use serde::{Deserialize, Deserializer, Serialize};
use url::Host;

/// `[gateway]` as written; [`GatewayConfig::allowed_hosts`] gives the parsed rules.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct GatewayConfig {
    /// Hosts an absolute `return_to` may name: `app.example` (any port), `app.example:8443`,
    /// or `.example.com` (any subdomain of example.com, not example.com itself).
    #[serde(deserialize_with = "entries")]
    pub allowed_hosts: Vec<String>,
}

impl GatewayConfig {
    /// The rules; a bad entry (which validation refuses at start-up) is left out.
    pub fn allowed_hosts(&self) -> Vec<AllowedHost> {
        self.allowed_hosts
            .iter()
            .filter_map(|entry| AllowedHost::parse(entry).ok())
            .collect()
    }

    /// One reason per bad entry.
    pub fn problems(&self) -> Vec<String> {
        self.allowed_hosts
            .iter()
            .filter_map(|entry| AllowedHost::parse(entry).err())
            .collect()
    }
}

/// One `gateway.allowed_hosts` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowedHost {
    /// This host, on any port (`port: None`) or one port.
    Exact {
        /// The host (lowercase, IDNA for names).
        host: Host<String>,
        /// The one port allowed, or any.
        port: Option<u16>,
    },
    /// Any subdomain of this domain (lowercase, IDNA), not the domain itself.
    Subdomains(String),
}

impl AllowedHost {
    /// Parses an entry the way the url crate parses a URL's host (lowercase, IDNA, IP
    /// addresses), so that rules and targets compare alike.
    pub fn parse(entry: &str) -> Result<Self, String> {
        let bad = |why: &str| {
            format!(
                "{entry:?} {why}: each entry is a host (app.example.com), host:port (app.example.com:8443) or .example.com for its subdomains"
            )
        };
        let text = entry.trim();
        if text.is_empty() {
            return Err(bad("is empty"));
        }
        if text.contains("://") {
            return Err(bad("is a URL, not a host"));
        }
        if text.contains(['/', '\\', '@', '?', '#', '*', '%']) || text.contains(char::is_whitespace)
        {
            return Err(bad("is not a host"));
        }
        if let Some(domain) = text.strip_prefix('.') {
            return match Host::parse(domain) {
                Ok(Host::Domain(domain)) if !domain.is_empty() && !domain.starts_with('.') => {
                    Ok(Self::Subdomains(domain))
                }
                _ => Err(bad("is not a domain after its leading '.'")),
            };
        }
        let (host, port) = split_port(text).ok_or_else(|| bad("has a bad port"))?;
        let host = Host::parse(host).map_err(|_| bad("is not a host"))?;
        if matches!(&host, Host::Domain(d) if d.is_empty()) {
            return Err(bad("is not a host"));
        }
        Ok(Self::Exact { host, port })
    }

    /// Whether a URL's host and port (its explicit or the scheme's default) match.
    pub fn allows(&self, host: &Host<&str>, port: u16) -> bool {
        match self {
            Self::Exact {
                host: allowed,
                port: allowed_port,
            } => {
                let same_host = match (allowed, host) {
                    (Host::Domain(a), Host::Domain(b)) => a == b,
                    (Host::Ipv4(a), Host::Ipv4(b)) => a == b,
                    (Host::Ipv6(a), Host::Ipv6(b)) => a == b,
                    _ => false,
                };
                same_host && allowed_port.is_none_or(|p| p == port)
            }
            Self::Subdomains(domain) => match host {
                Host::Domain(name) => name
                    .strip_suffix(domain.as_str())
                    .is_some_and(|label| label.len() > 1 && label.ends_with('.')),
                _ => false,
            },
        }
    }
}

/// `host` or `host:port` (`[::1]:8443` for IPv6): the host text and the port, if any.
fn split_port(text: &str) -> Option<(&str, Option<u16>)> {
    let (host, port) = if text.starts_with('[') {
        let end = text.find(']')?;
        match &text[end + 1..] {
            "" => (text, None),
            rest => (&text[..=end], Some(rest.strip_prefix(':')?)),
        }
    } else {
        match text.split_once(':') {
            None => (text, None),
            Some((host, port)) => (host, Some(port)),
        }
    };
    match port {
        None => Some((host, None)),
        Some(port) => {
            if !port.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let port: u16 = port.parse().ok()?;
            (port != 0).then_some((host, Some(port)))
        }
    }
}

/// A list of entries, or one entry as a bare string
/// (`LOGINWITH_GATEWAY__ALLOWED_HOSTS=app.example`; blank means none).
pub(super) fn entries<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    super::one_or_many::one_or_many(
        deserializer,
        "a list of hosts",
        |entry| Ok(entry.to_owned()),
    )
}

#[cfg(test)]
mod tests {
    use super::AllowedHost;
    use url::Host;

    fn allows(entry: &str, host: &str, port: u16) -> bool {
        let rule = AllowedHost::parse(entry).unwrap();
        let host = Host::parse(host).unwrap();
        let host = match &host {
            Host::Domain(d) => Host::Domain(d.as_str()),
            Host::Ipv4(a) => Host::Ipv4(*a),
            Host::Ipv6(a) => Host::Ipv6(*a),
        };
        rule.allows(&host, port)
    }

    #[test]
    fn entries_are_hosts_ports_or_subdomain_rules() {
        assert!(allows("app.example", "app.example", 443));
        assert!(allows("app.example", "app.example", 8443));
        assert!(allows("APP.Example", "app.example", 443));
        assert!(allows("app.example:8443", "app.example", 8443));
        assert!(!allows("app.example:8443", "app.example", 443));
        assert!(!allows("app.example", "evil.app.example", 443));
        assert!(allows(".example.com", "a.example.com", 443));
        assert!(allows(".example.com", "a.b.example.com", 443));
        assert!(!allows(".example.com", "example.com", 443));
        assert!(!allows(".example.com", "evilexample.com", 443));
        assert!(allows("bücher.example", "xn--bcher-kva.example", 443));
        assert!(allows("[::1]:8080", "[::1]", 8080));
        assert!(allows("127.0.0.1", "127.0.0.1", 80));
    }

    #[test]
    fn bad_entries_are_refused_with_the_entry_named() {
        for entry in [
            "",
            " ",
            "https://app.example",
            "app.example/x",
            "*.example.com",
            "user@app.example",
            "app.example:0",
            "app.example:99999",
            "app.example:",
            ".",
            "..example.com",
            "a b",
            "::1",
        ] {
            let error = AllowedHost::parse(entry).expect_err(entry);
            assert!(error.contains(&format!("{entry:?}")), "{error}");
        }
    }
}
