//! Who may enter: `[access]` and `[[access.rules]]` evaluated against a person's address
//! (and whether the provider verified it) and their membership (groups, GitHub organisations
//! and teams). The exchange asks [`Access::allows`] before anything is written (a refused person
//! leaves nothing behind); `/auth/check`, the library's `SignedIn` and the home page ask again
//! on every request against the stored address and the membership kept with the sign-in, so a
//! change of the rules (a restart, or an edit of an emails file) applies at once to people
//! already signed in.
//!
//! Longer than the 400 lines a file here aims for: the conditions, the rules by host and path
//! and the reasons for a refusal are one decision, read top to bottom; its configuration and
//! checks are in `config/access.rs`.

use std::{
    collections::HashSet,
    path::PathBuf,
    sync::{Arc, Mutex},
    time::{Duration, Instant, SystemTime},
};

use tracing::{info, warn};
use url::Url;

use crate::{
    config::{AccessConditions, AccessConfig, AllowedHost, read_emails_file},
    model::Membership,
    store::OperationId,
};


/// An emails file is looked at (its modification time and length) at most this often.
const FILE_RECHECK: Duration = Duration::from_secs(1);
/// A refused address waits this long for its error page, then is forgotten unread.
const REFUSAL_KEPT: Duration = Duration::from_secs(10 * 60);
/// The most refused addresses held at once (a flood of refusals cannot grow memory).
const REFUSALS_MAX: usize = 10_000;

/// Who is asking to enter, as the conditions see them.
#[derive(Debug, Clone, Copy)]
pub struct Person<'a> {
    pub email: Option<&'a str>,
    /// Only a verified address is compared with a condition.
    pub email_verified: bool,
    pub membership: &'a Membership,
}

/// One set of conditions (`[access]`'s own, or a rule's), ready to answer. Cheap to clone;
/// clones share the emails file's state.
#[derive(Clone, Default)]
pub struct Conditions {
    /// Nothing set: everyone passes, and nothing else is looked at.
    restricted: bool,
    emails: Arc<HashSet<String>>,
    domains: Arc<HashSet<String>>,
    file: Option<Arc<EmailsFile>>,
    groups: Arc<HashSet<String>>,
    github_orgs: Arc<HashSet<String>>,
    github_teams: Arc<HashSet<String>>,
}

impl std::fmt::Debug for Conditions {
    // Counts only: the lists are people's addresses, which no log line should carry.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conditions")
            .field("restricted", &self.restricted)
            .field("emails", &self.emails.len())
            .field("domains", &self.domains.len())
            .field("emails_file", &self.file.as_ref().map(|file| file.path.clone()))
            .field("groups", &self.groups.len())
            .field("github_orgs", &self.github_orgs.len())
            .field("github_teams", &self.github_teams.len())
            .finish()
    }
}

impl Conditions {
    /// From validated conditions: an emails file was read by validation and is read again
    /// here (a file that fails now keeps no list and logs, as any later failure does).
    pub fn new(config: &AccessConditions) -> Self {
        let file = config.emails_file().map(|path| {
            let state = FileState {
                checked: Instant::now(),
                seen: signature(&path),
                emails: Arc::new(HashSet::new()),
                warned: false,
            };
            let file = EmailsFile {
                path,
                state: Mutex::new(state),
            };
            file.reload_into(&mut file.lock());
            Arc::new(file)
        });
        let set = |list: Vec<String>| Arc::new(list.into_iter().collect::<HashSet<_>>());
        Self {
            restricted: config.restricts(),
            emails: set(config.email_list()),
            domains: set(config.domain_list()),
            file,
            groups: set(config.groups.clone()),
            github_orgs: set(config.github_org_list()),
            github_teams: set(config.github_team_list()),
        }
    }

    /// Whether `person` matches any condition (with none set, everybody does). Only a
    /// verified address counts against an address condition (one anyone could have typed
    /// proves nothing); groups compare exactly, GitHub's names without case (the membership
    /// holds them lower-cased).
    pub fn allows(&self, person: &Person<'_>) -> bool {
        if !self.restricted {
            return true;
        }
        let membership = person.membership;
        if membership.groups.iter().any(|g| self.groups.contains(g))
            || membership.github_orgs.iter().any(|o| self.github_orgs.contains(o))
            || membership.github_teams.iter().any(|t| self.github_teams.contains(t))
        {
            return true;
        }
        let Some(email) = person.email.filter(|_| person.email_verified) else {
            return false;
        };
        self.allows_address(email)
    }

    /// Whether a verified `email` is listed, or of a listed domain.
    fn allows_address(&self, email: &str) -> bool {
        let email = email.trim().to_ascii_lowercase();
        if self.emails.contains(&email) {
            return true;
        }
        // The domain is what follows the last @: an address with two has no single domain,
        // and `"a@b.com"@evil.example` (a quoted local part) must be read as evil.example.
        if let Some((_, domain)) = email.rsplit_once('@')
            && self.domains.contains(domain)
        {
            return true;
        }
        self.file
            .as_ref()
            .is_some_and(|file| file.current().contains(&email))
    }
}

/// `[access]` and its rules, ready to answer. Cheap to clone.
#[derive(Clone, Default, Debug)]
pub struct Access {
    everyone: Conditions,
    rules: Arc<Vec<Rule>>,
    recheck: Option<Duration>,
}

#[derive(Debug)]
struct Rule {
    host: AllowedHost,
    /// The prefix's segments (`/admin/x`: `admin`, `x`); none: the whole host.
    path: Vec<String>,
    conditions: Conditions,
}

impl Access {
    /// From a validated configuration (a rule whose host does not parse, which validation
    /// refuses, is left out).
    pub fn new(config: &AccessConfig) -> Self {
        let rules = config
            .rules
            .iter()
            .filter_map(|rule| {
                Some(Rule {
                    host: AllowedHost::parse(&rule.host).ok()?,
                    path: rule
                        .path_prefix()
                        .split('/')
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                        .collect(),
                    conditions: Conditions::new(&rule.conditions),
                })
            })
            .collect();
        Self {
            everyone: Conditions::new(&config.conditions),
            rules: Arc::new(rules),
            recheck: config.recheck(),
        }
    }

    /// Whether `person` may sign in at all (`[access]`).
    pub fn allows(&self, person: &Person<'_>) -> bool {
        self.everyone.allows(person)
    }

    /// Whether `person` may reach `target` (the protected request's URL, from a trusted
    /// gateway): `[access]`, and the first rule matching the target's host and path.
    ///
    /// Without a target (the gateway is not in `server.trusted_proxies`, or sent neither
    /// `X-Forwarded-Host`/`-Uri` nor `X-Original-URL`) while rules exist, nobody can tell which
    /// rule is meant, and whatever a request says of itself may be a lie: then every rule must
    /// pass, the strictest reading, so that a misconfigured gateway refuses people rather than
    /// letting anyone through a rule meant to stop them (one WARN says why).
    pub fn allows_at(&self, person: &Person<'_>, target: Option<&Target>) -> bool {
        if !self.allows(person) {
            return false;
        }
        match target {
            // One rule per reading of the path (see [`Target`]): each must let the person in.
            Some(target) => target.readings.iter().all(|reading| {
                self.rules
                    .iter()
                    .find(|rule| rule.matches(target, reading))
                    .is_none_or(|rule| rule.conditions.allows(person))
            }),
            None if self.rules.is_empty() => true,
            None => {
                self.warn_no_target();
                self.rules.iter().all(|rule| rule.conditions.allows(person))
            }
        }
    }

    /// Logs, once per process, that rules exist but a check named no protected URL.
    fn warn_no_target(&self) {
        static WARNED: std::sync::Once = std::sync::Once::new();
        WARNED.call_once(|| {
            warn!(
                "/auth/check was asked without the protected URL from a trusted proxy while [[access.rules]] are set: every rule must pass (put the gateway in server.trusted_proxies and have it send X-Forwarded-Host and X-Forwarded-Uri, or X-Original-URL)"
            );
        });
    }

    /// How old a sign-in's membership may grow before it counts as ended
    /// (`access.recheck_hours`, when a condition names groups, organisations or teams).
    pub fn recheck(&self) -> Option<Duration> {
        self.recheck
    }
}

impl Rule {
    /// Whether the rule's host is the target's and its path prefix holds `reading` (segment by
    /// segment, ASCII case ignored: a site behind that ignores case must not reach `/ADMIN`
    /// past the rule for `/admin`, and one that does not loses nothing by the stricter match).
    fn matches(&self, target: &Target, reading: &[String]) -> bool {
        let host = match &target.host {
            url::Host::Domain(name) => url::Host::Domain(name.as_str()),
            url::Host::Ipv4(ip) => url::Host::Ipv4(*ip),
            url::Host::Ipv6(ip) => url::Host::Ipv6(*ip),
        };
        self.host.allows(&host, target.port)
            && reading.len() >= self.path.len()
            && self
                .path
                .iter()
                .zip(reading)
                .all(|(prefix, segment)| prefix.eq_ignore_ascii_case(segment))
    }
}

/// The protected request a check is for, as rules compare it: the host and port, and the path
/// read in the two ways a site behind may read it. Servers disagree on paths: one routes
/// `/admin/x/..%2F..%2Fpublic` by its raw segments (`admin`, ...), another decodes and
/// resolves it to `/public`; Java servers drop `;parameters`, Windows ones split on `\`. A
/// rule chosen by one reading alone could be escaped by a spelling the site reads the other
/// way, so both are kept and the first rule matching each must pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    host: url::Host<String>,
    port: u16,
    /// The raw segments, each percent-decoded on its own (an encoded `/` stays inside its
    /// segment), nothing resolved; and the decoded path split on `/` and `\`, `;parameters`
    /// dropped, `.` and `..` resolved, empty segments dropped.
    readings: [Vec<String>; 2],
}

impl Target {
    /// From an absolute `http` or `https` URL (`https://grafana.example.com/admin?x`);
    /// `None` when it is not one, names no host, or carries a user name or password. A
    /// trailing dot of the host name is dropped (`grafana.example.com.` is the same name, and
    /// nginx reads it so).
    pub fn parse(url: &str) -> Option<Self> {
        // The url crate reads `https:///admin` as the host `admin`: the authority as written
        // must be there.
        let (_, rest) = url.split_once("://")?;
        if rest.is_empty() || rest.starts_with(['/', '?', '#', '\\']) {
            return None;
        }
        let parsed = Url::parse(url).ok()?;
        if !matches!(parsed.scheme(), "http" | "https")
            || !parsed.username().is_empty()
            || parsed.password().is_some()
        {
            return None;
        }
        let host = match parsed.host()? {
            url::Host::Domain(name) => {
                let name = name.strip_suffix('.').unwrap_or(name);
                if name.is_empty() {
                    return None;
                }
                url::Host::Domain(name.to_owned())
            }
            other => other.to_owned(),
        };
        let port = parsed.port_or_known_default()?;
        let raw = raw_path(url);
        let literal = raw
            .split('/')
            .filter(|segment| !segment.is_empty())
            .map(|segment| decode(segment).into_owned())
            .collect();
        let decoded = decode(raw);
        let mut resolved: Vec<String> = Vec::new();
        for segment in decoded.split(['/', '\\']) {
            let segment = segment.split(';').next().unwrap_or_default();
            match segment {
                "" | "." => {}
                ".." => {
                    resolved.pop();
                }
                name => resolved.push(name.to_owned()),
            }
        }
        Some(Self {
            host,
            port,
            readings: [literal, resolved],
        })
    }
}

/// The path of an absolute URL as written (before any parser resolves or re-encodes it): from
/// the first `/` after the authority up to the query or fragment; `/` when there is none.
fn raw_path(url: &str) -> &str {
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let end = after_scheme.find(['?', '#']).unwrap_or(after_scheme.len());
    let before_query = &after_scheme[..end];
    before_query.find('/').map_or("/", |start| &before_query[start..])
}

fn decode(text: &str) -> std::borrow::Cow<'_, str> {
    percent_encoding::percent_decode_str(text).decode_utf8_lossy()
}

/// oauth2-proxy's query form of `/auth/check` (`allowed_groups`, `allowed_emails`,
/// `allowed_email_domains`, each comma-separated), for people who keep their rules in the web
/// server's configuration. It only narrows: the person must pass `[access]` and the rules as
/// well. An address list (emails and domains together) needs a verified address on it; a
/// group list needs one of the groups (GitHub's names without case).
#[derive(Debug, Default)]
pub struct Narrowing {
    emails: Option<HashSet<String>>,
    domains: Option<HashSet<String>>,
    groups: Option<Vec<String>>,
}

impl Narrowing {
    /// From the check's query string; an error (repeated or empty parameter) says which.
    /// Other parameters are not this form's and are left alone.
    pub fn parse(query: Option<&str>) -> Result<Self, String> {
        let mut narrowing = Self::default();
        for (key, value) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
            let slot = match key.as_ref() {
                "allowed_groups" => &mut narrowing.groups,
                "allowed_emails" | "allowed_email_domains" => {
                    let list = if key == "allowed_emails" {
                        &mut narrowing.emails
                    } else {
                        &mut narrowing.domains
                    };
                    if list.is_some() {
                        return Err(format!("{key} is given twice: give it once, comma-separated"));
                    }
                    let values = values(&key, &value)?;
                    *list = Some(values.into_iter().map(|v| v.to_ascii_lowercase()).collect());
                    continue;
                }
                // A misspelt key of this form (`allowed_group`) would quietly narrow nothing.
                other if other.starts_with("allowed_") => {
                    return Err(format!(
                        "{other} is not a parameter of this form: allowed_groups, allowed_emails or allowed_email_domains"
                    ));
                }
                _ => continue,
            };
            if slot.is_some() {
                return Err(format!("{key} is given twice: give it once, comma-separated"));
            }
            *slot = Some(values(&key, &value)?);
        }
        Ok(narrowing)
    }

    /// Whether `person` passes every list the query gave.
    pub fn allows(&self, person: &Person<'_>) -> bool {
        if self.emails.is_some() || self.domains.is_some() {
            let Some(email) = person
                .email
                .filter(|_| person.email_verified)
                .map(|e| e.trim().to_ascii_lowercase())
            else {
                return false;
            };
            let listed = self.emails.as_ref().is_some_and(|list| list.contains(&email));
            let of_domain = email.rsplit_once('@').is_some_and(|(_, domain)| {
                self.domains.as_ref().is_some_and(|list| list.contains(domain))
            });
            if !listed && !of_domain {
                return false;
            }
        }
        if let Some(groups) = &self.groups {
            let membership = person.membership;
            let member = groups.iter().any(|group| {
                let lower = group.to_ascii_lowercase();
                membership.groups.contains(group)
                    || membership.github_orgs.contains(&lower)
                    || membership.github_teams.contains(&lower)
            });
            if !member {
                return false;
            }
        }
        true
    }
}

/// A comma-separated list of the query form, each value trimmed; none empty.
fn values(key: &str, list: &str) -> Result<Vec<String>, String> {
    let values: Vec<String> = list.split(',').map(|v| v.trim().to_owned()).collect();
    if values.iter().any(String::is_empty) {
        return Err(format!("{key} has an empty value: give a comma-separated list"));
    }
    Ok(values)
}

/// `EmailsFile`, the file behind an `emails_file` condition, and the last good list read
/// from it.
struct EmailsFile {
    path: PathBuf,
    state: Mutex<FileState>,
}

impl std::fmt::Debug for EmailsFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmailsFile").field("path", &self.path).finish()
    }
}

struct FileState {
    /// When the file was last looked at.
    checked: Instant,
    /// Its modification time and length then: a change of either is a change.
    seen: Option<(SystemTime, u64)>,
    emails: Arc<HashSet<String>>,
    /// A WARN was logged for the current trouble: one line per episode, not per check.
    warned: bool,
}

impl EmailsFile {
    fn lock(&self) -> std::sync::MutexGuard<'_, FileState> {
        // A panic while holding it cannot leave the state half-written (each field is
        // replaced whole), so a poisoned lock is still good to use.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The list as of now: the file is looked at when the last look is older than
    /// [`FILE_RECHECK`], and read again when it changed. Synchronously, under the lock: one
    /// `stat` a second is cheaper than handing it to a blocking thread, and a read happens only
    /// when the file changed, with the checks arriving meanwhile waiting for that one read
    /// rather than each making their own. One that cannot be looked at is tried again each
    /// time (it may come back); its WARN is logged once.
    fn current(&self) -> Arc<HashSet<String>> {
        let mut state = self.lock();
        if state.checked.elapsed() >= FILE_RECHECK {
            state.checked = Instant::now();
            let seen = signature(&self.path);
            if seen != state.seen || seen.is_none() {
                state.seen = seen;
                self.reload_into(&mut state);
            }
        }
        state.emails.clone()
    }

    /// Reads the file into `state`; on failure the last good list stays and one WARN says so.
    fn reload_into(&self, state: &mut FileState) {
        match read_emails_file(&self.path) {
            Ok(emails) => {
                if state.warned {
                    info!(file = %self.path.display(), "access.emails_file can be read again");
                }
                info!(
                    file = %self.path.display(),
                    addresses = emails.len(),
                    "access.emails_file read"
                );
                state.emails = Arc::new(emails.into_iter().collect());
                state.warned = false;
            }
            Err(why) => {
                if !state.warned {
                    warn!(
                        reason = %why,
                        addresses = state.emails.len(),
                        "access.emails_file: keeping the last list read"
                    );
                    state.warned = true;
                }
            }
        }
    }
}

/// The addresses refused at sign-in, in this process's memory only, until the refused
/// browser's error page takes its own: the page says which account was refused ("ada@gmail.com
/// (Google) may not sign in") while nothing about the person is ever written anywhere. An
/// error page served by another instance, or after [`REFUSAL_KEPT`], says "This account".
#[derive(Default)]
pub struct Refusals {
    held: Mutex<std::collections::HashMap<OperationId, (Instant, Option<String>)>>,
}

impl Refusals {
    /// Holds the address `operation` was refused for (none: the provider gave none).
    pub fn hold(&self, operation: OperationId, email: Option<String>) {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        held.retain(|_, (at, _)| at.elapsed() < REFUSAL_KEPT);
        if held.len() < REFUSALS_MAX {
            held.insert(operation, (Instant::now(), email));
        }
    }

    /// The address `operation` was refused for, taken (a second look finds nothing):
    /// `Some(None)` when it was refused without one.
    pub fn take(&self, operation: OperationId) -> Option<Option<String>> {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        held.remove(&operation)
            .filter(|(at, _)| at.elapsed() < REFUSAL_KEPT)
            .map(|(_, email)| email)
    }
}

/// What the log may say of an address: its domain, never the person's part.
pub fn domain_of(email: Option<&str>) -> &str {
    email
        .and_then(|e| e.rsplit_once('@'))
        .map_or("", |(_, domain)| domain)
}

/// The file's modification time and length, `None` when it cannot be looked at.
fn signature(path: &std::path::Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access(emails: &[&str], domains: &[&str]) -> Conditions {
        Conditions::new(&AccessConditions {
            emails: emails.iter().map(|e| (*e).to_owned()).collect(),
            email_domains: domains.iter().map(|d| (*d).to_owned()).collect(),
            ..AccessConditions::default()
        })
    }

    /// `allows` for an address alone.
    impl Conditions {
        fn allows_email(&self, email: Option<&str>, verified: bool) -> bool {
            self.allows(&Person {
                email,
                email_verified: verified,
                membership: &Membership::default(),
            })
        }
    }

    #[test]
    fn an_emails_file_is_read_again_when_it_changes_and_kept_when_it_breaks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("emails");
        std::fs::write(&path, "ada@example.com\n").unwrap();
        let rules = Conditions::new(&AccessConditions {
            emails_file: path.display().to_string(),
            ..AccessConditions::default()
        });
        // As if the last look were long ago, rather than waiting for it.
        let look_again = || {
            let file = rules.file.as_ref().unwrap();
            file.lock().checked -= FILE_RECHECK;
        };
        assert!(rules.allows_email(Some("ada@example.com"), true));
        std::fs::write(&path, "grace@example.com\n").unwrap();
        look_again();
        assert!(!rules.allows_email(Some("ada@example.com"), true));
        assert!(rules.allows_email(Some("grace@example.com"), true));
        // Broken (a line that is not an address), then gone: the last good list stays.
        std::fs::write(&path, "grace@example.com\nnot an address at all\n").unwrap();
        look_again();
        assert!(rules.allows_email(Some("grace@example.com"), true));
        std::fs::remove_file(&path).unwrap();
        look_again();
        assert!(rules.allows_email(Some("grace@example.com"), true));
        std::fs::write(&path, "ada@example.com\n").unwrap();
        look_again();
        assert!(rules.allows_email(Some("ada@example.com"), true));
        assert!(!rules.allows_email(Some("grace@example.com"), true));
    }

    #[test]
    fn no_condition_lets_everyone_in() {
        let open = access(&[], &[]);
        assert!(open.allows_email(None, false));
        assert!(open.allows_email(Some("x@y.example"), false));
    }

    #[test]
    fn only_a_verified_address_matches_exactly_or_by_its_whole_domain() {
        let rules = access(&["Ada@Example.com"], &["corp.example"]);
        assert!(rules.allows_email(Some("ada@example.COM"), true));
        assert!(!rules.allows_email(Some("ada@example.com"), false));
        assert!(!rules.allows_email(None, true));
        assert!(rules.allows_email(Some("grace@CORP.example"), true));
        assert!(!rules.allows_email(Some("grace@sub.corp.example"), true));
        assert!(!rules.allows_email(Some("grace@evilcorp.example"), true));
        assert!(!rules.allows_email(Some("grace@corp.example.evil"), true));
        assert!(!rules.allows_email(Some("\"x@corp.example\"@evil.example"), true));
    }

    fn target(url: &str) -> Target {
        Target::parse(url).unwrap()
    }

    #[test]
    fn a_target_is_read_both_ways_a_site_behind_may_read_it() {
        let resolved = |url: &str| target(url).readings[1].clone();
        let literal = |url: &str| target(url).readings[0].clone();
        for spelling in [
            "https://grafana.example.com/admin/",
            "https://grafana.example.com/%61dmin",
            "https://grafana.example.com//admin",
            "https://grafana.example.com/x/../admin",
            "https://grafana.example.com/x%2F..%2Fadmin",
            "https://grafana.example.com/x%5C..%5Cadmin",
            "https://grafana.example.com/%2e/admin",
            "https://grafana.example.com/admin;jsessionid=1",
            "https://grafana.example.com:443/admin?next=/",
            "https://GRAFANA.example.com./admin#x",
        ] {
            assert_eq!(resolved(spelling), ["admin"], "{spelling}");
            assert_eq!(
                target(spelling).host,
                url::Host::Domain("grafana.example.com".to_owned())
            );
        }
        // Raw segments, each decoded alone: what a router matching raw paths sees.
        assert_eq!(
            literal("https://g.example/admin/users/..%2F..%2Fx"),
            ["admin", "users", "../../x"]
        );
        assert_eq!(literal("https://g.example/admin/%2e%2e"), ["admin", ".."]);
        assert_eq!(resolved("https://g.example/admin/%2e%2e"), Vec::<String>::new());
        assert!(Target::parse("/admin").is_none());
        assert!(Target::parse("https://user:pw@g.example/").is_none());
        assert!(Target::parse("ftp://g.example/").is_none());
        // No authority (nginx's `$http_host` of a request without `Host`): not a URL of a host.
        assert!(Target::parse("https:///admin").is_none());
        assert!(Target::parse("https://?x").is_none());
    }

    fn rules(config: &str) -> Access {
        let config: AccessConfig = toml::from_str(config).unwrap();
        Access::new(&config)
    }

    fn member_of<'a>(membership: &'a Membership, email: Option<&'a str>) -> Person<'a> {
        Person {
            email,
            email_verified: true,
            membership,
        }
    }

    #[test]
    fn the_first_rule_matching_host_and_path_applies_on_top_of_access() {
        let access = rules(
            r#"
            email_domains = ["example.com"]
            [[rules]]
            host = "grafana.example.com"
            path = "/admin"
            groups = ["admins"]
            [[rules]]
            host = "grafana.example.com"
            groups = ["ops"]
            [[rules]]
            host = ".example.com"
            github_teams = ["Acme/Wiki"]
            "#,
        );
        let ops = Membership {
            groups: vec!["ops".into()],
            ..Membership::default()
        };
        let ada = member_of(&ops, Some("ada@example.com"));
        let at = |url: &str| Some(target(url));
        assert!(access.allows_at(&ada, at("https://grafana.example.com/").as_ref()));
        assert!(access.allows_at(&ada, at("https://grafana.example.com/administrator").as_ref()));
        assert!(!access.allows_at(&ada, at("https://grafana.example.com/admin/users").as_ref()));
        assert!(!access.allows_at(&ada, at("https://grafana.example.com/x/../admin").as_ref()));
        // Spellings that leave /admin for one reading but stay in it for the other are held
        // to the /admin rule too, as is another case.
        for escape in [
            "https://grafana.example.com/admin/users/..%2F..%2Fx",
            "https://grafana.example.com/admin/users/../../x",
            "https://grafana.example.com/admin/%2e%2e",
            "https://grafana.example.com/admin/..;/x",
            "https://grafana.example.com/ADMIN/users",
        ] {
            assert!(!access.allows_at(&ada, at(escape).as_ref()), "{escape}");
        }
        assert!(!access.allows_at(&ada, at("https://wiki.example.com/").as_ref()));
        // No target (no trusted gateway said which): every rule must pass.
        assert!(!access.allows_at(&ada, None));
        let everything = Membership {
            groups: vec!["ops".into(), "admins".into()],
            github_teams: vec!["acme/wiki".into()],
            ..Membership::default()
        };
        assert!(access.allows_at(&member_of(&everything, Some("ada@example.com")), None));
        // A rule never lets in someone [access] refuses.
        let outsider = member_of(&ops, Some("ada@elsewhere.example"));
        assert!(!access.allows_at(&outsider, at("https://grafana.example.com/").as_ref()));
        // GitHub's names compare without case (the membership holds them lower-cased).
        let wiki = Membership {
            github_teams: vec!["acme/wiki".into()],
            ..Membership::default()
        };
        let grace = member_of(&wiki, Some("grace@example.com"));
        assert!(access.allows_at(&grace, at("https://wiki.example.com/").as_ref()));
        assert!(!access.allows_at(&grace, at("https://grafana.example.com/").as_ref()));
    }

    #[test]
    fn the_query_form_only_narrows_and_refuses_what_it_cannot_read() {
        let ops = Membership {
            groups: vec!["ops".into()],
            github_orgs: vec!["acme".into()],
            ..Membership::default()
        };
        let ada = member_of(&ops, Some("Ada@Example.com"));
        let passes = |query: &str| Narrowing::parse(Some(query)).unwrap().allows(&ada);
        assert!(passes(""));
        assert!(passes("allowed_groups=admins,ops"));
        assert!(passes("allowed_groups=ACME"));
        assert!(!passes("allowed_groups=admins"));
        assert!(!passes("allowed_groups=OPS"));
        assert!(passes("allowed_emails=ada@example.com"));
        assert!(passes("allowed_email_domains=example.com&allowed_groups=ops"));
        assert!(!passes("allowed_email_domains=example.com&allowed_groups=admins"));
        assert!(passes("allowed_emails=x@y.example&allowed_email_domains=EXAMPLE.com"));
        assert!(!passes("allowed_emails=grace@example.com"));
        let unverified = Person {
            email_verified: false,
            ..ada
        };
        assert!(
            !Narrowing::parse(Some("allowed_email_domains=example.com"))
                .unwrap()
                .allows(&unverified)
        );
        for bad in [
            "allowed_group=ops",
            "allowed_groups=ops&allowed_groups=admins",
            "allowed_groups=",
            "allowed_emails=a@b.example,,c@d.example",
        ] {
            assert!(Narrowing::parse(Some(bad)).is_err(), "{bad}");
        }
    }
}
