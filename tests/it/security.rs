//! The security suite: each defence in SECURITY.md with a test that fails without it.

use loginwith_testkit as common;

use std::sync::Arc;

use common::{
    ADA, Browser, Person, TestEnv, behind_tls, location, param, pre_sign_in_cookie, raw_exchange,
    session_cookie,
};
use loginwith::{config::Environment, dev_provider::Fault};
use reqwest::StatusCode;
use url::Url;

// ---- CSRF on the login -------------------------------------------------------------------

#[tokio::test]
async fn state_from_another_session_is_refused() {
    let env = TestEnv::start().await;
    let victim = env.browser();
    let attacker = env.browser();
    let attacker_dialog = attacker.start_login().await;
    let attacker_callback = attacker.consent(&attacker_dialog, ADA, "allow").await;
    victim.start_login().await;
    // The attacker makes the victim's browser open the attacker's callback (login CSRF).
    let response = victim.get(&attacker_callback).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(env.snapshot().await, [0, 0, 0]);
}

#[tokio::test]
async fn an_expired_state_is_refused_and_cleared() {
    let env = TestEnv::start().await;
    let browser = env.browser();
    let dialog = browser.start_login().await;
    let callback = browser.consent(&dialog, ADA, "allow").await;
    // Age the started sign-in by eleven minutes (the lifetime is ten), inside its seal.
    env.edit_pre_sign_in(&browser, |contents| {
        for login in contents["s"].as_array_mut().unwrap() {
            let issued = login["t"].as_i64().unwrap();
            login["t"] = (issued - 11 * 60 * 1000).into();
        }
    })
    .await;
    let response = browser.get(&callback).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    // The cookie is removed: nothing is left in progress.
    let removal = response.headers()["set-cookie"].to_str().unwrap();
    assert!(
        removal.starts_with("loginwith_session_signin=;") && removal.contains("Max-Age=0"),
        "{removal}"
    );
    assert_eq!(env.snapshot().await, [0, 0, 0]);
    assert_eq!(env.count("session").await, 0, "nothing was ever stored");
}

#[tokio::test]
async fn an_injected_code_fails_the_pkce_check() {
    let env = TestEnv::start().await;
    // The victim's code, intercepted before their browser used it...
    let victim = env.browser();
    let dialog = victim.start_login().await;
    let stolen = param(&victim.consent(&dialog, ADA, "allow").await, "code");
    // ...injected into the attacker's own session with the attacker's valid state.
    let attacker = env.browser();
    let state = param(attacker.start_login().await.as_str(), "state");
    let response = attacker
        .get(&format!(
            "/callback/facebook?code={stolen}&state={state}&iss={}",
            env.dev_url
        ))
        .await;
    assert_eq!(location(&response), "/preloader");
    assert_eq!(attacker.wait_status().await, "error");
    assert_eq!(
        env.last_operation().await,
        ("error".to_owned(), Some("denied".to_owned()))
    );
    assert_eq!(env.count("user_profile").await, 0);
    assert!(!attacker.text("/").await.1.contains("Hi,"));
}

// ---- Mix-up -------------------------------------------------------------------------------

#[tokio::test]
async fn a_callback_on_another_providers_path_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/db.sqlite", dir.path().display());
    let env = TestEnv::start_on(
        dir,
        url,
        Environment::Development,
        // A second provider, so a callback can arrive on the wrong provider's path.
        vec![common::stub_provider::StubProvider::plain(
            "other",
            "Other",
            "https://other.example/authorize",
        )],
        |f| f,
    )
    .await;
    let browser = env.browser();
    let dialog = browser.start_login().await;
    let callback = browser.consent(&dialog, ADA, "allow").await;
    let query = callback.split_once('?').unwrap().1;
    let response = browser.get(&format!("/callback/other?{query}")).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    // The state was spent by the attempt: the genuine callback no longer works either.
    assert_eq!(
        browser.get(&callback).await.status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(env.snapshot().await, [0, 0, 0]);
}

/// `callback` with its `iss` replaced by `iss` (or removed with `None`).
fn with_iss(callback: &str, iss: Option<&str>) -> String {
    let mut url = Url::parse(callback).unwrap();
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| k != "iss")
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let mut query = url.query_pairs_mut();
    query.clear().extend_pairs(pairs);
    if let Some(iss) = iss {
        query.append_pair("iss", iss);
    }
    drop(query);
    url.into()
}

#[tokio::test]
async fn an_unexpected_iss_is_refused() {
    // The development provider names its issuer in `iss` (RFC 9207), as the tests' Facebook
    // stand-in is configured to expect: a callback naming another issuer, or none, is refused.
    let env = TestEnv::start().await;
    for iss in [Some("https://evil.example"), Some(""), None] {
        let browser = env.browser();
        let dialog = browser.start_login().await;
        let callback = browser.consent(&dialog, ADA, "allow").await;
        assert_eq!(
            param(&callback, "iss"),
            env.dev_url,
            "the provider sends iss"
        );
        let response = browser.get(&with_iss(&callback, iss)).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "iss {iss:?}");
        // The attempt spent the state: the genuine answer is refused too.
        let response = browser.get(&callback).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "iss {iss:?}");
    }
    assert_eq!(env.snapshot().await, [0, 0, 0]);
    // The right issuer signs in.
    assert!(env.browser().login(ADA).await.contains("Hi, Ada!"));
}

// ---- Session ------------------------------------------------------------------------------

#[tokio::test]
async fn session_fixation_fails() {
    let env = TestEnv::start().await;
    // The attacker gets a genuine anonymous session id (no sign-in makes one any more;
    // sessions from before did)...
    let planted = env.anonymous_session().await;
    let attacker = browser_with_planted(&env, &[format!("loginwith_session={planted}")]);
    // ...and plants it in the victim's browser, who then signs in.
    let victim = browser_with_planted(&env, &[format!("loginwith_session={planted}")]);
    assert!(victim.login(ADA).await.contains("Hi, Ada!"));
    // The planted id is worth nothing to the attacker.
    let (_, page) = attacker.text("/").await;
    assert!(!page.contains("Hi, Ada!"), "{page}");
}

/// A browser whose jar holds `cookies` for the app's host before anything else happens: as
/// when another host of a shared cookie domain has tossed them in.
fn browser_with_planted(env: &TestEnv, cookies: &[String]) -> Browser {
    let jar = Arc::new(reqwest::cookie::Jar::default());
    for cookie in cookies {
        jar.add_cookie_str(cookie, &Url::parse(&env.app_url).unwrap());
    }
    Browser::with_client(
        &env.app_url,
        reqwest::Client::builder()
            .cookie_provider(jar)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
    )
}

/// A GET of `path` with exactly the `Cookie` header `cookie`: what an attacker holding those
/// values sends.
async fn get_with_cookie(env: &TestEnv, path: &str, cookie: &str) -> reqwest::Response {
    common::cookieless_client()
        .get(format!("{}{path}", env.app_url))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
}

/// The attack of a sibling host under a shared `session.cookie_domain`: it plants a session id
/// of its choosing in the victim's browser, and hammers `/success` with it (alone, and with a
/// pre-sign-in cookie of its own) while the victim signs in, and again when the exchange is
/// `ok` and the victim has not taken it yet. It must never come away signed in as the victim:
/// the sign-in in progress is in the victim's sealed, host-only cookie, not in any session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_id_planted_before_the_sign_in_cannot_finish_it() {
    let env = TestEnv::start().await;
    let planted = env.anonymous_session().await;
    let attacker = env.browser();
    let attacker_pre = pre_sign_in_cookie(&attacker.get("/authorize/facebook").await).unwrap();
    let victim = browser_with_planted(&env, &[format!("loginwith_session={planted}")]);
    // What the attacker sends: the planted id, with or without a pre-sign-in cookie of its own.
    let stolen = [
        format!("loginwith_session={planted}"),
        format!("loginwith_session={planted}; loginwith_session_signin={attacker_pre}"),
    ];

    // The race: /success with the planted id, as fast as it goes, the whole time.
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let hammer = {
        let (done, app_url, stolen) = (done.clone(), env.app_url.clone(), stolen.clone());
        tokio::spawn(async move {
            let client = common::cookieless_client();
            let mut tries = 0;
            let mut wins = Vec::new();
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                let cookie = &stolen[tries % 2];
                let response = client
                    .get(format!("{app_url}/success"))
                    .header("cookie", cookie)
                    .send()
                    .await
                    .unwrap();
                tries += 1;
                if let Some(id) = session_cookie(&response) {
                    wins.push(id);
                }
            }
            (tries, wins)
        })
    };
    let dialog = victim.start_login().await;
    let callback = victim.consent(&dialog, ADA, "allow").await;
    let response = victim.get(&callback).await;
    assert_eq!(location(&response), "/preloader");
    assert_eq!(
        session_cookie(&response),
        None,
        "the callback writes no session: the planted id carries nothing"
    );
    assert_eq!(victim.wait_status().await, "ok");
    // The worst moment: finished, not yet taken by the victim.
    for cookie in &stolen {
        let response = get_with_cookie(&env, "/success", cookie).await;
        assert_eq!(session_cookie(&response), None, "{cookie} signed in");
        let status = get_with_cookie(&env, "/get-status", cookie).await;
        assert_eq!(status.status(), StatusCode::NOT_FOUND);
    }
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let (tries, wins) = hammer.await.unwrap();
    assert!(tries > 0);
    assert_eq!(wins, Vec::<String>::new(), "the planter signed in");

    // The victim finishes their own sign-in under a new id, and the planter's id names nobody.
    let response = victim.get("/success").await;
    assert_eq!(location(&response), "/");
    assert_ne!(session_cookie(&response).unwrap(), planted);
    assert!(victim.text("/").await.1.contains("Hi, Ada!"));
    for cookie in &stolen {
        let check = get_with_cookie(&env, "/auth/check", cookie).await;
        assert_eq!(check.status(), StatusCode::UNAUTHORIZED);
        let home = get_with_cookie(&env, "/", cookie)
            .await
            .text()
            .await
            .unwrap();
        assert!(!home.contains("Hi, Ada!"), "{home}");
    }
    assert_eq!(
        env.signed_in_session_ids().await.len(),
        1,
        "only the victim's browser is signed in"
    );
}

/// A shared cookie reaches every host of the domain, so a sibling host the victim visits
/// between the callback and `/success` learns the session id the victim's browser holds.
/// Without the victim's sealed pre-sign-in cookie (host-only: never sent to it) that id
/// finishes nothing, with a pre-sign-in cookie of the attacker's own or a made-up one.
#[tokio::test]
async fn a_session_id_learnt_after_the_callback_finishes_nothing_without_the_browsers_cookie() {
    let env = TestEnv::start().await;
    let learnt = env.anonymous_session().await;
    let victim = browser_with_planted(&env, &[format!("loginwith_session={learnt}")]);
    let dialog = victim.start_login().await;
    let callback = victim.consent(&dialog, ADA, "allow").await;
    victim.get(&callback).await;
    assert_eq!(victim.wait_status().await, "ok");

    let attacker = env.browser();
    let own = pre_sign_in_cookie(&attacker.get("/authorize/facebook").await).unwrap();
    for cookie in [
        format!("loginwith_session={learnt}"),
        format!("loginwith_session={learnt}; loginwith_session_signin={own}"),
        format!(
            "loginwith_session={learnt}; loginwith_session_signin=1.{}",
            "A".repeat(120)
        ),
    ] {
        for path in ["/success", "/preloader"] {
            let response = get_with_cookie(&env, path, &cookie).await;
            assert_eq!(session_cookie(&response), None, "{path} with {cookie}");
            assert_ne!(location(&response), "/preloader", "{path} with {cookie}");
        }
        let status = get_with_cookie(&env, "/get-status", &cookie).await;
        assert_eq!(status.status(), StatusCode::NOT_FOUND, "{cookie}");
    }
    assert_eq!(location(&victim.get("/success").await), "/");
    assert!(victim.text("/").await.1.contains("Hi, Ada!"));
}

/// A sibling host tosses its own signed-in cookie of the name into a signed-in browser: the
/// browser then sends two. Neither wins: the request is answered as signed out, and both are
/// removed; the forward-auth check and the library's `SignedIn` refuse it too.
#[tokio::test]
async fn two_different_session_cookies_are_answered_as_signed_out_and_both_removed() {
    let env = TestEnv::start().await;
    let ids = ada_and_mallory_signed_in(&env).await;
    for (first, last) in [(&ids[0], &ids[1]), (&ids[1], &ids[0])] {
        let twins = format!("loginwith_session={first}; loginwith_session={last}");
        let response = get_with_cookie(&env, "/", &twins).await;
        assert_eq!(response.status(), StatusCode::OK);
        let removals: Vec<String> = response
            .headers()
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect();
        assert!(
            removals
                .iter()
                .any(|c| c.starts_with("loginwith_session=;") && c.contains("Max-Age=0")),
            "{removals:?}"
        );
        let home = response.text().await.unwrap();
        assert!(!home.contains("Hi, Ada!"), "{home}");
        assert!(!home.contains("Hi, Mallory"), "{home}");
        let check = get_with_cookie(&env, "/auth/check", &twins).await;
        assert_eq!(check.status(), StatusCode::UNAUTHORIZED);
        // Each alone is still who it was: the rows are untouched.
        for id in [first, last] {
            let check =
                get_with_cookie(&env, "/auth/check", &format!("loginwith_session={id}")).await;
            assert_eq!(check.status(), StatusCode::OK);
        }
    }
}

/// Ada and Mallory signed in, each in a browser of their own: their session ids.
async fn ada_and_mallory_signed_in(env: &TestEnv) -> [String; 2] {
    env.browser().login(ADA).await;
    env.browser()
        .login(Person {
            first: "Mallory",
            last: "🦹 <i>Evil</i>",
            email: "mallory@example.com",
        })
        .await;
    let ids = env.signed_in_session_ids().await;
    ids.try_into().expect("two signed-in sessions")
}

/// The session layer percent-decodes cookie names, so `loginwith%5Fsession` would be read as
/// the session cookie, while a browser lets any host of the parent domain set it (and
/// `%5F%5FHost-…` escapes the `__Host-` rule). Such aliases are never read, and a cookie with
/// bytes past ASCII beside twins does not hide them.
#[tokio::test]
async fn percent_encoded_aliases_and_non_ascii_neighbours_do_not_switch_the_person() {
    let env = TestEnv::start().await;
    let [ada_id, mallory_id] = ada_and_mallory_signed_in(&env).await;
    let client = common::cookieless_client();
    let home = async |cookie: &[u8]| {
        let response = client
            .get(format!("{}/", env.app_url))
            .header(
                "cookie",
                reqwest::header::HeaderValue::from_bytes(cookie).unwrap(),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        response.text().await.unwrap()
    };
    // An alias beside the real cookie: the real one counts.
    let page =
        home(format!("loginwith_session={ada_id}; loginwith%5Fsession={mallory_id}").as_bytes())
            .await;
    assert!(page.contains("Hi, Ada!"), "{page}");
    let page =
        home(format!("loginwith%5Fsession={mallory_id}; loginwith_session={ada_id}").as_bytes())
            .await;
    assert!(page.contains("Hi, Ada!"), "{page}");
    // An alias alone is no cookie at all.
    let page = home(format!("loginwith%5Fsession={mallory_id}").as_bytes()).await;
    assert!(!page.contains("Hi, "), "{page}");
    // Twins beside a cookie that is not visible ASCII: still twins.
    let twins = format!("loginwith_session={ada_id}; loginwith_session={mallory_id}; x=\u{e9}");
    let page = home(twins.as_bytes()).await;
    assert!(!page.contains("Hi, "), "{page}");
    let check = client
        .get(format!("{}/auth/check", env.app_url))
        .header(
            "cookie",
            reqwest::header::HeaderValue::from_bytes(twins.as_bytes()).unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(check.status(), StatusCode::UNAUTHORIZED);
}

/// The callback renews the session id last: a callback that fails after taking the state
/// (here every exchange slot is busy: 503) leaves the session, and so the browser's other
/// sign-ins and a signed-in person's sign-in, as they were.
#[tokio::test]
async fn a_callback_that_fails_keeps_the_browsers_session() {
    let env = TestEnv::start_with(|f| {
        f.merge(("limits.max_concurrent_exchanges", 1))
            .merge(("login.exchange_timeout_secs", 30))
    })
    .await;
    env.set_fault(Fault::Hang);
    env.browser().login_until_preloader(ADA).await;
    let browser = env.browser();
    let first_tab = browser.start_login().await;
    let second_tab = browser.start_login().await;
    let callback = browser.consent(&first_tab, ADA, "allow").await;
    let response = browser.get(&callback).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        response.headers().get("set-cookie").is_none(),
        "the pre-sign-in cookie stays as it was"
    );
    // The same answer again: still busy, not a spent state (it can be retried once a slot
    // frees)...
    let response = browser.get(&callback).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    // ...and the second tab's sign-in is still this browser's: busy too, not a bad state.
    let callback = browser.consent(&second_tab, ADA, "allow").await;
    let response = browser.get(&callback).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        env.count("async_operation").await,
        1,
        "only the hanging one"
    );
}

#[tokio::test]
async fn logout_rotates_the_session_and_the_old_id_is_dead() {
    let env = TestEnv::start().await;
    let browser = env.browser();
    browser.login(ADA).await;
    let sessions_before = env.count("session").await;
    let token = browser.csrf_token().await;
    let (id,): (String,) = sqlx::query_as("SELECT id FROM session")
        .fetch_one(&env.db)
        .await
        .unwrap();
    let response = browser
        .post_form("/logout", &[("csrf_token", &token)])
        .await;
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(cookie.contains("Max-Age=0"), "cookie removed: {cookie}");
    let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM session WHERE id = $1")
        .bind(&id)
        .fetch_one(&env.db)
        .await
        .unwrap();
    assert_eq!(left, 0, "the record is deleted");
    assert_eq!(env.count("session").await, sessions_before - 1);
}

#[tokio::test]
async fn production_cookies_are_secure_host_prefixed_and_hsts_is_sent() {
    let env = TestEnv::start_in(Environment::Production, behind_tls).await;
    // As through the TLS proxy in front, which passes the public host on.
    let client = common::cookieless_client();
    let get = async |path: &str, cookie: Option<&str>| {
        let mut request = client
            .get(format!("{}{path}", env.app_url))
            .header("host", "login.example.test");
        if let Some(cookie) = cookie {
            request = request.header("cookie", cookie);
        }
        request.send().await.unwrap()
    };
    let set_cookie = |response: &reqwest::Response, name: &str| -> String {
        response
            .headers()
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .find(|c| c.starts_with(name))
            .unwrap_or_else(|| panic!("{name} in {:?}", response.headers()))
    };
    // The pre-sign-in cookie (from /authorize) and the session's (from /success): both
    // host-only and `__Host-`.
    let authorize = get("/authorize/facebook", None).await;
    assert!(
        authorize.headers()["strict-transport-security"]
            .to_str()
            .unwrap()
            .contains("max-age=")
    );
    let finished = env.finished_sign_in().await;
    let success = get("/success", Some(&finished)).await;
    assert_eq!(location(&success), "/");
    for (response, name) in [
        (&authorize, "__Host-loginwith_session_signin="),
        (&success, "__Host-loginwith_session="),
    ] {
        let cookie = set_cookie(response, name);
        for part in ["Secure", "HttpOnly", "SameSite=Lax", "Path=/"] {
            assert!(cookie.contains(part), "{part} in {cookie}");
        }
        assert!(!cookie.contains("Domain"), "{cookie}");
    }
    // /success clears the pre-sign-in cookie the same way.
    let cleared = set_cookie(&success, "__Host-loginwith_session_signin=");
    assert!(
        cleared.contains("Max-Age=0") && cleared.contains("Secure"),
        "{cleared}"
    );
    let dev = env.browser().get("/dev/facebook/dialog/oauth").await;
    assert_eq!(
        dev.status(),
        StatusCode::NOT_FOUND,
        "no development provider"
    );
}

#[tokio::test]
async fn development_sends_no_hsts() {
    let env = TestEnv::start().await;
    let response = env.browser().get("/").await;
    assert!(
        response
            .headers()
            .get("strict-transport-security")
            .is_none()
    );
}

#[tokio::test]
async fn a_sign_in_ends_at_its_absolute_lifetime() {
    let env = TestEnv::start().await;
    let browser = env.browser();
    browser.login(ADA).await;
    env.edit_session(|data| {
        let signed_in = data.get_mut("signed_in").unwrap();
        let since = signed_in["since_ms"].as_i64().unwrap();
        signed_in["since_ms"] = (since - 91 * 86_400_000).into();
    })
    .await;
    let (_, page) = browser.text("/").await;
    assert!(
        page.contains("Continue with Facebook"),
        "signed out: {page}"
    );
}

#[tokio::test]
async fn an_active_sign_in_is_extended_about_once_a_day() {
    let env = TestEnv::start().await;
    let browser = env.browser();
    browser.login(ADA).await;
    // Quiet for now: no write, no cookie.
    assert!(browser.get("/").await.headers().get("set-cookie").is_none());
    env.edit_session(|data| {
        let signed_in = data.get_mut("signed_in").unwrap();
        let refreshed = signed_in["refreshed_ms"].as_i64().unwrap();
        signed_in["refreshed_ms"] = (refreshed - 2 * 86_400_000).into();
    })
    .await;
    let response = browser.get("/").await;
    let cookie = response.headers()["set-cookie"].to_str().unwrap();
    assert!(
        cookie.contains("Max-Age=2592000"),
        "idle lifetime restarts: {cookie}"
    );
}

// ---- Open redirects and GET safety --------------------------------------------------------

#[tokio::test]
async fn no_route_redirects_to_a_url_from_the_request() {
    let env = TestEnv::start().await;
    let browser = env.browser();
    let evil = "next=https%3A%2F%2Fevil.example&return_to=%2F%2Fevil.example&redirect_uri=https%3A%2F%2Fevil.example&redirect=https%3A%2F%2Fevil.example";
    for path in [
        "/",
        "/authorize/facebook",
        "/preloader",
        "/success",
        "/error",
        "/get-status",
        "/account/delete",
    ] {
        let response = browser.get(&format!("{path}?{evil}")).await;
        if let Some(target) = response.headers().get("location") {
            let target = target.to_str().unwrap();
            assert!(!target.contains("evil"), "{path} -> {target}");
            if target.starts_with("http") {
                assert!(target.starts_with(&env.dev_url), "{path} -> {target}");
            }
        }
    }
}

#[tokio::test]
async fn get_requests_change_nothing() {
    let env = TestEnv::start().await;
    let browser = env.browser();
    browser.login(ADA).await;
    for path in ["/logout", "/account/delete", "/facebook/data-deletion"] {
        let _ = browser.get(path).await;
    }
    assert!(browser.text("/").await.1.contains("Hi, Ada!"));
    assert_eq!(env.count("user_profile").await, 1);
}

// ---- Leaks --------------------------------------------------------------------------------

#[tokio::test]
async fn the_code_never_leaves_in_a_referer() {
    let env = TestEnv::start().await;
    let browser = env.browser();
    let dialog = browser.start_login().await;
    let callback = browser.consent(&dialog, ADA, "allow").await;
    let response = browser.get(&callback).await;
    assert_eq!(response.headers()["referrer-policy"], "no-referrer");
    let response = browser.get("/preloader").await;
    assert_eq!(response.headers()["referrer-policy"], "no-referrer");
}

#[tokio::test]
async fn pages_with_personal_data_are_never_cached() {
    let env = TestEnv::start().await;
    let browser = env.browser();
    browser.login(ADA).await;
    for path in ["/", "/account/delete", "/get-status", "/error"] {
        let response = browser.get(path).await;
        assert_eq!(response.headers()["cache-control"], "no-store", "{path}");
    }
}

// ---- Limits -------------------------------------------------------------------------------

#[tokio::test]
async fn sign_in_routes_are_rate_limited_per_address() {
    let env = TestEnv::start_with(|f| {
        f.merge(("limits.auth_per_minute", 1))
            .merge(("limits.auth_burst", 2))
    })
    .await;
    let browser = env.browser();
    for _ in 0..2 {
        assert_eq!(
            browser.get("/authorize/facebook").await.status(),
            StatusCode::SEE_OTHER
        );
    }
    let response = browser.get("/callback/facebook?state=x&code=y").await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(response.headers().contains_key("retry-after"));
    assert!(response.text().await.unwrap().contains("Too many"));
    // Other pages are not limited.
    assert_eq!(browser.get("/").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn concurrent_exchanges_are_bounded() {
    let env = TestEnv::start_with(|f| {
        f.merge(("limits.max_concurrent_exchanges", 1))
            .merge(("login.exchange_timeout_secs", 30))
    })
    .await;
    env.set_fault(Fault::Hang);
    let first = env.browser();
    first.login_until_preloader(ADA).await;
    let second = env.browser();
    let dialog = second.start_login().await;
    let callback = second.consent(&dialog, ADA, "allow").await;
    let response = second.get(&callback).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(response.text().await.unwrap().contains("try again"));
    assert_eq!(env.count("async_operation").await, 1, "nothing written");
}

#[tokio::test]
async fn oversized_provider_answers_are_refused() {
    let env = TestEnv::start().await;
    env.set_fault(Fault::OversizedResponse);
    let browser = env.browser();
    browser.login_until_preloader(ADA).await;
    assert_eq!(browser.wait_status().await, "error");
    assert_eq!(
        env.last_operation().await,
        ("error".to_owned(), Some("invalid_response".to_owned()))
    );
}

#[tokio::test]
async fn oversized_request_heads_are_refused() {
    let env = TestEnv::start().await;
    let browser = env.browser();
    // Over `limits.header_bytes` (32 KiB) but under hyper's own cap: our middleware's page.
    let response = browser
        .client
        .get(browser.url("/callback/facebook?state=x&code=y"))
        .header("x-padding", "x".repeat(40 * 1024))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
    );
    assert!(response.text().await.unwrap().contains("Request too large"));

    // A 1 MB request line, sent raw since HTTP clients refuse to build such a URI. hyper
    // stops reading once its buffer for a request head (8 KiB + 400 KiB) is full, long
    // before this line ends, so it never reaches its 414 check (a complete request line
    // with a long URI) nor our middleware: hyper itself answers 431, with an empty body
    // and none of our headers, and closes the connection.
    let request = format!(
        "GET /callback/facebook?state={}&code=x HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
        "a".repeat(1024 * 1024)
    );
    let answer = raw_exchange(&env.app_url, request.into_bytes()).await;
    assert_eq!(answer.status, Some(431));
    assert_eq!(answer.body, "");
    assert!(answer.headers.get("content-security-policy").is_none());
    assert_eq!(env.snapshot().await, [0, 0, 0]);
    assert_eq!(env.count("session").await, 0, "no session was written");
}

// ---- Concurrency --------------------------------------------------------------------------

fn generous(f: figment::Figment) -> figment::Figment {
    f.merge(("limits.auth_per_minute", 100_000))
        .merge(("limits.auth_burst", 100_000))
        .merge(("login.exchange_timeout_secs", 60))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_parallel_first_logins_of_one_person_make_one_user() {
    let env = TestEnv::start_with(generous).await;
    env.sign_in_in_parallel(50, ADA).await;
    assert_eq!(env.count("user_profile").await, 1);
    assert_eq!(env.count("user_identity").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_parallel_logins_of_different_people_make_two_hundred_users() {
    let env = TestEnv::start_with(generous).await;
    let logins: Vec<_> = (0..200)
        .map(|i| {
            let browser = env.browser();
            tokio::spawn(async move {
                let email = format!("person{i}@example.com");
                let first = format!("P{i}");
                let person = Person {
                    first: &first,
                    last: "Test",
                    email: &email,
                };
                let home = browser.login(person).await;
                assert!(home.contains(&format!("Hi, P{i}!")));
            })
        })
        .collect();
    for login in logins {
        login.await.unwrap();
    }
    assert_eq!(env.count("user_profile").await, 200);
    assert_eq!(env.count("user_identity").await, 200);
    let ok: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM async_operation WHERE async_operation_status_id = (SELECT id FROM async_operation_status WHERE code = 'ok')",
    )
    .fetch_one(&env.db)
    .await
    .unwrap();
    assert_eq!(ok, 200);
    assert_eq!(env.count("async_operation").await, 200);
}

#[tokio::test]
async fn a_late_request_with_the_pre_sign_in_cookie_does_not_sign_the_browser_out() {
    let env = TestEnv::start().await;
    let browser = env.browser();
    let old = browser.sign_in_keeping_pre_sign_in_cookie().await;

    // Requests sent before the id changed (another tab, a long poll) arrive afterwards.
    for path in [
        "/get-status",
        "/preloader",
        "/error",
        "/success",
        "/",
        "/callback/facebook?state=late&code=late",
    ] {
        let response = late_request(&env, path, &old).await;
        assert_eq!(
            session_cookie(&response),
            None,
            "{path} would replace or remove the signed-in cookie: {:?}",
            response.headers().get("set-cookie")
        );
    }
    assert!(browser.text("/").await.1.contains("Hi, Ada!"));
}

#[tokio::test]
async fn a_late_callback_in_a_signed_in_browser_goes_home() {
    let env = TestEnv::start().await;
    let browser = env.browser();
    let first_tab = browser.start_login().await;
    let second_tab = browser.start_login().await;
    let callback = browser.consent(&second_tab, ADA, "allow").await;
    browser.get(&callback).await;
    assert_eq!(browser.wait_status().await, "ok");
    browser.get("/success").await;
    // The first tab's Allow arrives after the second tab signed in.
    let late = browser.consent(&first_tab, ADA, "allow").await;
    let response = browser.get(&late).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/");
    assert!(browser.text("/").await.1.contains("Hi, Ada!"));
    assert_eq!(env.count("async_operation").await, 1, "nothing written");
}

#[tokio::test]
async fn the_losing_tab_of_a_sign_in_race_goes_home_signed_in() {
    let env = TestEnv::start().await;
    let browser = env.browser();
    // Both tabs saw `ok`. The first /success signs in and clears the pre-sign-in cookie...
    let old = browser.sign_in_keeping_pre_sign_in_cookie().await;
    // ...the second left with the old one, finds its sign-in taken, and goes home...
    let late = late_request(&env, "/success", &old).await;
    assert_eq!(location(&late), "/");
    assert_eq!(session_cookie(&late), None);
    // ...where its browser, which by then holds the new session cookie, is signed in.
    assert!(browser.text("/").await.1.contains("Hi, Ada!"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_exchange_signs_in_one_session_however_many_success_requests_race() {
    let env = TestEnv::start().await;
    let browser = env.browser();
    let response = browser.get("/authorize/facebook").await;
    let dialog = Url::parse(location(&response)).unwrap();
    let callback = browser.consent(&dialog, ADA, "allow").await;
    let pre_sign_in = pre_sign_in_cookie(&browser.get(&callback).await).unwrap();
    assert_eq!(browser.wait_status().await, "ok");

    // Twenty requests carry the same pre-sign-in cookie (tabs, or someone who copied it).
    let client = common::cookieless_client();
    let requests: Vec<_> = (0..20)
        .map(|_| {
            let request = client
                .get(format!("{}/success", env.app_url))
                .header("cookie", format!("loginwith_session_signin={pre_sign_in}"));
            tokio::spawn(request.send())
        })
        .collect();
    let mut signed_in = Vec::new();
    for request in requests {
        let response = request.await.unwrap().unwrap();
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        match session_cookie(&response) {
            Some(id) => {
                assert_eq!(location(&response), "/");
                signed_in.push(id);
            }
            // The others sign nothing in and go home, where the winner is greeted.
            None => assert_eq!(location(&response), "/"),
        }
    }
    assert_eq!(signed_in.len(), 1, "exactly one request signed in");
    assert_eq!(
        env.signed_in_session_ids().await.len(),
        1,
        "one signed-in session exists"
    );
}

#[tokio::test]
async fn names_with_markup_are_shown_as_text() {
    let env = TestEnv::start().await;
    for (first, shown) in [
        (
            "<script>alert(1)</script>",
            "&#60;script&#62;alert(1)&#60;/script&#62;",
        ),
        (
            "\"><img src=x onerror=alert(1)>",
            "&#34;&#62;&#60;img src=x onerror=alert(1)&#62;",
        ),
    ] {
        let person = Person {
            first,
            last: "🦀 <b>Crab</b>",
            email: "markup@example.com",
        };
        let home = env.browser().login(person).await;
        assert!(home.contains(&format!("Hi, {shown}!")), "{home}");
        assert!(!home.contains("<script>alert"), "{home}");
        assert!(!home.contains("<img src=x"), "{home}");
    }
}

/// A GET of `path` from another tab or an earlier poll: sent with the session id `old_id`,
/// by a client that keeps no cookies and follows no redirect.
async fn late_request(env: &TestEnv, path: &str, pre_sign_in: &str) -> reqwest::Response {
    common::cookieless_client()
        .get(format!("{}{path}", env.app_url))
        .header("cookie", format!("loginwith_session_signin={pre_sign_in}"))
        .send()
        .await
        .unwrap()
}

/// The pre-sign-in cookie is sealed: one byte changed anywhere, or a cookie sealed with
/// another key (by someone who wants their own `return_to` or `state` in it), opens as no
/// cookie at all: the callback is refused, nothing is written, and the genuine cookie (put
/// back) still works.
#[tokio::test]
async fn a_tampered_pre_sign_in_cookie_or_one_sealed_with_another_key_opens_as_nothing() {
    let env = TestEnv::start().await;
    let browser = env.browser();
    let dialog = browser.start_login().await;
    let answer = browser.consent(&dialog, ADA, "allow").await;
    let callback = answer.trim_start_matches(&env.app_url);
    let name = "loginwith_session_signin";
    let genuine = browser.cookie(name).unwrap();
    let (key_id, sealed) = genuine.split_once('.').unwrap();
    let mut forgeries = Vec::new();
    for at in [0, sealed.len() / 2, sealed.len() - 1] {
        let mut bytes = sealed.as_bytes().to_vec();
        bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
        forgeries.push(format!("{key_id}.{}", String::from_utf8(bytes).unwrap()));
    }
    // The same contents with a `return_to` of the forger's choosing, sealed with a key of
    // theirs under this key's id and under a made-up one.
    let mut contents = env.open_pre_sign_in(&genuine).await;
    contents["s"][0]["r"] = "https://evil.example/".into();
    let theirs = loginwith::web::Sealer::configured(&[7; 32]).seal(name, &contents.to_string());
    let (_, their_sealed) = theirs.split_once('.').unwrap();
    forgeries.push(format!("{key_id}.{their_sealed}"));
    forgeries.push(format!("999.{their_sealed}"));
    for forged in &forgeries {
        let response = get_with_cookie(&env, callback, &format!("{name}={forged}")).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{forged}");
    }
    assert_eq!(env.snapshot().await, [0, 0, 0]);
    // The genuine cookie still holds the sign-in.
    let response = get_with_cookie(&env, callback, &format!("{name}={genuine}")).await;
    assert_eq!(location(&response), "/preloader");
}
