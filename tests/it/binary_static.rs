//! The binary alone, run from an empty folder, serves every file its pages link to: from
//! its own bytes, with a strong `ETag`, 304 for a current copy, and a year's caching for the
//! versioned URLs the pages use.

use loginwith_testkit as common;

use common::{ADA, Browser, binary::Running};
use reqwest::{Response, StatusCode, header};
use sha2::{Digest, Sha256};

/// Every `/static/` URL in `page`'s `href` and `src` attributes.
fn static_urls(page: &str) -> Vec<String> {
    let mut urls = Vec::new();
    for attribute in ["href=\"", "src=\""] {
        for (start, _) in page.match_indices(attribute) {
            let rest = &page[start + attribute.len()..];
            let url = &rest[..rest.find('"').unwrap()];
            if url.starts_with("/static/") {
                urls.push(url.to_owned());
            }
        }
    }
    urls
}

fn text(response: &Response, name: header::HeaderName) -> String {
    response
        .headers()
        .get(&name)
        .unwrap_or_else(|| panic!("{} has no {name}", response.url()))
        .to_str()
        .unwrap()
        .to_owned()
}

fn expected_type(path: &str) -> &'static str {
    match path.rsplit_once('.').unwrap().1 {
        "css" => "text/css; charset=utf-8",
        "js" => "text/javascript; charset=utf-8",
        "svg" => "image/svg+xml",
        other => panic!("a file of type {other}"),
    }
}

/// The home page, the development provider's consent page and the preloader (its provider
/// is slow enough that the sign-in stays pending): between them every file the app uses.
async fn linked_files(browser: &Browser) -> Vec<String> {
    let (_, home) = browser.text("/").await;
    let dialog = browser.start_login().await;
    let (_, consent) = browser.text(dialog.as_str()).await;
    let callback = browser.consent(&dialog, ADA, "allow").await;
    browser.get(&callback).await;
    let (status, preloader) = browser.text("/preloader").await;
    assert_eq!(status, StatusCode::OK, "{preloader}");
    let mut urls: Vec<String> = [home, consent, preloader]
        .iter()
        .flat_map(|page| static_urls(page))
        .collect();
    urls.sort();
    urls.dedup();
    urls
}

#[tokio::test]
async fn the_binary_alone_serves_every_linked_file_with_validators_and_caching() {
    let app = Running::development(|command| {
        command.env("LOGINWITH_DEV_PROVIDER__LATENCY_MS", "60000");
    })
    .await;
    let browser = Browser::new(&app.url);
    let urls = linked_files(&browser).await;
    for kind in [".css?v=", ".js?v=", ".svg?v="] {
        assert!(urls.iter().any(|u| u.contains(kind)), "{kind}: {urls:?}");
    }
    let source = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    for url in &urls {
        let (path, version) = url.split_once("?v=").expect("a versioned URL");
        let response = browser.get(url).await;
        assert_eq!(response.status(), StatusCode::OK, "{url}");
        assert_eq!(text(&response, header::CONTENT_TYPE), expected_type(path));
        assert_eq!(
            text(&response, header::CACHE_CONTROL),
            "public, max-age=31536000, immutable",
            "{url}"
        );
        let etag = text(&response, header::ETAG);
        let body = response.bytes().await.unwrap();
        let file = source.join(path.trim_start_matches('/'));
        assert_eq!(body, std::fs::read(&file).unwrap(), "{url}");
        let hash = hex::encode(Sha256::digest(&body));
        assert_eq!(
            etag,
            format!("\"{hash}\""),
            "{url}: a strong tag of the content"
        );
        assert!(hash.starts_with(version), "{url}");

        let again = revalidate(&browser, url, &etag).await;
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED, "{url}");
        assert_eq!(text(&again, header::ETAG), etag);
        assert_eq!(
            text(&again, header::CACHE_CONTROL),
            "public, max-age=31536000, immutable"
        );
        assert!(again.bytes().await.unwrap().is_empty());

        // Without the version, or with an old one: the same file, cached for an hour only.
        for other in [path.to_owned(), format!("{path}?v=000000000000")] {
            let response = browser.get(&other).await;
            assert_eq!(response.status(), StatusCode::OK, "{other}");
            assert_eq!(text(&response, header::ETAG), etag, "{other}");
            let cache = text(&response, header::CACHE_CONTROL);
            assert_eq!(cache, "public, max-age=3600", "{other}");
            let again = revalidate(&browser, &other, &etag).await;
            assert_eq!(again.status(), StatusCode::NOT_MODIFIED, "{other}");
            assert_eq!(text(&again, header::CACHE_CONTROL), "public, max-age=3600");
        }
        let changed = revalidate(&browser, url, "\"an-older-version\"").await;
        assert_eq!(changed.status(), StatusCode::OK, "{url}");
    }
}

async fn revalidate(browser: &Browser, url: &str, etag: &str) -> Response {
    browser
        .client
        .get(browser.url(url))
        .header(header::IF_NONE_MATCH, etag)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_compressed_copy_has_a_tag_of_its_own_that_revalidates() {
    let app = Running::development(|_| {}).await;
    let browser = Browser::new(&app.url);
    let (_, home) = browser.text("/").await;
    let css = static_urls(&home)
        .into_iter()
        .find(|url| url.contains(".css?v="))
        .expect("the home page links its stylesheet");
    let plain = text(&browser.get(&css).await, header::ETAG);
    let gzipped = browser
        .client
        .get(browser.url(&css))
        .header(header::ACCEPT_ENCODING, "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(text(&gzipped, header::CONTENT_ENCODING), "gzip");
    let tag = text(&gzipped, header::ETAG);
    assert_eq!(tag, format!("{}-gzip\"", plain.trim_end_matches('"')));
    let again = browser
        .client
        .get(browser.url(&css))
        .header(header::ACCEPT_ENCODING, "gzip")
        .header(header::IF_NONE_MATCH, &tag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(text(&again, header::ETAG), tag);
}

#[tokio::test]
async fn missing_files_and_other_methods_under_static_get_the_pages() {
    let app = Running::development(|_| {}).await;
    let browser = Browser::new(&app.url);
    for path in ["/static/nope.css", "/static/css/", "/static/css/app.css/x"] {
        let response = browser.get(path).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        assert_eq!(text(&response, header::CACHE_CONTROL), "no-store", "{path}");
        assert!(response.text().await.unwrap().contains("Page not found"));
    }
    let response = browser
        .client
        .post(browser.url("/static/css/app.css"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(text(&response, header::ALLOW), "GET,HEAD");
    assert_eq!(text(&response, header::CACHE_CONTROL), "no-store");
    let response = browser
        .client
        .head(browser.url("/static/js/preloader.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().contains_key(header::ETAG));
}
