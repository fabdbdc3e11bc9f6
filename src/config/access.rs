//! `[access]`: who may sign in at all, by verified address. The first part of issue 21: the
//! organisation, team and group conditions and per-host rules are not here yet, and their
//! keys are refused as unknown (never accepted and ignored, which would let in people the
//! configuration means to keep out).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{Problem, gateway::entries, invalid};

/// The keys issue 21 names that this version does not enforce yet: refused with a reason of
/// their own, rather than only "unknown key".
pub const NOT_YET: [&str; 5] = [
    "github_orgs",
    "github_teams",
    "groups",
    "rules",
    "recheck_hours",
];

/// `[access]` as written. No condition set: anyone a provider vouches for may sign in.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AccessConfig {
    /// Exact addresses (ASCII case ignored); only a verified address matches.
    #[serde(deserialize_with = "entries")]
    pub emails: Vec<String>,
    /// Domains: a verified address `@` exactly this domain (no subdomains implied).
    #[serde(deserialize_with = "entries")]
    pub email_domains: Vec<String>,
    /// A file of addresses, one a line, `#` comments; re-read when it changes. Empty: none.
    pub emails_file: String,
    /// GitHub organisations (`acme`): a member of one may enter. Refused at start-up until
    /// its enforcement lands (see [`NOT_YET`]).
    #[serde(skip)]
    pub github_orgs: Vec<String>,
    /// GitHub teams (`acme/ops`). Refused at start-up for now, like `github_orgs`.
    #[serde(skip)]
    pub github_teams: Vec<String>,
}

impl AccessConfig {
    /// Whether any condition is set: without one, everybody is let in (as before `[access]`).
    pub fn restricts(&self) -> bool {
        !self.emails.is_empty() || !self.email_domains.is_empty() || self.emails_file().is_some()
    }

    /// Whether the GitHub provider must read organisations and teams at sign-in (and so ask
    /// for the `read:org` scope): only when a condition names one, never more scope than the
    /// rules need.
    pub fn reads_github_membership(&self) -> bool {
        !self.github_orgs.is_empty() || !self.github_teams.is_empty()
    }

    /// `emails_file` as a path, `None` when empty.
    pub fn emails_file(&self) -> Option<PathBuf> {
        let path = self.emails_file.trim();
        (!path.is_empty()).then(|| PathBuf::from(path))
    }

    /// The addresses of `emails`, lower-cased (ASCII), as they are compared.
    pub fn email_list(&self) -> Vec<String> {
        self.emails.iter().map(|e| e.to_ascii_lowercase()).collect()
    }

    /// The domains of `email_domains`, lower-cased (ASCII), as they are compared.
    pub fn domain_list(&self) -> Vec<String> {
        self.email_domains
            .iter()
            .map(|d| d.to_ascii_lowercase())
            .collect()
    }

    /// Every bad entry, named by its key; the emails file is read (start-up and `check`
    /// refuse a file that cannot be read or holds a line that is not an address).
    pub fn problems(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        for entry in &self.emails {
            if let Err(why) = address_problem(entry) {
                problems.push(invalid("access.emails", why));
            }
        }
        for entry in &self.email_domains {
            if let Err(why) = domain_problem(entry) {
                problems.push(invalid("access.email_domains", why));
            }
        }
        if let Some(path) = self.emails_file()
            && let Err(why) = read_emails_file(&path)
        {
            problems.push(invalid("access.emails_file", why));
        }
        problems
    }
}

/// Why `entry` is not one address (`local@domain`, exactly one `@`, nothing blank, no space or
/// control character), if it is not.
fn address_problem(entry: &str) -> Result<(), String> {
    let bad = |why: &str| {
        Err(format!(
            "{entry:?} {why}: each entry is one address, such as ada@example.com"
        ))
    };
    if entry.is_empty() {
        return bad("is empty");
    }
    if entry.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return bad("has a space or a control character");
    }
    match entry.split_once('@') {
        Some((local, domain)) if !local.is_empty() && !domain.is_empty() => {
            if domain.contains('@') {
                bad("has more than one @")
            } else {
                Ok(())
            }
        }
        Some(_) => bad("has nothing on one side of its @"),
        None => bad("has no @"),
    }
}

/// Why `entry` is not a domain name as an address ends in, if it is not. A leading dot is
/// refused rather than read as "and its subdomains": no subdomain is ever implied.
fn domain_problem(entry: &str) -> Result<(), String> {
    let bad = |why: &str| {
        Err(format!(
            "{entry:?} {why}: each entry is a domain as addresses end in, such as example.com (exactly that domain: list each subdomain too if wanted; an international name in its xn-- form)"
        ))
    };
    if entry.is_empty() {
        return bad("is empty");
    }
    if entry.contains('@') {
        return bad("has an @ (list whole addresses in access.emails)");
    }
    if entry.starts_with('.') {
        return bad("starts with a dot");
    }
    if entry.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return bad("has a space or a control character");
    }
    let lower = entry.to_ascii_lowercase();
    match url::Host::parse(&lower) {
        Ok(url::Host::Domain(parsed)) if parsed == lower && !lower.ends_with('.') => Ok(()),
        _ => bad("is not a domain name"),
    }
}

/// The addresses of an emails file, lower-cased (ASCII): one a line, blank lines and `#`
/// comments (whole-line or after an address) skipped, each line trimmed. A line that is not an
/// address is an error naming its number, so a typo never quietly shortens the list.
pub fn parse_emails_file(text: &str) -> Result<Vec<String>, String> {
    let mut emails = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or_default().trim();
        if line.is_empty() {
            continue;
        }
        address_problem(line).map_err(|why| format!("line {}: {why}", number + 1))?;
        emails.push(line.to_ascii_lowercase());
    }
    Ok(emails)
}

/// Reads and parses an emails file; the error says which file and why.
pub fn read_emails_file(path: &Path) -> Result<Vec<String>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", super::problems::absolute(path)))?;
    parse_emails_file(&text).map_err(|why| format!("{}, {why}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_one_address_or_one_domain() {
        assert!(address_problem("ada@example.com").is_ok());
        assert!(address_problem("Ada+tag@Example.COM").is_ok());
        for bad in [
            "",
            "ada",
            "@example.com",
            "ada@",
            "a@b@c",
            "ada @example.com",
            "ada@example.com\n",
        ] {
            assert!(address_problem(bad).is_err(), "{bad:?}");
        }
        assert!(domain_problem("example.com").is_ok());
        assert!(domain_problem("Example.COM").is_ok());
        assert!(domain_problem("localhost").is_ok());
        for bad in [
            "",
            "@example.com",
            "ada@example.com",
            ".example.com",
            "exa mple.com",
            "example.com.",
            "bücher.example",
            "a/b",
        ] {
            assert!(domain_problem(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn an_emails_file_skips_comments_and_blank_lines_and_refuses_a_bad_line() {
        let text = "# staff\n\nAda@Example.com  \n  grace@example.com # on leave\r\n";
        assert_eq!(
            parse_emails_file(text).unwrap(),
            ["ada@example.com", "grace@example.com"]
        );
        let error = parse_emails_file("ada@example.com\nnot an address\n").unwrap_err();
        assert!(error.starts_with("line 2: "), "{error}");
    }
}
