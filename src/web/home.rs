use axum::{
    extract::State,
    http::{HeaderMap, HeaderName, HeaderValue, StatusCode},
    response::{IntoResponse, Redirect, Response},
};

use oauth2::CsrfToken;

use crate::{
    auth::{Person, Target},
    model::now_ms,
    store::SignedInSession,
};

use super::{
    AppError, AppState, WebSession,
    login::ReturnQuery,
    session::REFRESH_EVERY_MS,
    pages::{Greeting, IndexPage, NotAllowedPage, Page, SignInButton, SigningOutPage},
    params::{FormBody, Query},
};

/// `GET /[?return_to=URL]`: the button, or the greeting and the logout form. An allowed
/// `return_to` rides on the buttons' links, or, for someone already signed in, is where
/// they go at once.
pub async fn home(
    State(app): State<AppState>,
    Query(query): Query<ReturnQuery>,
    headers: HeaderMap,
    session: WebSession,
) -> Result<Response, AppError> {
    let target = query.target(&app);
    // The session and its person in one statement; the session layer reads the session
    // again only for what this read cannot do: end a sign-in past its lifetime, extend one
    // once a day, take the notices waiting (a cookie that names no live sign-in may have
    // some: "your account was deleted").
    let mut user = app.accounts.found(&headers).await?.map(|found| found.session);
    let brings_a_session = app.accounts.brings_a_session(&headers);
    let refresh_due =
        |u: &SignedInSession| now_ms().saturating_sub(u.refreshed_ms) > REFRESH_EVERY_MS;
    if user.as_ref().map_or(brings_a_session, refresh_due)
        && session.user(&app.settings).await?.is_none()
    {
        user = None;
    }
    // Signed in but no longer let in by `[access]` (the rules changed since): still shown
    // signed in, so that they can see who they are and log out, with why the sites behind
    // loginwith refuse them; never sent on to `return_to`, which would only refuse them again.
    let refused = user.as_ref().and_then(|u| {
        let person = Person {
            email: u.email.as_deref(),
            email_verified: u.email_verified,
            membership: &u.membership,
        };
        let who = || {
            format!(
                "{} ({})",
                NotAllowedPage::who(u.email.as_deref()),
                app.provider_name(u.provider.as_deref().unwrap_or_default())
            )
        };
        if !app.settings.access.allows(&person) {
            return Some(format!(
                "{} may not sign in to {}. Log out to sign in with another account.",
                who(),
                app.settings.chrome.name()
            ));
        }
        // Where they are going may have a rule of its own (`[[access.rules]]`): someone it
        // refuses is not sent there, only to be refused again (a circle, from the "Sign in
        // with another account" link of `/auth/check`'s 403 page), but told why, here.
        let (url, host) = target.as_deref().and_then(|t| absolute_target(&app, t))?;
        (!app.settings.access.allows_at(&person, Target::parse(&url).as_ref())).then(|| {
            format!(
                "{} may not enter {host}. Log out to sign in with another account.",
                who()
            )
        })
    });
    if let (Some(_), Some(target), None) = (&user, &target, &refused) {
        // Notices stay for the next page that shows them.
        return Ok(Redirect::to(target).into_response());
    }
    let mut notices: Vec<String> = Vec::new();
    if user.as_ref().map_or(brings_a_session, |u| u.has_notices) {
        notices.extend(session.take_notices().await?.into_iter().map(|n| n.text));
    }
    // Refused: logging out leads back to the buttons, still going where they were going.
    let logout_return_to = refused.is_some().then(|| target.clone()).flatten();
    notices.extend(refused);
    let csrf_token = user
        .as_ref()
        .and_then(|u| u.csrf.clone())
        .unwrap_or_default();
    Ok(index(
        &app,
        user.map(|u| Greeting {
            first_name: u.first_name,
        }),
        target,
        notices,
        logout_return_to,
        csrf_token,
    ))
}

/// The home page: the greeting and the logout form for `user`, or the buttons.
fn index(
    app: &AppState,
    user: Option<Greeting>,
    target: Option<String>,
    notices: Vec<String>,
    logout_return_to: Option<String>,
    csrf_token: String,
) -> Response {
    let chrome = app.chrome();
    let buttons: Vec<SignInButton> = app
        .providers
        .iter()
        .map(|p| SignInButton::new(&chrome, p.as_ref(), target.as_deref()))
        .collect();
    IndexPage {
        chrome,
        user,
        lead: lead(app),
        facebook_note: buttons.iter().any(|b| b.brand == "facebook"),
        buttons,
        csrf_token,
        notices,
        logout_return_to,
    }
    .into_page(StatusCode::OK)
}

/// An allowed `return_to` as an absolute URL (a path is on loginwith's own origin) and its
/// host, for the rules.
fn absolute_target(app: &AppState, target: &str) -> Option<(String, String)> {
    let base = &app.settings.return_rules.public_url;
    let url = base.join(target).ok()?;
    let host = url.host_str()?.to_owned();
    Some((url.to_string(), host))
}

/// "Use your Facebook account" when there is one provider; a general line for several.
fn lead(app: &AppState) -> String {
    let mut providers = app.providers.iter();
    match (providers.next(), providers.next()) {
        (Some(only), None) => format!(
            "Use your {} account: no new password to remember.",
            only.display_name()
        ),
        _ => "Use an account you already have: no new password to remember.".to_owned(),
    }
}

/// `POST /logout`: needs the session's CSRF token, so another site cannot sign people out.
pub async fn logout(
    State(app): State<AppState>,
    session: WebSession,
    FormBody(body): FormBody,
) -> Result<Response, AppError> {
    let expired =
        "This sign-out form has expired. Go back to the home page and sign out from there.";
    // Not signed in: there is nothing to sign out of.
    let mut at_provider = None;
    if session
        .form_sender(&app.settings, &body, expired)
        .await?
        .is_some()
    {
        let provider = session.sign_in_provider().await?;
        session.sign_out().await?;
        at_provider = provider.and_then(|id| app.providers.get(&id).cloned());
    }
    // "Sign in with another account" (the not-allowed page): back to the buttons, with where
    // the sign-in was going, checked against today's rules.
    #[derive(serde::Deserialize)]
    struct Then {
        return_to: Option<String>,
    }
    let then: Then = super::params::decode(&body)?;
    let target = then
        .return_to
        .and_then(|raw| super::return_to::allowed_target(&raw, &app.settings.return_rules));
    // `sign_out_at_provider`: ours is ended above, whatever the issuer does next; then the
    // issuer's own, which comes back to the public URL (the one registered there). A sign-out
    // that goes on to another account ("Sign in with another account", with `return_to`)
    // stays here, since the issuer could not bring `return_to` back.
    if target.is_none()
        && let Some(provider) = at_provider
    {
        let state = CsrfToken::new_random().secret().clone();
        // `Config::post_logout_redirect_uri`, the URI `loginwith check` says to register.
        let back = app.settings.url("/");
        if let Some(url) = provider.end_session_url(&back, &state) {
            tracing::info!(provider = provider.id(), "signed out; ending the session at the issuer too");
            let mut page = SigningOutPage {
                chrome: app.chrome(),
                provider: provider.display_name().to_owned(),
                url: url.to_string(),
            }
            .into_page(StatusCode::OK);
            if let Ok(refresh) = HeaderValue::from_str(&format!("0;url={url}")) {
                page.headers_mut().insert(HeaderName::from_static("refresh"), refresh);
            }
            return Ok(page);
        }
    }
    match target {
        Some(target) => {
            let query = url::form_urlencoded::Serializer::new(String::new())
                .append_pair("return_to", &target)
                .finish();
            Ok(app.settings.redirect(&format!("/?{query}")).into_response())
        }
        None => Ok(app.settings.redirect("/").into_response()),
    }
}
