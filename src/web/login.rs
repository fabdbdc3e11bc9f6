use axum::{
    extract::{RawQuery, State},
    http::{HeaderMap, header::USER_AGENT},
    response::{IntoResponse, Redirect, Response},
};
use oauth2::{AuthorizationCode, CsrfToken, PkceCodeChallenge};
use serde::Deserialize;
use tracing::info;

use super::{
    AppError, AppState, WebSession,
    params::{self, PathParam, Query},
    pre_sign_in::{LinkOwner, PreSignIn, Started},
    return_to,
};
use crate::{
    auth::{Attempt, FailureReason, LoginSecrets, Provider, oidc::apple},
    model::device,
    telemetry,
};

/// `/` and `/authorize/{provider}` take `return_to`: where to go once signed in.
#[derive(Deserialize)]
pub(super) struct ReturnQuery {
    pub return_to: Option<String>,
}

impl ReturnQuery {
    /// The query's `return_to` when it is allowed (see [`return_to::allowed_target`]);
    /// anything else is dropped.
    pub fn target(self, app: &AppState) -> Option<String> {
        self.return_to
            .and_then(|raw| return_to::allowed_target(&raw, &app.settings.return_rules))
    }
}

/// `GET /authorize/{provider}[?return_to=URL]`: a fresh `state` and PKCE pair, then off to
/// the provider. An allowed `return_to` is kept with the started sign-in. Nothing is written
/// but the browser's pre-sign-in cookie.
pub async fn authorize(
    State(app): State<AppState>,
    PathParam(provider): PathParam<String>,
    Query(query): Query<ReturnQuery>,
    session: WebSession,
    pre: PreSignIn,
) -> Result<Response, AppError> {
    let provider = app.providers.get(&provider).ok_or(AppError::NotFound)?;
    let target = query.target(&app);
    if session.user(&app.settings).await?.is_some() {
        return Ok(app
            .settings
            .redirect_to_target(target.as_deref())
            .into_response());
    }
    begin(provider.as_ref(), pre, None, target)
}

/// A fresh `state`, PKCE pair and nonce, kept in the browser's sealed pre-sign-in cookie,
/// then off to the provider. With `link_for` the callback adds the identity to that
/// signed-in person (`/account/link`), if their sign-in still lasts then.
pub(super) fn begin(
    provider: &dyn Provider,
    mut pre: PreSignIn,
    link_for: Option<LinkOwner>,
    return_to: Option<String>,
) -> Result<Response, AppError> {
    // 256 bits of state; the oauth2 default of 128 is the floor, not the goal.
    let state = CsrfToken::new_random_len(32);
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    // 256 random bits too, base64url: only its equality with the ID token's claim matters.
    let nonce = CsrfToken::new_random_len(32).into_secret();
    let url = provider
        .authorization_url(&state, &challenge, &nonce)
        .map_err(|_| AppError::ProviderUnavailable(provider.display_name().to_owned()))?;
    pre.start(Started::new(
        provider.id(),
        state,
        verifier,
        nonce,
        link_for,
        return_to,
    ));
    telemetry::sign_in_started(provider.id());
    Ok(pre.attach(Redirect::to(url.as_str()).into_response()))
}

/// What a provider may send back. Unknown parameters are ignored; repeated ones are refused.
#[derive(Deserialize)]
struct CallbackQuery {
    state: Option<String>,
    code: Option<String>,
    error: Option<String>,
    /// RFC 9207: the issuer of the response, when the provider sends one.
    iss: Option<String>,
    /// Sign in with Apple's first answer: the person's name (JSON), beside the code.
    user: Option<String>,
}

const BAD_CALLBACK: &str = "This sign-in link is not valid any more (it was already used, has expired, or was not started in this browser). Please start the sign-in again.";

/// `GET /callback/{provider}`: checks `state`, records a pending operation, starts the
/// exchange in the background and sends the browser to the preloader. The answer carries the
/// pre-sign-in cookie as the callback left it, also when it refuses (a refused callback
/// clears the started sign-ins).
pub async fn callback(
    State(app): State<AppState>,
    PathParam(provider): PathParam<String>,
    // Decoded here, not by `Query`: a callback that does not decode ends the started
    // sign-ins too.
    RawQuery(query): RawQuery,
    session: WebSession,
    mut pre: PreSignIn,
    headers: HeaderMap,
) -> Response {
    // Carried to the exchange, which makes a label of it only if it records a refusal.
    let user_agent = device::user_agent(headers.get(USER_AGENT).map(|v| v.as_bytes()));
    let answer = take_callback(&app, &provider, query, &session, &mut pre, user_agent)
        .await
        .into_response();
    // Our failure (every exchange slot busy, the database unavailable) spends nothing: the
    // browser keeps its cookie as it was, and the same answer from the provider can be tried
    // again (nothing was recorded, so its state is still unused).
    if answer.status().is_server_error() {
        return answer;
    }
    pre.attach(answer)
}

/// The provider's answer, from the query of a redirect (`GET /callback/{provider}`) or the
/// form of the same-site step that relays a posted one (`web/form_post.rs`): checked against
/// the pre-sign-in cookie, the exchange spawned.
pub(super) async fn take_callback(
    app: &AppState,
    provider: &str,
    query: Option<String>,
    session: &WebSession,
    pre: &mut PreSignIn,
    user_agent: Option<String>,
) -> Result<Response, AppError> {
    let provider = app.providers.get(provider).ok_or(AppError::NotFound)?.clone();
    let query: CallbackQuery = match params::decode(query.unwrap_or_default().as_bytes()) {
        Ok(query) => query,
        Err(e) => {
            pre.clear_started();
            return Err(e);
        }
    };
    let Some(state) = query.state.filter(|s| !s.is_empty()) else {
        pre.clear_started();
        return Err(AppError::BadRequest(BAD_CALLBACK));
    };
    let Some(login) = pre.take(provider.id(), &state) else {
        info!(
            provider = provider.id(),
            "callback refused: unknown, replayed or expired state"
        );
        // A late answer to a sign-in another tab already completed: nothing to do.
        if session.user(&app.settings).await?.is_some() {
            return Ok(app.settings.redirect("/").into_response());
        }
        return Err(AppError::BadRequest(BAD_CALLBACK));
    };
    if !issuer_matches(
        provider.issuer(),
        provider.issuer_required(),
        query.iss.as_deref(),
    ) {
        info!(provider = provider.id(), "callback refused: unexpected iss");
        telemetry::sign_in_finished(provider.id(), telemetry::REFUSED);
        return Err(AppError::BadRequest(BAD_CALLBACK));
    }
    // A link must finish in the sign-in that started it: one signed out meanwhile (even if
    // signed in again) adds nothing to anyone.
    if let Some(owner) = login.link_for
        && session.link_owner(&app.settings).await? != Some(owner)
    {
        info!(
            provider = provider.id(),
            "link refused: its sign-in is no longer the one in this browser"
        );
        telemetry::sign_in_finished(provider.id(), telemetry::REFUSED);
        return Err(AppError::BadRequest(BAD_CALLBACK));
    }
    if let Some(error) = query.error {
        // RFC 6749's code, and Sign in with Apple's own for its Cancel button.
        let cancelled = matches!(error.as_str(), "access_denied" | "user_cancelled_authorize");
        telemetry::sign_in_finished(
            provider.id(),
            if cancelled {
                telemetry::CANCELLED
            } else {
                FailureReason::ProviderError.code()
            },
        );
        if login.link_for.is_some() {
            let text = format!(
                "{} was not added to your sign-in methods. Nothing changed.",
                provider.display_name()
            );
            session.add_notice(text, None).await?;
            return Ok(app.settings.redirect("/account").into_response());
        }
        pre.decline(&login, cancelled);
        return Ok(app.settings.redirect("/error").into_response());
    }
    let Some(code) = query.code.filter(|c| !c.is_empty()) else {
        telemetry::sign_in_finished(provider.id(), telemetry::REFUSED);
        return Err(AppError::BadRequest(BAD_CALLBACK));
    };
    let Some(slot) = app.exchanger.reserve() else {
        telemetry::sign_in_finished(provider.id(), telemetry::BUSY);
        return Err(AppError::Busy);
    };
    // From here the exchange task counts the outcome; before it, a failure to record the
    // operation ends the sign-in here.
    let link_for = login.link_for.map(|owner| owner.user);
    let recorded = app
        .store
        .begin_operation(provider.id(), link_for, login.state())
        .await
        .inspect_err(|_| telemetry::sign_in_finished(provider.id(), FailureReason::Internal.code()))?;
    // The same state recorded before: a replayed callback (the cookie copied, or sent
    // again), on this instance or another.
    let Some(operation) = recorded else {
        info!(provider = provider.id(), "callback refused: its state was used before");
        telemetry::sign_in_finished(provider.id(), telemetry::REFUSED);
        return Err(AppError::BadRequest(BAD_CALLBACK));
    };
    pre.wait_for(operation, &login);
    let names = query
        .user
        .filter(|_| provider.posts_its_answer())
        .and_then(|user| apple::names_from_user_field(&user));
    app.exchanger.spawn(
        slot,
        operation,
        provider,
        AuthorizationCode::new(code),
        LoginSecrets {
            verifier: login.verifier,
            nonce: login.nonce,
        },
        Attempt {
            link_for,
            user_agent,
            names,
        },
    );
    Ok(app.settings.redirect("/preloader").into_response())
}

/// RFC 9207: a provider with an issuer must name it in `iss`; one without may not send any.
/// A missing, different or unexpected `iss` means the answer came from another authorization
/// server (a mix-up attack).
fn issuer_matches(expected: Option<&str>, required: bool, received: Option<&str>) -> bool {
    match (expected, received) {
        (None, None) => true,
        (Some(expected), Some(received)) => super::session::tokens_match(received, expected),
        (Some(_), None) => !required,
        (None, Some(_)) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::issuer_matches;

    #[test]
    fn iss_must_name_the_issuer_whenever_it_is_sent_and_be_sent_when_required() {
        let google = Some("https://accounts.google.com");
        // Google sends iss without advertising it: accepted when right, refused when not.
        assert!(issuer_matches(google, false, google));
        assert!(issuer_matches(google, false, None));
        assert!(!issuer_matches(google, false, Some("https://evil.example")));
        // An issuer that advertises RFC 9207 must send it.
        assert!(!issuer_matches(google, true, None));
        assert!(issuer_matches(google, true, google));
        // A provider without an issuer (Facebook) takes none.
        assert!(issuer_matches(None, false, None));
        assert!(!issuer_matches(None, false, google));
    }
}
