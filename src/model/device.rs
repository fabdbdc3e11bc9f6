//! What a sign-in was made from, in a few words: "Firefox on Linux", read from the browser's
//! User-Agent with Woothee's rule set. Only the label is kept, never the header. Shared by the
//! pages (a sign-in's session) and the exchange (a refused sign-in's activity), which read it
//! only when they keep it.

/// The longest User-Agent read: a longer one is not a browser's.
pub const MAX_USER_AGENT: usize = 512;

/// A request's User-Agent as it is carried to where the label is made: at most
/// [`MAX_USER_AGENT`] bytes of text, else nothing.
pub fn user_agent(header: Option<&[u8]>) -> Option<String> {
    let header = header?;
    if header.len() > MAX_USER_AGENT {
        return None;
    }
    std::str::from_utf8(header).ok().map(str::to_owned)
}

/// "Firefox on Linux", "Safari on iPhone", "Chrome": the browser and, when known, its system;
/// `None` when the User-Agent names neither (none, a script, garbage, too long).
pub fn label(user_agent: Option<&str>) -> Option<String> {
    let agent = user_agent?;
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
        label(user_agent(Some(agent.as_bytes())).as_deref())
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
        assert_eq!(label(None), None);
        assert_eq!(user_agent(Some(b"\xff\xfe")), None, "not text");
    }
}
