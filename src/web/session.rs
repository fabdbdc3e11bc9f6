//! What this app keeps in the server-side session, behind typed methods so no handler
//! spells a key or a JSON shape: the sign-in (the store's `store::SessionSignIn`), its CSRF
//! token, and notices. A sign-in in progress is not here: it lives in the browser, sealed
//! (`web::pre_sign_in`), so nothing is written before the provider answers.

use std::time::Duration;

use axum::{
    extract::FromRequestParts,
    http::request::Parts,
};
use oauth2::CsrfToken;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use tower_sessions::{Expiry, Session};

use super::{AppError, AppState, WebSettings, cookie_guard::SignOutIntent, pre_sign_in::LinkOwner};
use crate::{
    model::{Membership, millis, now_ms},
    store::{CSRF_KEY, NOTICES_KEY, SIGNED_IN_KEY, SessionSignIn, UserId},
};

/// The store's own shape ([`SessionSignIn`]): it copies the sign-in into the session row's
/// columns, so a person's sessions end together.
const SIGNED_IN: &str = SIGNED_IN_KEY;
const CSRF: &str = CSRF_KEY;
const NOTICES: &str = NOTICES_KEY;

/// A message for the person, shown once on the next page that shows messages.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Notice {
    pub text: String,
    /// The provider to offer "Try again" with, when the notice is about a sign-in.
    pub provider: Option<String>,
}

/// Whether a sign-in that began at `since_ms` is past its lifetime at `now`: the absolute
/// lifetime, or, when `[access]` names groups, organisations or teams, `access.recheck_hours`
/// if shorter (the membership kept with it is then too old to trust: the person signs in again
/// and the provider says afresh).
pub fn past_absolute_lifetime(since_ms: i64, now: i64, settings: &WebSettings) -> bool {
    let lifetime = settings
        .access
        .recheck()
        .map_or(settings.absolute, |recheck| recheck.min(settings.absolute));
    now.saturating_sub(since_ms) > millis(lifetime)
}

/// An active sign-in's cookie and record are extended at most this often (one write a day,
/// not one per request).
pub const REFRESH_EVERY_MS: i64 = 24 * 60 * 60 * 1000;

/// The session, with this app's meaning.
pub struct WebSession {
    session: Session,
    sign_out_intent: Option<SignOutIntent>,
    /// The idle lifetime of a signed-in session.
    remember: Duration,
}

impl FromRequestParts<AppState> for WebSession {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let session = Session::from_request_parts(parts, state)
            .await
            .map_err(|(_, message)| AppError::Internal(format!("session layer: {message}")))?;
        Ok(Self {
            session,
            sign_out_intent: parts.extensions.get::<SignOutIntent>().cloned(),
            remember: state.settings.remember,
        })
    }
}

impl WebSession {
    /// The signed-in person, if any. Past the absolute lifetime the session is ended; an
    /// active one is extended (its idle lifetime restarts) about once a day.
    pub async fn user(&self, settings: &WebSettings) -> Result<Option<UserId>, AppError> {
        Ok(self.link_owner(settings).await?.map(|owner| owner.user))
    }

    /// [`Self::user`], with when their sign-in began: what a sign-in that adds an identity is
    /// bound to (`web::pre_sign_in::LinkOwner`).
    pub async fn link_owner(&self, settings: &WebSettings) -> Result<Option<LinkOwner>, AppError> {
        let Some(mut signed_in) = self.session.get::<SessionSignIn>(SIGNED_IN).await? else {
            return Ok(None);
        };
        let now = now_ms();
        if past_absolute_lifetime(signed_in.since_ms, now, settings) {
            self.sign_out().await?;
            return Ok(None);
        }
        if now.saturating_sub(signed_in.refreshed_ms) > REFRESH_EVERY_MS {
            signed_in.refreshed_ms = now;
            self.write(SIGNED_IN, &signed_in).await?;
        }
        Ok(Some(LinkOwner {
            user: signed_in.user,
            since_ms: signed_in.since_ms,
        }))
    }

    /// The provider this browser's sign-in was made with, if it is signed in (and that was
    /// recorded).
    pub async fn sign_in_provider(&self) -> Result<Option<String>, AppError> {
        Ok(self
            .session
            .get::<SessionSignIn>(SIGNED_IN)
            .await?
            .and_then(|signed_in| signed_in.provider))
    }

    /// This browser's session id, once it has one (a signed-in session always has).
    pub fn id(&self) -> Option<String> {
        self.session.id().map(|id| id.to_string())
    }

    /// The token the logout form must echo.
    pub async fn csrf_token(&self) -> Result<Option<String>, AppError> {
        Ok(self.session.get(CSRF).await?)
    }

    /// Signs `user` in with `provider`, keeping what the provider said they belong to: a new
    /// session id (so an id planted before sign-in is worthless), a fresh CSRF token, a
    /// persistent cookie for the idle lifetime (`session.remember_days`).
    pub async fn sign_in(
        &self,
        user: UserId,
        provider: &str,
        membership: Membership,
        device: Option<String>,
        provider_sid: Option<String>,
    ) -> Result<(), AppError> {
        // A browser that brought a session id (planted, stale, or its own) gets a new one, and
        // the old record goes. One that brought none gets a fresh id when the record is
        // created: tower-sessions' `cycle_id` would also delete a record that never existed,
        // a statement for nothing on every sign-in.
        if self.session.id().is_some() {
            self.session.cycle_id().await?;
        }
        let now = now_ms();
        self.session
            .insert(
                SIGNED_IN,
                SessionSignIn {
                    user,
                    provider: Some(provider.to_owned()),
                    since_ms: now,
                    refreshed_ms: now,
                    membership,
                    device,
                    provider_sid,
                },
            )
            .await?;
        self.session
            .insert(CSRF, CsrfToken::new_random_len(32).secret())
            .await?;
        self.set_signed_in_expiry();
        Ok(())
    }

    /// Every write goes through here: tower-sessions does not keep a session's expiry in
    /// its record, so a signed-in session must set its long one again on each write, or the
    /// save would fall back to the short anonymous lifetime.
    async fn write(&self, key: &str, value: impl Serialize) -> Result<(), AppError> {
        self.session.insert(key, value).await?;
        self.keep_expiry().await
    }

    async fn delete(&self, key: &str) -> Result<(), AppError> {
        self.session.remove_value(key).await?;
        self.keep_expiry().await
    }

    async fn keep_expiry(&self) -> Result<(), AppError> {
        if self.session.get_value(SIGNED_IN).await?.is_some() {
            self.set_signed_in_expiry();
        }
        Ok(())
    }

    fn set_signed_in_expiry(&self) {
        let remember = time::Duration::try_from(self.remember).unwrap_or(time::Duration::days(30));
        self.session
            .set_expiry(Some(Expiry::OnInactivity(remember)));
    }

    /// Signs out: the record is deleted and the cookie removed.
    pub async fn sign_out(&self) -> Result<(), AppError> {
        if let Some(intent) = &self.sign_out_intent {
            intent.declare();
        }
        self.session.flush().await?;
        Ok(())
    }

    pub async fn add_notice(&self, text: String, provider: Option<&str>) -> Result<(), AppError> {
        let mut notices: Vec<Notice> = self.session.get(NOTICES).await?.unwrap_or_default();
        notices.push(Notice {
            text,
            provider: provider.map(str::to_owned),
        });
        self.write(NOTICES, notices).await?;
        Ok(())
    }

    /// The notices waiting to be shown; reading them removes them. A session without
    /// notices is not touched, so it is not written back.
    pub async fn take_notices(&self) -> Result<Vec<Notice>, AppError> {
        if self.session.get_value(NOTICES).await?.is_none() {
            return Ok(Vec::new());
        }
        let notices = self.session.get(NOTICES).await?.unwrap_or_default();
        self.delete(NOTICES).await?;
        Ok(notices)
    }
}

/// A state-changing form's only field this module reads: the session's CSRF token, echoed.
#[derive(Deserialize)]
struct CsrfForm {
    csrf_token: Option<String>,
}

impl WebSession {
    /// The signed-in person who sent a form (`body`), once its `csrf_token` matches this
    /// session's: every state-changing form checks here. `Ok(None)`: nobody is signed in
    /// (there is nothing to change; the caller sends them home). A missing or wrong token is
    /// the 403 page saying `expired`, so another site cannot post in someone's name.
    pub async fn form_sender(
        &self,
        settings: &WebSettings,
        body: &[u8],
        expired: &'static str,
    ) -> Result<Option<UserId>, AppError> {
        let form: CsrfForm = super::params::decode(body)?;
        let (Some(user), Some(expected)) = (self.user(settings).await?, self.csrf_token().await?)
        else {
            return Ok(None);
        };
        if !tokens_match(&form.csrf_token.unwrap_or_default(), &expected) {
            return Err(AppError::Forbidden(expired));
        }
        Ok(Some(user))
    }
}

/// Whether `given` equals `expected`, in time that does not depend on where they differ.
pub fn tokens_match(given: &str, expected: &str) -> bool {
    given.as_bytes().ct_eq(expected.as_bytes()).into()
}
