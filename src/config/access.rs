//! `[access]`: who may sign in at all, and `[[access.rules]]`: who may reach one host or path
//! behind `/auth/check` and the library. Conditions are verified addresses, their domains, an
//! emails file, GitHub organisations and teams, and an OpenID Connect issuer's groups.
//!
//! Longer than the 400 lines a file here aims for (by a few): `[access]`, `[[access.rules]]`
//! and the emails file are one section with its checks.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize, de::IgnoredAny};

use super::{Problem, gateway::AllowedHost, gateway::entries, invalid};

/// The longest group value a condition may name (the issuer's values are bounded alike).
const MAX_GROUP_LEN: usize = 200;
/// The most rules: each check walks them in order.
const MAX_RULES: usize = 1000;

/// The conditions, as written in `[access]` and in each `[[access.rules]]`. A person matching
/// ANY set condition is let in; none set lets everyone in.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct AccessConditions {
    /// Exact addresses (ASCII case ignored); only a verified address matches.
    #[serde(default, deserialize_with = "entries")]
    pub emails: Vec<String>,
    /// Domains: a verified address `@` exactly this domain (no subdomains implied).
    #[serde(default, deserialize_with = "entries")]
    pub email_domains: Vec<String>,
    /// A file of addresses, one a line, `#` comments; re-read when it changes. Empty: none.
    #[serde(default)]
    pub emails_file: String,
    /// GitHub organisations (`acme`), compared without case.
    #[serde(default, deserialize_with = "entries")]
    pub github_orgs: Vec<String>,
    /// GitHub teams as `organisation/team-slug`, compared without case.
    #[serde(default, deserialize_with = "entries")]
    pub github_teams: Vec<String>,
    /// Values of an OpenID Connect issuer's groups claim, compared exactly.
    #[serde(default, deserialize_with = "entries")]
    pub groups: Vec<String>,
}

/// `[access]` as written. No condition set: anyone a provider vouches for may sign in.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[non_exhaustive]
pub struct AccessConfig {
    /// Who may sign in at all (and, on every check, still enter anywhere).
    #[serde(flatten)]
    pub conditions: AccessConditions,
    /// Per host and path, for `/auth/check` and the library; the first that matches a request
    /// applies, on top of `[access]` itself.
    #[serde(default)]
    pub rules: Vec<AccessRule>,
    /// How old a sign-in's groups, organisations and teams may grow before `/auth/check` and
    /// the library treat it as ended (the browser then passes the provider again); only when
    /// a condition names groups, organisations or teams. 0: never.
    #[serde(default = "day")]
    pub recheck_hours: u64,
}

/// One `[[access.rules]]` entry.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[non_exhaustive]
pub struct AccessRule {
    /// As in `gateway.allowed_hosts`: `host`, `host:port`, or `.example.com`.
    #[serde(default)]
    pub host: String,
    /// A path prefix on segment boundaries (`/admin` holds `/admin` and `/admin/x`, not
    /// `/administrator`). Empty: the whole host.
    #[serde(default)]
    pub path: String,
    /// Who may reach what the host and path name (besides passing `[access]`).
    #[serde(flatten)]
    pub conditions: AccessConditions,
    /// Any other key: refused by validation, naming it (serde's `deny_unknown_fields` does not
    /// work beside `flatten`).
    #[serde(flatten, skip_serializing)]
    pub unknown: BTreeMap<String, IgnoredAny>,
}

impl AccessConditions {
    /// Whether any condition is set: without one, everybody is let in.
    pub fn restricts(&self) -> bool {
        !self.emails.is_empty()
            || !self.email_domains.is_empty()
            || self.emails_file().is_some()
            || self.names_membership()
    }

    /// Whether a condition asks for groups, organisations or teams.
    pub fn names_membership(&self) -> bool {
        !self.github_orgs.is_empty() || !self.github_teams.is_empty() || !self.groups.is_empty()
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
        lowercase(&self.email_domains)
    }

    /// The organisations, lower-cased, as they are compared.
    pub fn github_org_list(&self) -> Vec<String> {
        lowercase(&self.github_orgs)
    }

    /// The teams, lower-cased, as they are compared.
    pub fn github_team_list(&self) -> Vec<String> {
        lowercase(&self.github_teams)
    }

    /// Every bad entry, named by its key (`prefix` is `access` or `access.rules[N]`); the
    /// emails file is read.
    pub fn problems(&self, prefix: &str) -> Vec<Problem> {
        let key = |name: &str| format!("{prefix}.{name}");
        let mut problems = Vec::new();
        let mut check =
            |name: &str, entries: &[String], problem: fn(&str) -> Result<(), String>| {
                for entry in entries {
                    if let Err(why) = problem(entry) {
                        problems.push(invalid(&key(name), why));
                    }
                }
            };
        check("emails", &self.emails, address_problem);
        check("email_domains", &self.email_domains, domain_problem);
        check("github_orgs", &self.github_orgs, org_problem);
        check("github_teams", &self.github_teams, team_problem);
        check("groups", &self.groups, group_problem);
        if let Some(path) = self.emails_file()
            && let Err(why) = read_emails_file(&path)
        {
            problems.push(invalid(&key("emails_file"), why));
        }
        problems
    }
}

impl AccessConfig {
    /// Whether `[access]` itself sets a condition (the rules aside).
    pub fn restricts(&self) -> bool {
        self.conditions.restricts()
    }

    /// `[access]` and every rule's conditions.
    pub fn all_conditions(&self) -> impl Iterator<Item = &AccessConditions> {
        std::iter::once(&self.conditions).chain(self.rules.iter().map(|rule| &rule.conditions))
    }

    /// Whether the GitHub provider must read organisations and teams at sign-in (and so ask
    /// for the `read:org` scope): only when a condition names one, never more scope than the
    /// rules need.
    pub fn reads_github_membership(&self) -> bool {
        self.all_conditions()
            .any(|c| !c.github_orgs.is_empty() || !c.github_teams.is_empty())
    }

    /// Whether any condition (anywhere) names groups.
    pub fn names_groups(&self) -> bool {
        self.all_conditions().any(|c| !c.groups.is_empty())
    }

    /// How old a sign-in's membership may grow (see `recheck_hours`); `None`: no bound.
    pub fn recheck(&self) -> Option<std::time::Duration> {
        let hours = self.recheck_hours;
        (hours > 0
            && self
                .all_conditions()
                .any(AccessConditions::names_membership))
        .then(|| std::time::Duration::from_secs(hours * 3600))
    }

    /// Every bad entry and rule, named by its key; every emails file is read (start-up and
    /// `check` refuse a file that cannot be read or holds a line that is not an address).
    /// Whether the providers can answer a GitHub or groups condition is checked by the
    /// caller, which knows them.
    pub fn problems(&self) -> Vec<Problem> {
        let mut problems = self.conditions.problems("access");
        if self.rules.len() > MAX_RULES {
            problems.push(invalid(
                "access.rules",
                format!("has {} rules; at most {MAX_RULES}", self.rules.len()),
            ));
        }
        for (index, rule) in self.rules.iter().enumerate() {
            let prefix = format!("access.rules[{index}]");
            for name in rule.unknown.keys() {
                problems.push(invalid(
                    &format!("{prefix}.{name}"),
                    "unknown key: a rule has host, path and the condition keys of [access] (emails, email_domains, emails_file, github_orgs, github_teams, groups)",
                ));
            }
            if let Err(why) = AllowedHost::parse(&rule.host) {
                problems.push(invalid(&format!("{prefix}.host"), why));
            }
            if let Err(why) = path_problem(&rule.path) {
                problems.push(invalid(&format!("{prefix}.path"), why));
            }
            if !rule.conditions.restricts() {
                problems.push(invalid(
                    &prefix,
                    "sets no condition: a rule names who may enter (emails, email_domains, emails_file, github_orgs, github_teams or groups)",
                ));
            }
            problems.extend(rule.conditions.problems(&prefix));
        }
        if self.recheck_hours > 24 * 366 {
            problems.push(invalid(
                "access.recheck_hours",
                "must be between 0 (never) and 8784 (a year)",
            ));
        }
        problems
    }
}

impl Default for AccessConfig {
    fn default() -> Self {
        Self {
            conditions: AccessConditions::default(),
            rules: Vec::new(),
            recheck_hours: day(),
        }
    }
}

impl AccessRule {
    /// The rule's path prefix without a trailing `/` (`/` and empty: the whole host).
    pub fn path_prefix(&self) -> &str {
        self.path.trim_end_matches('/')
    }
}

fn day() -> u64 {
    24
}

fn lowercase(entries: &[String]) -> Vec<String> {
    entries.iter().map(|e| e.to_ascii_lowercase()).collect()
}

/// Why `path` is not a rule's path prefix, if it is not: empty, or `/` and segments, without
/// a query, a fragment, `.` or `..` segments, or percent-escapes (requests are compared after
/// decoding theirs, so a prefix is written as the decoded path).
fn path_problem(path: &str) -> Result<(), String> {
    if path.is_empty() {
        return Ok(());
    }
    let bad = |why: &str| {
        Err(format!(
            "{path:?} {why}: a path prefix is written like /admin (it holds /admin and /admin/..., not /administrator)"
        ))
    };
    if !path.starts_with('/') {
        return bad("does not start with /");
    }
    if path
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || "?#%;".contains(c))
    {
        return bad("has a space, a control character, ?, #, % or ;");
    }
    if path.contains("//") {
        return bad("has an empty segment");
    }
    if path
        .split('/')
        .any(|segment| segment == "." || segment == "..")
    {
        return bad("has a . or .. segment");
    }
    Ok(())
}

/// Why `entry` is not a GitHub organisation login (letters, digits and single hyphens, at most
/// 39), if it is not.
fn org_problem(entry: &str) -> Result<(), String> {
    if is_github_login(entry) {
        Ok(())
    } else {
        Err(format!(
            "{entry:?} is not a GitHub organisation: its login, such as acme (letters, digits and hyphens)"
        ))
    }
}

/// Why `entry` is not `organisation/team-slug`, if it is not.
fn team_problem(entry: &str) -> Result<(), String> {
    match entry.split_once('/') {
        Some((org, slug))
            if is_github_login(org)
                && !slug.is_empty()
                && slug.len() <= 100
                && slug
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.') =>
        {
            Ok(())
        }
        _ => Err(format!(
            "{entry:?} is not a GitHub team: organisation/team-slug, such as acme/ops (the slug, as in the team's URL)"
        )),
    }
}

fn is_github_login(name: &str) -> bool {
    (1..=39).contains(&name.len())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

/// Why `entry` is not a group value, if it is not.
fn group_problem(entry: &str) -> Result<(), String> {
    if entry.is_empty() || entry.len() > MAX_GROUP_LEN || entry.chars().any(char::is_control) {
        Err(format!(
            "{entry:?} is not a group: a value of the issuer's groups claim as it writes it (such as ops or /acme/admins), 1 to {MAX_GROUP_LEN} bytes without control characters"
        ))
    } else {
        Ok(())
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
