//! What `loginwith check` prints and start-up says: the effective configuration with secrets
//! redacted, and what to register at each provider.

use std::fmt::Write as _;

use super::{Config, Environment, ProviderKind, problems::absolute};

/// Where the development provider is mounted inside the app.
pub const DEV_PROVIDER_PATH: &str = "/dev/facebook";

/// A parsed `database.url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseLocation {
    /// `sqlite://PATH` or `sqlite:PATH`: the file (relative to the working directory).
    SqliteFile(String),
    /// `postgres://` or `postgresql://`: the server and database, without the password.
    Postgres {
        /// The server's host.
        host: String,
        /// The server's port.
        port: u16,
        /// The database's name.
        database: String,
        /// The user connecting.
        user: String,
    },
}

impl DatabaseLocation {
    /// Reads a `database.url`; `Err` says what is wrong with it.
    pub fn parse(url: &str) -> Result<Self, String> {
        let scheme = url.split(':').next().unwrap_or_default();
        if matches!(scheme, "postgres" | "postgresql") {
            return Self::parse_postgres(url);
        }
        let Some(rest) = url.strip_prefix("sqlite:") else {
            return Err(format!(
                "must be sqlite://PATH (a SQLite file) or postgres://USER@HOST/DATABASE, not {scheme:?}"
            ));
        };
        let path = rest.strip_prefix("//").unwrap_or(rest);
        let path = path.split('?').next().unwrap_or_default();
        if path.is_empty() || path == ":memory:" {
            // Each pooled connection would get a database of its own.
            return Err("needs a file: sqlite://PATH (an in-memory database is not shared between connections)".to_owned());
        }
        Ok(Self::SqliteFile(path.to_owned()))
    }

    fn parse_postgres(url: &str) -> Result<Self, String> {
        let parsed = url::Url::parse(url).map_err(|e| format!("not a URL: {e}"))?;
        let host = parsed
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or("needs a host: postgres://USER@HOST/DATABASE")?;
        let database = parsed.path().trim_start_matches('/');
        if database.is_empty() {
            return Err("needs a database name: postgres://USER@HOST/DATABASE".to_owned());
        }
        Ok(Self::Postgres {
            host: host.to_owned(),
            port: parsed.port().unwrap_or(5432),
            database: database.to_owned(),
            user: parsed.username().to_owned(),
        })
    }
}

impl std::fmt::Display for DatabaseLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::SqliteFile(path) => write!(f, "SQLite file {}", absolute(path.as_ref())),
            // Never the password.
            Self::Postgres {
                host,
                port,
                database,
                user,
            } => write!(
                f,
                "PostgreSQL database {database} on {host}:{port} as {user:?}"
            ),
        }
    }
}

impl Environment {
    /// As `LOGINWITH_ENV` spells it.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Development => "development",
            Self::Production => "production",
        }
    }
}

impl Config {
    /// The database as people should see it in a log line: a path or a host, never a
    /// password.
    pub fn database_description(&self) -> String {
        DatabaseLocation::parse(&self.database.url)
            .map_or_else(|e| format!("invalid database.url ({e})"), |l| l.to_string())
    }

    /// What to register at each enabled provider, one line each, in button order.
    pub fn registrations(&self) -> Vec<String> {
        if self.uses_dev_provider() {
            return vec![
                format!(
                    "facebook: the development provider stands in at {} (nothing to register; loopback only)",
                    self.url(DEV_PROVIDER_PATH)
                ),
                format!(
                    "dev-oidc: the development provider's OpenID Connect issuer at {DEV_PROVIDER_PATH}/oidc on this server (nothing to register; loopback only)"
                ),
                format!(
                    "apple: the development provider's Sign in with Apple imitation at {DEV_PROVIDER_PATH}/apple on this server (nothing to register; loopback only)"
                ),
            ];
        }
        let mut lines = Vec::new();
        let mut data_callbacks_listed = false;
        for (name, provider) in self.providers.enabled() {
            let redirect = self.redirect_uri(name);
            match provider.kind() {
                Some(ProviderKind::Facebook) => {
                    lines.push(format!("{name}: Valid OAuth Redirect URI {redirect}"));
                    // The data callbacks verify with the first Facebook app's secret only.
                    if !data_callbacks_listed {
                        data_callbacks_listed = true;
                        lines.push(format!(
                            "{name}: Deauthorize callback URL {}",
                            self.url("/facebook/deauthorize")
                        ));
                        lines.push(format!(
                            "{name}: Data Deletion Request URL {}",
                            self.url("/facebook/data-deletion")
                        ));
                        // Asked for before the app goes Live: the built-in page, or the
                        // site's own policy.
                        let privacy = self
                            .brand
                            .privacy_policy_url
                            .as_ref()
                            .map_or_else(|| self.url("/privacy"), |url| url.to_string());
                        lines.push(format!("{name}: Privacy Policy URL {privacy}"));
                    }
                }
                Some(ProviderKind::Github) => {
                    lines.push(format!("{name}: Authorization callback URL {redirect}"));
                }
                Some(ProviderKind::Apple) => {
                    lines.push(format!("{name}: Return URL {redirect}"));
                    lines.push(format!(
                        "{name}: Domains and Subdomains {}",
                        self.server.public_url.host_str().unwrap_or_default()
                    ));
                }
                Some(ProviderKind::Microsoft) => {
                    lines.push(format!("{name}: Redirect URI (Web) {redirect}"));
                }
                Some(ProviderKind::X) => {
                    lines.push(format!("{name}: Callback URI / Redirect URL {redirect}"));
                }
                Some(ProviderKind::Discord) => {
                    lines.push(format!("{name}: Redirects {redirect}"));
                }
                Some(ProviderKind::Oidc) => {
                    lines.push(format!("{name}: Redirect URI {redirect}"));
                    // Google sends no logout tokens: nothing to register there.
                    let google = super::oidc_brand(&provider.issuer()).is_some();
                    if !google {
                        lines.push(format!(
                            "{name}: Back-channel logout URI {}",
                            self.backchannel_logout_uri(name)
                        ));
                    }
                    if provider.sign_out_at_provider {
                        lines.push(format!(
                            "{name}: Post-logout redirect URI {}",
                            self.post_logout_redirect_uri()
                        ));
                    }
                }
                None => {
                    lines.push(format!("{name}: Redirect URI {redirect}"));
                }
            }
        }
        lines
    }

    /// The effective configuration as TOML (every secret redacted), then the URLs to
    /// register: what `loginwith check` prints.
    pub fn report(&self) -> String {
        let mut out = format!(
            "# loginwith {}: effective configuration ({}), secrets redacted\n",
            env!("CARGO_PKG_VERSION"),
            self.environment.name()
        );
        match toml::to_string(self) {
            Ok(text) => out.push_str(&text),
            Err(e) => {
                let _ = writeln!(out, "# (cannot be shown as TOML: {e})");
            }
        }
        let _ = writeln!(out, "\n# database: {}", self.database_description());
        out.push_str("# register at the providers:\n");
        for line in self.registrations() {
            let _ = writeln!(out, "#   {line}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_urls_are_described_without_their_password() {
        let location =
            DatabaseLocation::parse("postgresql://app:s3cret@db.internal:6432/loginwith").unwrap();
        assert_eq!(
            location.to_string(),
            "PostgreSQL database loginwith on db.internal:6432 as \"app\""
        );
        assert!(!format!("{location:?}").contains("s3cret"));
    }

    #[test]
    fn database_urls_are_sqlite_files() {
        for (url, path) in [
            ("sqlite://data/loginwith.db", "data/loginwith.db"),
            ("sqlite:///var/lib/loginwith/db", "/var/lib/loginwith/db"),
            ("sqlite:data.db?mode=rwc", "data.db"),
        ] {
            assert_eq!(
                DatabaseLocation::parse(url),
                Ok(DatabaseLocation::SqliteFile(path.to_owned())),
                "{url}"
            );
        }
        for url in [
            "sqlite:",
            "sqlite://",
            "sqlite::memory:",
            "postgres://user@localhost",
            "postgres://",
            "mysql://x",
            "data.db",
        ] {
            assert!(DatabaseLocation::parse(url).is_err(), "{url}");
        }
    }
}
