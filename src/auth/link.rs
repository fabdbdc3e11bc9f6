//! The `Link` header (RFC 8288), as far as paged APIs need it: which URL is `rel="next"`.
//!
//! No crate in the build parses it, and a split on `,` and `;` is wrong (a quoted parameter
//! may hold either), so this is a small parser of the header's grammar:
//!
//! ```text
//! Link       = #link-value
//! link-value = "<" URI-Reference ">" *( OWS ";" OWS link-param )
//! link-param = token BWS [ "=" BWS ( token / quoted-string ) ]
//! ```

use reqwest::header::{HeaderMap, LINK};
use url::Url;

/// One link of a `Link` header: its target as written, and its relation types lower-cased
/// (`rel="next last"` is two of them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LinkValue<'a> {
    pub(crate) target: &'a str,
    pub(crate) rels: Vec<String>,
}

/// Why a `Link` header could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum LinkError {
    #[error("Link header is not text")]
    NotText,
    #[error("Link header is malformed")]
    Malformed,
    #[error("Link header has more than one rel=\"next\"")]
    SeveralNext,
    #[error("Link header's next page is not a URL")]
    BadTarget,
    #[error("Link header's next page is on another origin")]
    ForeignOrigin,
}

/// Every link of one `Link` header value, in order.
pub(crate) fn parse(value: &str) -> Result<Vec<LinkValue<'_>>, LinkError> {
    let mut links = Vec::new();
    let mut rest = value;
    loop {
        // Empty list elements (`, ,`) are allowed by the list syntax and ignored.
        rest = rest.trim_start_matches([' ', '\t', ',']);
        if rest.is_empty() {
            return Ok(links);
        }
        rest = rest.strip_prefix('<').ok_or(LinkError::Malformed)?;
        let end = rest.find('>').ok_or(LinkError::Malformed)?;
        let target = &rest[..end];
        rest = &rest[end + 1..];
        let mut rel: Option<String> = None;
        loop {
            rest = ows(rest);
            if rest.is_empty() {
                break;
            }
            if let Some(after) = rest.strip_prefix(',') {
                rest = after;
                break;
            }
            rest = ows(rest.strip_prefix(';').ok_or(LinkError::Malformed)?);
            let (name, after) = token(rest).ok_or(LinkError::Malformed)?;
            rest = ows(after);
            let value = match rest.strip_prefix('=') {
                Some(after) => {
                    let after = ows(after);
                    let (value, after) = if after.starts_with('"') {
                        quoted_string(after)?
                    } else {
                        let (value, after) = token(after).ok_or(LinkError::Malformed)?;
                        (value.to_owned(), after)
                    };
                    rest = after;
                    value
                }
                None => String::new(),
            };
            // Only the first `rel` counts (RFC 8288, 3.3).
            if name.eq_ignore_ascii_case("rel") && rel.is_none() {
                rel = Some(value);
            }
        }
        let rels = rel
            .unwrap_or_default()
            .split_ascii_whitespace()
            .map(str::to_ascii_lowercase)
            .collect();
        links.push(LinkValue { target, rels });
    }
}

/// The `rel="next"` page of an answer to `current`, resolved against it, if there is one. It
/// must stay on `origin`: a next page elsewhere would receive the access token.
pub(crate) fn next_page(
    headers: &HeaderMap,
    current: &Url,
    origin: &url::Origin,
) -> Result<Option<Url>, LinkError> {
    let mut next = None;
    for value in headers.get_all(LINK) {
        let value = value.to_str().map_err(|_| LinkError::NotText)?;
        for link in parse(value)? {
            if !link.rels.iter().any(|rel| rel == "next") {
                continue;
            }
            if next.is_some() {
                return Err(LinkError::SeveralNext);
            }
            next = Some(link.target);
        }
    }
    let Some(target) = next else {
        return Ok(None);
    };
    let url = current.join(target).map_err(|_| LinkError::BadTarget)?;
    if url.origin() != *origin {
        return Err(LinkError::ForeignOrigin);
    }
    Ok(Some(url))
}

/// Optional whitespace.
fn ows(text: &str) -> &str {
    text.trim_start_matches([' ', '\t'])
}

/// A token (RFC 9110's `tchar`s, at least one) and what follows it.
fn token(text: &str) -> Option<(&str, &str)> {
    let end = text.find(|c: char| !is_tchar(c)).unwrap_or(text.len());
    (end > 0).then(|| text.split_at(end))
}

fn is_tchar(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

/// A quoted string (which starts `text`) unescaped, and what follows it.
fn quoted_string(text: &str) -> Result<(String, &str), LinkError> {
    let mut value = String::new();
    let mut chars = text.char_indices().skip(1);
    while let Some((at, c)) = chars.next() {
        match c {
            '"' => return Ok((value, &text[at + 1..])),
            '\\' => {
                let (_, escaped) = chars.next().ok_or(LinkError::Malformed)?;
                value.push(escaped);
            }
            c => value.push(c),
        }
    }
    Err(LinkError::Malformed)
}

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderValue;

    use super::*;

    fn rels(value: &str) -> Vec<(&str, Vec<String>)> {
        parse(value)
            .unwrap()
            .into_iter()
            .map(|link| (link.target, link.rels))
            .collect()
    }

    #[test]
    fn githubs_header_is_read() {
        let value = r#"<https://api.github.com/user/teams?per_page=100&page=2>; rel="next", <https://api.github.com/user/teams?per_page=100&page=3>; rel="last""#;
        assert_eq!(
            rels(value),
            [
                (
                    "https://api.github.com/user/teams?per_page=100&page=2",
                    vec!["next".to_owned()]
                ),
                (
                    "https://api.github.com/user/teams?per_page=100&page=3",
                    vec!["last".to_owned()]
                ),
            ]
        );
    }

    #[test]
    fn the_grammar_not_a_split_on_commas() {
        // A comma and a semicolon inside a quoted parameter, a comma inside the target, a
        // bare token, several relations in one, case, escapes, extra whitespace, empty
        // elements, a parameter without a value, and a second `rel` that does not count.
        let value = concat!(
            r#" , <https://x.test/a,b>;title="one, two; three" ;REL=Next , "#,
            r#"<https://x.test/c>; rel="prev  LAST"; rel=next,"#,
            r#"<https://x.test/d>;crossorigin;rel="a\"b""#,
        );
        assert_eq!(
            rels(value),
            [
                ("https://x.test/a,b", vec!["next".to_owned()]),
                (
                    "https://x.test/c",
                    vec!["prev".to_owned(), "last".to_owned()]
                ),
                ("https://x.test/d", vec!["a\"b".to_owned()]),
            ]
        );
        assert_eq!(rels(""), []);
        assert_eq!(rels("<https://x.test/>"), [("https://x.test/", vec![])]);
    }

    #[test]
    fn malformed_headers_are_refused() {
        for bad in [
            "https://x.test/; rel=next",
            "<https://x.test/; rel=next",
            "<https://x.test/> rel=next",
            "<https://x.test/>; rel=\"next",
            "<https://x.test/>; rel=",
            "<https://x.test/>; =next",
            "<https://x.test/>; rel=\"next\" junk",
            "<https://x.test/>; rel=\"a\\",
        ] {
            assert_eq!(parse(bad), Err(LinkError::Malformed), "{bad}");
        }
    }

    fn headers(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(LINK, HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    #[test]
    fn the_next_page_stays_on_the_apis_origin() {
        let current = Url::parse("https://api.github.com/user/teams?per_page=100").unwrap();
        let origin = current.origin();
        let next = |values: &[&str]| next_page(&headers(values), &current, &origin);
        assert_eq!(next(&[]), Ok(None));
        assert_eq!(
            next(&[r#"<https://api.github.com/user/teams?page=3>; rel="last""#]),
            Ok(None)
        );
        assert_eq!(
            next(&[
                r#"<https://api.github.com/user/teams?page=1>; rel="prev""#,
                r#"<https://api.github.com/user/teams?page=3>; rel="next""#,
            ]),
            Ok(Some(
                Url::parse("https://api.github.com/user/teams?page=3").unwrap()
            ))
        );
        // A relative target is resolved against the page it came with.
        assert_eq!(
            next(&[r#"</user/teams?page=2>; rel=next"#]),
            Ok(Some(
                Url::parse("https://api.github.com/user/teams?page=2").unwrap()
            ))
        );
        for foreign in [
            "<https://evil.example/user/teams?page=2>; rel=next",
            "<http://api.github.com/user/teams?page=2>; rel=next",
            "<https://api.github.com:8443/user/teams?page=2>; rel=next",
            "<//evil.example/user/teams?page=2>; rel=next",
            "<https://api.github.com.evil.example/user/teams>; rel=next",
        ] {
            assert_eq!(next(&[foreign]), Err(LinkError::ForeignOrigin), "{foreign}");
        }
        assert_eq!(
            next(&[
                "<https://api.github.com/a>; rel=next",
                "<https://api.github.com/b>; rel=next",
            ]),
            Err(LinkError::SeveralNext)
        );
        assert_eq!(
            next(&["<http://[::1>; rel=next"]),
            Err(LinkError::BadTarget)
        );
        assert_eq!(
            next(&["<https://api.github.com/a>; rel=next, broken"]),
            Err(LinkError::Malformed)
        );
    }
}
