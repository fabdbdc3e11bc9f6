//! HTTP: routes, pages and the layers around them.

mod account;
pub mod assets;
mod chrome;
mod client_addr;
mod cookie_guard;
mod data_deletion;
mod devices;
mod error;
mod form_post;
mod forward_auth;
mod health;
mod home;
mod issuer_logout;
mod linking;
mod login;
mod one_origin;
pub mod pages;
mod params;
mod privacy;
mod progress;
mod rate_limit;
mod request_log;
mod require_access;
pub mod return_to;
mod pre_sign_in;
pub(crate) mod sealing;
mod session;
mod signed_in;
mod site;
mod state;
mod twin_cookies;

use std::sync::Arc;

use axum::{
    Router,
    extract::DefaultBodyLimit,
    http::{HeaderValue, header},
    middleware,
    response::Response,
    routing::{get, post},
};
use tower_http::{compression::CompressionLayer, set_header::SetResponseHeaderLayer};

pub use chrome::Chrome;
pub use client_addr::TrustedProxies;
pub use cookie_guard::SessionCookie;
pub use error::AppError;
pub use forward_auth::{CHECK_PATH, ForwardAuth};
pub use health::Health;
pub use one_origin::PublicOrigin;
pub use rate_limit::RateLimiter;
pub use session::WebSession;
pub use pre_sign_in::PreSignInCookie;
pub use sealing::Sealer;
pub use require_access::{RequireAccess, RequireAccessService};
pub use signed_in::{Accounts, SignedIn};
pub use site::site;
pub use state::{AppState, Shared, WebSettings};

/// HSTS for production: two years, subdomains included.
const HSTS: &str = "max-age=63072000; includeSubDomains";

/// Facebook's calls to the site, when a Facebook app is configured: its app and the per-address
/// limit on those calls.
pub struct FacebookCallbacks {
    /// The app whose signature the calls must carry.
    pub app: crate::auth::FacebookApp,
    /// Per address, on the Data Deletion and Deauthorize callbacks.
    pub limiter: Arc<RateLimiter>,
}

/// The application's routes and static files, with Facebook's callbacks when there is a
/// Facebook app. The session layer is added by the caller, since it owns the store, and the
/// security headers by [`common_layers`].
pub fn router(state: AppState, facebook: Option<FacebookCallbacks>) -> Router {
    // Starting a sign-in costs a provider round trip: rate-limited per client address.
    let auth_limit = middleware::from_fn_with_state(state.auth_limiter.clone(), rate_limit::limit);
    // The pages people open in a browser, each of which reads or writes the session: only on
    // the public URL's host, so that the session cookie lives under one host (`one_origin`).
    // The preloader, success and error pages are reached by the app's own relative
    // redirects and so already are there, but people reload and bookmark them too, and on
    // another host they would read another cookie jar's session. The check runs before the
    // rate limit, so a redirect costs no token.
    let pages = Router::new()
        .route("/", get(home::home))
        .route(
            "/authorize/{provider}",
            get(login::authorize).route_layer(auth_limit.clone()),
        )
        .route("/preloader", get(progress::preloader))
        .route("/success", get(progress::success))
        .route("/error", get(progress::error_page))
        .route("/privacy", get(privacy::privacy))
        .route(
            "/account/delete",
            get(account::confirm).post(account::delete),
        )
        .route("/account", get(linking::methods))
        // Adding an identity starts a sign-in: rate-limited like `/authorize`.
        .route(
            "/account/link/{provider}",
            post(linking::link).route_layer(auth_limit.clone()),
        )
        .route("/account/identities/{id}/remove", post(linking::remove))
        .route("/account/sessions/{reference}/end", post(devices::end_one))
        .route("/account/sessions/end-others", post(devices::end_others))
        .route_layer(middleware::from_fn_with_state(
            Arc::new(state.settings.public_origin.clone()),
            one_origin::redirect_other_hosts,
        ));
    // The provider sends the browser back to the registered redirect URI, on the public URL
    // by construction: answered on any host, like every endpoint below.
    // A provider that posts its answer (Sign in with Apple) posts it here, and the relay page
    // posts it on to `/continue` from this site (see `form_post`).
    let callback = Router::new()
        .route(
            "/callback/{provider}",
            get(login::callback)
                .post(form_post::relay)
                .route_layer(auth_limit.clone()),
        )
        .route(
            "/callback/{provider}/continue",
            post(form_post::continue_sign_in).route_layer(auth_limit),
        );
    // Facebook's data callbacks take no session and verify an HMAC on every request.
    let data_callbacks = facebook.map(|facebook| {
        data_deletion::router(state.clone(), facebook.app, facebook.limiter)
    });
    // Issuers' back-channel logouts likewise, with a signature on every token.
    let issuer_logout = issuer_logout::router(state.clone(), state.issuer_logout_limiter.clone());
    let router = Router::new()
        .merge(pages)
        .merge(callback)
        .route("/get-status", get(progress::get_status))
        .route("/logout", post(home::logout))
        .route("/deletion/{code}", get(data_deletion::status_page))
        // Compiled in: a missing file is the 404 page, any method but GET and HEAD the 405
        // page (with `Allow`), like every other route.
        .route("/static/{*path}", get(assets::serve))
        .fallback(|| async { AppError::NotFound })
        .method_not_allowed_fallback(|| async { AppError::MethodNotAllowed })
        .with_state(state);
    let router = router.merge(issuer_logout);
    match data_callbacks {
        Some(callbacks) => router.merge(callbacks),
        None => router,
    }
}

/// `GET {base}/` when loginwith is mounted below `{base}`: 308 to `{base}`, the home page, with
/// the query (`return_to`) kept. (axum matches a nested router's `/` at `{base}` alone.)
async fn to_mounted_home(
    axum::extract::OriginalUri(uri): axum::extract::OriginalUri,
) -> Response {
    use axum::response::IntoResponse;
    let path = uri.path().trim_end_matches('/');
    let target = match uri.query() {
        Some(query) => format!("{path}?{query}"),
        None => path.to_owned(),
    };
    axum::response::Redirect::permanent(&target).into_response()
}

/// Layers that every request and response gets, dev provider included.
fn common_layers(router: Router, settings: &WebSettings) -> Router {
    let hsts = settings.hsts.then(|| HeaderValue::from_static(HSTS));
    let trusted_proxies = Arc::new(TrustedProxies::new(settings.trusted_proxies.clone()));
    router
        .layer(CompressionLayer::new())
        // Just outside the compression, which leaves a static file's `ETag` as it is.
        .layer(middleware::map_response(assets::tag_encoded))
        // Bodies: one announced past the limit is refused before it is read; one streamed
        // without a length is cut off at the limit by the extractor reading it.
        .layer(DefaultBodyLimit::max(settings.body_bytes))
        .layer(middleware::from_fn_with_state(
            settings.body_bytes,
            rate_limit::limit_body_size,
        ))
        .layer(middleware::from_fn_with_state(
            settings.header_bytes,
            rate_limit::limit_header_size,
        ))
        // Problem pages get the site's chrome here, the limits' 413 and 431 included.
        .layer(middleware::map_response_with_state(
            settings.chrome.clone(),
            error::render_problems,
        ))
        // Outside the limits, so that their 413 and 431 answers are logged too.
        .layer(middleware::from_fn(request_log::log_requests))
        // Outside the span and the rate limiters, which both need the client's address.
        .layer(middleware::from_fn_with_state(
            trusted_proxies,
            client_addr::resolve,
        ))
        // The security headers come last, outermost, so that no answer escapes them: the
        // pages, the 413 and 431 pages of the limits above, the 404 and 405 pages, static
        // files and the development provider.
        .layer(SetResponseHeaderLayer::if_not_present(
            header::STRICT_TRANSPORT_SECURITY,
            move |_: &Response| hsts.clone(),
        ))
        // No inline script or style, nothing from other origins but what `[site]` names,
        // never framed (`Chrome::content_security_policy`). If not present: the development
        // provider's consent page sets its own.
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            settings.chrome.content_security_policy(),
        ))
        // CSP's frame-ancestors says the same, for browsers that predate it.
        .layer(SetResponseHeaderLayer::overriding(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        // The callback URL carries the code: it must never leave in a Referer.
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        // Pages show personal data and one-time links: never cached. Only static files
        // actually served (and their 304s) set their own (`assets::serve`).
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
}
