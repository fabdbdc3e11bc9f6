//! `GET /auth/check`: forward authentication, for a web server in front of any site (nginx's
//! `auth_request`, Caddy's `forward_auth`, Traefik's `ForwardAuth`).
//!
//! The server asks on every request of the site it protects, passing the browser's cookies
//! on. Signed in: 200 with who it is in `X-Auth-Request-User` (the person's id, stable and
//! never reused), `-Email`, `-Email-Verified` (`true` or `false`: addresses are kept whether or
//! not a provider verified them, so a site that lets people in by address must look), `-Name`
//! and `-Provider`. Signed in but no longer let in by `[access]` (the rules changed since the
//! sign-in, or the emails file did): 403, evaluated afresh on every check against the stored
//! address; asked for HTML, the 403 is the "may not sign in" page.
//! Otherwise 401, or, for a gateway that
//! forwards the browser's answer as it is (Traefik, Caddy), a redirect to the sign-in page.
//!
//! It is merged outside the session layer: tower-sessions would load the session a second
//! time, and with a cookie whose session has ended it answers with a removal. Here the cookie
//! is read by hand and looked up with one statement ([`Store::signed_in_sessions`]); nothing
//! is written and no cookie is set, whatever the request. It is not rate-limited (a gateway
//! asks for every visitor, from one address) and is answered on any host (the gateway calls
//! it on an internal address).
//!
//! Checks that arrive together share their read ([`Lookups`]): the database round trip, not
//! the lookup itself, is what a check costs. Nothing is cached: every answer comes from a read
//! that began after the check arrived, so a sign-in ended anywhere (any instance) fails every
//! check that arrives after it.
//!
//! Longer than the 400 lines a file here aims for: the check's query forms, the concurrent
//! session reads it batches, and its three answers (200 with headers, 401 or a redirect, 403)
//! are one protocol with the gateways.

use std::sync::Arc;

use axum::{
    Router,
    extract::{Request, State},
    http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use tokio::sync::{Semaphore, mpsc, oneshot};

use super::{
    AppError, Chrome, TrustedProxies, WebSettings,
    pages::{NotAllowedPage, Page},
    return_to::allowed_target,
    signed_in::{Found, session_id},
};
use crate::{
    auth::{Narrowing, Target},
    store::{MAX_SESSIONS_PER_READ, SignedInSession, Store},
};

/// Reads of the session table the checks may have in flight at once (each on a connection of
/// the pool, which the pages need too).
const READS_IN_FLIGHT: usize = 2;

/// The check's path.
pub const CHECK_PATH: &str = "/auth/check";

static USER: HeaderName = HeaderName::from_static("x-auth-request-user");
static EMAIL: HeaderName = HeaderName::from_static("x-auth-request-email");
static EMAIL_VERIFIED: HeaderName = HeaderName::from_static("x-auth-request-email-verified");
static NAME: HeaderName = HeaderName::from_static("x-auth-request-name");
static PROVIDER: HeaderName = HeaderName::from_static("x-auth-request-provider");
static GROUPS: HeaderName = HeaderName::from_static("x-auth-request-groups");
/// nginx's own header for the protected request's URL (see [`Protected`]).
static ORIGINAL_URL: HeaderName = HeaderName::from_static("x-original-url");
static FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
static FORWARDED_URI: HeaderName = HeaderName::from_static("x-forwarded-uri");

/// What is percent-encoded in the `X-Auth-Request-*` values: every byte that is not visible
/// ASCII (controls, space, DEL and all of UTF-8 beyond ASCII, which `utf8_percent_encode`
/// always encodes), and `%` itself so that decoding is exact. Names come from providers and
/// hold anything (markup, emoji, in principle a line break); the result is always a valid
/// header value, and `decodeURIComponent` or `urllib.parse.unquote` gives the text back.
const NOT_VISIBLE_ASCII: &AsciiSet = &CONTROLS.add(b' ').add(b'%');
/// [`NOT_VISIBLE_ASCII`] and the comma that separates `X-Auth-Request-Groups`' values.
const NOT_VISIBLE_ASCII_OR_COMMA: &AsciiSet = &NOT_VISIBLE_ASCII.add(b',');

/// What the check needs, resolved at start-up.
pub struct ForwardAuth {
    pub store: Store,
    /// The session cookie's name (`Config::cookie_name`).
    pub cookie_name: Arc<str>,
    pub settings: Arc<WebSettings>,
    /// The pages' chrome with every link absolute (`{public_url}/...`): the 403 page is shown
    /// on the protected site's host, not loginwith's.
    pub remote_chrome: Arc<Chrome>,
}

/// `GET` (and `HEAD`) `/auth/check`; any other method gets the 405 page. Starts the task
/// that reads sessions for the checks (it ends with the router).
pub fn router(check: ForwardAuth) -> Router {
    let trusted = TrustedProxies::new(check.settings.trusted_proxies.clone());
    let lookups = Lookups::start(check.store.clone());
    Router::new()
        .route(CHECK_PATH, get(answer))
        .method_not_allowed_fallback(|| async { AppError::MethodNotAllowed })
        .with_state(Arc::new(Checker {
            check,
            trusted,
            lookups,
        }))
}

struct Checker {
    check: ForwardAuth,
    trusted: TrustedProxies,
    lookups: Lookups,
}

/// What one read answers a waiting check: its session, if signed in, or why it failed.
type ReadAnswer = Result<Option<SignedInSession>, String>;

/// Session reads shared by the checks that arrive together. A check queues its session id;
/// one task takes every id queued at that moment (up to [`MAX_SESSIONS_PER_READ`]) into one
/// statement, and while [`READS_IN_FLIGHT`] reads run, new checks queue for the next. When
/// idle, a check's read starts at once, so a lone check waits no longer than before; under
/// load, one database round trip answers dozens. Each answer comes from a read that started
/// after its check was queued, never from an earlier one: no ended sign-in is let through.
struct Lookups {
    queue: mpsc::UnboundedSender<(String, oneshot::Sender<ReadAnswer>)>,
}

impl Lookups {
    fn start(store: Store) -> Self {
        let (queue, mut queued) = mpsc::unbounded_channel::<(String, oneshot::Sender<ReadAnswer>)>();
        tokio::spawn(async move {
            let reads = Arc::new(Semaphore::new(READS_IN_FLIGHT));
            loop {
                // A free read first, then whatever has queued meanwhile goes into it.
                let Ok(permit) = reads.clone().acquire_owned().await else {
                    return;
                };
                let Some(first) = queued.recv().await else {
                    return;
                };
                let mut batch = vec![first];
                while batch.len() < MAX_SESSIONS_PER_READ {
                    match queued.try_recv() {
                        Ok(next) => batch.push(next),
                        Err(_) => break,
                    }
                }
                let store = store.clone();
                tokio::spawn(async move {
                    let ids: Vec<String> = batch.iter().map(|(id, _)| id.clone()).collect();
                    let found = store.signed_in_sessions(&ids).await;
                    drop(permit);
                    for (id, waiter) in batch {
                        let answer = match &found {
                            Ok(sessions) => Ok(sessions.get(&id).cloned()),
                            Err(e) => Err(e.to_string()),
                        };
                        // A check whose client went away no longer waits: nothing to do.
                        let _ = waiter.send(answer);
                    }
                });
            }
        });
        Self { queue }
    }

    /// The signed-in session `id` names, read after this call.
    async fn find(&self, id: String) -> Result<Option<SignedInSession>, AppError> {
        let (waiter, answer) = oneshot::channel();
        self.queue
            .send((id, waiter))
            .map_err(|_| AppError::Internal("the session reader has stopped".to_owned()))?;
        answer
            .await
            .map_err(|_| AppError::Internal("the session reader has stopped".to_owned()))?
            .map_err(AppError::Internal)
    }
}

async fn answer(State(checker): State<Arc<Checker>>, request: Request) -> Response {
    let check = &checker.check;
    let headers = request.headers();
    let narrowing = match Narrowing::parse(request.uri().query()) {
        Ok(narrowing) => narrowing,
        Err(why) => return bad_query(&why),
    };
    // Only a trusted gateway says which request it asks about; anyone else could name a host
    // whose rule is looser.
    let protected = checker
        .trusted
        .trusts_peer_of(request.extensions())
        .then(|| Protected::of(headers))
        .flatten();
    match signed_in(checker.as_ref(), headers).await {
        Ok(Some(found)) => {
            let person = found.person();
            let target = protected.as_ref().and_then(|p| Target::parse(&p.url));
            if check.settings.access.allows_at(&person, target.as_ref())
                && narrowing.allows(&person)
            {
                identity(&found)
            } else {
                not_allowed(check, &found, headers, protected.as_ref())
            }
        }
        Ok(None) => match protected {
            Some(protected) => sign_in_first(&check.settings, &protected),
            None => not_signed_in(None),
        },
        // The database did not answer: nobody passes (a gateway turns this into an error
        // page), and the cause is logged once, by AppError.
        Err(error) => error.into_response(),
    }
}

/// 400 for a query form the check cannot read: a gateway that is told a person passes
/// because of a typo in its configuration would let the wrong people in.
fn bad_query(why: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("bad /auth/check query: {why}"),
    )
        .into_response()
}

/// The signed-in session the request's cookie names, if any: unexpired, signed in as a person
/// who still exists, within the absolute lifetime.
async fn signed_in(checker: &Checker, headers: &HeaderMap) -> Result<Option<Found>, AppError> {
    let check = &checker.check;
    let Some(id) = session_id(headers, &check.cookie_name) else {
        return Ok(None);
    };
    let Some(session) = checker.lookups.find(id.clone()).await? else {
        return Ok(None);
    };
    let found = Found::within_lifetime(session, &check.settings);
    if let Some(found) = &found
        && super::signed_in::last_used_long_ago(found.session.last_seen_ms)
    {
        // Once an hour per session, beside the answer: the check does not wait for it.
        let (store, seen) = (check.store.clone(), found.session.last_seen_ms);
        tokio::spawn(async move { super::signed_in::note_use(&store, &id, seen).await });
    }
    Ok(found)
}

/// 200 with who is signed in. Every header is sent, empty when unknown (a person without an
/// address; `-Email-Verified` is then `false`), so that a gateway copying them replaces
/// whatever the browser sent under those names.
fn identity(found: &Found) -> Response {
    let session = &found.session;
    let provider = found.provider().unwrap_or_default();
    // Each group percent-encoded (commas too), so that splitting on `,` is exact.
    let groups = found
        .membership()
        .all()
        .map(|group| utf8_percent_encode(group, NOT_VISIBLE_ASCII_OR_COMMA).to_string())
        .collect::<Vec<_>>()
        .join(",");
    let headers = [
        (USER.clone(), encoded(&session.user.to_string())),
        (
            EMAIL.clone(),
            encoded(session.email.as_deref().unwrap_or("")),
        ),
        (
            EMAIL_VERIFIED.clone(),
            HeaderValue::from_static(if session.email_verified {
                "true"
            } else {
                "false"
            }),
        ),
        (NAME.clone(), encoded(session.name.as_deref().unwrap_or(""))),
        (PROVIDER.clone(), encoded(&provider)),
        (
            GROUPS.clone(),
            HeaderValue::from_str(&groups).unwrap_or_else(|_| HeaderValue::from_static("")),
        ),
    ];
    (StatusCode::OK, headers).into_response()
}

/// A header value that is always valid (see [`NOT_VISIBLE_ASCII`]).
fn encoded(text: &str) -> HeaderValue {
    let text = utf8_percent_encode(text, NOT_VISIBLE_ASCII).to_string();
    // Only visible ASCII is left, which is always a valid value; never a 500 should that
    // change: an empty value says as little as a missing one.
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// 401: what nginx's `auth_request` needs (its `error_page 401` then sends the browser on).
/// With `location`, the sign-in page that comes back to the protected URL, for nginx's
/// `auth_request_set $signin $upstream_http_location` (the whole URL survives, every query
/// parameter included).
fn not_signed_in(location: Option<HeaderValue>) -> Response {
    let mut response = (
        StatusCode::UNAUTHORIZED,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "not signed in",
    )
        .into_response();
    if let Some(location) = location {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

/// 403: signed in, but `[access]` does not let this person in (any more). Asked for HTML (a
/// browser, through Caddy or Traefik, which pass the body on): the page naming who is signed
/// in. Otherwise a short text. The page is shown on the protected site's host, so it carries
/// no CSRF token (that host's scripts could read it): its links lead to loginwith's own home
/// page, which shows who is signed in, why they are refused, and the logout form ("Sign in with
/// another account" keeps the forwarded URL as `return_to`, when a trusted peer sent it).
fn not_allowed(
    check: &ForwardAuth,
    found: &Found,
    headers: &HeaderMap,
    protected: Option<&Protected>,
) -> Response {
    let session = &found.session;
    let wants_html = headers
        .get(header::ACCEPT)
        .and_then(|accept| accept.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"));
    if !wants_html {
        return (
            StatusCode::FORBIDDEN,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "signed in, but not allowed",
        )
            .into_response();
    }
    let settings = &check.settings;
    let provider = found.provider().unwrap_or_default();
    let origin = settings.return_rules.public_url.origin().ascii_serialization();
    let home = format!("{origin}{}", settings.path("/"));
    let target = protected.and_then(|p| allowed_target(&p.url, &settings.return_rules));
    let another_href = match target {
        Some(target) => format!(
            "{home}?{}",
            url::form_urlencoded::Serializer::new(String::new())
                .append_pair("return_to", &target)
                .finish()
        ),
        None => home.clone(),
    };
    let host = protected
        .and_then(|p| url::Url::parse(&p.url).ok())
        .and_then(|url| url.host_str().map(str::to_owned));
    let mut response = NotAllowedPage {
        chrome: check.remote_chrome.clone(),
        host,
        who: NotAllowedPage::who(session.email.as_deref()),
        provider: settings.provider_name(&provider),
        another_href: another_href.clone(),
        // With where they were going, so that the home page says why they are refused there.
        logout_href: Some(another_href),
        logout: None,
    }
    .into_page(StatusCode::FORBIDDEN);
    // Served on the protected host: its own origin is not loginwith's, so loginwith's origin
    // is named beside 'self' for the styles and pictures.
    let policy = check
        .remote_chrome
        .content_security_policy()
        .to_str()
        .unwrap_or_default()
        .replace("'self'", &format!("'self' {origin}"));
    if let Ok(policy) = HeaderValue::from_str(&policy) {
        response
            .headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, policy);
    }
    response
}

/// The request a trusted gateway asks about, and how it wants a stranger answered.
struct Protected {
    /// Its URL, not yet checked against `return_to`'s rules.
    url: String,
    /// How the gateway asked: Caddy and Traefik hand the check's answer to the browser (a
    /// redirect to sign in works), nginx's `auth_request` needs a 401.
    via: Via,
}

enum Via {
    /// `X-Forwarded-Proto`, `-Host` and `-Uri` (Caddy's `forward_auth`, Traefik's
    /// ForwardAuth, which set them whatever the browser sent).
    Forwarded,
    /// `X-Original-URL` (nginx, as deploy/nginx/forward-auth.conf sets it).
    OriginalUrl,
}

impl Protected {
    /// From the gateway's headers: the `X-Forwarded-*` trio when all three are there, else
    /// `X-Original-URL`; both there and naming different URLs, neither. Caddy and Traefik
    /// overwrite the trio but pass any other header of the browser's on, so an
    /// `X-Original-URL` beside the trio may be the browser's own; an nginx that does not clear
    /// the trio (the shipped configuration does) passes the browser's trio beside its own
    /// `X-Original-URL`.
    fn of(headers: &HeaderMap) -> Option<Self> {
        let original = headers
            .get(&ORIGINAL_URL)
            .and_then(|value| value.to_str().ok())
            .map(str::trim)
            // Only a URL a rule can be matched against (http(s), a host, no user name).
            .filter(|url| Target::parse(url).is_some());
        match (forwarded_url(headers), original) {
            // Two gateways' words that disagree: one of them is a browser's. Believe neither
            // (with rules set, every rule must then pass).
            (Some(forwarded), Some(original)) if forwarded != original => None,
            (Some(url), _) => Some(Self {
                url,
                via: Via::Forwarded,
            }),
            (None, Some(url)) => Some(Self {
                url: url.to_owned(),
                via: Via::OriginalUrl,
            }),
            (None, None) => None,
        }
    }
}

/// The URL the browser asked the protected site for, from a gateway's `X-Forwarded-Proto`,
/// `-Host` and `-Uri` (all three), not yet checked against `return_to`'s rules.
fn forwarded_url(headers: &HeaderMap) -> Option<String> {
    let text = |name: &HeaderName| headers.get(name)?.to_str().ok();
    let (proto, host, uri) = (
        text(&FORWARDED_PROTO)?,
        text(&FORWARDED_HOST)?,
        text(&FORWARDED_URI)?,
    );
    // A request target is a path; anything else names no page of the site.
    if !uri.starts_with('/') {
        return None;
    }
    // A proxy chain may list several; the first is what the browser used.
    let proto = proto.split(',').next().unwrap_or_default().trim();
    let host = host.split(',').next().unwrap_or_default().trim();
    Some(format!("{proto}://{host}{uri}"))
}

/// A stranger, asked about by a trusted gateway: the sign-in page, coming back to the
/// protected URL when `return_to` allows it (a host missing from `gateway.allowed_hosts`
/// leads to the sign-in page without it). For Caddy and Traefik a 302 the browser follows;
/// for nginx a 401 carrying it as `Location`.
fn sign_in_first(settings: &WebSettings, protected: &Protected) -> Response {
    let rules = &settings.return_rules;
    let mut sign_in = rules.public_url.clone();
    // The home page, below server.public_url's path when loginwith is mounted there.
    sign_in.set_path(&settings.path("/"));
    sign_in.set_query(None);
    match allowed_target(&protected.url, rules) {
        Some(target) => {
            sign_in.query_pairs_mut().append_pair("return_to", &target);
        }
        None => tracing::debug!(
            "the forwarded URL is not an allowed return_to (gateway.allowed_hosts); sending to the sign-in page without it"
        ),
    }
    let location = HeaderValue::from_str(sign_in.as_str()).ok();
    match (&protected.via, location) {
        (Via::Forwarded, Some(location)) => {
            (StatusCode::FOUND, [(header::LOCATION, location)]).into_response()
        }
        (_, location) => not_signed_in(location),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_keep_visible_ascii_and_percent_encode_the_rest() {
        assert_eq!(encoded("Ada"), "Ada");
        assert_eq!(encoded("ada@example.com"), "ada@example.com");
        assert_eq!(encoded("<b>Ada</b> & co"), "<b>Ada</b>%20&%20co");
        assert_eq!(encoded("100%"), "100%25");
        assert_eq!(encoded("Zoë 🦀"), "Zo%C3%AB%20%F0%9F%A6%80");
        assert_eq!(encoded("a\r\nSet-Cookie: x"), "a%0D%0ASet-Cookie:%20x");
        assert_eq!(encoded("\u{7f}\0"), "%7F%00");
        assert_eq!(encoded(""), "");
    }

    #[test]
    fn every_header_is_sent_for_a_person_without_an_address_or_a_name() {
        let session = SignedInSession {
            user: crate::store::UserId(7),
            since_ms: 1,
            last_seen_ms: 1,
            provider: Some("github".to_owned()),
            membership: Default::default(),
            csrf: None,
            name: None,
            first_name: String::new(),
            email: None,
            email_verified: false,
            refreshed_ms: 1,
            has_notices: false,
        };
        let response = identity(&Found { session });
        let header = |name: &str| response.headers().get(name)?.to_str().ok();
        assert_eq!(header("x-auth-request-user"), Some("7"));
        assert_eq!(header("x-auth-request-email"), Some(""));
        assert_eq!(header("x-auth-request-email-verified"), Some("false"));
        assert_eq!(header("x-auth-request-name"), Some(""));
        assert_eq!(header("x-auth-request-provider"), Some("github"));
        assert_eq!(header("x-auth-request-groups"), Some(""));
    }

}
