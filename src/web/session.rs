//! What this app keeps in the server-side session, behind typed methods so no handler
//! spells a key or a JSON shape.
//!
//! Longer than the 400 lines a file here aims for: every key the session holds and each typed
//! method over it (pending sign-ins, the exchange waited for, the sign-in, the CSRF token,
//! notices) in one place, so that no handler spells a key; the sign-in's shape itself is the
//! store's (`store::SessionSignIn`).

use std::time::Duration;

use axum::{
    extract::FromRequestParts,
    http::{HeaderValue, request::Parts},
};
use oauth2::{CsrfToken, PkceCodeVerifier};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use tower_sessions::{Expiry, Session};

use super::{
    AppError, AppState, WebSettings,
    cookie_guard::SignOutIntent,
    sign_in_key::{SignInKey, SignInKeyCookie},
};
use crate::{
    model::{Membership, millis, now_ms},
    store::{CSRF_KEY, OperationId, SIGNED_IN_KEY, SessionSignIn, UserId},
};

const PENDING_LOGINS: &str = "login.pending";
/// The exchange this browser waits for ([`Waiting`]). Sessions from before the sign-in key
/// kept a bare id under `login.operation`, which nothing reads any more: such a sign-in in
/// flight during the upgrade ends on "nothing to finish", the safe way round.
const WAITING: &str = "login.waiting";
/// Where `/success` sends the browser once the operation signs it in (`return_to`).
const RETURN_TO: &str = "login.return_to";
/// The store's own shape ([`SessionSignIn`]): it copies the sign-in into the session row's
/// columns, so a person's sessions end together.
const SIGNED_IN: &str = SIGNED_IN_KEY;
const CSRF: &str = CSRF_KEY;
const NOTICES: &str = "notices";

/// A `state` is good for this long after `/authorize`.
pub const STATE_LIFETIME: Duration = Duration::from_secs(10 * 60);
/// Sign-ins started in other tabs of the same browser that stay valid side by side.
const MAX_PENDING_LOGINS: usize = 4;

/// One started sign-in: what `/callback` must find to accept the provider's answer.
#[derive(Serialize, Deserialize)]
pub struct PendingLogin {
    /// The provider it was issued for: a callback on another provider's path is refused.
    pub provider: String,
    state: CsrfToken,
    pub verifier: PkceCodeVerifier,
    /// The OpenID Connect nonce sent with the authorization request; the ID token must carry
    /// it back. Kept server-side, so a token stolen from another sign-in cannot be replayed
    /// into this one. Empty in sign-ins started before nonces existed: those fail an ID
    /// token check, which is the safe way round.
    #[serde(default)]
    pub nonce: String,
    issued_at_ms: i64,
    /// Started from "Sign-in methods" by this signed-in person: the callback adds the
    /// identity to them instead of signing in. Kept server-side, so no browser can name
    /// someone else here.
    #[serde(default)]
    pub link_for: Option<UserId>,
    /// Where to go once signed in (`return_to`, already checked). Kept server-side: the
    /// browser cannot change it between `/authorize` and `/success`.
    #[serde(default)]
    pub return_to: Option<String>,
    /// The digest of the sign-in key of the browser that started it (see [`SignInKey`]): only
    /// that browser's callback can take it. Empty in sign-ins started before the key
    /// existed, which then match nothing.
    #[serde(default)]
    key_digest: String,
}

/// The exchange a browser waits for, and the digest of the sign-in key of the browser whose
/// callback started it: only that browser can follow it to `/success`.
#[derive(Serialize, Deserialize)]
struct Waiting {
    operation: OperationId,
    key_digest: String,
}

impl PendingLogin {
    fn is_fresh(&self, now: i64) -> bool {
        let age = now.saturating_sub(self.issued_at_ms);
        (0..=millis(STATE_LIFETIME)).contains(&age)
    }
}

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
const REFRESH_EVERY_MS: i64 = 24 * 60 * 60 * 1000;

/// The session, with this app's meaning.
pub struct WebSession {
    session: Session,
    sign_out_intent: Option<SignOutIntent>,
    /// The idle lifetime of a signed-in session.
    remember: Duration,
    /// The sign-in key the browser brought, if any.
    sign_in_key: Option<SignInKey>,
    key_cookie: SignInKeyCookie,
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
            sign_in_key: SignInKey::from_request(&parts.headers, &state.settings.sign_in_key),
            key_cookie: state.settings.sign_in_key.clone(),
        })
    }
}

impl WebSession {
    /// The signed-in person, if any. Past the absolute lifetime the session is ended; an
    /// active one is extended (its idle lifetime restarts) about once a day.
    pub async fn user(&self, settings: &WebSettings) -> Result<Option<UserId>, AppError> {
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
        Ok(Some(signed_in.user))
    }

    /// The current sign-in (with which provider, the membership kept with it); `None` when
    /// nobody is signed in.
    pub async fn current_sign_in(&self) -> Result<Option<SessionSignIn>, AppError> {
        Ok(self.session.get::<SessionSignIn>(SIGNED_IN).await?)
    }

    /// This browser's session id, once it has one (a signed-in session always has).
    pub fn id(&self) -> Option<String> {
        self.session.id().map(|id| id.to_string())
    }

    /// The token the logout form must echo.
    pub async fn csrf_token(&self) -> Result<Option<String>, AppError> {
        Ok(self.session.get(CSRF).await?)
    }

    /// Remembers a started sign-in (or, with `link_for`, the adding of an identity), bound to
    /// this browser's sign-in key. Older ones stay valid (a second tab), up to a few. Returns
    /// the key's `Set-Cookie`: the browser's own key again (its lifetime starts over), or a
    /// new one when it brought none.
    pub async fn begin_login(
        &self,
        provider: &str,
        state: CsrfToken,
        verifier: PkceCodeVerifier,
        nonce: String,
        link_for: Option<UserId>,
        return_to: Option<String>,
    ) -> Result<Option<HeaderValue>, AppError> {
        let generated;
        let key = match &self.sign_in_key {
            Some(key) => key,
            None => {
                generated = SignInKey::generate();
                &generated
            }
        };
        let now = now_ms();
        let mut pending: Vec<PendingLogin> =
            self.session.get(PENDING_LOGINS).await?.unwrap_or_default();
        pending.retain(|p| p.is_fresh(now));
        if pending.len() >= MAX_PENDING_LOGINS {
            pending.remove(0);
        }
        pending.push(PendingLogin {
            provider: provider.to_owned(),
            state,
            verifier,
            nonce,
            issued_at_ms: now,
            link_for,
            return_to,
            key_digest: key.digest(),
        });
        self.write(PENDING_LOGINS, pending).await?;
        Ok(key.set_cookie(&self.key_cookie))
    }

    /// Takes the started sign-in whose `state` matches, for `provider`, started by this
    /// browser (its sign-in key). Single use: a match is removed; a miss (wrong, replayed,
    /// expired, other provider, another browser's) clears every pending sign-in, since
    /// someone is feeding this browser callbacks it did not ask for. After a match only this
    /// browser's other sign-ins stay: a session id shared with another browser (planted by
    /// another host of a shared cookie domain) carries nothing of that browser's on.
    ///
    /// The caller renews the session id ([`Self::renew_id`]) once it has done what can fail.
    pub async fn take_login(
        &self,
        provider: &str,
        state: &str,
    ) -> Result<Option<PendingLogin>, AppError> {
        let Some(mut pending) = self
            .session
            .get::<Vec<PendingLogin>>(PENDING_LOGINS)
            .await?
        else {
            return Ok(None);
        };
        let now = now_ms();
        // Compare against every entry so the time taken does not tell which one matched.
        let mut matched = None;
        for (index, login) in pending.iter().enumerate() {
            let same: bool = login
                .state
                .secret()
                .as_bytes()
                .ct_eq(state.as_bytes())
                .into();
            if same {
                matched = Some(index);
            }
        }
        let key = self.sign_in_key.as_ref();
        let found = matched.map(|index| pending.remove(index)).filter(|login| {
            login.provider == provider
                && login.is_fresh(now)
                && key.is_some_and(|key| key.opens(&login.key_digest))
        });
        if found.is_some() {
            pending.retain(|login| key.is_some_and(|key| key.opens(&login.key_digest)));
        }
        if found.is_some() && !pending.is_empty() {
            self.write(PENDING_LOGINS, pending).await?;
        } else {
            self.delete(PENDING_LOGINS).await?;
        }
        Ok(found)
    }

    /// A new session id, the data kept: whatever id the browser brought before the provider
    /// answered (one planted by another host of a shared cookie domain, say) is worthless
    /// from here on. The old record is deleted at once and the new one saved with the
    /// answer, which the session layer skips for a 5xx: so this comes last, once nothing can
    /// fail, or a failed callback would sign its person out.
    pub async fn renew_id(&self) -> Result<(), AppError> {
        self.session.cycle_id().await?;
        Ok(())
    }

    /// Drops every started sign-in (a bad callback).
    pub async fn clear_logins(&self) -> Result<(), AppError> {
        if self.session.get_value(PENDING_LOGINS).await?.is_some() {
            self.delete(PENDING_LOGINS).await?;
        }
        Ok(())
    }

    /// The exchange this browser is waiting for: only when the browser brings the sign-in
    /// key of the callback that started it (a session id alone, planted or learnt, finishes
    /// nothing).
    pub async fn operation(&self) -> Result<Option<OperationId>, AppError> {
        let Some(waiting) = self.session.get::<Waiting>(WAITING).await? else {
            return Ok(None);
        };
        Ok(self
            .sign_in_key
            .as_ref()
            .is_some_and(|key| key.opens(&waiting.key_digest))
            .then_some(waiting.operation))
    }

    /// The exchange this browser now waits for, started by the callback that took `login`,
    /// and where its sign-in returns to.
    pub async fn set_operation(
        &self,
        id: OperationId,
        login: &PendingLogin,
    ) -> Result<(), AppError> {
        let waiting = Waiting {
            operation: id,
            key_digest: login.key_digest.clone(),
        };
        self.write(WAITING, waiting).await?;
        let return_to = login.return_to.clone();
        match return_to {
            Some(target) => self.write(RETURN_TO, target).await?,
            None => self.delete(RETURN_TO).await?,
        }
        Ok(())
    }

    pub async fn clear_operation(&self) -> Result<(), AppError> {
        self.delete(WAITING).await?;
        self.delete(RETURN_TO).await?;
        Ok(())
    }

    /// A sign-in that failed before its exchange began (cancelled at the provider) keeps
    /// where it was going, for the error page's "Try again".
    pub async fn keep_return_to(&self, return_to: Option<String>) -> Result<(), AppError> {
        match return_to {
            Some(target) => self.write(RETURN_TO, target).await,
            None => Ok(()),
        }
    }

    /// Where the sign-in being finished returns to, as stored by [`Self::set_operation`].
    pub async fn return_to(&self) -> Result<Option<String>, AppError> {
        Ok(self.session.get(RETURN_TO).await?)
    }

    /// Signs `user` in with `provider`, keeping what the provider said they belong to: a new
    /// session id (so an id planted before sign-in is worthless), a fresh CSRF token, a
    /// persistent cookie for the idle lifetime (`session.remember_days`).
    pub async fn sign_in(
        &self,
        user: UserId,
        provider: &str,
        membership: Membership,
    ) -> Result<(), AppError> {
        self.session.cycle_id().await?;
        self.delete(WAITING).await?;
        self.delete(RETURN_TO).await?;
        self.delete(PENDING_LOGINS).await?;
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
