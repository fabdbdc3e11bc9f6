//! The rules a configuration must keep, checked once at start-up (and by `loginwith check`):
//! the numbers' ranges as a table ([`Config::ranges`]), then each rule that relates keys to
//! one another or reads a value's form. Every problem is collected, none stops the others.

use url::Url;

use super::{Config, Environment, Problem, invalid, providers, report};

/// `database.min_free_mb`'s ceiling: a mebibyte (1 TiB) count, nothing that overflows in bytes.
const MAX_MIN_FREE_MB: u64 = 1024 * 1024;

/// A number of the configuration and the values it may take ([`Config::ranges`]).
struct NumberRange {
    key: &'static str,
    value: u64,
    allowed: std::ops::RangeInclusive<u64>,
    /// Said after the range, in brackets.
    note: Option<&'static str>,
}

impl NumberRange {
    fn new(
        key: &'static str,
        value: impl TryInto<u64>,
        allowed: std::ops::RangeInclusive<u64>,
    ) -> Self {
        Self {
            key,
            // Every such field is unsigned and at most 64 bits wide.
            value: value.try_into().unwrap_or(u64::MAX),
            allowed,
            note: None,
        }
    }

    fn noting(self, note: &'static str) -> Self {
        Self {
            note: Some(note),
            ..self
        }
    }

    fn problem(self) -> Problem {
        let (low, high) = (self.allowed.start(), self.allowed.end());
        let mut reason = if *high == u64::MAX {
            format!("must be at least {low}")
        } else {
            format!("must be between {low} and {high}")
        };
        if let Some(note) = self.note {
            reason.push_str(&format!(" ({note})"));
        }
        invalid(self.key, reason)
    }
}

/// Whether `url`'s host is this machine for whoever opens it: `localhost` or a name ending
/// in `.localhost` (RFC 6761 keeps them for loopback, so no public name ends in one, and
/// browsers resolve them to loopback themselves), an IPv4 address in 127.0.0.0/8, or `[::1]`
/// (not `[::ffff:127.0.0.1]`, as for `server.bind`). The url crate has already lowercased
/// the name and turned `127.1` into `127.0.0.1`.
fn is_loopback_host(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(name)) => {
            // `localhost.` is the same name, written fully qualified.
            let name = name.strip_suffix('.').unwrap_or(name);
            name == "localhost" || name.ends_with(".localhost")
        }
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

impl Config {
    /// `[access]` conditions no configured provider can ever satisfy: GitHub organisations or
    /// teams without a GitHub provider, groups without an OpenID Connect issuer (the
    /// development provider's OpenID mode counts). Refused rather than left to keep everybody
    /// out without a word.
    fn access_provider_problems(&self) -> Vec<Problem> {
        let kinds: Vec<_> = self
            .providers
            .enabled()
            .filter_map(|(_, provider)| provider.kind())
            .collect();
        let mut problems = Vec::new();
        let has = |kind: providers::ProviderKind| kinds.contains(&kind);
        let mut refuse = |key: &str, what: &str| {
            problems.push(invalid(key, what.to_owned()));
        };
        let places = std::iter::once(("access".to_owned(), &self.access.conditions)).chain(
            self.access
                .rules
                .iter()
                .enumerate()
                .map(|(i, rule)| (format!("access.rules[{i}]"), &rule.conditions)),
        );
        for (place, conditions) in places {
            for (key, set) in [
                ("github_orgs", !conditions.github_orgs.is_empty()),
                ("github_teams", !conditions.github_teams.is_empty()),
            ] {
                if set && !has(providers::ProviderKind::Github) {
                    refuse(
                        &format!("{place}.{key}"),
                        "names GitHub, but no provider of kind github is enabled (set its client_id): nobody could ever match it",
                    );
                }
            }
            if !conditions.groups.is_empty()
                && !kinds.iter().any(|k| k.sends_claims())
                && !self.uses_dev_provider()
            {
                refuse(
                    &format!("{place}.groups"),
                    "names groups, but no OpenID Connect issuer (kind oidc) is enabled to send them: nobody could ever match it",
                );
            }
        }
        problems
    }

    /// Why `session.cookie_domain` cannot work, if it cannot: the browser would drop a cookie
    /// whose `Domain` the host that sets it (the public URL's) is not inside, and then no
    /// sign-in would ever stick.
    fn cookie_domain_problem(&self) -> Option<String> {
        let domain = self.cookie_domain()?;
        let raw = &self.session.cookie_domain;
        match url::Host::parse(&domain) {
            Ok(url::Host::Domain(parsed)) if parsed == domain && !domain.ends_with('.') => {}
            _ => {
                return Some(format!(
                    "{raw:?} is not a domain name: give the domain the site's hosts share, such as example.com (an international name in its xn-- form), or leave it empty for a cookie of server.public_url's host alone"
                ));
            }
        }
        let host = self
            .server
            .public_url
            .host_str()
            .unwrap_or_default()
            .to_ascii_lowercase();
        let inside = host == domain
            || host
                .strip_suffix(domain.as_str())
                .is_some_and(|label| label.ends_with('.'));
        (!inside).then(|| {
            format!(
                "{raw:?} does not contain server.public_url's host {host:?}: browsers would refuse the cookie and nobody could sign in; use a domain the host is inside (for login.example.com: example.com or login.example.com)"
            )
        })
    }

    /// Every number the configuration holds, with the values it may take: one line each,
    /// declared here rather than as a check each in [`problems`](Self::problems).
    fn ranges(&self) -> Vec<NumberRange> {
        let (server, database, session) = (&self.server, &self.database, &self.session);
        let (limits, login) = (&self.limits, &self.login);
        let at_least_one = 1..=u64::MAX;
        vec![
            NumberRange::new(
                "server.shutdown_grace_secs",
                server.shutdown_grace_secs,
                0..=600,
            ),
            NumberRange::new(
                "database.max_connections",
                database.max_connections,
                1..=1000,
            ),
            NumberRange::new(
                "database.connect_timeout_secs",
                database.connect_timeout_secs,
                1..=300,
            ),
            NumberRange::new(
                "database.min_free_mb",
                database.min_free_mb,
                0..=MAX_MIN_FREE_MB,
            )
            .noting("a mebibyte count, 0 for no warning"),
            NumberRange::new("session.remember_days", session.remember_days, 1..=400),
            NumberRange::new(
                "limits.body_bytes",
                limits.body_bytes,
                1024..=10 * 1024 * 1024,
            ),
            NumberRange::new(
                "limits.header_bytes",
                limits.header_bytes,
                4096..=1024 * 1024,
            ),
            NumberRange::new(
                "limits.auth_per_minute",
                limits.auth_per_minute,
                at_least_one.clone(),
            ),
            NumberRange::new("limits.auth_burst", limits.auth_burst, at_least_one.clone()),
            NumberRange::new(
                "limits.data_callback_per_minute",
                limits.data_callback_per_minute,
                at_least_one.clone(),
            ),
            NumberRange::new(
                "limits.data_callback_burst",
                limits.data_callback_burst,
                at_least_one.clone(),
            ),
            NumberRange::new(
                "limits.backchannel_logout_per_minute",
                limits.backchannel_logout_per_minute,
                at_least_one.clone(),
            ),
            NumberRange::new(
                "limits.backchannel_logout_burst",
                limits.backchannel_logout_burst,
                at_least_one.clone(),
            ),
            NumberRange::new(
                "limits.max_concurrent_exchanges",
                limits.max_concurrent_exchanges,
                at_least_one,
            ),
            NumberRange::new(
                "login.exchange_timeout_secs",
                login.exchange_timeout_secs,
                1..=300,
            ),
            NumberRange::new(
                "login.poll_interval_ms",
                login.poll_interval_ms,
                100..=60_000,
            ),
            NumberRange::new(
                "login.status_recheck_ms",
                login.status_recheck_ms,
                10..=3_600_000,
            ),
            NumberRange::new(
                "login.discovery_refresh_secs",
                login.discovery_refresh_secs,
                1..=86_400,
            ),
            NumberRange::new("login.poll_limit_secs", login.poll_limit_secs, 1..=3600),
        ]
    }

    /// Every rule the values break (empty when the configuration is good).
    pub(super) fn problems(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        let public = &self.server.public_url;
        if !matches!(public.scheme(), "http" | "https") || public.host_str().is_none() {
            problems.push(invalid(
                "server.public_url",
                "must be an http:// or https:// address",
            ));
        }
        // A path mounts every page, form, redirect URI and asset below it (a gateway that
        // forwards `/auth/` to loginwith, or the library nested in another axum app).
        if public.query().is_some()
            || public.fragment().is_some()
            || public.username() != ""
            || public.password().is_some()
        {
            problems.push(invalid(
                "server.public_url",
                "must be an origin, optionally with a path, such as https://login.example.com or https://example.com/auth (no query, fragment or user name)",
            ));
        }
        problems.extend(
            self.ranges()
                .into_iter()
                .filter(|range| !range.allowed.contains(&range.value))
                .map(NumberRange::problem),
        );
        if !self.metrics.bind.trim().is_empty() && self.metrics.bind_addr().is_none() {
            problems.push(invalid(
                "metrics.bind",
                format!(
                    "must be an address and port such as 127.0.0.1:9464 (or empty for no metrics), not {:?}",
                    self.metrics.bind
                ),
            ));
        }
        if let Err(reason) = report::DatabaseLocation::parse(&self.database.url) {
            problems.push(invalid("database.url", reason));
        }
        let name = &self.session.cookie_name;
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            problems.push(invalid(
                "session.cookie_name",
                "must be non-empty letters, digits, '_' or '-'",
            ));
        }
        if let Err(reason) = self.session.sealing_key() {
            problems.push(invalid("session.sealing_key", reason));
        }
        if let Some(reason) = self.cookie_domain_problem() {
            problems.push(invalid("session.cookie_domain", reason));
        }
        if !(self.session.remember_days..=400).contains(&self.session.absolute_days) {
            problems.push(invalid(
                "session.absolute_days",
                "must be between session.remember_days and 400",
            ));
        }
        problems.extend(
            self.gateway
                .problems()
                .into_iter()
                .map(|reason| invalid("gateway.allowed_hosts", reason)),
        );
        // Reads `access.emails_file`: once here, for `serve` and `check` alike.
        problems.extend(self.access.problems());
        problems.extend(self.access_provider_problems());
        let production = self.environment == Environment::Production;
        problems.extend(self.providers.problems(production));
        if self.providers.enabled().next().is_none() && !self.dev_provider.enabled {
            // Named after the shipped provider: the key people most likely meant to set.
            problems.push(invalid(
                "providers.facebook.client_id",
                "is empty and no other provider has a client_id: set it (and client_secret), or enable dev_provider in development",
            ));
        }
        if self.uses_dev_provider() && !cfg!(feature = "dev-provider") {
            problems.push(invalid(
                "dev_provider.enabled",
                "this build leaves the development provider out (cargo feature dev-provider): configure a provider (providers.<name>.client_id and client_secret), or set dev_provider.enabled = false",
            ));
        }
        if self.uses_dev_provider() && !self.server.bind.ip().is_loopback() {
            problems.push(invalid(
                "dev_provider.enabled",
                format!(
                    "the development provider lets anyone sign in as anyone, so it only runs on a loopback address (127.0.0.1 or ::1), not on server.bind = {}: set providers.facebook.client_id and client_secret to a real app, or dev_provider.enabled = false",
                    self.server.bind
                ),
            ));
        }
        // The bind alone is not enough: a proxy or a tunnel on this machine in front of it
        // would offer the stand-in to everyone it serves. Browsers are sent to the public URL
        // (pages opened on another host are redirected there, and so is the stand-in's answer),
        // so one that is not loopback means people on other machines are meant to use it.
        if self.uses_dev_provider() && !is_loopback_host(public) {
            problems.push(invalid(
                "dev_provider.enabled",
                format!(
                    "the development provider lets anyone sign in as anyone, so it only runs at a loopback public URL (localhost, a name ending in .localhost, 127.0.0.0/8 or [::1]), not at server.public_url = {}, where a proxy or tunnel in front would offer it to everyone: set providers.facebook.client_id and client_secret to a real app, or dev_provider.enabled = false",
                    public.as_str().trim_end_matches('/')
                ),
            ));
        }
        if production {
            if self.dev_provider.enabled {
                problems.push(invalid(
                    "dev_provider.enabled",
                    "must be false in production",
                ));
            }
            if !self.session.secure {
                problems.push(invalid("session.secure", "must be true in production"));
            }
            if public.scheme() != "https" {
                problems.push(invalid(
                    "server.public_url",
                    "must be https:// in production",
                ));
            }
        }
        problems
    }
}
