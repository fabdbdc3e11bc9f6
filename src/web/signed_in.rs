//! Who is signed in, for the handlers of the app loginwith is part of: [`SignedIn`] as an
//! extractor, answered from the session cookie without writing anything.

use std::sync::Arc;

use axum::{
    extract::{FromRef, FromRequestParts, OptionalFromRequestParts, OriginalUri},
    http::{HeaderMap, header, request::Parts},
    response::{IntoResponse, Redirect, Response},
};
use tower_sessions::{SessionStore, cookie::Cookie, session::Id};

use super::{AppError, WebSettings, session::SignInRecord};
use crate::store::{SessionTable, Store, UserId};

/// A handle on loginwith's sign-ins, for the app around it: the [`SignedIn`] extractor finds it
/// in the app's state (through [`FromRef`]). Cheap to clone. Get it from
/// [`App::accounts`](crate::App::accounts).
#[derive(Clone)]
pub struct Accounts {
    store: Store,
    sessions: SessionTable,
    cookie_name: Arc<str>,
    settings: Arc<WebSettings>,
}

impl Accounts {
    pub(crate) fn new(store: Store, cookie_name: &str, settings: Arc<WebSettings>) -> Self {
        Self {
            sessions: store.sessions(),
            store,
            cookie_name: Arc::from(cookie_name),
            settings,
        }
    }

    /// The person a request's session cookie is signed in as, if any. Reads the session and
    /// the person; writes nothing and sets no cookie. A tampered, unknown, expired or
    /// signed-out cookie, or a person deleted meanwhile, is `None`.
    pub async fn signed_in(&self, headers: &HeaderMap) -> Result<Option<SignedIn>, AppError> {
        let Some(id) = self.session_id(headers) else {
            return Ok(None);
        };
        let Some(record) = self
            .sessions
            .load(&id)
            .await?
        else {
            return Ok(None);
        };
        let Some(sign_in) = SignInRecord::of_record(&record.data, &self.settings) else {
            return Ok(None);
        };
        // Deleting a person deletes their sessions in the same transaction; reading the person
        // also gives the name as it is now.
        let Some(user) = self.store.user(sign_in.user).await? else {
            return Ok(None);
        };
        Ok(Some(SignedIn {
            id: user.id,
            name: display_name(&user.first_name, &user.last_name),
            first_name: user.first_name,
            email: user.email,
            provider: sign_in.provider,
        }))
    }

    /// The session id in the request's cookie. Every `Cookie` header is read (HTTP/2 sends
    /// one per cookie); a value that is not a session id is no session.
    fn session_id(&self, headers: &HeaderMap) -> Option<Id> {
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(Cookie::split_parse)
            .filter_map(Result::ok)
            .find(|cookie| cookie.name() == &*self.cookie_name)
            .and_then(|cookie| cookie.value().parse().ok())
    }

    /// Where a browser that must sign in first is sent: loginwith's home page, which comes
    /// back to `target` (a path on this site) once signed in.
    fn sign_in_page(&self, target: &str) -> String {
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("return_to", target)
            .finish();
        format!("{}?{query}", self.settings.path("/"))
    }
}

fn display_name(first: &str, last: &str) -> String {
    match (first.is_empty(), last.is_empty()) {
        (_, true) => first.to_owned(),
        (true, false) => last.to_owned(),
        (false, false) => format!("{first} {last}"),
    }
}

/// The person signed in to loginwith. As an extractor it answers a request without a sign-in
/// with a redirect to the sign-in page that comes back to the page asked for;
/// `Option<SignedIn>` lets the handler decide.
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
    provider: Option<String>,
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

    /// The address the provider gave, if it gave one.
    pub fn email(&self) -> Option<&str> {
        self.email.as_deref()
    }

    /// The provider id (`facebook`, `github`, a `[providers.<name>]`) this sign-in came
    /// through; `None` for sign-ins made before loginwith recorded it.
    pub fn provider(&self) -> Option<&str> {
        self.provider.as_deref()
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
        match accounts.signed_in(&parts.headers).await {
            Ok(Some(person)) => Ok(person),
            Ok(None) => {
                // The whole path, also when the app nests this handler's router.
                let uri = parts
                    .extensions
                    .get::<OriginalUri>()
                    .map_or(&parts.uri, |original| &original.0);
                let target = uri.path_and_query().map_or("/", |p| p.as_str());
                Err(Redirect::to(&accounts.sign_in_page(target)).into_response())
            }
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
        Accounts::from_ref(state)
            .signed_in(&parts.headers)
            .await
            .map_err(IntoResponse::into_response)
    }
}

#[cfg(test)]
mod tests {
    use super::display_name;

    #[test]
    fn display_name_leaves_out_what_is_missing() {
        assert_eq!(display_name("Ada", "Lovelace"), "Ada Lovelace");
        assert_eq!(display_name("Ada", ""), "Ada");
        assert_eq!(display_name("", "Lovelace"), "Lovelace");
    }
}
