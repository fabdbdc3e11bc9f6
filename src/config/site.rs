//! `[site]`: the deployment's own brand (name, logo, accent colour, stylesheet) and privacy
//! contact. Checked once at start-up: files are read then (and never again), so a page never
//! waits on the disk and a missing or oversized file refuses start-up naming its key.

use std::{fmt, path::Path, sync::Arc};

use serde::{Deserialize, Serialize};
use url::Url;

use super::{Problem, invalid};

/// The name shown when `site.name` is not set.
pub const DEFAULT_NAME: &str = "loginwith";
/// The largest logo file read (a header logo; an SVG or a compressed picture is far smaller).
pub const LOGO_MAX_BYTES: usize = 256 * 1024;
/// The largest stylesheet file read.
pub const STYLESHEET_MAX_BYTES: usize = 256 * 1024;
/// The longest `site.name`, in characters: it is a heading on a phone.
const NAME_MAX_CHARS: usize = 80;
/// WCAG 2.x AA contrast for normal-size text: the buttons' white text on the accent colour.
pub const MIN_CONTRAST: f64 = 4.5;

/// `[site]` as written; every key empty means loginwith's own look.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct SiteConfig {
    /// Replaces "loginwith" in every page's title and header.
    pub name: String,
    /// An `https://` URL (`http://` in development) or a file path (read at start-up).
    pub logo: String,
    /// `#rrggbb`: primary buttons and the spinner.
    pub accent_color: String,
    /// An `https://` URL (`http://` in development) or a file path: linked after ours.
    pub stylesheet: String,
    /// Shown on the privacy page: where people write about their data.
    pub contact_email: String,
    /// The site's own privacy policy: `/privacy` then redirects there.
    pub privacy_policy_url: String,
}

/// A picture or stylesheet: somewhere on the web, or the bytes of a file read at start-up.
#[derive(Clone, PartialEq, Eq)]
pub enum Resource {
    /// Linked as it is; its origin joins the Content-Security-Policy when it is another's.
    Url(Url),
    /// Served by the app under a versioned URL.
    File(LoadedFile),
}

/// A file read at start-up, served by the app itself (`/static/site/...`).
#[derive(Clone, PartialEq, Eq)]
pub struct LoadedFile {
    /// The extension it is served under (`svg`, `png`, `css`, …): it chooses the type.
    pub extension: &'static str,
    /// The whole file, as read at start-up.
    pub bytes: Arc<[u8]>,
}

impl fmt::Debug for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Url(url) => write!(f, "Url({url})"),
            Self::File(file) => write!(f, "File(.{}, {} bytes)", file.extension, file.bytes.len()),
        }
    }
}

/// An sRGB colour, `#rrggbb`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rgb(pub [u8; 3]);

impl Rgb {
    /// The buttons' text.
    pub const WHITE: Self = Self([255, 255, 255]);
    /// What darker shades are mixed towards.
    pub const BLACK: Self = Self([0, 0, 0]);

    /// `#rrggbb` (either case); nothing else, so a typo never becomes another colour.
    pub fn parse(text: &str) -> Option<Self> {
        let hex = text.strip_prefix('#')?;
        if hex.len() != 6 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let channel = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).ok();
        Some(Self([channel(0)?, channel(2)?, channel(4)?]))
    }

    /// WCAG 2.x relative luminance (sRGB linearised, weighted 0.2126, 0.7152, 0.0722).
    pub fn relative_luminance(self) -> f64 {
        let linear = |c: u8| {
            let c = f64::from(c) / 255.0;
            if c <= 0.040_45 {
                c / 12.92
            } else {
                ((c + 0.055) / 1.055).powf(2.4)
            }
        };
        let [r, g, b] = self.0;
        0.2126 * linear(r) + 0.7152 * linear(g) + 0.0722 * linear(b)
    }

    /// WCAG contrast ratio, 1 to 21, whichever colour is lighter.
    pub fn contrast(self, other: Self) -> f64 {
        let (a, b) = (self.relative_luminance(), other.relative_luminance());
        let (light, dark) = if a >= b { (a, b) } else { (b, a) };
        (light + 0.05) / (dark + 0.05)
    }

    /// `weight` (0 to 1) of `other` mixed in: shades for hover (darker) and the spinner's
    /// track (lighter). Mixing with black only darkens, so a shade keeps at least the
    /// contrast with white that the colour itself has.
    pub fn mix(self, other: Self, weight: f64) -> Self {
        let mut out = [0; 3];
        for (i, channel) in out.iter_mut().enumerate() {
            let value = f64::from(self.0[i]) * (1.0 - weight) + f64::from(other.0[i]) * weight;
            // In 0..=255 by construction (a weighted mean of two channels).
            *channel = value.round().clamp(0.0, 255.0) as u8;
        }
        Self(out)
    }

    /// `#rrggbb`, lowercase.
    pub fn hex(self) -> String {
        let [r, g, b] = self.0;
        format!("#{r:02x}{g:02x}{b:02x}")
    }
}

/// `[site]` checked and loaded: what the pages are built from.
#[derive(Debug, Clone, PartialEq)]
pub struct Brand {
    /// `site.name` trimmed, or [`DEFAULT_NAME`].
    pub name: String,
    /// `site.logo`; `None`: loginwith's own.
    pub logo: Option<Resource>,
    /// `site.accent_color`, known to give white text at least [`MIN_CONTRAST`].
    pub accent: Option<Rgb>,
    /// `site.stylesheet`.
    pub stylesheet: Option<Resource>,
    /// `site.contact_email`.
    pub contact_email: Option<String>,
    /// `site.privacy_policy_url`: `/privacy` redirects there.
    pub privacy_policy_url: Option<Url>,
}

impl Default for Brand {
    fn default() -> Self {
        Self {
            name: DEFAULT_NAME.to_owned(),
            logo: None,
            accent: None,
            stylesheet: None,
            contact_email: None,
            privacy_policy_url: None,
        }
    }
}

impl SiteConfig {
    /// Checks every key and reads the files; every problem at once, each naming its key.
    /// `allow_http`: `http://` URLs are accepted (development).
    pub fn load(&self, allow_http: bool) -> Result<Brand, Vec<Problem>> {
        let mut problems = Vec::new();
        let mut brand = Brand::default();
        let name = self.name.trim();
        if !name.is_empty() {
            if name.chars().count() > NAME_MAX_CHARS {
                problems.push(invalid(
                    "site.name",
                    format!("must be at most {NAME_MAX_CHARS} characters"),
                ));
            } else if name.chars().any(char::is_control) {
                problems.push(invalid("site.name", "must not hold control characters"));
            } else {
                brand.name = name.to_owned();
            }
        }
        match resource("site.logo", &self.logo, allow_http, logo_file) {
            Ok(logo) => brand.logo = logo,
            Err(problem) => problems.push(problem),
        }
        match resource(
            "site.stylesheet",
            &self.stylesheet,
            allow_http,
            stylesheet_file,
        ) {
            Ok(stylesheet) => brand.stylesheet = stylesheet,
            Err(problem) => problems.push(problem),
        }
        let accent = self.accent_color.trim();
        if !accent.is_empty() {
            match Rgb::parse(accent) {
                None => problems.push(invalid(
                    "site.accent_color",
                    format!("must be a colour written #rrggbb (such as #0b5fcc), not {accent:?}"),
                )),
                Some(colour) => {
                    let ratio = colour.contrast(Rgb::WHITE);
                    if ratio < MIN_CONTRAST {
                        problems.push(invalid(
                            "site.accent_color",
                            format!(
                                "{accent} gives the buttons' white text a contrast of {}:1, below the {MIN_CONTRAST}:1 that WCAG AA asks for: choose a darker colour",
                                floor2(ratio)
                            ),
                        ));
                    } else {
                        brand.accent = Some(colour);
                    }
                }
            }
        }
        let email = self.contact_email.trim();
        if !email.is_empty() {
            if is_email(email) {
                brand.contact_email = Some(email.to_owned());
            } else {
                problems.push(invalid(
                    "site.contact_email",
                    format!("must be an email address such as privacy@example.com, not {email:?}"),
                ));
            }
        }
        let policy = self.privacy_policy_url.trim();
        if !policy.is_empty() {
            match web_url(policy, allow_http) {
                Ok(url) => brand.privacy_policy_url = Some(url),
                Err(reason) => problems.push(invalid("site.privacy_policy_url", reason)),
            }
        }
        if problems.is_empty() {
            Ok(brand)
        } else {
            Err(problems)
        }
    }
}

/// Two decimals, rounded down, so that a ratio just short of the minimum never prints as it.
fn floor2(ratio: f64) -> String {
    format!("{:.2}", (ratio * 100.0).floor() / 100.0)
}

/// Something with `@` between a local part and a domain, no spaces or controls: enough to
/// catch a slip (the address is shown and linked with `mailto:`, never mailed to).
fn is_email(text: &str) -> bool {
    text.len() <= 254
        && !text.chars().any(|c| c.is_whitespace() || c.is_control())
        && !text.contains(['<', '>', '"', '\'', '\\', ',', ';', '?', '&', '%'])
        && text.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && domain.contains('.')
                && !domain.contains('@')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        })
}

/// A URL people's browsers fetch: `https://` (also `http://` when allowed) with a host.
fn web_url(text: &str, allow_http: bool) -> Result<Url, String> {
    let url = Url::parse(text).map_err(|e| format!("{text:?} is not a URL: {e}"))?;
    let scheme_ok = url.scheme() == "https" || (allow_http && url.scheme() == "http");
    if !scheme_ok || url.host_str().is_none() {
        return Err(if allow_http {
            format!("must be an https:// or http:// URL, not {text:?}")
        } else {
            format!("must be an https:// URL in production, not {text:?}")
        });
    }
    Ok(url)
}

/// A value that is a URL (it starts with `http://` or `https://`) or a file path (anything
/// else, relative to the working directory); empty is none.
fn resource(
    key: &str,
    value: &str,
    allow_http: bool,
    read: fn(&Path) -> Result<LoadedFile, String>,
) -> Result<Option<Resource>, Problem> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    let lower = value.to_ascii_lowercase();
    if lower.starts_with("https://") || lower.starts_with("http://") {
        return web_url(value, allow_http)
            .map(|url| Some(Resource::Url(url)))
            .map_err(|reason| invalid(key, reason));
    }
    read(Path::new(value))
        .map(|file| Some(Resource::File(file)))
        .map_err(|reason| invalid(key, reason))
}

/// Reads at most `max` bytes (and one more, to tell a file that is too large).
fn read_limited(path: &Path, max: usize, what: &str) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let shown = super::problems::absolute(path);
    let file = std::fs::File::open(path).map_err(|e| format!("cannot read {shown}: {e}"))?;
    let mut bytes = Vec::new();
    file.take(max as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read {shown}: {e}"))?;
    if bytes.len() > max {
        return Err(format!(
            "{shown} is larger than {} KiB, the most a {what} may be",
            max / 1024
        ));
    }
    if bytes.is_empty() {
        return Err(format!("{shown} is empty"));
    }
    Ok(bytes)
}

/// A logo file: SVG, PNG, JPEG, GIF or WebP, its content what its name says (served with
/// that type, and browsers are told not to guess).
fn logo_file(path: &Path) -> Result<LoadedFile, String> {
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    let extension: &'static str = match extension.as_str() {
        "svg" => "svg",
        "png" => "png",
        "jpg" | "jpeg" => "jpg",
        "gif" => "gif",
        "webp" => "webp",
        _ => {
            return Err(format!(
                "{} must be an .svg, .png, .jpg, .gif or .webp file (or an https:// URL)",
                super::problems::absolute(path)
            ));
        }
    };
    let bytes = read_limited(path, LOGO_MAX_BYTES, "logo")?;
    let looks_right = match extension {
        "svg" => std::str::from_utf8(&bytes).is_ok_and(|text| text.contains("<svg")),
        "png" => bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
        "jpg" => bytes.starts_with(&[0xff, 0xd8, 0xff]),
        "gif" => bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a"),
        _ => bytes.len() > 12 && bytes.starts_with(b"RIFF") && &bytes[8..12] == b"WEBP",
    };
    if !looks_right {
        return Err(format!(
            "{} is not a .{extension} picture",
            super::problems::absolute(path)
        ));
    }
    Ok(LoadedFile {
        extension,
        bytes: bytes.into(),
    })
}

/// A stylesheet file: UTF-8 text.
fn stylesheet_file(path: &Path) -> Result<LoadedFile, String> {
    let bytes = read_limited(path, STYLESHEET_MAX_BYTES, "stylesheet")?;
    if std::str::from_utf8(&bytes).is_err() {
        return Err(format!(
            "{} is not UTF-8 text",
            super::problems::absolute(path)
        ));
    }
    Ok(LoadedFile {
        extension: "css",
        bytes: bytes.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contrast_follows_the_wcag_formula() {
        // Reference values from the WCAG definition: black on white is 21:1, a colour on
        // itself 1:1; #767676 is the classic lightest grey passing 4.5:1 on white.
        assert!((Rgb::BLACK.contrast(Rgb::WHITE) - 21.0).abs() < 1e-9);
        assert!((Rgb::WHITE.contrast(Rgb::WHITE) - 1.0).abs() < 1e-9);
        let grey = Rgb::parse("#767676").unwrap();
        assert!(
            grey.contrast(Rgb::WHITE) >= 4.5,
            "{}",
            grey.contrast(Rgb::WHITE)
        );
        let lighter = Rgb::parse("#777777").unwrap();
        assert!(lighter.contrast(Rgb::WHITE) < 4.5);
        // Facebook's blue: about 4.23:1, enough for the large text it is used with only.
        let facebook = Rgb::parse("#1877F2").unwrap();
        assert_eq!(floor2(facebook.contrast(Rgb::WHITE)), "4.23");
        assert_eq!(floor2(4.499_9), "4.49");
    }

    #[test]
    fn colours_are_six_hex_digits_only() {
        assert_eq!(Rgb::parse("#0b5FcC"), Some(Rgb([0x0b, 0x5f, 0xcc])));
        for bad in [
            "0b5fcc", "#0b5fc", "#0b5fccc", "#0b5fcg", "blue", "#fff", "", "#+b5fcc",
        ] {
            assert_eq!(Rgb::parse(bad), None, "{bad}");
        }
        assert_eq!(Rgb::parse("#0b5fcc").unwrap().hex(), "#0b5fcc");
    }

    #[test]
    fn darker_shades_keep_the_contrast_with_white() {
        let accent = Rgb::parse("#6b3fa0").unwrap();
        let hover = accent.mix(Rgb::BLACK, 0.12);
        assert!(hover.contrast(Rgb::WHITE) > accent.contrast(Rgb::WHITE));
        assert_eq!(accent.mix(Rgb::WHITE, 1.0), Rgb::WHITE);
        assert_eq!(accent.mix(Rgb::BLACK, 0.0), accent);
    }

    #[test]
    fn emails_are_checked_for_slips_only() {
        for good in ["privacy@example.com", "a.b+c@sub.example.org"] {
            assert!(is_email(good), "{good}");
        }
        for bad in [
            "privacy",
            "@example.com",
            "a@b",
            "a b@example.com",
            "a@example.com>",
            "a@.com",
        ] {
            assert!(!is_email(bad), "{bad}");
        }
    }
}
