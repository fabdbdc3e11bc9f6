//! View models: one struct per template, holding exactly what the page shows.

use askama::Template;
use axum::{
    http::StatusCode,
    response::{Html, IntoResponse, Response},
};

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
    /// In Facebook's blue with its mark.
    pub facebook: bool,
    /// In GitHub's dark grey with its mark.
    pub github: bool,
    /// White with Google's four-colour "G", as Google's sign-in branding asks. None of the
    /// three: a neutral button.
    pub google: bool,
}

impl SignInButton {
    /// With `return_to`, the link carries it along (query-encoded; the template escapes
    /// the `&` and quotes for HTML).
    pub fn new(provider: &dyn crate::auth::Provider, return_to: Option<&str>) -> Self {
        let mut href = format!("/authorize/{}", provider.id());
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
            facebook: provider.brand() == Some("facebook"),
            github: provider.brand() == Some("github"),
            google: provider.brand() == Some("google"),
        }
    }
}

#[derive(Template)]
#[template(path = "index.html")]
pub struct IndexPage {
    pub user: Option<Greeting>,
    /// One per provider, in configuration order.
    pub buttons: Vec<SignInButton>,
    /// Under the heading: the one provider's name, or a general line for several.
    pub lead: String,
    /// "Signing in never posts anything to Facebook", when a Facebook button is shown.
    pub facebook_note: bool,
    pub csrf_token: String,
    pub notices: Vec<String>,
}

#[derive(Template)]
#[template(path = "preloader.html")]
pub struct PreloaderPage {
    pub provider_name: String,
    pub poll_interval_ms: u64,
    pub poll_limit_secs: u64,
    /// Seconds between reloads of the `<noscript>` fallback.
    pub refresh_secs: u64,
}

#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage {
    pub messages: Vec<String>,
    /// Where "Try again" leads: the provider's `/authorize/...`, or `/`.
    pub retry_href: String,
}

#[derive(Template)]
#[template(path = "problem.html")]
pub struct ProblemPage<'a> {
    pub status: u16,
    pub title: &'a str,
    pub message: &'a str,
}

#[derive(Template)]
#[template(path = "delete_account.html")]
pub struct DeleteAccountPage {
    pub csrf_token: String,
    /// The sign-in accounts that are unlinked, as a phrase ("Facebook and GitHub").
    pub accounts: String,
    pub several: bool,
}

#[derive(Template)]
#[template(path = "deletion.html")]
pub struct DeletionPage {
    pub confirmation_code: String,
    pub provider_name: String,
    pub identity_deleted: bool,
    pub profile_deleted: bool,
    /// `YYYY-MM-DD HH:MM UTC`.
    pub when: String,
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

/// A provider the person can add.
pub struct ProviderButton {
    pub id: String,
    pub name: String,
}

#[derive(Template)]
#[template(path = "sign_in_methods.html")]
pub struct SignInMethodsPage {
    pub identities: Vec<IdentityRow>,
    /// False when only one is left: it cannot be removed.
    pub can_remove: bool,
    pub addable: Vec<ProviderButton>,
    pub csrf_token: String,
    pub notices: Vec<String>,
}

impl DeletionPage {
    pub fn new(record: &crate::store::DeletionRecord, provider_name: &str) -> Self {
        let when = utc_date(record.created_at_ms);
        Self {
            confirmation_code: record.confirmation_code.clone(),
            provider_name: provider_name.to_owned(),
            identity_deleted: record.deletion.identity_deleted,
            profile_deleted: record.deletion.profile_deleted,
            when,
        }
    }
}
