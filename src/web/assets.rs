//! The files under `static/`, compiled into the binary, so that a binary copied anywhere
//! serves its stylesheet, script and images without a folder beside it.
//!
//! Each file has a strong `ETag` (the SHA-256 of its content) and a version (the first
//! characters of that hash). Pages link to `/static/<file>?v=<version>` through [`url`]; an
//! answer to the current version may be cached for a year (`immutable`), since a changed file
//! gets a new URL. Any other request for the file (no version, an old one) is still answered,
//! with an hour's caching, so a page cached before a deployment keeps its look.

use std::{borrow::Cow, sync::LazyLock};

use axum::{
    body::Bytes,
    extract::State,
    http::{HeaderMap, HeaderValue, StatusCode, Uri, header},
    response::{IntoResponse, Response},
};
use sha2::{Digest, Sha256};

use super::{AppError, AppState};

/// Where the files are served.
const PREFIX: &str = "/static/";

/// Every file under `static/`, by its path below [`PREFIX`]. `include_bytes!` rather than
/// rust-embed for this handful: no dependency, and the same bytes in debug and release builds
/// (rust-embed reads the folder from disk in debug builds unless told otherwise). A unit test
/// below fails when this list and the folder disagree.
const FILES: [(&str, &[u8]); 14] = [
    ("css/app.css", include_bytes!("../../static/css/app.css")),
    (
        "js/fragment.js",
        include_bytes!("../../static/js/fragment.js"),
    ),
    (
        "js/preloader.js",
        include_bytes!("../../static/js/preloader.js"),
    ),
    (
        "js/form-post.js",
        include_bytes!("../../static/js/form-post.js"),
    ),
    (
        "img/alert.svg",
        include_bytes!("../../static/img/alert.svg"),
    ),
    (
        "img/check.svg",
        include_bytes!("../../static/img/check.svg"),
    ),
    (
        "img/facebook-f.svg",
        include_bytes!("../../static/img/facebook-f.svg"),
    ),
    (
        "img/google-g.svg",
        include_bytes!("../../static/img/google-g.svg"),
    ),
    (
        "img/github-mark.svg",
        include_bytes!("../../static/img/github-mark.svg"),
    ),
    ("img/logo.svg", include_bytes!("../../static/img/logo.svg")),
    (
        "img/apple-mark.svg",
        include_bytes!("../../static/img/apple-mark.svg"),
    ),
    (
        "img/microsoft-mark.svg",
        include_bytes!("../../static/img/microsoft-mark.svg"),
    ),
    ("img/x-mark.svg", include_bytes!("../../static/img/x-mark.svg")),
    (
        "img/discord-mark.svg",
        include_bytes!("../../static/img/discord-mark.svg"),
    ),
];

/// Characters of the hash in a versioned URL: 48 bits tell one version of a file from the next.
const VERSION_LEN: usize = 12;

/// For the current version: a year, and no revalidation (the URL changes with the content).
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// For any other request: an hour, as before versioned URLs.
const SHORT: &str = "public, max-age=3600";

/// One file served under [`PREFIX`] with what is computed from it once: an embedded file
/// (at first use), or a file of `[site]` (at start-up, by [`super::chrome::Chrome`]).
#[derive(Debug)]
pub struct Asset {
    path: Cow<'static, str>,
    bytes: Bytes,
    content_type: HeaderValue,
    /// Hex SHA-256 of the content: the `ETag`'s opaque part.
    hash: String,
    /// `"<hash>"`.
    etag: HeaderValue,
    /// `/static/<path>?v=<version>`.
    url: String,
}

static ASSETS: LazyLock<Vec<Asset>> = LazyLock::new(|| {
    FILES
        .iter()
        .map(|&(path, bytes)| Asset::new(path, Bytes::from_static(bytes)))
        .collect()
});

impl Asset {
    pub fn new(path: impl Into<Cow<'static, str>>, bytes: Bytes) -> Self {
        let path = path.into();
        let hash = hex::encode(Sha256::digest(&bytes));
        let etag = HeaderValue::from_str(&format!("\"{hash}\""))
            .expect("hex digits in quotes are a valid header value");
        let url = format!("{PREFIX}{path}?v={}", &hash[..VERSION_LEN]);
        Self {
            content_type: content_type(&path),
            path,
            bytes,
            hash,
            etag,
            url,
        }
    }

    fn version(&self) -> &str {
        &self.hash[..VERSION_LEN]
    }

    /// Its path below `/static/` (`css/app.css`).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// `/static/<path>?v=<version>`, without the mount path.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The content (the tests read a generated file through it).
    #[cfg(test)]
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The `Content-Type` it is served with.
    pub fn content_type_str(&self) -> &'static str {
        content_type_name(&self.path)
    }
}

/// Declared UTF-8 for text, so that a browser never guesses.
fn content_type(path: &str) -> HeaderValue {
    HeaderValue::from_static(content_type_name(path))
}

fn content_type_name(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, extension)| extension) {
        Some("css") => "text/css; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("svg") => "image/svg+xml",
        // The pictures `site.logo` may be.
        Some("png") => "image/png",
        Some("jpg") => "image/jpeg",
        Some("gif") => "image/gif",
        Some("webp") => "image/webp",
        _ => "application/octet-stream",
    }
}

fn find(path: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|asset| asset.path == path)
}

/// The versioned URL of the file at `path` below `static/` (e.g. `css/app.css`), without the
/// mount path: templates use [`super::chrome::Chrome::asset`], which adds it
/// (`{{ chrome.asset("css/app.css") }}`). A name that is not embedded gets its plain URL, which
/// answers 404; a unit test checks every name the templates use.
pub fn url(path: &str) -> Cow<'static, str> {
    find(path).map_or_else(
        || Cow::Owned(format!("{PREFIX}{path}")),
        |asset| Cow::Borrowed(asset.url.as_str()),
    )
}

/// `GET /static/{*path}`: the file (embedded, or one of `[site]`), or 304 when the browser's
/// copy is current. The path is compared as sent (every name is plain ASCII), so nothing is
/// decoded or resolved.
pub async fn serve(State(app): State<AppState>, uri: Uri, headers: HeaderMap) -> Response {
    let path = uri.path().strip_prefix(PREFIX);
    let Some(asset) = path.and_then(|path| find(path).or_else(|| app.settings.chrome.file(path)))
    else {
        return AppError::NotFound.into_response();
    };
    let cache = HeaderValue::from_static(if is_current(uri.query(), asset) {
        IMMUTABLE
    } else {
        SHORT
    });
    // A 304 renews the cached copy, so it repeats the caching rule and the validator.
    if let Some(etag) = matching_etag(&headers, asset) {
        return (
            StatusCode::NOT_MODIFIED,
            [(header::ETAG, etag), (header::CACHE_CONTROL, cache)],
        )
            .into_response();
    }
    (
        [
            (header::CONTENT_TYPE, asset.content_type.clone()),
            (header::ETAG, asset.etag.clone()),
            (header::CACHE_CONTROL, cache),
        ],
        asset.bytes.clone(),
    )
        .into_response()
}

/// Whether the query names the file's current version (`v=<version>`).
fn is_current(query: Option<&str>, asset: &Asset) -> bool {
    query.is_some_and(|query| {
        query
            .split('&')
            .any(|pair| pair.strip_prefix("v=") == Some(asset.version()))
    })
}

/// The entity tag of `If-None-Match` that names this file's content, if one does: `*`, the
/// plain tag, or the tag of a compressed copy ([`tag_encoded`]). Compared weakly, as RFC 9110
/// asks for `If-None-Match`.
fn matching_etag(headers: &HeaderMap, asset: &Asset) -> Option<HeaderValue> {
    let tags = headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim);
    for tag in tags {
        if tag == "*" {
            return Some(asset.etag.clone());
        }
        let opaque = tag.trim_start_matches("W/");
        let Some(opaque) = opaque.strip_prefix('"').and_then(|t| t.strip_suffix('"')) else {
            continue;
        };
        let Some(rest) = opaque.strip_prefix(asset.hash.as_str()) else {
            continue;
        };
        if rest.is_empty() {
            return Some(asset.etag.clone());
        }
        let encoding = rest.strip_prefix('-').unwrap_or_default();
        if !encoding.is_empty() && encoding.bytes().all(|b| b.is_ascii_alphanumeric()) {
            // Checked above: hex, a dash and letters or digits, so a valid header value.
            return HeaderValue::from_str(&format!("\"{opaque}\"")).ok();
        }
    }
    None
}

/// A compressed answer is another representation of the file, and a strong `ETag` names one
/// representation only (RFC 9110, section 8.8.1): the compression layer leaves the tag as it
/// is, so this gives the compressed copy its own, `"<hash>-gzip"`. [`serve`] recognises both.
pub async fn tag_encoded(mut response: Response) -> Response {
    let headers = response.headers();
    let (Some(encoding), Some(etag)) = (
        headers.get(header::CONTENT_ENCODING),
        headers.get(header::ETAG),
    ) else {
        return response;
    };
    let tagged = match (encoding.to_str(), etag.to_str()) {
        (Ok(encoding), Ok(etag)) if etag.starts_with('"') && etag.ends_with('"') => {
            let opaque = etag.trim_matches('"');
            HeaderValue::from_str(&format!("\"{opaque}-{encoding}\"")).ok()
        }
        _ => None,
    };
    if let Some(tagged) = tagged {
        response.headers_mut().insert(header::ETAG, tagged);
    }
    response
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::*;

    fn files_under(dir: &Path) -> Vec<PathBuf> {
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                files.extend(files_under(&path));
            } else {
                files.push(path);
            }
        }
        files
    }

    fn root() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
    }

    #[test]
    fn every_file_under_static_is_embedded_and_nothing_else() {
        let dir = root().join("static");
        let mut on_disk: Vec<String> = files_under(&dir)
            .iter()
            .map(|p| p.strip_prefix(&dir).unwrap().to_str().unwrap().to_owned())
            .collect();
        on_disk.sort();
        let mut embedded: Vec<String> = FILES.iter().map(|(p, _)| (*p).to_owned()).collect();
        embedded.sort();
        assert_eq!(embedded, on_disk, "update FILES in src/web/assets.rs");
        for (path, bytes) in FILES {
            assert_eq!(std::fs::read(dir.join(path)).unwrap(), bytes, "{path}");
            assert_ne!(content_type(path), "application/octet-stream", "{path}");
        }
    }

    #[test]
    fn templates_link_static_files_only_through_the_helper() {
        // `chrome.asset("…")` on loginwith's pages, `dialog::asset("…")` on the development
        // provider's: both below the mount path.
        let call = "asset(\"";
        let mut names = Vec::new();
        for template in files_under(&root().join("templates")) {
            let text = std::fs::read_to_string(&template).unwrap();
            assert!(
                !text.contains("\"/static/"),
                "{}: a hand-typed /static/ URL",
                template.display()
            );
            for (start, _) in text.match_indices(call) {
                let rest = &text[start + call.len()..];
                names.push(rest[..rest.find('"').unwrap()].to_owned());
            }
        }
        assert!(names.len() >= 4, "{names:?}");
        for name in names {
            assert!(find(&name).is_some(), "templates name {name}, not embedded");
            assert!(url(&name).contains("?v="), "{name}");
        }
    }

    fn if_none_match(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(header::IF_NONE_MATCH, value.parse().unwrap());
        }
        headers
    }

    #[test]
    fn if_none_match_is_compared_weakly_and_knows_compressed_copies() {
        let asset = find("css/app.css").unwrap();
        let hash = &asset.hash;
        let plain = format!("\"{hash}\"");
        let gzip = format!("\"{hash}-gzip\"");
        for (values, expected) in [
            (vec![plain.as_str()], Some(plain.as_str())),
            (vec![&format!("W/{plain}")], Some(plain.as_str())),
            (vec!["\"other\", ", &gzip], Some(gzip.as_str())),
            (vec!["\"other\"", "*"], Some(plain.as_str())),
            (vec!["\"other\""], None),
            (vec![hash.as_str()], None),
            (vec![&format!("\"{hash}-\"")], None),
            (vec![&format!("\"{hash}-g\\\"z\"")], None),
            (vec![&format!("\"{}\"", &hash[..VERSION_LEN])], None),
        ] {
            let found = matching_etag(&if_none_match(&values), asset);
            assert_eq!(
                found.as_ref().map(|v| v.to_str().unwrap()),
                expected,
                "{values:?}"
            );
        }
    }

    #[test]
    fn only_the_current_version_is_current() {
        let asset = find("js/preloader.js").unwrap();
        let version = asset.version().to_owned();
        assert!(is_current(Some(&format!("v={version}")), asset));
        assert!(is_current(Some(&format!("x=1&v={version}")), asset));
        assert!(!is_current(None, asset));
        assert!(!is_current(Some("v=0123456789ab"), asset));
        assert!(!is_current(Some(&format!("v={version}0")), asset));
        assert!(!is_current(Some(&format!("w={version}")), asset));
    }

    #[tokio::test]
    async fn compressed_answers_get_a_tag_of_their_own() {
        let tagged = |encoding: Option<&str>, etag: Option<&str>| {
            let mut response = Response::new(axum::body::Body::empty());
            if let Some(encoding) = encoding {
                let value = encoding.parse().unwrap();
                response
                    .headers_mut()
                    .insert(header::CONTENT_ENCODING, value);
            }
            if let Some(etag) = etag {
                response
                    .headers_mut()
                    .insert(header::ETAG, etag.parse().unwrap());
            }
            async move {
                tag_encoded(response)
                    .await
                    .headers()
                    .get(header::ETAG)
                    .map(|v| v.to_str().unwrap().to_owned())
            }
        };
        assert_eq!(
            tagged(Some("gzip"), Some("\"abc\"")).await.as_deref(),
            Some("\"abc-gzip\"")
        );
        assert_eq!(
            tagged(None, Some("\"abc\"")).await.as_deref(),
            Some("\"abc\"")
        );
        assert_eq!(
            tagged(Some("gzip"), Some("W/\"abc\"")).await.as_deref(),
            Some("W/\"abc\"")
        );
        assert_eq!(tagged(Some("gzip"), None).await, None);
    }
}
