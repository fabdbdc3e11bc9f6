//! `[site]`: the deployment's own name, logo, accent colour and stylesheet on every page,
//! refused at start-up when unusable, and the privacy page (`GET /privacy`).

use loginwith_testkit as common;

use common::{ADA, TestEnv, location};
use figment::providers::{Format, Toml};
use loginwith::config::{Config, ConfigError, Environment, Fault};
use reqwest::{StatusCode, header};

/// A name with markup, an ampersand, quotes and an emoji: shown as text everywhere.
const HOSTILE_NAME: &str = "<script>alert(\"x\")</script> & Ünïcode 🚀 Acme";
/// How askama writes it into HTML.
const ESCAPED_NAME: &str =
    "&#60;script&#62;alert(&#34;x&#34;)&#60;/script&#62; &#38; Ünïcode 🚀 Acme";

/// A tiny but well-formed PNG signature and header: enough for the file check (the browser
/// suite shows real pictures).
const PNG: &[u8] =
    b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89";

fn development(toml: &str) -> Result<Config, ConfigError> {
    Config::from_figment(
        Config::defaults_figment().merge(Toml::string(toml)),
        Environment::Development,
    )
}

fn refusal(toml: &str) -> String {
    let error = development(toml).expect_err("refused");
    assert!(
        error.problems.iter().all(|p| p.key.starts_with("site.")),
        "{error}"
    );
    error.to_string()
}

/// The value of `attribute` on the first tag of `html` that holds `marker`.
fn attribute<'a>(html: &'a str, marker: &str, attribute: &str) -> &'a str {
    let at = html
        .find(marker)
        .unwrap_or_else(|| panic!("no {marker} in {html}"));
    let tag_start = html[..at].rfind('<').expect("tag start");
    let tag_end = at + html[at..].find('>').expect("tag end");
    let tag = &html[tag_start..tag_end];
    let key = format!(" {attribute}=\"");
    let start = tag
        .find(&key)
        .unwrap_or_else(|| panic!("no {attribute} in {tag}"))
        + key.len();
    &tag[start..start + tag[start..].find('"').expect("end of value")]
}

#[test]
fn a_whole_site_section_is_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let logo = dir.path().join("logo.PNG");
    std::fs::write(&logo, PNG).unwrap();
    let css = dir.path().join("brand.css");
    std::fs::write(&css, "body { font-family: serif; }").unwrap();
    let config = development(&format!(
        r##"
        [site]
        name = "  Acme Books  "
        logo = "{}"
        accent_color = "#6B3FA0"
        stylesheet = "{}"
        contact_email = "privacy@acme.example"
        privacy_policy_url = "https://acme.example/privacy"
        "##,
        logo.display(),
        css.display()
    ))
    .unwrap();
    assert_eq!(config.brand.name, "Acme Books");
    assert_eq!(
        format!("{:?}", config.brand.logo),
        format!("Some(File(.png, {} bytes))", PNG.len())
    );
    assert_eq!(config.brand.accent.unwrap().hex(), "#6b3fa0");
    assert_eq!(
        config.brand.contact_email.as_deref(),
        Some("privacy@acme.example")
    );
    // Nothing set: loginwith's own look.
    let plain = development("").unwrap();
    assert_eq!(plain.brand, loginwith::config::Brand::default());
    assert_eq!(plain.brand.name, "loginwith");
}

#[test]
fn unusable_site_settings_are_refused_naming_the_key() {
    let bad_colour = refusal("[site]\naccent_color = \"purple\"");
    assert!(
        bad_colour.contains("site.accent_color") && bad_colour.contains("#rrggbb"),
        "{bad_colour}"
    );
    assert!(refusal("[site]\naccent_color = \"#6b3fa\"").contains("site.accent_color"));

    // Yellow under white text: 1.51:1. The message says the ratio and the minimum.
    let low = refusal("[site]\naccent_color = \"#ffcc00\"");
    assert!(
        low.contains("site.accent_color") && low.contains("1.51:1") && low.contains("4.5:1"),
        "{low}"
    );
    // Facebook's own blue passes 3:1 (large text) but not 4.5:1: refused as an accent.
    let blue = refusal("[site]\naccent_color = \"#1877f2\"");
    assert!(blue.contains("4.23:1"), "{blue}");
    // Just dark enough: #767676 is 4.54:1.
    assert!(development("[site]\naccent_color = \"#767676\"").is_ok());

    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.svg");
    let message = refusal(&format!("[site]\nlogo = \"{}\"", missing.display()));
    assert!(
        message.contains("site.logo")
            && message.contains("cannot read")
            && message.contains("missing.svg"),
        "{message}"
    );

    let huge = dir.path().join("huge.png");
    let mut bytes = PNG.to_vec();
    bytes.resize(loginwith::config::LOGO_MAX_BYTES + 1, 0);
    std::fs::write(&huge, &bytes).unwrap();
    let message = refusal(&format!("[site]\nlogo = \"{}\"", huge.display()));
    assert!(
        message.contains("site.logo") && message.contains("larger than 256 KiB"),
        "{message}"
    );
    // At the limit exactly: accepted.
    bytes.truncate(loginwith::config::LOGO_MAX_BYTES);
    std::fs::write(&huge, &bytes).unwrap();
    assert!(development(&format!("[site]\nlogo = \"{}\"", huge.display())).is_ok());

    // A file whose content is not what its name says, and a type that is not a picture.
    let fake = dir.path().join("fake.png");
    std::fs::write(&fake, "<html>").unwrap();
    let message = refusal(&format!("[site]\nlogo = \"{}\"", fake.display()));
    assert!(message.contains("is not a .png picture"), "{message}");
    let html = dir.path().join("logo.html");
    std::fs::write(&html, "<svg>").unwrap();
    assert!(refusal(&format!("[site]\nlogo = \"{}\"", html.display())).contains(".svg, .png"));

    let message = refusal(&format!(
        "[site]\nstylesheet = \"{}\"",
        dir.path().join("nope.css").display()
    ));
    assert!(message.contains("site.stylesheet"), "{message}");
    assert!(refusal("[site]\nlogo = \"ftp://cdn.example/logo.png\"").contains("site.logo"));
    assert!(refusal("[site]\ncontact_email = \"privacy\"").contains("site.contact_email"));
    assert!(
        refusal("[site]\nprivacy_policy_url = \"javascript:alert(1)\"")
            .contains("site.privacy_policy_url")
    );
    assert!(refusal(&format!("[site]\nname = \"{}\"", "n".repeat(81))).contains("site.name"));

    // Every problem at once.
    let error = development(
        "[site]\naccent_color = \"#ffffff\"\ncontact_email = \"x\"\nlogo = \"/nonexistent/l.svg\"",
    )
    .unwrap_err();
    let mut keys: Vec<&str> = error.problems.iter().map(|p| p.key.as_str()).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        ["site.accent_color", "site.contact_email", "site.logo"]
    );
}

#[test]
fn production_takes_https_urls_only() {
    let figment = Config::defaults_figment()
        .merge(Toml::file(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/config/production.toml"
        )))
        .merge(Toml::string(
            r#"
            [server]
            public_url = "https://login.example.com"
            [providers.facebook]
            client_id = "1234"
            client_secret = "s3cret"
            [site]
            logo = "http://cdn.example.com/logo.svg"
            stylesheet = "http://cdn.example.com/site.css"
            "#,
        ));
    let error = Config::from_figment(figment, Environment::Production).unwrap_err();
    let keys: Vec<&str> = error.problems.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(keys, ["site.logo", "site.stylesheet"], "{error}");
    assert!(error.to_string().contains("https://"), "{error}");
}

/// Starts with the hostile name, a logo file, an accent colour and a contact address.
async fn branded(extra: &str) -> (TestEnv, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let logo = dir.path().join("logo.png");
    std::fs::write(&logo, PNG).unwrap();
    let toml = format!(
        "[site]\nname = {}\nlogo = {:?}\naccent_color = \"#6b3fa0\"\ncontact_email = \"privacy@acme.example\"\n{extra}",
        toml_string(HOSTILE_NAME),
        logo.display().to_string(),
    );
    let env = TestEnv::start_with(move |f| f.merge(Toml::string(&toml))).await;
    (env, dir)
}

fn toml_string(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The name, escaped, in the title and the header; the raw markup nowhere.
fn assert_branded(what: &str, html: &str) {
    assert!(
        !html.contains("<script>alert"),
        "{what}: the name's markup is live: {html}"
    );
    assert!(!html.contains("loginwith"), "{what}: {html}");
    let title_start = html.find("<title>").expect("a title");
    let title = &html[title_start..title_start + html[title_start..].find("</title>").unwrap()];
    assert!(
        title.ends_with(&format!(" · {ESCAPED_NAME}")),
        "{what}: {title}"
    );
    assert!(
        html.contains(&format!("<span>{ESCAPED_NAME}</span></a>")),
        "{what}: header: {html}"
    );
}

#[tokio::test]
async fn the_brand_is_on_every_page_as_text() {
    let (env, _dir) = branded("").await;
    let browser = env.browser();
    let mut pages = Vec::new();
    for path in ["/", "/privacy", "/error", "/no-such-page"] {
        let (_, html) = browser.text(path).await;
        pages.push((path.to_owned(), html));
    }
    let response = browser.post_form("/privacy", &[]).await;
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    pages.push(("POST /privacy".to_owned(), response.text().await.unwrap()));

    // The preloader, while the provider does not answer: it is certainly still pending when
    // the page is asked for. That sign-in then times out; the next one completes.
    env.set_fault(Fault::Hang);
    browser.login_until_preloader(ADA).await;
    let (status, html) = browser.text("/preloader").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("data-site-name=\"&#60;script&#62;"),
        "the preloader's script says the name too: {html}"
    );
    pages.push(("/preloader".to_owned(), html));
    env.set_fault(Fault::None);
    assert_eq!(browser.wait_status().await, "error");
    browser.login_until_preloader(ADA).await;
    assert_eq!(browser.wait_status().await, "ok");
    let response = browser.get("/success").await;
    assert_eq!(location(&response), "/");
    for path in ["/", "/account", "/account/delete"] {
        let (status, html) = browser.text(path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        pages.push((format!("{path} signed in"), html));
    }
    assert!(pages.len() >= 9);
    for (what, html) in &pages {
        assert_branded(what, html);
    }
}

#[tokio::test]
async fn the_logo_and_the_accent_are_served_versioned_from_the_app() {
    let (env, _dir) = branded("").await;
    let browser = env.browser();
    let (_, home) = browser.text("/").await;

    let logo = attribute(&home, "class=\"brand-logo", "src").to_owned();
    assert!(logo.starts_with("/static/site/logo.png?v="), "{logo}");
    assert_eq!(attribute(&home, "rel=\"icon\"", "href"), logo);
    assert_eq!(attribute(&home, "rel=\"icon\"", "type"), "image/png");
    // Decorative: the name beside it names the link.
    assert_eq!(attribute(&home, "class=\"brand-logo", "alt"), "");
    let response = browser.get(&logo).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[header::CONTENT_TYPE], "image/png");
    assert_eq!(
        response.headers()[header::CACHE_CONTROL],
        "public, max-age=31536000, immutable"
    );
    assert_eq!(response.bytes().await.unwrap().as_ref(), PNG);

    // The accent: a stylesheet linked after ours, never a style attribute.
    let app_css = home.find("/static/css/app.css?v=").expect("our stylesheet");
    let accent = home
        .find("/static/site/accent.css?v=")
        .expect("the accent's stylesheet");
    assert!(app_css < accent, "the accent comes after app.css");
    assert!(!home.contains("style="), "{home}");
    let accent_url = attribute(&home, "/static/site/accent.css", "href").to_owned();
    let response = browser.get(&accent_url).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "text/css; charset=utf-8"
    );
    let css = response.text().await.unwrap();
    assert!(css.contains("--accent: #6b3fa0;"), "{css}");
    // The policy is unchanged: the files are this origin's.
    let policy = browser.get("/").await.headers()[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(policy.contains("style-src 'self';"), "{policy}");
    assert!(policy.contains("img-src 'self' data:;"), "{policy}");
    // Built-in names are not shadowed, and nothing else is under site/.
    assert_eq!(
        browser.get("/static/site/other.css").await.status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn a_stylesheet_and_logo_on_another_origin_are_allowed_by_the_policy_alone() {
    let env = TestEnv::start_with(|f| {
        f.merge(Toml::string(
            r#"
            [site]
            logo = "https://cdn.acme.example/brand/logo.svg"
            stylesheet = "https://styles.acme.example:8443/site.css?v=3"
            "#,
        ))
    })
    .await;
    let browser = env.browser();
    let response = browser.get("/").await;
    let policy = response.headers()[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        policy.contains("style-src 'self' https://styles.acme.example:8443;"),
        "{policy}"
    );
    assert!(
        policy.contains("img-src 'self' data: https://cdn.acme.example;"),
        "{policy}"
    );
    assert!(policy.contains("script-src 'self';"), "{policy}");
    let home = response.text().await.unwrap();
    assert_eq!(
        attribute(&home, "class=\"brand-logo", "src"),
        "https://cdn.acme.example/brand/logo.svg"
    );
    // After ours, as written (the `&` of a query would be escaped; there is none).
    let ours = home.find("/static/css/app.css").unwrap();
    let theirs = home
        .find("href=\"https://styles.acme.example:8443/site.css?v=3\"")
        .expect("the site's stylesheet is linked");
    assert!(ours < theirs);
}

#[tokio::test]
async fn the_privacy_page_says_what_is_kept_and_how_to_delete_it() {
    let (env, _dir) = branded("").await;
    let browser = env.browser();
    let response = browser.get("/privacy").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store");
    // Nothing about the visitor is needed to read it: no session is started.
    assert!(response.headers().get(header::SET_COOKIE).is_none());
    let html = response.text().await.unwrap();
    for expected in [
        // What is kept.
        "first and last name",
        "email address",
        "the id it knows you by",
        "for a day after it ends",
        "one cookie holding a random id",
        "Deletion requests",
        "No name, email or id",
        // Never tokens.
        "it is never stored or logged",
        // How long.
        "30 days after your last visit",
        "90 days after you signed in",
        // Devices and recent activity (audit.retention_days, 90 by default).
        "the kind of browser and system you signed in from",
        "Recent activity:</strong>",
        "Recent activity: 90 days.",
        // How to delete: the page, and Facebook's callback (the tests' app has Facebook).
        "href=\"/account/delete\"",
        "href=\"/account\"",
        "Apps and websites",
        // Who to write to.
        "href=\"mailto:privacy@acme.example\"",
    ] {
        assert!(html.contains(expected), "{expected:?} missing: {html}");
    }
    assert!(html.contains(&format!("What {ESCAPED_NAME} keeps about you")));
    // Every page links to it.
    let (_, home) = browser.text("/").await;
    assert_eq!(attribute(&home, ">Privacy</a>", "href"), "/privacy");

    // Like every page: HEAD answers, other methods get the 405 page.
    let head = browser
        .client
        .head(browser.url("/privacy"))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(head.text().await.unwrap(), "");
    for method in ["POST", "PUT", "DELETE"] {
        let response = browser.request(method, "/privacy").await;
        assert_eq!(
            response.status(),
            StatusCode::METHOD_NOT_ALLOWED,
            "{method}"
        );
        let allow = response.headers()[header::ALLOW]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(allow.contains("GET"), "{allow}");
        let page = response.text().await.unwrap();
        assert!(page.contains("Not allowed"), "{page}");
    }
}

#[tokio::test]
async fn without_a_contact_address_the_privacy_page_says_whom_to_ask() {
    let env = TestEnv::start_with(|f| f.merge(("site.name", "Acme Books"))).await;
    let (status, html) = env.browser().text("/privacy").await;
    assert_eq!(status, StatusCode::OK);
    assert!(!html.contains("mailto:"), "{html}");
    assert!(
        html.contains("Ask the people who run Acme Books about your data"),
        "{html}"
    );
}

#[tokio::test]
async fn a_privacy_policy_url_replaces_the_page() {
    let (env, _dir) =
        branded("privacy_policy_url = \"https://acme.example/legal/privacy?x=1&y=2\"\n").await;
    let browser = env.browser();
    let response = browser.get("/privacy").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        location(&response),
        "https://acme.example/legal/privacy?x=1&y=2"
    );
    let (_, home) = browser.text("/").await;
    assert_eq!(
        attribute(&home, ">Privacy</a>", "href"),
        "https://acme.example/legal/privacy?x=1&#38;y=2"
    );
    // `check` and the start-up lines name it as the one to register at Facebook.
    assert!(
        env.config.registrations().contains(
            &"facebook: Privacy Policy URL https://acme.example/legal/privacy?x=1&y=2".to_owned()
        ),
        "{:?}",
        env.config.registrations()
    );
    // Still not a page for other methods.
    let response = browser.post_form("/privacy", &[]).await;
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn problem_pages_keep_their_status_and_headers_with_the_brand() {
    let (env, _dir) = branded("").await;
    let browser = env.browser();
    let response = browser.post_form("/", &[]).await;
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert!(response.headers().contains_key(header::ALLOW));
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "text/html; charset=utf-8"
    );
    let html = response.text().await.unwrap();
    assert_branded("405", &html);
    assert!(html.contains("Error 405"), "{html}");
    // A 413 from the body limit, outside the router, is drawn the same way.
    let big = "x".repeat(env.config.limits.body_bytes + 1);
    let response = browser.post_form("/logout", &[("csrf_token", &big)]).await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_branded("413", &response.text().await.unwrap());
}

/// Mounted below `/auth`, a whole branded sign-in through the built-in development provider:
/// every URL of every page (the development provider's consent page included) stays below
/// `/auth`, and every picture, stylesheet, script and link there answers.
#[tokio::test]
async fn mounted_below_a_path_no_link_of_any_page_escapes_it() {
    let dir = tempfile::tempdir().unwrap();
    let logo = dir.path().join("logo.png");
    std::fs::write(&logo, PNG).unwrap();
    let css = dir.path().join("brand.css");
    std::fs::write(&css, "h1 { letter-spacing: 0; }").unwrap();
    let (logo, css) = (logo.display().to_string(), css.display().to_string());
    let env = TestEnv::start_with(move |f| {
        let public = f
            .find_value("server.public_url")
            .ok()
            .and_then(|v| v.into_string())
            .expect("the harness sets server.public_url");
        f.merge(("server.public_url", format!("{public}/auth")))
            // The built-in development provider: mounted below /auth with the rest.
            .merge(("providers.facebook.client_id", ""))
            .merge(("providers.facebook.client_secret", ""))
            .merge(("providers.facebook.issuer", ""))
            .merge(("dev_provider.enabled", true))
            .merge(("dev_provider.latency_ms", 400))
            .merge(("site.name", "Acme Books"))
            .merge(("site.logo", logo))
            .merge(("site.stylesheet", css))
            .merge(("site.accent_color", "#6b3fa0"))
            .merge(("site.contact_email", "privacy@acme.example"))
    })
    .await;
    let root = env.app_url.clone();
    let browser = common::Browser::new(&format!("{root}/auth"));
    // (page, attribute, URL resolved on the page's address)
    let mut seen: Vec<(String, String, String)> = Vec::new();
    // Checks a page's URLs and keeps the ones to fetch.
    let check = |what: &str, html: &str, seen: &mut Vec<(String, String, String)>| {
        let urls = loginwith::web::pages::link_targets(html);
        // At least the icon, the stylesheet and a form or link.
        assert!(urls.len() >= 3, "{what}: {urls:?}");
        for (attribute, url) in urls {
            if url.starts_with("mailto:") {
                continue;
            }
            // The development provider's pages link relatively (`../../../static/…`).
            let absolute = url::Url::parse(&format!("{root}{what}"))
                .unwrap()
                .join(&url)
                .unwrap();
            assert!(
                absolute.as_str() == format!("{root}/auth")
                    || absolute.as_str().starts_with(&format!("{root}/auth/")),
                "{what}: {url:?} leaves /auth ({absolute})"
            );
            seen.push((what.to_owned(), attribute, absolute.to_string()));
        }
    };

    for path in ["", "/privacy", "/error", "/no-such-page"] {
        let (_, html) = browser.text(path).await;
        check(&format!("/auth{path}"), &html, &mut seen);
    }
    // Signing in below /auth, through the development provider's consent page.
    let response = browser.get("/authorize/facebook").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let dialog = url::Url::parse(location(&response)).unwrap();
    assert_eq!(dialog.path(), "/auth/dev/facebook/dialog/oauth");
    let (status, consent) = browser.text(dialog.as_str()).await;
    assert_eq!(status, StatusCode::OK);
    check(
        &format!("{}?{}", dialog.path(), dialog.query().unwrap_or_default()),
        &consent,
        &mut seen,
    );
    let callback = browser.consent(&dialog, ADA, "allow").await;
    let response = browser.get(&callback).await;
    assert_eq!(location(&response), "/auth/preloader");
    let (status, preloader) = browser.text("/preloader").await;
    assert_eq!(status, StatusCode::OK, "still pending: {preloader}");
    check("/auth/preloader", &preloader, &mut seen);
    assert_eq!(browser.wait_status().await, "ok");
    let response = browser.get("/success").await;
    assert_eq!(location(&response), "/auth");
    for path in ["", "/account", "/account/delete"] {
        let (status, html) = browser.text(path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        check(&format!("/auth{path} signed in"), &html, &mut seen);
    }

    // Everything linked answers, below /auth: pictures, stylesheets, scripts, pages. Not
    // the sign-in buttons (each starts a sign-in), the forms (they post), nor the status
    // the preloader polls (404 once nothing is in progress, as it should).
    let mut fetched = 0;
    for (page, attribute, url) in &seen {
        if attribute == "action" || url.contains("/authorize/") || url.ends_with("/get-status") {
            continue;
        }
        let response = browser.get(url).await;
        assert!(
            response.status().is_success() || response.status().is_redirection(),
            "{page}: {url}: {}",
            response.status()
        );
        fetched += 1;
    }
    assert!(fetched > 40, "{fetched}");
    for file in [
        "/auth/static/site/logo.png?v=",
        "/auth/static/site/accent.css?v=",
        "/auth/static/site/style.css?v=",
        "/auth/static/css/app.css?v=",
        "/auth/static/js/fragment.js?v=",
        "/auth/static/js/preloader.js?v=",
    ] {
        assert!(
            seen.iter().any(|(_, _, url)| url.contains(file)),
            "{file} never linked"
        );
    }
}
