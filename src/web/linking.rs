//! "Sign-in methods": the signed-in person's identities, adding one by signing in with
//! another provider, and removing one (never the last). Every change is a POST carrying
//! the session's CSRF token, so another site can neither start a link nor remove a method.

use std::sync::Arc;

use axum::{
    extract::State,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use oauth2::{CsrfToken, PkceCodeChallenge};
use tracing::info;

use super::{
    AppError, AppState, WebSession, login,
    pre_sign_in::PreSignIn,
    pages::{IdentityRow, Page, ProviderButton, SignInMethodsPage, utc_date},
    params::{FormBody, PathParam},
};
use crate::{
    auth::Provider,
    store::{IdentityId, Unlink},
};

const EXPIRED_FORM: &str =
    "This form has expired. Go back to \"Sign-in methods\" and try again from there.";

/// `GET /account`: the person's identities, a "Remove" for each unless it is the only one,
/// and an "Add" for each configured provider they have none of; then where they are signed
/// in and their recent activity (`web::devices`). Anonymous visitors go home.
pub async fn methods(
    State(app): State<AppState>,
    session: WebSession,
) -> Result<Response, AppError> {
    let Some(user) = session.user(&app.settings).await? else {
        return Ok(app.settings.redirect("/").into_response());
    };
    let identities = app.store.identities(user).await?;
    // In the home page's order; only those the person has no identity of yet.
    let addable: Vec<&Arc<dyn Provider>> = app
        .providers
        .iter()
        .filter(|p| !identities.iter().any(|i| i.provider == p.id()))
        .collect();
    let policy = policy_allowing_forms_to(&app.settings.chrome, &addable);
    let addable = addable
        .into_iter()
        .map(|p| ProviderButton {
            id: p.id().to_owned(),
            name: p.display_name().to_owned(),
        })
        .collect();
    let can_remove = identities.len() > 1;
    let page = SignInMethodsPage {
        chrome: app.chrome(),
        identities: identities
            .into_iter()
            .map(|i| IdentityRow {
                id: i.id.0,
                provider_name: app.provider_name(&i.provider),
                added: utc_date(i.created_at_ms),
                last_used: utc_date(i.last_login_at_ms),
            })
            .collect(),
        can_remove,
        addable,
        devices: super::devices::device_rows(&app, user, session.id().as_deref()).await?,
        activity: super::devices::activity_rows(&app, user).await?,
        activity_kept: app.settings.audit.records(),
        csrf_token: session.csrf_token().await?.unwrap_or_default(),
        notices: session
            .take_notices()
            .await?
            .into_iter()
            .map(|n| n.text)
            .collect(),
    };
    let mut response = page.into_page(StatusCode::OK);
    if let Some(policy) = policy {
        response
            .headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, policy);
    }
    Ok(response)
}

/// The site's Content-Security-Policy with `form-action` also allowing the providers'
/// authorization origins. Browsers check `form-action` on every redirect that follows a
/// form submission, so under `form-action 'self'` alone the 303 from an "Add GitHub" POST
/// to github.com would be blocked. Widened on this page only, and only for those origins.
fn policy_allowing_forms_to(
    chrome: &super::Chrome,
    providers: &[&Arc<dyn Provider>],
) -> Option<HeaderValue> {
    let (challenge, _) = PkceCodeChallenge::new_random_sha256();
    let origins: Vec<String> = providers
        .iter()
        // An issuer not discovered yet cannot take the form's redirect anyway.
        .filter_map(|p| {
            p.authorization_url(&CsrfToken::new(String::new()), &challenge, "")
                .ok()
        })
        .map(|url| url.origin().ascii_serialization())
        .filter(|origin| origin != "null")
        .collect();
    if origins.is_empty() {
        return None;
    }
    let policy = chrome.content_security_policy();
    let policy = policy.to_str().ok()?.replace(
        "form-action 'self'",
        &format!("form-action 'self' {}", origins.join(" ")),
    );
    HeaderValue::from_str(&policy).ok()
}

/// `POST /account/link/{provider}`: starts a sign-in with `provider` that adds the identity
/// to the signed-in person (who is taken from the session, never from the request).
pub async fn link(
    State(app): State<AppState>,
    PathParam(provider): PathParam<String>,
    session: WebSession,
    pre: PreSignIn,
    FormBody(body): FormBody,
) -> Result<Response, AppError> {
    let provider = app.providers.get(&provider).ok_or(AppError::NotFound)?;
    let sender = session.form_sender(&app.settings, &body, EXPIRED_FORM);
    let (Some(_), Some(owner)) = (sender.await?, session.link_owner(&app.settings).await?) else {
        return Ok(app.settings.redirect("/").into_response());
    };
    login::begin(provider.as_ref(), pre, Some(owner), None)
}

/// `POST /account/identities/{id}/remove`: removes one of the person's own identities,
/// never the last. Someone else's id (or none) is 404 and changes nothing.
pub async fn remove(
    State(app): State<AppState>,
    PathParam(identity): PathParam<i64>,
    session: WebSession,
    FormBody(body): FormBody,
) -> Result<Response, AppError> {
    let sender = session.form_sender(&app.settings, &body, EXPIRED_FORM);
    let Some(user) = sender.await? else {
        return Ok(app.settings.redirect("/").into_response());
    };
    // This browser stays signed in: it just proved to be the person. Their other sessions
    // end, since one of them may have come in through the identity removed.
    let outcome = app
        .store
        .unlink_identity(user, IdentityId(identity), session.id().as_deref())
        .await?;
    let text = match outcome {
        Unlink::NotFound => return Err(AppError::NotFound),
        Unlink::LastOne => {
            "This is your only sign-in method, so it stays. Add another one before removing it."
        }
        Unlink::Removed => {
            info!(user = %user, "identity unlinked by its owner");
            "The sign-in method was removed. You are still signed in here."
        }
    };
    session.add_notice(text.to_owned(), None).await?;
    Ok(app.settings.redirect("/account").into_response())
}
