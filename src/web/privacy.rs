//! `GET /privacy`: what this deployment keeps about people, for how long, and how they delete
//! it, in the site's name; or a redirect to the site's own policy (`site.privacy_policy_url`).
//! Facebook asks for a privacy policy URL before an app goes Live: this page is one.

use axum::{
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
};

use super::{
    AppState,
    pages::{Page, PrivacyPage},
};
use crate::store::FINISHED_OPERATION_RETENTION;

const DAY_SECS: u64 = 24 * 60 * 60;

/// `GET /privacy` (and `HEAD`, like every page). Reads and writes no session: a crawler or
/// Facebook's reviewer gets the page without a cookie.
pub async fn privacy(State(app): State<AppState>) -> Response {
    let chrome = app.chrome();
    if let Some(url) = chrome.privacy_policy_url() {
        return Redirect::to(url.as_str()).into_response();
    }
    let mut providers: Vec<String> = Vec::new();
    for provider in app.providers.iter() {
        let name = provider.display_name().to_owned();
        if !providers.contains(&name) {
            providers.push(name);
        }
    }
    let settings = &app.settings;
    PrivacyPage {
        facebook: app.providers.iter().any(|p| p.brand() == Some(crate::model::ProviderBrand::Facebook)),
        providers: super::account::accounts_phrase(&providers),
        remember_days: settings.remember.as_secs() / DAY_SECS,
        absolute_days: settings.absolute.as_secs() / DAY_SECS,
        operation_hours: FINISHED_OPERATION_RETENTION.as_secs() / 3600,
        activity_days: settings.audit.retention_days,
        chrome,
    }
    .into_page(StatusCode::OK)
}
