//! View models: one struct per template, holding exactly what the page shows.

use crate::model::ProviderBrand;
use std::sync::Arc;

use askama::Template;
use axum::{
    http::StatusCode,
    response::{Html, IntoResponse, Response},
};

pub use super::chrome::Chrome;

/// Renders any page with a status; a template that fails to render is our bug, logged
/// and answered with a bare 500.
pub trait Page: Template + Sized {
    fn into_page(self, status: StatusCode) -> Response {
        match self.render() {
            Ok(html) => (status, Html(html)).into_response(),
            Err(e) => {
                tracing::error!(error = %e, "template failed to render");
                (StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error").into_response()
            }
        }
    }
}

impl<T: Template> Page for T {}

/// A person as the home page greets them.
pub struct Greeting {
    pub first_name: String,
}

/// One sign-in button on the home page: a link to `/authorize/{provider}`.
pub struct SignInButton {
    pub href: String,
    /// The link's text and so its accessible name: "Continue with {display name}".
    pub label: String,
    /// The brand whose published button it wears (`facebook`, `google`, `github`, `apple`,
    /// `microsoft`, `x`, `discord`: each brand's colours and mark, as its guidelines draw
    /// them), or empty for a neutral button with the display name.
    pub brand: &'static str,
}

impl SignInButton {
    /// With `return_to`, the link carries it along (query-encoded; the template escapes
    /// the `&` and quotes for HTML). Below the mount path, as every link.
    pub fn new(
        chrome: &Chrome,
        provider: &dyn crate::auth::Provider,
        return_to: Option<&str>,
    ) -> Self {
        let mut href = chrome.href(&format!("/authorize/{}", provider.id()));
        if let Some(target) = return_to {
            href.push('?');
            href.push_str(
                &url::form_urlencoded::Serializer::new(String::new())
                    .append_pair("return_to", target)
                    .finish(),
            );
        }
        Self {
            href,
            label: format!("Continue with {}", provider.display_name()),
            brand: match provider.brand() {
                Some(ProviderBrand::Facebook) => "facebook",
                Some(ProviderBrand::Google) => "google",
                Some(ProviderBrand::GitHub) => "github",
                Some(ProviderBrand::Apple) => "apple",
                Some(ProviderBrand::Microsoft) => "microsoft",
                Some(ProviderBrand::X) => "x",
                Some(ProviderBrand::Discord) => "discord",
                None => "",
            },
        }
    }
}

#[derive(Template)]
#[template(path = "index.html")]
pub struct IndexPage {
    /// What every page shares (`templates/base.html`): name, logo, links' mount path.
    pub chrome: Arc<Chrome>,
    pub user: Option<Greeting>,
    /// One per provider, in configuration order.
    pub buttons: Vec<SignInButton>,
    /// Under the heading: the one provider's name, or a general line for several.
    pub lead: String,
    /// "Signing in never posts anything to Facebook", when a Facebook button is shown.
    pub facebook_note: bool,
    pub csrf_token: String,
    pub notices: Vec<String>,
    /// For someone signed in whom `[access]` refuses, arrived with a `return_to`: the logout
    /// form carries it, so that signing out leads to the buttons that come back there.
    pub logout_return_to: Option<String>,
}

#[derive(Template)]
#[template(path = "preloader.html")]
pub struct PreloaderPage {
    /// What every page shares (`templates/base.html`): name, logo, links' mount path.
    pub chrome: Arc<Chrome>,
    pub provider_name: String,
    pub poll_interval_ms: u64,
    pub poll_limit_secs: u64,
    /// Seconds between reloads of the `<noscript>` fallback.
    pub refresh_secs: u64,
}

#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage {
    /// What every page shares (`templates/base.html`): name, logo, links' mount path.
    pub chrome: Arc<Chrome>,
    pub messages: Vec<String>,
    /// Where "Try again" leads: the provider's `/authorize/...`, or `/`.
    pub retry_href: String,
}

/// "{who} ({provider}) may not sign in to {site}.": a sign-in `[access]` refused, or a person
/// signed in whom it no longer lets in (`/auth/check`'s 403, the `SignedIn` extractor).
#[derive(Template)]
#[template(path = "not_allowed.html")]
pub struct NotAllowedPage {
    /// What every page shares (`templates/base.html`): name, logo, links' mount path.
    pub chrome: Arc<Chrome>,
    /// The address used, or "This account" when there is none to show.
    pub who: String,
    /// The provider's display name.
    pub provider: String,
    /// The protected host the person may not enter (`/auth/check`, when a trusted gateway
    /// named it); `None`: the sentence names the site ("may not sign in to {site.name}").
    pub host: Option<String>,
    /// loginwith's home page (with the `return_to` kept, when there is one).
    pub another_href: String,
    /// For someone signed in on loginwith's own origin (the `SignedIn` extractor): both
    /// buttons sign out first (another account cannot be chosen while this one is signed in).
    pub logout: Option<LogoutForm>,
    /// For someone signed in, on another host (`/auth/check`): "Log out" is a link to
    /// loginwith's home page, whose logout form carries the CSRF token that page must not.
    pub logout_href: Option<String>,
}

/// The logout form of [`NotAllowedPage`], posted to loginwith's `/logout`.
pub struct LogoutForm {
    /// `/logout`, absolute when the page is served on another host (`/auth/check`).
    pub action: String,
    pub csrf_token: String,
    /// Where "Sign in with another account" comes back to once signed in again.
    pub return_to: Option<String>,
}

impl NotAllowedPage {
    /// Who the sentence names: the address, or "This account" without one.
    pub fn who(email: Option<&str>) -> String {
        email
            .filter(|e| !e.trim().is_empty())
            .map_or_else(|| "This account".to_owned(), str::to_owned)
    }
}

#[derive(Template)]
#[template(path = "problem.html")]
pub struct ProblemPage<'a> {
    /// What every page shares (`templates/base.html`): name, logo, links' mount path.
    pub chrome: Arc<Chrome>,
    pub status: u16,
    pub title: &'a str,
    pub message: &'a str,
}

/// After "Log out" with `sign_out_at_provider`: signed out here, on the way to the issuer's
/// own logout (sent with a `Refresh` header, and a link for browsers that do not follow it).
#[derive(Template)]
#[template(path = "signing_out.html")]
pub struct SigningOutPage {
    /// What every page shares (`templates/base.html`): name, logo, links' mount path.
    pub chrome: Arc<Chrome>,
    /// The provider's display name.
    pub provider: String,
    /// The issuer's end-session URL.
    pub url: String,
}

#[derive(Template)]
#[template(path = "delete_account.html")]
pub struct DeleteAccountPage {
    /// What every page shares (`templates/base.html`): name, logo, links' mount path.
    pub chrome: Arc<Chrome>,
    pub csrf_token: String,
    /// The sign-in accounts that are unlinked, as a phrase ("Facebook and GitHub").
    pub accounts: String,
    pub several: bool,
}

#[derive(Template)]
#[template(path = "deletion.html")]
pub struct DeletionPage {
    /// What every page shares (`templates/base.html`): name, logo, links' mount path.
    pub chrome: Arc<Chrome>,
    pub confirmation_code: String,
    pub provider_name: String,
    pub identity_deleted: bool,
    pub profile_deleted: bool,
    /// `YYYY-MM-DD HH:MM UTC`.
    pub when: String,
}

#[derive(Template)]
#[template(path = "privacy.html")]
pub struct PrivacyPage {
    /// What every page shares (`templates/base.html`): name, logo, links' mount path.
    pub chrome: Arc<Chrome>,
    /// The configured providers' names, as a phrase ("Facebook and GitHub").
    pub providers: String,
    /// A Facebook provider is configured: its Data Deletion callback is described.
    pub facebook: bool,
    /// `session.remember_days` and `session.absolute_days`.
    pub remember_days: u64,
    pub absolute_days: u64,
    /// How long a finished sign-in's record is kept.
    pub operation_hours: u64,
    /// `audit.retention_days`: how long "Recent activity" is kept (0: not recorded).
    pub activity_days: u32,
}

/// The hour of `ms` (Unix milliseconds), UTC, for what is kept to the hour:
/// "2026-12-06 20:00 UTC".
pub fn utc_hour(ms: i64) -> String {
    utc_date(ms - ms.rem_euclid(60 * 60 * 1000))
}

/// Unix milliseconds as `YYYY-MM-DD HH:MM UTC`; empty when out of range.
pub fn utc_date(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(ms / 1000)
        .map(|t| {
            format!(
                "{:04}-{:02}-{:02} {:02}:{:02} UTC",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute()
            )
        })
        .unwrap_or_default()
}

/// One identity on "Sign-in methods".
pub struct IdentityRow {
    pub id: i64,
    pub provider_name: String,
    pub added: String,
    pub last_used: String,
}

/// One live sign-in on "Where you're signed in".
pub struct DeviceRow {
    /// What the form that ends it names it by (never the session id).
    pub reference: String,
    /// "Firefox on Linux".
    pub label: String,
    /// The provider's name, or empty when unknown.
    pub provider: String,
    pub since: String,
    pub last_used: String,
    /// This browser's own sign-in.
    pub this_device: bool,
}

/// One line of "Recent activity".
pub struct ActivityRow {
    pub when: String,
    pub refused: bool,
    pub provider: String,
    pub device: String,
}

/// A provider the person can add.
pub struct ProviderButton {
    pub id: String,
    pub name: String,
}

#[derive(Template)]
#[template(path = "sign_in_methods.html")]
pub struct SignInMethodsPage {
    /// What every page shares (`templates/base.html`): name, logo, links' mount path.
    pub chrome: Arc<Chrome>,
    pub identities: Vec<IdentityRow>,
    /// False when only one is left: it cannot be removed.
    pub can_remove: bool,
    pub addable: Vec<ProviderButton>,
    /// "Where you're signed in", this browser's among them.
    pub devices: Vec<DeviceRow>,
    /// "Recent activity", newest first.
    pub activity: Vec<ActivityRow>,
    /// Whether `[audit]` keeps activity at all (otherwise the section says so).
    pub activity_kept: bool,
    pub csrf_token: String,
    pub notices: Vec<String>,
}

impl DeletionPage {
    pub fn new(
        chrome: Arc<Chrome>,
        record: &crate::store::DeletionRecord,
        provider_name: &str,
    ) -> Self {
        let when = utc_date(record.created_at_ms);
        Self {
            chrome,
            confirmation_code: record.confirmation_code.clone(),
            provider_name: provider_name.to_owned(),
            identity_deleted: record.deletion.identity_deleted,
            profile_deleted: record.deletion.profile_deleted,
            when,
        }
    }
}

/// Every URL a page holds, with the attribute it is in: `href`, `src` and `action`, a
/// refresh's `url=` (as `refresh`), and the `data-…-url` attributes the preloader's script
/// follows (values as written, entities and all, which no path of ours holds). For the tests
/// that check no link leaves the mount path.
#[cfg(any(test, feature = "test-support"))]
pub fn link_targets(html: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let mut rest = html;
    while let Some(at) = rest.find("=\"") {
        let name_start = rest[..at]
            .rfind(|c: char| c.is_whitespace())
            .map_or(0, |i| i + 1);
        let name = &rest[name_start..at];
        let value_start = at + 2;
        let Some(len) = rest[value_start..].find('"') else {
            break;
        };
        let value = &rest[value_start..value_start + len];
        if matches!(name, "href" | "src" | "action")
            || (name.starts_with("data-") && name.ends_with("-url"))
        {
            found.push((name.to_owned(), value.to_owned()));
        }
        if let ("content", Some((_, url))) = (name, value.split_once("url=")) {
            found.push(("refresh".to_owned(), url.to_owned()));
        }
        rest = &rest[value_start + len + 1..];
    }
    found
}

#[cfg(test)]
mod tests {
    //! Every page rendered with loginwith mounted below `/auth`: no link, form, picture,
    //! script, refresh or script-followed URL may leave that path.

    use std::sync::Arc;

    use askama::Template;
    use oauth2::{AuthorizationCode, CsrfToken, PkceCodeChallenge};
    use url::Url;

    use super::*;
    use crate::{
        auth::{
            BoxFuture, ExchangeError, FailureReason, LoginSecrets, Profile, Provider, Unavailable,
        },
        config::{Brand, LoadedFile, Resource},
        store::{Deletion, DeletionRecord},
    };

    const BASE: &str = "/auth";

    struct Stub(&'static str, Option<ProviderBrand>);

    impl Provider for Stub {
        fn id(&self) -> &str {
            self.0
        }
        fn display_name(&self) -> &str {
            self.0
        }
        fn brand(&self) -> Option<ProviderBrand> {
            self.1
        }
        fn authorization_url(
            &self,
            _: &CsrfToken,
            _: &PkceCodeChallenge,
            _: &str,
        ) -> Result<Url, Unavailable> {
            Ok(Url::parse("https://id.example/authorize").unwrap())
        }
        fn exchange(
            &self,
            _: AuthorizationCode,
            _: LoginSecrets,
        ) -> BoxFuture<'_, Result<Profile, ExchangeError>> {
            Box::pin(async { Err(ExchangeError::new(FailureReason::Denied, "stub")) })
        }
    }

    /// A brand with every part that makes a link: a logo and a stylesheet served by the app,
    /// the accent's generated stylesheet, and a contact address.
    fn chrome() -> Arc<Chrome> {
        let brand = Brand {
            name: "Acme <b>&</b> 🚀".to_owned(),
            logo: Some(Resource::File(LoadedFile {
                extension: "svg",
                bytes: Arc::from(&b"<svg xmlns='http://www.w3.org/2000/svg'/>"[..]),
            })),
            accent: Some(crate::config::Rgb([0x6b, 0x3f, 0xa0])),
            stylesheet: Some(Resource::File(LoadedFile {
                extension: "css",
                bytes: Arc::from(&b"body{}"[..]),
            })),
            contact_email: Some("privacy@acme.example".to_owned()),
            privacy_policy_url: None,
        };
        Arc::new(Chrome::new(&brand, BASE))
    }

    /// Every page there is, in each of its forms that links somewhere else.
    fn every_page(chrome: &Arc<Chrome>) -> Vec<(&'static str, String)> {
        let providers: [&dyn Provider; 8] = [
            &Stub("facebook", Some(ProviderBrand::Facebook)),
            &Stub("google", Some(ProviderBrand::Google)),
            &Stub("github", Some(ProviderBrand::GitHub)),
            &Stub("apple", Some(ProviderBrand::Apple)),
            &Stub("microsoft", Some(ProviderBrand::Microsoft)),
            &Stub("x", Some(ProviderBrand::X)),
            &Stub("discord", Some(ProviderBrand::Discord)),
            &Stub("corp", None),
        ];
        let buttons = |return_to| {
            providers
                .iter()
                .map(|p| SignInButton::new(chrome, *p, return_to))
                .collect::<Vec<_>>()
        };
        let index = |user, return_to| IndexPage {
            chrome: chrome.clone(),
            user,
            buttons: buttons(return_to),
            lead: String::new(),
            facebook_note: true,
            csrf_token: "t".to_owned(),
            notices: vec!["n".to_owned()],
            logout_return_to: None,
        };
        let record = DeletionRecord {
            confirmation_code: "c".repeat(32),
            provider: "facebook".to_owned(),
            deletion: Deletion {
                identity_deleted: true,
                profile_deleted: true,
            },
            created_at_ms: 0,
        };
        vec![
            ("home", index(None, None).render().unwrap()),
            (
                "home, return_to",
                index(None, Some("/next")).render().unwrap(),
            ),
            (
                "home, signed in",
                index(
                    Some(Greeting {
                        first_name: "Ada".to_owned(),
                    }),
                    None,
                )
                .render()
                .unwrap(),
            ),
            (
                "preloader",
                PreloaderPage {
                    chrome: chrome.clone(),
                    provider_name: "Facebook".to_owned(),
                    poll_interval_ms: 1000,
                    poll_limit_secs: 60,
                    refresh_secs: 1,
                }
                .render()
                .unwrap(),
            ),
            (
                "error",
                ErrorPage {
                    chrome: chrome.clone(),
                    messages: vec!["m".to_owned()],
                    retry_href: chrome.href("/authorize/facebook"),
                }
                .render()
                .unwrap(),
            ),
            (
                "problem",
                ProblemPage {
                    chrome: chrome.clone(),
                    status: 404,
                    title: "t",
                    message: "m",
                }
                .render()
                .unwrap(),
            ),
            (
                "delete account",
                DeleteAccountPage {
                    chrome: chrome.clone(),
                    csrf_token: "t".to_owned(),
                    accounts: "Facebook".to_owned(),
                    several: false,
                }
                .render()
                .unwrap(),
            ),
            (
                "deletion",
                DeletionPage::new(chrome.clone(), &record, "Facebook")
                    .render()
                    .unwrap(),
            ),
            (
                "sign-in methods",
                SignInMethodsPage {
                    chrome: chrome.clone(),
                    identities: vec![
                        IdentityRow {
                            id: 7,
                            provider_name: "Facebook".to_owned(),
                            added: String::new(),
                            last_used: String::new(),
                        },
                        IdentityRow {
                            id: 8,
                            provider_name: "GitHub".to_owned(),
                            added: String::new(),
                            last_used: String::new(),
                        },
                    ],
                    can_remove: true,
                    addable: vec![ProviderButton {
                        id: "corp".to_owned(),
                        name: "Corp".to_owned(),
                    }],
                    devices: vec![
                        DeviceRow {
                            reference: "ab12".to_owned(),
                            label: "Firefox on Linux".to_owned(),
                            provider: "GitHub".to_owned(),
                            since: String::new(),
                            last_used: String::new(),
                            this_device: true,
                        },
                        DeviceRow {
                            reference: "cd34".to_owned(),
                            label: "Safari on iPhone".to_owned(),
                            provider: "Facebook".to_owned(),
                            since: String::new(),
                            last_used: String::new(),
                            this_device: false,
                        },
                    ],
                    activity: vec![ActivityRow {
                        when: String::new(),
                        refused: true,
                        provider: "GitHub".to_owned(),
                        device: "Chrome on Android".to_owned(),
                    }],
                    activity_kept: true,
                    csrf_token: "t".to_owned(),
                    notices: Vec::new(),
                }
                .render()
                .unwrap(),
            ),
            (
                "privacy",
                PrivacyPage {
                    chrome: chrome.clone(),
                    providers: "Facebook".to_owned(),
                    facebook: true,
                    remember_days: 30,
                    absolute_days: 90,
                    operation_hours: 24,
                    activity_days: 90,
                }
                .render()
                .unwrap(),
            ),
        ]
    }

    #[test]
    fn no_link_of_any_page_leaves_the_mount_path() {
        let chrome = chrome();
        let mut checked = 0;
        for (page, html) in every_page(&chrome) {
            let found = link_targets(&html).into_iter().map(|(_, url)| url).collect::<Vec<_>>();
            // Each page has at least the icon, the stylesheets, the script, the header's
            // link and the footer's.
            assert!(found.len() >= 7, "{page}: {found:?}");
            for url in found {
                checked += 1;
                let inside = url == BASE || url.starts_with(&format!("{BASE}/"));
                // Only the mailto: link of the contact address leaves the site.
                let mail = url.starts_with("mailto:");
                assert!(
                    inside || mail,
                    "{page}: {url:?} is not below {BASE} (rendered: {html})"
                );
                assert!(!url.starts_with("//"), "{page}: {url:?}");
            }
        }
        assert!(checked > 100, "{checked}");
    }

    #[test]
    fn the_scanner_finds_what_a_page_links() {
        let html = r#"<a class="x" href="/a">x</a><form action="/b"></form><img src='no' alt="">
            <meta http-equiv="refresh" content="1; url=/c"><div data-status-url="/d" data-x="/e">"#;
        assert_eq!(link_targets(html).into_iter().map(|(_, url)| url).collect::<Vec<_>>(), ["/a", "/b", "/c", "/d"]);
    }

    #[test]
    fn the_site_name_is_text_on_every_page() {
        let chrome = chrome();
        for (page, html) in every_page(&chrome) {
            assert!(!html.contains("<b>&</b>"), "{page}");
            assert!(
                html.contains("Acme &#60;b&#62;&#38;&#60;/b&#62; 🚀"),
                "{page}: {html}"
            );
            assert!(!html.contains("loginwith"), "{page}: {html}");
        }
    }
}
