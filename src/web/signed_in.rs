//! Who is signed in, for the handlers of the app loginwith is part of: [`SignedIn`] as an
//! extractor, answered from the session cookie without writing anything.

use std::sync::Arc;

use axum::{
    extract::{FromRef, FromRequestParts, OptionalFromRequestParts, OriginalUri},
    http::{HeaderMap, StatusCode, request::Parts},
    response::{IntoResponse, Redirect, Response},
};
use tower_sessions::session::Id;

use super::{
    AppError, RequireAccess, WebSettings,
    pages::{LogoutForm, NotAllowedPage, Page},
    session::past_absolute_lifetime,
    twin_cookies::single_value,
};
use crate::{
    auth::{Conditions, Person, Target},
    config::AccessConditions,
    model::{Membership, now_ms},
    store::{SignedInSession, Store, UserId},
};

/// A handle on loginwith's sign-ins, for the app around it: the [`SignedIn`] extractor finds it
/// in the app's state (through [`FromRef`]). Cheap to clone. Get it from
/// [`App::accounts`](crate::App::accounts).
#[derive(Clone)]
pub struct Accounts {
    store: Store,
    cookie_name: Arc<str>,
    settings: Arc<WebSettings>,
}

impl Accounts {
    pub(crate) fn new(store: Store, cookie_name: &str, settings: Arc<WebSettings>) -> Self {
        Self {
            store,
            cookie_name: Arc::from(cookie_name),
            settings,
        }
    }

    /// The person a request's session cookie is signed in as, if any: one read of the session
    /// with its person (the same as `/auth/check`'s); no cookie set, and nothing written but,
    /// once an hour, when the session was last used. A tampered, unknown, expired or
    /// signed-out cookie, a sign-in past its absolute lifetime (or, when `[access]` names
    /// groups, past `access.recheck_hours`), or a person deleted or blocked meanwhile, is
    /// `None`.
    ///
    /// A person `[access]` does not let in (the rules, or the emails file, changed since they
    /// signed in: evaluated on every call, against the stored address and the membership kept
    /// with the sign-in) is `None` too: a handler is never handed someone the configuration
    /// refuses. Without a path, `[[access.rules]]` cannot be matched, so when there are any,
    /// every rule must pass: ask [`Accounts::signed_in_at`] with the page's path instead. The
    /// [`SignedIn`] extractor does, and tells the refused apart, with the "may not sign in"
    /// page (403) instead of the sign-in page.
    pub async fn signed_in(&self, headers: &HeaderMap) -> Result<Option<SignedIn>, AppError> {
        self.signed_in_at(headers, None).await
    }

    /// [`Accounts::signed_in`] for a page of this site at `path` (such as `/admin/users`):
    /// the first `[[access.rules]]` entry matching this site's host (`server.public_url`'s)
    /// and `path` applies on top of `[access]`.
    pub async fn signed_in_at(
        &self,
        headers: &HeaderMap,
        path: Option<&str>,
    ) -> Result<Option<SignedIn>, AppError> {
        Ok(match self.lookup(headers, path).await? {
            Lookup::Allowed(found) => Some(SignedIn::from(*found)),
            Lookup::NotAllowed(_) | Lookup::Nobody => None,
        })
    }

    /// `path` on this site: the public URL's origin (never the request's `Host`, which the
    /// browser writes and could point at a host with a looser rule).
    fn target(&self, path: &str) -> Option<Target> {
        let origin = self.settings.return_rules.public_url.origin().ascii_serialization();
        Target::parse(&format!("{origin}{path}"))
    }

    pub(super) async fn lookup(&self, headers: &HeaderMap, path: Option<&str>) -> Result<Lookup, AppError> {
        let Some(found) = self.found(headers).await? else {
            return Ok(Lookup::Nobody);
        };
        let target = path.and_then(|path| self.target(path));
        if self.settings.access.allows_at(&found.person(), target.as_ref()) {
            Ok(Lookup::Allowed(Box::new(found)))
        } else {
            Ok(Lookup::NotAllowed(Box::new(found)))
        }
    }

    /// The sign-in the request's session cookie names, with its person, within its lifetime:
    /// one statement (none without a cookie), nothing written but, at most once an hour, when
    /// it was last used; `[access]` not asked.
    pub(super) async fn found(&self, headers: &HeaderMap) -> Result<Option<Found>, AppError> {
        let Some(id) = session_id(headers, &self.cookie_name) else {
            return Ok(None);
        };
        let mut found = self.store.signed_in_sessions(std::slice::from_ref(&id)).await?;
        let found = found
            .remove(&id)
            .and_then(|session| Found::within_lifetime(session, &self.settings));
        if let Some(found) = &found {
            note_use(&self.store, &id, found.session.last_seen_ms).await;
        }
        Ok(found)
    }

    /// Whether the request carries a session cookie at all (one naming a session or not).
    pub(super) fn brings_a_session(&self, headers: &HeaderMap) -> bool {
        session_id(headers, &self.cookie_name).is_some()
    }

    /// A layer that lets through only people signed in whom `conditions` let in (besides
    /// `[access]` and its rules): anyone else is sent to sign in, and someone signed in whom
    /// the conditions refuse gets the "may not sign in" page (403). The conditions are
    /// `[access]`'s own types, so they can come from the site's configuration; they are
    /// checked here as start-up checks `[access]` (an emails file is read).
    ///
    /// ```
    /// use axum::{Router, routing::get};
    /// use loginwith::{Accounts, config::AccessConditions};
    ///
    /// fn admin_routes(accounts: &Accounts) -> Router {
    ///     let ops_only = accounts
    ///         .require(&AccessConditions {
    ///             groups: vec!["ops".to_owned()],
    ///             ..AccessConditions::default()
    ///         })
    ///         .expect("conditions that make sense");
    ///     Router::new()
    ///         .route("/admin", get(|| async { "for ops" }))
    ///         .route_layer(ops_only)
    /// }
    /// ```
    pub fn require(
        &self,
        conditions: &AccessConditions,
    ) -> Result<RequireAccess, crate::config::ConfigError> {
        let problems = conditions.problems("require");
        if !problems.is_empty() {
            return Err(crate::config::ConfigError { problems });
        }
        Ok(RequireAccess::new(self.clone(), Conditions::new(conditions)))
    }

    /// 403: the "may not sign in" page for a person signed in whom `[access]` refuses; its
    /// buttons sign out, "Sign in with another account" coming back to `target` after.
    pub(super) fn not_allowed_page(&self, found: &Found, target: &str) -> Response {
        let provider = found.provider().unwrap_or_default();
        let session = &found.session;
        NotAllowedPage {
            chrome: self.settings.chrome.clone(),
            host: None,
            who: NotAllowedPage::who(session.email.as_deref()),
            provider: self.settings.provider_name(&provider),
            another_href: self.settings.path("/"),
            logout: session.csrf.clone().map(|csrf_token| LogoutForm {
                action: self.settings.path("/logout"),
                csrf_token,
                return_to: Some(target.to_owned()),
            }),
            logout_href: None,
        }
        .into_page(StatusCode::FORBIDDEN)
    }

    /// Where a browser that must sign in first is sent: loginwith's home page, which comes
    /// back to `target` (a path on this site) once signed in.
    pub(super) fn sign_in_page(&self, target: &str) -> String {
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("return_to", target)
            .finish();
        format!("{}?{query}", self.settings.path("/"))
    }
}

/// How precisely a session's "last used" is kept: an hour (the account page says "to the
/// hour"), so a busy session costs one write an hour, not one a request.
const LAST_USED_PRECISION_MS: i64 = 60 * 60 * 1000;

/// Moves the session's "last used" forward when it is more than an hour old: one small write
/// per session and hour, so that "Where you're signed in" is right to the hour. A failure is
/// logged and otherwise ignored: the request does not depend on it.
pub(super) async fn note_use(store: &Store, id: &str, last_seen_ms: i64) {
    if !last_used_long_ago(last_seen_ms) {
        return;
    }
    if let Err(e) = store.touch_session(id, now_ms()).await {
        e.log_skipped("could not record when a session was last used");
    }
}

/// Whether a session last used at `last_seen_ms` must be told it is used now.
pub(super) fn last_used_long_ago(last_seen_ms: i64) -> bool {
    now_ms().saturating_sub(last_seen_ms) >= LAST_USED_PRECISION_MS
}

/// What a session cookie comes to: the sign-in found, let in by `[access]` or not.
pub(super) enum Lookup {
    Nobody,
    Allowed(Box<Found>),
    NotAllowed(Box<Found>),
}

/// The session id in the request's cookie `name`, as tower-sessions writes ids. Two different
/// cookies of the name (a browser's own and one another host of a shared cookie domain tossed
/// in) name no session: the pages answer such a request as signed out too
/// ([`sign_out_twins`](super::twin_cookies::sign_out_twins)), so that these readers and the
/// pages always agree, and neither takes the planter's side. A value that is not such an id
/// (tampered, truncated) names no session and is never looked up.
pub(super) fn session_id(headers: &HeaderMap, name: &str) -> Option<String> {
    single_value(headers, name)
        .and_then(|value| value.parse::<Id>().ok())
        .map(|id| id.to_string())
}

/// A signed-in session as every reader outside the session layer needs it (`/auth/check`, the
/// library's `SignedIn`): the store's typed row, within its lifetime.
pub(super) struct Found {
    pub(super) session: SignedInSession,
}

impl Found {
    /// `session`, when it holds a sign-in still within its lifetime (past it, the next page
    /// loginwith serves ends it; until then every reader must already refuse it).
    pub(super) fn within_lifetime(session: SignedInSession, settings: &WebSettings) -> Option<Self> {
        (!past_absolute_lifetime(session.since_ms, now_ms(), settings)).then_some(Self { session })
    }

    /// The provider the sign-in was made with; for sessions from before that was recorded,
    /// the person's most recently used one.
    pub(super) fn provider(&self) -> Option<String> {
        self.session.provider.clone()
    }

    /// The person as `[access]` sees them: the stored address, and the membership kept with
    /// the sign-in.
    pub(super) fn person(&self) -> Person<'_> {
        Person {
            email: self.session.email.as_deref(),
            email_verified: self.session.email_verified,
            membership: &self.session.membership,
        }
    }

    pub(super) fn membership(&self) -> &Membership {
        &self.session.membership
    }
}

impl From<Found> for SignedIn {
    fn from(found: Found) -> Self {
        let provider = found.provider();
        let Found { session } = found;
        Self {
            membership: session.membership,
            id: session.user,
            provider,
            name: session
                .name
                .unwrap_or_else(|| session.first_name.clone()),
            first_name: session.first_name,
            email: session.email,
            email_verified: session.email_verified,
        }
    }
}

/// The person signed in to loginwith. As an extractor it answers a request without a sign-in
/// with a redirect to the sign-in page that comes back to the page asked for, and a person
/// signed in whom `[access]` no longer lets in with the "may not sign in" page (403, whose
/// buttons sign out); `Option<SignedIn>` lets the handler decide (`None` for both).
///
/// ```
/// use axum::{Router, extract::FromRef, response::Html, routing::get};
/// use loginwith::{Accounts, SignedIn};
///
/// #[derive(Clone, FromRef)]
/// struct Site {
///     accounts: Accounts,
/// }
///
/// async fn dashboard(person: SignedIn) -> Html<String> {
///     // Escape what a person or a provider controls before it goes into HTML.
///     Html(format!("<p>Signed in as user {}</p>", person.id()))
/// }
///
/// async fn home(person: Option<SignedIn>) -> &'static str {
///     if person.is_some() { "Welcome back" } else { "Hello, stranger" }
/// }
///
/// fn routes() -> Router<Site> {
///     Router::new()
///         .route("/", get(home))
///         .route("/dashboard", get(dashboard))
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedIn {
    id: UserId,
    name: String,
    first_name: String,
    email: Option<String>,
    email_verified: bool,
    provider: Option<String>,
    membership: Membership,
}

impl SignedIn {
    /// The person's stable id: the same whichever provider they sign in with.
    pub fn id(&self) -> UserId {
        self.id
    }

    /// The name to show: first and last name as the provider gave them. Not HTML-escaped.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The first name alone, for a greeting. Not HTML-escaped.
    pub fn first_name(&self) -> &str {
        &self.first_name
    }

    /// The address the provider gave, if it gave one, whether or not it verified it: check
    /// [`SignedIn::email_verified`] before letting anyone in by their address.
    pub fn email(&self) -> Option<&str> {
        self.email.as_deref()
    }

    /// Whether the provider that gave [`SignedIn::email`] said it verified the address; `false`
    /// without one. Facebook never says so; GitHub's address is its verified primary one; an
    /// OpenID Connect issuer says so or not (`email_verified`). An unverified address may have
    /// been typed by anyone: a site that grants access by address must require `true`.
    pub fn email_verified(&self) -> bool {
        self.email_verified
    }

    /// The provider id (`facebook`, `github`, a `[providers.<name>]`) this sign-in came
    /// through; `None` for sign-ins made before loginwith recorded it.
    pub fn provider(&self) -> Option<&str> {
        self.provider.as_deref()
    }

    /// Every group the provider named at this sign-in, as `/auth/check` sends them in
    /// `X-Auth-Request-Groups`: an OpenID Connect issuer's groups, then GitHub organisations
    /// (`acme`) and teams (`acme/ops`); GitHub's read only when `[access]` names some.
    pub fn groups(&self) -> impl Iterator<Item = &str> {
        self.membership.all()
    }

    /// The groups, organisations and teams, each in their own list.
    pub fn membership(&self) -> &Membership {
        &self.membership
    }
}

impl<S> FromRequestParts<S> for SignedIn
where
    Accounts: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let accounts = Accounts::from_ref(state);
        // The whole path, also when the app nests this handler's router.
        let uri = parts
            .extensions
            .get::<OriginalUri>()
            .map_or(&parts.uri, |original| &original.0);
        let target = uri.path_and_query().map_or("/", |p| p.as_str());
        match accounts.lookup(&parts.headers, Some(uri.path())).await {
            Ok(Lookup::Allowed(found)) => Ok(SignedIn::from(*found)),
            Ok(Lookup::NotAllowed(session)) => Err(accounts.not_allowed_page(&session, target)),
            Ok(Lookup::Nobody) => Err(Redirect::to(&accounts.sign_in_page(target)).into_response()),
            Err(e) => Err(e.into_response()),
        }
    }
}

impl<S> OptionalFromRequestParts<S> for SignedIn
where
    Accounts: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        let uri = parts
            .extensions
            .get::<OriginalUri>()
            .map_or(&parts.uri, |original| &original.0);
        Accounts::from_ref(state)
            .signed_in_at(&parts.headers, Some(uri.path()))
            .await
            .map_err(IntoResponse::into_response)
    }
}

#[cfg(test)]
mod tests {
    use axum::http::{HeaderValue, header};

    use super::*;

    #[test]
    fn the_address_comes_with_whether_it_was_verified() {
        let session = |email: Option<&str>, email_verified| SignedInSession {
            user: UserId(3),
            since_ms: 1,
            last_seen_ms: 1,
            provider: Some("corp".to_owned()),
            membership: Membership::default(),
            csrf: None,
            name: Some("Ada Lovelace".to_owned()),
            first_name: "Ada".to_owned(),
            email: email.map(str::to_owned),
            email_verified,
            refreshed_ms: 1,
            has_notices: false,
        };
        let signed_in = |session| SignedIn::from(Found { session });
        let verified = signed_in(session(Some("ada@corp.example"), true));
        assert_eq!(
            (verified.email(), verified.email_verified()),
            (Some("ada@corp.example"), true)
        );
        let claimed = signed_in(session(Some("ada@corp.example"), false));
        assert_eq!(
            (claimed.email(), claimed.email_verified()),
            (Some("ada@corp.example"), false)
        );
        assert_eq!(claimed.provider(), Some("corp"));
    }

    #[test]
    fn the_session_id_is_read_from_the_named_cookie_only() {
        let id = Id::default().to_string();
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("other=1; sid={id}; x=y")).unwrap(),
        );
        assert_eq!(session_id(&headers, "sid"), Some(id.clone()));
        assert_eq!(session_id(&headers, "si"), None);
        headers.insert(header::COOKIE, HeaderValue::from_static("sid=not-an-id"));
        assert_eq!(session_id(&headers, "sid"), None);
        headers.insert(header::COOKIE, HeaderValue::from_static("sid="));
        assert_eq!(session_id(&headers, "sid"), None);
        assert_eq!(session_id(&HeaderMap::new(), "sid"), None);
        // Two different of the name: neither, in whichever order and however sent.
        let other = Id::default().to_string();
        for pair in [[&other, &id], [&id, &other]] {
            headers.insert(
                header::COOKIE,
                HeaderValue::from_str(&format!("sid={}; sid={}", pair[0], pair[1])).unwrap(),
            );
            assert_eq!(session_id(&headers, "sid"), None);
            headers.insert(header::COOKIE, HeaderValue::from_str(&format!("sid={}", pair[0])).unwrap());
            headers.append(header::COOKIE, HeaderValue::from_str(&format!("sid={}", pair[1])).unwrap());
            assert_eq!(session_id(&headers, "sid"), None);
        }
        // The same one twice is that one.
        headers.insert(header::COOKIE, HeaderValue::from_str(&format!("sid={id}; sid={id}")).unwrap());
        assert_eq!(session_id(&headers, "sid"), Some(id));
    }
}
