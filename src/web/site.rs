//! The site as served: loginwith's routes inside the session and cookie layers, the probes
//! and the forward-authentication check beside them (outside the session layer), all below
//! the path of `server.public_url`, with the layers every answer gets.

use std::sync::Arc;

use axum::Router;
use tower_sessions::{Expiry, SessionManagerLayer, cookie::SameSite};

use super::{
    AppError, AppState, Chrome, ForwardAuth, Health, SessionCookie, common_layers,
    cookie_guard::keep_cookie_unless_signed_out, error::unavailable_on_failed_save,
    forward_auth, health, to_mounted_home, twin_cookies::sign_out_twins,
};
use crate::config::Config;

/// An anonymous session (a sign-in in progress) lives this long without use.
const ANONYMOUS_SESSION_IDLE: time::Duration = time::Duration::hours(1);

/// The two ways of serving the same routes.
pub struct Site {
    /// Served alone: with a path in `server.public_url`, the rest of the host answers the
    /// 404 page.
    pub served: Router,
    /// Merged into another app: the rest is that app's, fallback included (axum allows one
    /// per router).
    pub mounted: Router,
}

/// `routes` (from [`router`](super::router), with anything nested into it) as the site.
pub fn site(config: &Config, state: &AppState, routes: Router) -> Site {
    let settings = &state.settings;
    // SameSite=Lax, not Strict: the provider's redirect back to /callback is a cross-site
    // top-level GET, and Strict would leave the session cookie (and so the state) behind.
    let mut session_layer = SessionManagerLayer::new(state.store.sessions())
        .with_name(config.cookie_name())
        .with_same_site(SameSite::Lax)
        .with_secure(config.session.secure)
        .with_http_only(true)
        .with_expiry(Expiry::OnInactivity(ANONYMOUS_SESSION_IDLE));
    // `session.cookie_domain`: the site's other hosts see the sign-in too (forward
    // authentication); tower-sessions puts the domain on its removals as well.
    if let Some(domain) = config.cookie_domain() {
        session_layer = session_layer.with_domain(domain);
    }
    let session_cookie = SessionCookie {
        name: Arc::from(config.cookie_name()),
        secure: config.session.secure,
        domain: config.cookie_domain().map(Arc::from),
        host: match config.server.public_url.host() {
            Some(url::Host::Domain(name)) => Some(Arc::from(name)),
            _ => None,
        },
    };
    let router = routes
        .layer(session_layer)
        .layer(axum::middleware::from_fn(unavailable_on_failed_save))
        .layer(axum::middleware::from_fn_with_state(
            session_cookie.clone(),
            keep_cookie_unless_signed_out,
        ))
        // Outside the guard, whose job is to drop removals nobody declared: these are
        // declared, for both twins.
        .layer(axum::middleware::from_fn_with_state(
            session_cookie,
            sign_out_twins,
        ))
        // Outside the session layers: a probe reads and writes no session.
        .merge(health::router(Health {
            store: state.store.clone(),
            shutdown: state.shutdown.clone(),
        }))
        // Outside too: the check reads the session once itself and writes nothing (the
        // session layer would load it again and could answer with a cookie).
        .merge(forward_auth::router(ForwardAuth {
            store: state.store.clone(),
            cookie_name: Arc::from(config.cookie_name()),
            settings: settings.clone(),
            remote_chrome: Arc::new(Chrome::new(&config.brand, &settings.public_url)),
        }));
    // With a path in `server.public_url`, everything lives below it: the pages, the
    // callbacks, the assets, the development provider and the probes.
    match settings.base_path.as_str() {
        "" => {
            let router = common_layers(router, settings);
            Site {
                served: router.clone(),
                mounted: router,
            }
        }
        base => {
            let nested = Router::new()
                .nest(base, router)
                // People type the home page with a trailing slash too.
                .route(&format!("{base}/"), axum::routing::get(to_mounted_home));
            Site {
                served: common_layers(
                    nested.clone().fallback(|| async { AppError::NotFound }),
                    settings,
                ),
                mounted: common_layers(nested, settings),
            }
        }
    }
}
