//! Who may sign in: `[access]` evaluated against an address and whether the provider verified
//! it. The exchange asks before anything is written (a refused person leaves nothing behind);
//! `/auth/check`, the library's `SignedIn` and the home page ask again on every request against
//! the stored address, so a change of the rules (a restart, or an edit of `emails_file`)
//! applies at once to people already signed in.

use std::{
    collections::HashSet,
    path::PathBuf,
    sync::{Arc, Mutex},
    time::{Duration, Instant, SystemTime},
};

use tracing::{info, warn};

use crate::{
    config::{AccessConfig, read_emails_file},
    store::OperationId,
};

/// The emails file is looked at (its modification time and length) at most this often.
const FILE_RECHECK: Duration = Duration::from_secs(1);
/// A refused address waits this long for its error page, then is forgotten unread.
const REFUSAL_KEPT: Duration = Duration::from_secs(10 * 60);
/// The most refused addresses held at once (a flood of refusals cannot grow memory).
const REFUSALS_MAX: usize = 10_000;

/// `[access]`, ready to answer. Cheap to clone; clones share the emails file's state.
#[derive(Clone, Default)]
pub struct Access {
    /// Nothing set: everyone passes, and nothing else is looked at.
    restricted: bool,
    emails: Arc<HashSet<String>>,
    domains: Arc<HashSet<String>>,
    file: Option<Arc<EmailsFile>>,
}

impl std::fmt::Debug for Access {
    // Counts only: the lists are people's addresses, which no log line should carry.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Access")
            .field("restricted", &self.restricted)
            .field("emails", &self.emails.len())
            .field("domains", &self.domains.len())
            .field("emails_file", &self.file.as_ref().map(|file| file.path.clone()))
            .finish()
    }
}

/// `access.emails_file` and the last good list read from it.
struct EmailsFile {
    path: PathBuf,
    state: Mutex<FileState>,
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

impl Access {
    /// From a validated configuration: the emails file was read by validation and is read
    /// again here (a file that fails now keeps no list and logs, as any later failure does).
    pub fn new(config: &AccessConfig) -> Self {
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
        Self {
            restricted: config.restricts(),
            emails: Arc::new(config.email_list().into_iter().collect()),
            domains: Arc::new(config.domain_list().into_iter().collect()),
            file,
        }
    }

    /// Whether a person with this address may sign in. Only a verified address counts
    /// against a condition (one anyone could have typed proves nothing); with no condition
    /// set, everybody may.
    pub fn allows(&self, email: Option<&str>, verified: bool) -> bool {
        if !self.restricted {
            return true;
        }
        let Some(email) = email.filter(|_| verified) else {
            return false;
        };
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

    fn access(emails: &[&str], domains: &[&str]) -> Access {
        Access::new(&AccessConfig {
            emails: emails.iter().map(|e| (*e).to_owned()).collect(),
            email_domains: domains.iter().map(|d| (*d).to_owned()).collect(),
            emails_file: String::new(),
        })
    }

    #[test]
    fn an_emails_file_is_read_again_when_it_changes_and_kept_when_it_breaks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("emails");
        std::fs::write(&path, "ada@example.com\n").unwrap();
        let rules = Access::new(&AccessConfig {
            emails_file: path.display().to_string(),
            ..AccessConfig::default()
        });
        // As if the last look were long ago, rather than waiting for it.
        let look_again = || {
            let file = rules.file.as_ref().unwrap();
            file.lock().checked -= FILE_RECHECK;
        };
        assert!(rules.allows(Some("ada@example.com"), true));
        std::fs::write(&path, "grace@example.com\n").unwrap();
        look_again();
        assert!(!rules.allows(Some("ada@example.com"), true));
        assert!(rules.allows(Some("grace@example.com"), true));
        // Broken (a line that is not an address), then gone: the last good list stays.
        std::fs::write(&path, "grace@example.com\nnot an address at all\n").unwrap();
        look_again();
        assert!(rules.allows(Some("grace@example.com"), true));
        std::fs::remove_file(&path).unwrap();
        look_again();
        assert!(rules.allows(Some("grace@example.com"), true));
        std::fs::write(&path, "ada@example.com\n").unwrap();
        look_again();
        assert!(rules.allows(Some("ada@example.com"), true));
        assert!(!rules.allows(Some("grace@example.com"), true));
    }

    #[test]
    fn no_condition_lets_everyone_in() {
        let open = access(&[], &[]);
        assert!(open.allows(None, false));
        assert!(open.allows(Some("x@y.example"), false));
    }

    #[test]
    fn only_a_verified_address_matches_exactly_or_by_its_whole_domain() {
        let rules = access(&["Ada@Example.com"], &["corp.example"]);
        assert!(rules.allows(Some("ada@example.COM"), true));
        assert!(!rules.allows(Some("ada@example.com"), false));
        assert!(!rules.allows(None, true));
        assert!(rules.allows(Some("grace@CORP.example"), true));
        assert!(!rules.allows(Some("grace@sub.corp.example"), true));
        assert!(!rules.allows(Some("grace@evilcorp.example"), true));
        assert!(!rules.allows(Some("grace@corp.example.evil"), true));
        assert!(!rules.allows(Some("\"x@corp.example\"@evil.example"), true));
    }
}
