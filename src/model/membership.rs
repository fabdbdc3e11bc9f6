//! What a person belongs to at a provider: an OpenID Connect issuer's groups, GitHub's
//! organisations and teams. Read at sign-in, kept with the sign-in (never with the person: it
//! is the provider's word at that moment), and compared with `[access]` on every check.

use serde::{Deserialize, Serialize};

/// A person's groups, organisations and teams as of their sign-in. Each list is sorted and
/// without duplicates (see [`Membership::normalise`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Membership {
    /// An OpenID Connect issuer's groups claim, as the issuer writes them (case kept:
    /// issuers treat `Ops` and `ops` as two groups).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// GitHub organisations (`acme`), lower-cased: GitHub's logins ignore case.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub github_orgs: Vec<String>,
    /// GitHub teams as `organisation/team-slug`, lower-cased.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub github_teams: Vec<String>,
}

impl Membership {
    /// Whether the provider said nothing of groups, organisations or teams.
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty() && self.github_orgs.is_empty() && self.github_teams.is_empty()
    }

    /// Every value as `/auth/check` lists them in `X-Auth-Request-Groups` (and the query form
    /// `allowed_groups` matches): the groups, then the organisations (`acme`), then the teams
    /// (`acme/ops`).
    pub fn all(&self) -> impl Iterator<Item = &str> {
        self.groups
            .iter()
            .chain(&self.github_orgs)
            .chain(&self.github_teams)
            .map(String::as_str)
    }

    /// Sorts each list and drops duplicates and empty values; GitHub's names lower-cased.
    pub fn normalise(mut self) -> Self {
        for name in self.github_orgs.iter_mut().chain(&mut self.github_teams) {
            name.make_ascii_lowercase();
        }
        for list in [
            &mut self.groups,
            &mut self.github_orgs,
            &mut self.github_teams,
        ] {
            list.retain(|value| !value.is_empty());
            list.sort();
            list.dedup();
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalising_sorts_dedups_and_lowercases_only_githubs_names() {
        let membership = Membership {
            groups: vec!["ops".into(), "Ops".into(), String::new(), "ops".into()],
            github_orgs: vec!["Acme".into(), "acme".into()],
            github_teams: vec!["Acme/Ops".into()],
        }
        .normalise();
        assert_eq!(membership.groups, ["Ops", "ops"]);
        assert_eq!(membership.github_orgs, ["acme"]);
        assert_eq!(membership.github_teams, ["acme/ops"]);
        assert_eq!(
            membership.all().collect::<Vec<_>>(),
            ["Ops", "ops", "acme", "acme/ops"]
        );
        assert!(Membership::default().is_empty());
        // Stored compactly: an empty list is not written.
        assert_eq!(serde_json::to_string(&Membership::default()).unwrap(), "{}");
    }
}
