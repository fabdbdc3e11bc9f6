//! The page chrome: what every page shares (the site's name, logo and stylesheets, the
//! footer's privacy link, and the mount path every link starts with), built once at start-up
//! from `[site]` and `server.public_url` and handed to every template (`templates/base.html`).

use axum::{body::Bytes, http::HeaderValue};
use url::Url;

use super::assets::{self, Asset};
use crate::config::{Brand, Resource, Rgb};

/// Where the files of `[site]` are served, below `/static/`.
const SITE_DIR: &str = "site/";

/// One value for every page (see the module docs).
#[derive(Debug)]
pub struct Chrome {
    /// The path loginwith is mounted at, without the trailing slash (`""` or `"/auth"`).
    base: String,
    name: String,
    /// The header's picture and the tab's icon: a full URL, ready for `src`.
    logo_src: String,
    /// The icon's type, for `<link rel="icon">` (empty for a URL: the browser finds out).
    logo_type: &'static str,
    /// The site's own logo rather than loginwith's.
    custom_logo: bool,
    /// Linked after `app.css`, in order: the accent's generated stylesheet, then
    /// `site.stylesheet`.
    stylesheets: Vec<String>,
    /// The footer's link: `{base}/privacy`, or `site.privacy_policy_url`.
    privacy_href: String,
    /// `site.privacy_policy_url`: `/privacy` redirects there.
    privacy_policy_url: Option<Url>,
    contact_email: Option<String>,
    /// The files of `[site]` this app serves (`/static/site/...`), versioned like the rest.
    files: Vec<Asset>,
    /// The Content-Security-Policy: strict, with the origins of `site.logo` and
    /// `site.stylesheet` added where they are URLs on another origin.
    csp: HeaderValue,
}

/// No inline script or style, nothing from other origins but what `[site]` names, never
/// framed. `{img}` and `{style}` are the extra sources (each with a leading space, or empty).
fn content_security_policy(img: &str, style: &str) -> String {
    format!(
        "default-src 'self'; script-src 'self'; style-src 'self'{style}; \
         img-src 'self' data:{img}; connect-src 'self'; form-action 'self'; base-uri 'none'; \
         object-src 'none'; frame-ancestors 'none'"
    )
}

impl Chrome {
    /// From the checked `[site]` and the mount path (`WebSettings::base_path`).
    pub fn new(brand: &Brand, base_path: &str) -> Self {
        let base = base_path.trim_end_matches('/').to_owned();
        let mut files = Vec::new();
        let mut img_sources = String::new();
        let mut style_sources = String::new();
        let public = |file: Asset, files: &mut Vec<Asset>| {
            let url = format!("{base}{}", file.url());
            files.push(file);
            url
        };

        let (logo_src, logo_type, custom_logo) = match &brand.logo {
            None => (
                format!("{base}{}", assets::url("img/logo.svg")),
                "image/svg+xml",
                false,
            ),
            Some(Resource::Url(url)) => {
                img_sources.push(' ');
                img_sources.push_str(&url.origin().ascii_serialization());
                (url.to_string(), "", true)
            }
            Some(Resource::File(file)) => {
                let asset = Asset::new(
                    format!("{SITE_DIR}logo.{}", file.extension),
                    Bytes::copy_from_slice(&file.bytes),
                );
                let kind = asset.content_type_str();
                (public(asset, &mut files), kind, true)
            }
        };

        let mut stylesheets = Vec::new();
        if let Some(accent) = brand.accent {
            let css = accent_stylesheet(accent);
            let asset = Asset::new(format!("{SITE_DIR}accent.css"), Bytes::from(css));
            stylesheets.push(public(asset, &mut files));
        }
        match &brand.stylesheet {
            None => {}
            Some(Resource::Url(url)) => {
                style_sources.push(' ');
                style_sources.push_str(&url.origin().ascii_serialization());
                stylesheets.push(url.to_string());
            }
            Some(Resource::File(file)) => {
                let asset = Asset::new(
                    format!("{SITE_DIR}style.css"),
                    Bytes::copy_from_slice(&file.bytes),
                );
                stylesheets.push(public(asset, &mut files));
            }
        }

        let privacy_href = brand
            .privacy_policy_url
            .as_ref()
            .map_or_else(|| format!("{base}/privacy"), Url::to_string);
        // Origins serialise as ASCII (IDNA, no spaces or controls), so this is a valid header
        // value; were it not, the pages would get a policy stricter than needed, never a
        // looser one.
        let csp = HeaderValue::from_str(&content_security_policy(&img_sources, &style_sources))
            .unwrap_or(HeaderValue::from_static(
                "default-src 'self'; form-action 'self'; base-uri 'none'; object-src 'none'; frame-ancestors 'none'",
            ));
        Self {
            name: brand.name.clone(),
            logo_src,
            logo_type,
            custom_logo,
            stylesheets,
            privacy_href,
            privacy_policy_url: brand.privacy_policy_url.clone(),
            contact_email: brand.contact_email.clone(),
            files,
            csp,
            base,
        }
    }

    /// The site's name, for titles, the header and sentences (escaped by the templates).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A path of this app as a link: `href("/account")` is `{base}/account`; the root is
    /// `{base}` itself when mounted below a path, `/` otherwise (axum nests a router's `/` at
    /// `{base}`; `{base}/` is redirected there). Redirects use it too (`WebSettings::path`).
    pub fn href(&self, path: &str) -> String {
        if path == "/" && !self.base.is_empty() {
            return self.base.clone();
        }
        format!("{}{path}", self.base)
    }

    /// The versioned URL of a file under `static/` (`asset("css/app.css")`), below the
    /// mount path. Templates link static files only through this.
    pub fn asset(&self, path: &str) -> String {
        format!("{}{}", self.base, assets::url(path))
    }

    pub fn logo_src(&self) -> &str {
        &self.logo_src
    }

    pub fn logo_type(&self) -> &str {
        self.logo_type
    }

    pub fn custom_logo(&self) -> bool {
        self.custom_logo
    }

    pub fn stylesheets(&self) -> &[String] {
        &self.stylesheets
    }

    pub fn privacy_href(&self) -> &str {
        &self.privacy_href
    }

    pub fn privacy_policy_url(&self) -> Option<&Url> {
        self.privacy_policy_url.as_ref()
    }

    pub fn contact_email(&self) -> Option<&str> {
        self.contact_email.as_deref()
    }

    /// A file of `[site]` served under `/static/`, by its path there (`site/logo.png`).
    pub(super) fn file(&self, path: &str) -> Option<&Asset> {
        self.files.iter().find(|file| file.path() == path)
    }

    pub fn content_security_policy(&self) -> HeaderValue {
        self.csp.clone()
    }
}

/// `site.accent_color` as CSS custom properties, overriding those of `app.css`. A generated
/// file rather than a `style` attribute: the Content-Security-Policy allows no inline style.
fn accent_stylesheet(accent: Rgb) -> String {
    format!(
        "/* site.accent_color, generated at start-up. */\n:root {{\n  --accent: {};\n  --accent-hover: {};\n  --accent-active: {};\n  --accent-soft: {};\n}}\n",
        accent.hex(),
        accent.mix(Rgb::BLACK, 0.08).hex(),
        accent.mix(Rgb::BLACK, 0.16).hex(),
        accent.mix(Rgb::WHITE, 0.82).hex(),
    )
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::config::LoadedFile;

    #[test]
    fn links_start_with_the_mount_path() {
        let chrome = Chrome::new(&Brand::default(), "/auth/");
        assert_eq!(chrome.href("/"), "/auth");
        assert_eq!(chrome.href("/account"), "/auth/account");
        assert!(
            chrome
                .asset("css/app.css")
                .starts_with("/auth/static/css/app.css?v=")
        );
        assert!(
            chrome
                .logo_src()
                .starts_with("/auth/static/img/logo.svg?v=")
        );
        assert_eq!(chrome.privacy_href(), "/auth/privacy");
        let root = Chrome::new(&Brand::default(), "");
        assert_eq!(root.href("/"), "/");
        assert_eq!(root.href("/account"), "/account");
    }

    #[test]
    fn site_files_are_served_versioned_and_other_origins_enter_the_policy() {
        let brand = Brand {
            name: "Acme".to_owned(),
            logo: Some(Resource::File(LoadedFile {
                extension: "png",
                bytes: Arc::from(&b"\x89PNG\r\n\x1a\nrest"[..]),
            })),
            accent: Some(Rgb([0x6b, 0x3f, 0xa0])),
            stylesheet: Some(Resource::Url(
                Url::parse("https://cdn.example.com/brand/site.css").unwrap(),
            )),
            ..Brand::default()
        };
        let chrome = Chrome::new(&brand, "/auth");
        assert!(
            chrome
                .logo_src()
                .starts_with("/auth/static/site/logo.png?v=")
        );
        assert_eq!(chrome.logo_type(), "image/png");
        assert!(chrome.file("site/logo.png").is_some());
        assert!(chrome.file("site/accent.css").is_some());
        assert_eq!(chrome.stylesheets().len(), 2);
        assert!(chrome.stylesheets()[0].starts_with("/auth/static/site/accent.css?v="));
        assert_eq!(
            chrome.stylesheets()[1],
            "https://cdn.example.com/brand/site.css"
        );
        let csp = chrome.content_security_policy();
        let csp = csp.to_str().unwrap();
        assert!(
            csp.contains("style-src 'self' https://cdn.example.com;"),
            "{csp}"
        );
        assert!(csp.contains("img-src 'self' data:;"), "{csp}");
        let css = std::str::from_utf8(chrome.file("site/accent.css").unwrap().bytes()).unwrap();
        assert!(css.contains("--accent: #6b3fa0;"), "{css}");

        let plain = Chrome::new(&Brand::default(), "");
        let csp = plain.content_security_policy();
        assert_eq!(
            csp.to_str().unwrap(),
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; form-action 'self'; base-uri 'none'; object-src 'none'; \
             frame-ancestors 'none'"
        );
        assert!(plain.stylesheets().is_empty());
    }
}
