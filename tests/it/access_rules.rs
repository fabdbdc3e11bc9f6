//! Who may enter by group, GitHub organisation and team, and per host and path
//! (`[[access.rules]]`), on the real router: the test OpenID Connect issuer (`corp`) issuing a
//! groups claim, the GitHub stand-in with organisations and teams, and `/auth/check` asked as
//! Caddy and Traefik ask (`X-Forwarded-*`) and as nginx asks (`X-Original-URL`).

use loginwith_testkit as common;

use axum::{Router, routing::get};
use common::{TestEnv, github::GitHubEnv, location, oidc::OidcEnv};
use figment::Figment;
use loginwith::{App, SignedIn, config::AccessConditions};
use reqwest::{StatusCode, header};
use serde_json::json;
use tower::ServiceExt;

const CHECK: &str = "/auth/check";

/// `[providers.corp]` issuing `groups` in its ID token, for a verified `email`, with the
/// configuration `tweak` adds.
async fn corp(email: &str, groups: &[&str], tweak: impl FnOnce(Figment) -> Figment) -> OidcEnv {
    let email = email.to_owned();
    let groups = json!(groups);
    OidcEnv::start_with(
        move |b| {
            b.email = email;
            b.email_verified = true;
            b.id_token_claims.insert("groups".to_owned(), groups);
        },
        tweak,
        Vec::new(),
    )
    .await
}

/// The two hosts of the issue: grafana for ops only, the wiki for the wiki group; `[access]`
/// lets in either group; the gateway on loopback is trusted.
fn two_hosts(f: Figment) -> Figment {
    f.merge(("server.trusted_proxies", ["127.0.0.1"]))
        .merge(("gateway.allowed_hosts", [".example.com"]))
        .merge(("access.groups", ["ops", "wiki"]))
        .merge((
            "access.rules",
            json!([
                {"host": "grafana.example.com", "groups": ["ops"]},
                {"host": "wiki.example.com", "groups": ["wiki"]},
            ]),
        ))
}

/// Signs in through corp and `/success`; the session id.
async fn signed_in(env: &OidcEnv) -> String {
    let browser = env.env.browser();
    assert_eq!(env.sign_in(&browser).await, "ok");
    assert_eq!(location(&browser.get("/success").await), "/");
    let ids = env.env.signed_in_session_ids().await;
    assert_eq!(ids.len(), 1);
    ids[0].clone()
}

/// `GET /auth/check{query}` with the session cookie `id` and `headers`, from loopback.
async fn check(
    env: &TestEnv,
    query: &str,
    id: Option<&str>,
    headers: &[(&str, &str)],
) -> reqwest::Response {
    get_from_gateway(env, &format!("{CHECK}{query}"), id, headers).await
}

/// `GET {path}` with the session cookie `id` and `headers`, from loopback, following nothing.
async fn get_from_gateway(
    env: &TestEnv,
    path: &str,
    id: Option<&str>,
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let client = common::cookieless_client();
    let mut request = client.get(format!("{}{path}", env.app_url));
    if let Some(id) = id {
        request = request.header(header::COOKIE, format!("loginwith_session={id}"));
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

/// As Caddy's `forward_auth` and Traefik's ForwardAuth ask about `https://{host}{uri}`.
fn forwarded<'a>(host: &'a str, uri: &'a str) -> [(&'a str, &'a str); 3] {
    [
        ("x-forwarded-proto", "https"),
        ("x-forwarded-host", host),
        ("x-forwarded-uri", uri),
    ]
}

fn header_of<'a>(response: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    response.headers().get(name)?.to_str().ok()
}

#[tokio::test]
async fn a_group_lets_in_and_every_group_is_sent_to_the_gateway() {
    // Markup, a comma and an emoji in a group name: the header stays one value per group.
    let env = corp(
        "ada@corp.example",
        &["ops", "Zoë <i>admins</i>, 🦀", "ops"],
        |f| f.merge(("access.groups", ["ops"])),
    )
    .await;
    let id = signed_in(&env).await;
    let response = check(&env.env, "", Some(&id), &[]).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        header_of(&response, "x-auth-request-groups"),
        Some("Zo%C3%AB%20<i>admins</i>%2C%20%F0%9F%A6%80,ops")
    );
    // Kept with the sign-in (the person's row has no place for it: see store_backends).
    let data: String = sqlx::query_scalar("SELECT data FROM session WHERE id = $1")
        .bind(&id)
        .fetch_one(&env.env.db)
        .await
        .unwrap();
    let data: serde_json::Value = serde_json::from_str(&data).unwrap();
    assert_eq!(
        data["signed_in"]["membership"]["groups"],
        json!(["Zoë <i>admins</i>, 🦀", "ops"])
    );

    // Someone in no group that [access] names finishes the dialog and is kept nowhere.
    env.issuer.set(|b| {
        b.sub = "sub-0002".to_owned();
        b.email = "grace@corp.example".to_owned();
        b.id_token_claims
            .insert("groups".to_owned(), json!(["staff"]));
    });
    let grace = env.env.browser();
    assert_eq!(env.sign_in(&grace).await, "error");
    let (status, page) = grace.text("/error").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        page.contains("grace@corp.example (Corp SSO) may not sign in to loginwith."),
        "{page}"
    );
    assert_eq!(env.env.count("user_identity").await, 1);
    assert_eq!(env.env.count("user_profile").await, 1);
}

#[tokio::test]
async fn the_rule_of_the_host_and_path_a_trusted_gateway_names_applies() {
    let env = corp("ada@corp.example", &["ops"], |f| {
        two_hosts(f).merge((
            "access.rules",
            json!([
                {"host": "grafana.example.com", "path": "/admin", "emails": ["root@corp.example"]},
                {"host": "grafana.example.com", "groups": ["ops"]},
                {"host": "wiki.example.com", "groups": ["wiki"]},
            ]),
        ))
    })
    .await;
    let id = signed_in(&env).await;
    let env = &env.env;
    for (host, uri, expected) in [
        ("grafana.example.com", "/d/home?a=1&b=2", StatusCode::OK),
        ("grafana.example.com", "/administrator", StatusCode::OK),
        ("grafana.example.com", "/admin/users", StatusCode::FORBIDDEN),
        (
            "grafana.example.com",
            "/x/..%2F%61dmin",
            StatusCode::FORBIDDEN,
        ),
        // Leaving /admin for one reading while a raw-path router still routes it inside.
        (
            "grafana.example.com",
            "/admin/users/..%2F..%2Fx",
            StatusCode::FORBIDDEN,
        ),
        (
            "grafana.example.com",
            "/admin/%2e%2e",
            StatusCode::FORBIDDEN,
        ),
        ("grafana.example.com", "/ADMIN/users", StatusCode::FORBIDDEN),
        // The same host name, written fully qualified.
        (
            "grafana.example.com.",
            "/admin/users",
            StatusCode::FORBIDDEN,
        ),
        ("wiki.example.com.", "/", StatusCode::FORBIDDEN),
        ("wiki.example.com", "/", StatusCode::FORBIDDEN),
        // No rule for this host: [access] alone.
        ("status.example.com", "/", StatusCode::OK),
    ] {
        let response = check(env, "", Some(&id), &forwarded(host, uri)).await;
        assert_eq!(response.status(), expected, "{host}{uri}");
    }
    // nginx's way of naming the request.
    let nginx = |url: &'static str| [("x-original-url", url)];
    let allowed = check(env, "", Some(&id), &nginx("https://grafana.example.com/")).await;
    assert_eq!(allowed.status(), StatusCode::OK);
    let refused = check(env, "", Some(&id), &nginx("https://wiki.example.com/")).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    // Asked for HTML: the page naming the host's refusal and who is signed in.
    let mut html = nginx("https://wiki.example.com/page").to_vec();
    html.push(("accept", "text/html,application/xhtml+xml"));
    let page = check(env, "", Some(&id), &html).await;
    assert_eq!(page.status(), StatusCode::FORBIDDEN);
    let page = page.text().await.unwrap();
    assert!(
        page.contains("ada@corp.example (Corp SSO) may not enter wiki.example.com."),
        "{page}"
    );
    assert!(
        page.contains("return_to=https%3A%2F%2Fwiki.example.com%2Fpage"),
        "{page}"
    );
    // "Sign in with another account" leads to loginwith's home page with the wiki as
    // `return_to`: it says why rather than sending her back to the same refusal (a circle).
    let home = get_from_gateway(
        env,
        "/?return_to=https%3A%2F%2Fwiki.example.com%2Fpage",
        Some(&id),
        &[],
    )
    .await;
    assert_eq!(home.status(), StatusCode::OK);
    let home = home.text().await.unwrap();
    assert!(
        home.contains("ada@corp.example (Corp SSO) may not enter wiki.example.com."),
        "{home}"
    );
    assert!(home.contains(">Log out</button>"), "{home}");
    // Where she may go, she is sent at once.
    let home = get_from_gateway(
        env,
        "/?return_to=https%3A%2F%2Fgrafana.example.com%2F",
        Some(&id),
        &[],
    )
    .await;
    assert_eq!(home.status(), StatusCode::SEE_OTHER);
    // Caddy and Traefik overwrite X-Forwarded-* but pass the browser's other headers on: an
    // X-Original-URL beside them is not believed.
    let mut spoofed = forwarded("wiki.example.com", "/").to_vec();
    spoofed.push(("x-original-url", "https://grafana.example.com/"));
    let response = check(env, "", Some(&id), &spoofed).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    // The other way round too: two URLs that disagree are neither believed, and with rules
    // set every rule must then pass (Ada is not in the wiki group).
    let mut spoofed = forwarded("grafana.example.com", "/").to_vec();
    spoofed.push(("x-original-url", "https://wiki.example.com/"));
    let response = check(env, "", Some(&id), &spoofed).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    // A URL without a host (nginx's `$http_host` of a request without one) names nothing.
    let response = check(env, "", Some(&id), &nginx("https:///grafana.example.com/")).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
}

/// A peer not in `server.trusted_proxies` names whatever host it likes: its headers are not
/// read, and with rules set every rule must then pass.
#[tokio::test]
async fn a_spoofed_host_from_an_untrusted_peer_cannot_pick_a_looser_rule() {
    let env = corp("ada@corp.example", &["ops"], |f| {
        two_hosts(f).merge(("server.trusted_proxies", Vec::<String>::new()))
    })
    .await;
    let id = signed_in(&env).await;
    let env = &env.env;
    for headers in [
        forwarded("grafana.example.com", "/").to_vec(),
        vec![("x-original-url", "https://grafana.example.com/")],
        vec![],
    ] {
        let response = check(env, "", Some(&id), &headers).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{headers:?}");
    }
    // Not signed in: a plain 401, no Location an untrusted peer could have chosen.
    let response = check(
        env,
        "",
        None,
        &[("x-original-url", "https://grafana.example.com/")],
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(header_of(&response, "location"), None);
}

#[tokio::test]
async fn nginx_gets_a_401_carrying_the_sign_in_page_with_the_whole_url() {
    let env = TestEnv::start_with(|f| {
        f.merge(("server.trusted_proxies", ["127.0.0.1"]))
            .merge(("gateway.allowed_hosts", [".example.com"]))
    })
    .await;
    let response = check(
        &env,
        "",
        None,
        &[(
            "x-original-url",
            "https://grafana.example.com/d/home?a=1&b=two%20words",
        )],
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let sign_in = url::Url::parse(header_of(&response, "location").unwrap()).unwrap();
    assert_eq!(
        sign_in[..url::Position::AfterPath],
        format!("{}/", env.app_url)
    );
    let pairs: Vec<_> = sign_in.query_pairs().collect();
    assert_eq!(pairs.len(), 1, "{sign_in}");
    assert_eq!(
        pairs[0],
        (
            "return_to".into(),
            "https://grafana.example.com/d/home?a=1&b=two%20words".into()
        )
    );
    // A host return_to may not name: the sign-in page without it.
    let response = check(
        &env,
        "",
        None,
        &[("x-original-url", "https://evil.example/")],
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        header_of(&response, "location"),
        Some(format!("{}/", env.app_url).as_str())
    );
}

#[tokio::test]
async fn the_query_form_narrows() {
    let env = corp("ada@corp.example", &["ops"], |f| {
        f.merge(("access.email_domains", ["corp.example"]))
    })
    .await;
    let id = signed_in(&env).await;
    let env = &env.env;
    for (query, expected) in [
        ("?allowed_groups=ops,admins", StatusCode::OK),
        ("?allowed_groups=admins", StatusCode::FORBIDDEN),
        (
            "?allowed_email_domains=corp.example&allowed_groups=ops",
            StatusCode::OK,
        ),
        ("?allowed_emails=grace@corp.example", StatusCode::FORBIDDEN),
        (
            "?allowed_groups=ops&allowed_groups=admins",
            StatusCode::BAD_REQUEST,
        ),
        ("?allowed_groups=", StatusCode::BAD_REQUEST),
    ] {
        let response = check(env, query, Some(&id), &[]).await;
        assert_eq!(response.status(), expected, "{query}");
    }
}

#[tokio::test]
async fn the_query_form_cannot_let_in_whom_a_rule_refuses() {
    let env = corp("ada@corp.example", &["ops"], two_hosts).await;
    let id = signed_in(&env).await;
    let wiki = forwarded("wiki.example.com", "/");
    for query in [
        "",
        "?allowed_groups=ops",
        "?allowed_emails=ada@corp.example",
        "?allowed_email_domains=corp.example",
    ] {
        let response = check(&env.env, query, Some(&id), &wiki).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{query}");
    }
}

#[tokio::test]
async fn a_sign_in_older_than_recheck_hours_must_pass_the_provider_again() {
    let env = corp("ada@corp.example", &["ops"], |f| {
        f.merge(("access.groups", ["ops"]))
            .merge(("access.recheck_hours", 2))
    })
    .await;
    let id = signed_in(&env).await;
    assert_eq!(
        check(&env.env, "", Some(&id), &[]).await.status(),
        StatusCode::OK
    );
    let hours_ago = |hours: i64| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        now - hours * 3600 * 1000
    };
    env.env
        .edit_session(|data| data["signed_in"]["since_ms"] = json!(hours_ago(1)))
        .await;
    assert_eq!(
        check(&env.env, "", Some(&id), &[]).await.status(),
        StatusCode::OK
    );
    env.env
        .edit_session(|data| data["signed_in"]["since_ms"] = json!(hours_ago(3)))
        .await;
    assert_eq!(
        check(&env.env, "", Some(&id), &[]).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn github_organisations_and_teams_let_in_and_are_sent_as_groups() {
    let gh = GitHubEnv::start_with(|f| {
        f.merge(("access.github_orgs", ["Acme"]))
            .merge(("access.github_teams", ["other/ops"]))
    })
    .await;
    gh.github
        .set_user(loginwith::dev_provider::github::GitHubUser {
            orgs: vec!["acme".to_owned()],
            teams: vec![("acme".to_owned(), "ops".to_owned())],
            ..common::github::ada()
        });
    let browser = gh.env.browser();
    gh.login(&browser).await;
    let id = gh.env.signed_in_session_ids().await.remove(0);
    let response = check(&gh.env, "", Some(&id), &[]).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        header_of(&response, "x-auth-request-groups"),
        Some("acme,acme/ops")
    );
    // `ops` of another organisation is not `other/ops`, and no organisation: refused.
    gh.github
        .set_user(loginwith::dev_provider::github::GitHubUser {
            id: 4242,
            orgs: vec!["other-co".to_owned()],
            teams: vec![("acme".to_owned(), "ops".to_owned())],
            ..common::github::ada()
        });
    let other = gh.env.browser();
    gh.login_until_preloader(&other).await;
    assert_eq!(other.wait_status().await, "error");
    assert_eq!(
        gh.env.last_operation().await,
        ("error".to_owned(), Some("not_allowed".to_owned()))
    );
}

/// The library: `RequireAccess` on a route, from `[access]`'s own condition type, and the
/// `SignedIn` extractor matching `[[access.rules]]` on the site's own host and path.
#[tokio::test]
async fn the_library_layer_and_extractor_let_in_only_whom_their_conditions_name() {
    let env = corp("ada@corp.example", &["ops"], |f| {
        f.merge(("access.groups", ["ops", "wiki"])).merge((
            "access.rules",
            json!([{"host": "127.0.0.1", "path": "/wiki", "groups": ["wiki"]}]),
        ))
    })
    .await;
    let id = signed_in(&env).await;
    let embedded = App::build(&env.env.config, "127.0.0.1:9".parse().unwrap())
        .await
        .expect("the library builds");
    let accounts = embedded.accounts();
    let admins_only = accounts
        .require(&AccessConditions {
            groups: vec!["admins".to_owned()],
            ..AccessConditions::default()
        })
        .unwrap();
    let ops_only = accounts
        .require(&AccessConditions {
            groups: vec!["ops".to_owned()],
            ..AccessConditions::default()
        })
        .unwrap();
    let site = Router::new()
        .route(
            "/ops",
            get(|person: SignedIn| async move { person.groups().collect::<Vec<_>>().join(",") })
                .route_layer(ops_only),
        )
        .route(
            "/admin",
            get(|| async { "admins" }).route_layer(admins_only),
        )
        .route("/wiki/home", get(|_: SignedIn| async { "wiki" }))
        .with_state(accounts.clone());
    let ask = |path: &'static str, cookie: bool| {
        let mut request = axum::http::Request::get(path);
        if cookie {
            request = request.header(header::COOKIE, format!("loginwith_session={id}"));
        }
        site.clone()
            .oneshot(request.body(axum::body::Body::empty()).unwrap())
    };
    let body = |response: axum::response::Response| async move {
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        String::from_utf8_lossy(&bytes).into_owned()
    };
    let response = ask("/ops", true).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body(response).await, "ops");
    let response = ask("/admin", true).await.unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let page = body(response).await;
    assert!(
        page.contains("ada@corp.example (Corp SSO) may not sign in"),
        "{page}"
    );
    assert!(
        page.contains(r#"name="return_to" value="/admin""#),
        "{page}"
    );
    // Its logout form carries the session's CSRF token, from the one read of the sign-in.
    assert!(page.contains(r#"name="csrf_token""#), "{page}");
    // Nobody signed in: to the sign-in page, coming back here.
    let response = ask("/admin", false).await.unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let to = response.headers()[header::LOCATION].to_str().unwrap();
    assert!(to.ends_with("?return_to=%2Fadmin"), "{to}");
    // The rule for /wiki (on the site's own host) applies to the extractor.
    let response = ask("/wiki/home", true).await.unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    // Conditions that make no sense are refused, naming the key.
    let error = accounts
        .require(&AccessConditions {
            github_teams: vec!["no-slash".to_owned()],
            ..AccessConditions::default()
        })
        .err()
        .expect("refused");
    assert_eq!(error.problems[0].key, "require.github_teams");
}
