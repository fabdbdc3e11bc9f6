//! What a sign-in was made from, in a few words: "Firefox on Linux", read from the browser's
//! User-Agent with Woothee's rule set. Only the label is kept, never the header.

use axum::http::{HeaderMap, header};

/// The longest User-Agent read: a longer one is not a browser's.
const MAX_USER_AGENT: usize = 512;

/// "Firefox on Linux", "Safari on iPhone", "Chrome": the browser and, when known, its system;
/// `None` when the request names neither (no header, a script, garbage).
pub fn label(headers: &HeaderMap) -> Option<String> {
    let agent = headers.get(header::USER_AGENT)?.to_str().ok()?;
    if agent.len() > MAX_USER_AGENT {
        return None;
    }
    let parsed = woothee::parser::Parser::new().parse(agent)?;
    let known = |value: &str| !value.is_empty() && value != woothee::woothee::VALUE_UNKNOWN;
    let browser = known(parsed.name).then_some(parsed.name);
    let system = known(parsed.os).then_some(parsed.os);
    match (browser, system) {
        (Some(browser), Some(system)) => Some(format!("{browser} on {system}")),
        (Some(one), None) | (None, Some(one)) => Some(one.to_owned()),
        (None, None) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(agent: &str) -> Option<String> {
        let mut headers = HeaderMap::new();
        headers.insert(header::USER_AGENT, agent.parse().expect("a header value"));
        label(&headers)
    }

    #[test]
    fn browsers_are_named_with_their_system() {
        assert_eq!(
            of("Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0").as_deref(),
            Some("Firefox on Linux")
        );
        assert_eq!(
            of("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36").as_deref(),
            Some("Chrome on Windows 10")
        );
        assert_eq!(
            of("Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1").as_deref(),
            Some("Safari on iPhone")
        );
    }

    #[test]
    fn what_is_no_browser_has_no_label() {
        assert_eq!(of(""), None);
        assert_eq!(of("garbage <script>"), None);
        assert_eq!(of(&"Mozilla/5.0 ".repeat(100)), None);
        assert_eq!(label(&HeaderMap::new()), None);
    }
}
