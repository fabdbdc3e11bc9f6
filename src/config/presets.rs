//! `preset = "…"` in a `[providers.<name>]` table: what each well-known OpenID Connect issuer
//! needs, so that a site adds one with its credentials and, where every organisation has its
//! own issuer, that issuer. Everything else (endpoints, keys, the token endpoint's client
//! authentication) comes from the issuer's discovery document, as for any issuer.

/// One issuer product's settings.
#[derive(Debug, PartialEq, Eq)]
pub struct Preset {
    /// As configuration spells it.
    pub name: &'static str,
    /// The button's name unless `display_name` is set.
    pub display_name: &'static str,
    /// The issuer when there is one for everybody (GitLab.com, LinkedIn); a self-hosted
    /// GitLab sets its own.
    pub issuer: Option<&'static str>,
    /// Whether `issuer` may be set to another one (a self-hosted GitLab may; LinkedIn has one).
    pub issuer_may_differ: bool,
    /// What the issuer of an organisation's own server looks like, checked at start-up; the
    /// mistakes it catches cost a failed discovery otherwise.
    pub shape: IssuerShape,
    /// An issuer like the one it names, for the errors.
    pub example_issuer: &'static str,
    /// The token endpoint takes the client secret only in the request body, and the
    /// discovery document does not say so (LinkedIn's lists no methods, which means Basic).
    pub client_secret_in_body: bool,
}

/// The form of a preset's issuer URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IssuerShape {
    /// Any https URL.
    Any,
    /// Keycloak: `…/realms/<realm>`, no trailing slash.
    KeycloakRealm,
    /// Auth0: the tenant's origin with a trailing slash (Auth0's tokens name it so).
    TrailingSlash,
    /// authentik: `…/application/o/<slug>/`, with the trailing slash.
    AuthentikApplication,
}

const PRESETS: [Preset; 6] = [
    Preset {
        name: "gitlab",
        display_name: "GitLab",
        issuer: Some("https://gitlab.com"),
        issuer_may_differ: true,
        shape: IssuerShape::Any,
        example_issuer: "https://gitlab.example.com",
        client_secret_in_body: false,
    },
    Preset {
        name: "linkedin",
        display_name: "LinkedIn",
        // What LinkedIn's discovery document has named since April 2024 (it was
        // https://www.linkedin.com before): discovery compares it byte for byte, so a change
        // at LinkedIn stops its sign-ins with a clear start-up error instead of a silent
        // mismatch.
        issuer: Some("https://www.linkedin.com/oauth"),
        issuer_may_differ: false,
        shape: IssuerShape::Any,
        example_issuer: "https://www.linkedin.com/oauth",
        client_secret_in_body: true,
    },
    Preset {
        name: "okta",
        display_name: "Okta",
        issuer: None,
        issuer_may_differ: true,
        shape: IssuerShape::Any,
        example_issuer: "https://acme.okta.com/oauth2/default",
        client_secret_in_body: false,
    },
    Preset {
        name: "keycloak",
        display_name: "Keycloak",
        issuer: None,
        issuer_may_differ: true,
        shape: IssuerShape::KeycloakRealm,
        example_issuer: "https://sso.acme.example/realms/acme",
        client_secret_in_body: false,
    },
    Preset {
        name: "auth0",
        display_name: "Auth0",
        issuer: None,
        issuer_may_differ: true,
        shape: IssuerShape::TrailingSlash,
        example_issuer: "https://acme.eu.auth0.com/",
        client_secret_in_body: false,
    },
    Preset {
        name: "authentik",
        display_name: "authentik",
        issuer: None,
        issuer_may_differ: true,
        shape: IssuerShape::AuthentikApplication,
        example_issuer: "https://auth.acme.example/application/o/loginwith/",
        client_secret_in_body: false,
    },
];

impl Preset {
    /// The preset of that name.
    pub fn named(name: &str) -> Option<&'static Self> {
        PRESETS.iter().find(|p| p.name == name)
    }

    /// Every preset's name, for the error that lists them.
    pub fn names() -> impl Iterator<Item = &'static str> {
        PRESETS.iter().map(|p| p.name)
    }

    /// Why `issuer` cannot be this product's, if it cannot.
    pub fn issuer_problem(&self, issuer: &str) -> Option<String> {
        if !self.issuer_may_differ && self.issuer.is_some_and(|fixed| fixed != issuer) {
            return Some(format!(
                "preset {:?} has one issuer, {}: leave issuer out",
                self.name,
                self.issuer.unwrap_or_default()
            ));
        }
        let path = url::Url::parse(issuer)
            .map(|u| u.path().to_owned())
            .unwrap_or_default();
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let fits = match self.shape {
            IssuerShape::Any => true,
            IssuerShape::KeycloakRealm => {
                !issuer.ends_with('/')
                    && segments.len() >= 2
                    && segments[segments.len() - 2] == "realms"
                    && !segments[segments.len() - 1].is_empty()
            }
            IssuerShape::TrailingSlash => issuer.ends_with('/'),
            IssuerShape::AuthentikApplication => {
                issuer.ends_with('/')
                    && segments.len() >= 4
                    && segments[segments.len() - 4] == "application"
                    && segments[segments.len() - 3] == "o"
                    && !segments[segments.len() - 2].is_empty()
            }
        };
        (!fits).then(|| {
            format!(
                "{issuer:?} is not the issuer of a {} server, which looks like {} (exactly: the ID tokens name it so)",
                self.display_name, self.example_issuer
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issuers_are_checked_against_each_products_shape() {
        let problem =
            |preset: &str, issuer: &str| Preset::named(preset).unwrap().issuer_problem(issuer);
        for (preset, good) in [
            ("gitlab", "https://gitlab.com"),
            ("gitlab", "https://gitlab.example.com"),
            ("linkedin", "https://www.linkedin.com/oauth"),
            ("okta", "https://acme.okta.com"),
            ("okta", "https://acme.okta.com/oauth2/default"),
            ("keycloak", "https://sso.example.com/realms/acme"),
            ("keycloak", "https://sso.example.com/auth/realms/acme"),
            ("auth0", "https://acme.eu.auth0.com/"),
            (
                "authentik",
                "https://auth.example.com/application/o/loginwith/",
            ),
        ] {
            assert_eq!(problem(preset, good), None, "{preset} {good}");
        }
        for (preset, bad) in [
            ("linkedin", "https://www.linkedin.com"),
            ("keycloak", "https://sso.example.com/realms/acme/"),
            ("keycloak", "https://sso.example.com/acme"),
            ("keycloak", "https://sso.example.com/realms/"),
            ("auth0", "https://acme.eu.auth0.com"),
            (
                "authentik",
                "https://auth.example.com/application/o/loginwith",
            ),
            ("authentik", "https://auth.example.com/application/o//"),
            ("authentik", "https://auth.example.com/"),
        ] {
            assert!(problem(preset, bad).is_some(), "{preset} {bad}");
        }
        assert!(Preset::named("google").is_none());
        assert_eq!(Preset::names().count(), 6);
    }
}
