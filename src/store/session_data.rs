//! What a session holds that more than the session layer reads: the sign-in and the CSRF
//! token. The store owns this shape, since it reads it too: it copies the sign-in into the
//! session row's typed columns (`user_id`, `provider`, `signed_in_at`) on every write, and
//! hands readers outside the session layer (`/auth/check`, the library's `SignedIn`) a typed
//! [`SignedInSession`](super::SignedInSession), so no layer parses another's JSON.

use serde::{Deserialize, Serialize};

use super::UserId;
use crate::model::Membership;

/// The session key of the sign-in ([`SessionSignIn`]).
pub const SIGNED_IN_KEY: &str = "signed_in";
/// The session key of the CSRF token every state-changing form echoes.
pub const CSRF_KEY: &str = "csrf";
/// The session key of the messages waiting for the next page: readers outside the session
/// layer see only whether there are any (the page then reads them through the layer).
pub const NOTICES_KEY: &str = "notices";

/// Who a session is signed in as, with which provider, since when, and when it was last
/// extended.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionSignIn {
    pub user: UserId,
    /// The provider id the person signed in with. Absent in sessions signed in before it
    /// was recorded.
    #[serde(default)]
    pub provider: Option<String>,
    /// When the sign-in began (Unix milliseconds): the absolute lifetime runs from here.
    /// Read leniently, like every field but `user`: a sign-in whose data lacks one is still
    /// tied to its person (so that deleting them ends it), and one without a start reads as
    /// 1970, long past any lifetime.
    #[serde(default)]
    pub since_ms: i64,
    /// When the idle lifetime was last extended.
    #[serde(default)]
    pub refreshed_ms: i64,
    /// The groups, organisations and teams the provider named at this sign-in, compared with
    /// `[access]` on every request. Absent in sessions signed in before it was kept: no
    /// membership, which no membership condition lets in.
    #[serde(default, skip_serializing_if = "Membership::is_empty")]
    pub membership: Membership,
    /// What the person signed in from, as "Where you're signed in" names it ("Firefox on
    /// Linux"): a label read from the User-Agent at sign-in, never the header itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// The OpenID Connect issuer's own session id (the ID token's `sid`), which a
    /// back-channel logout may name to end this sign-in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_sid: Option<String>,
}

/// The parts of a session's data read outside the session layer.
#[derive(Deserialize)]
pub(super) struct SharedData {
    #[serde(rename = "signed_in")]
    pub(super) signed_in: Option<SessionSignIn>,
    #[serde(rename = "csrf")]
    pub(super) csrf: Option<String>,
    /// Present when messages wait: their shape is the web layer's.
    #[serde(rename = "notices", default)]
    pub(super) notices: Option<serde::de::IgnoredAny>,
}

impl SharedData {
    /// From a record's data as stored; nothing when it cannot be read (for a reader: not
    /// signed in).
    pub(super) fn parse(data: &str) -> Option<Self> {
        serde_json::from_str(data).ok()
    }

    /// From a record's data as tower-sessions holds it: read in place (every session write
    /// asks), not from a copy of the value.
    pub(super) fn sign_in_of(
        data: &std::collections::HashMap<String, serde_json::Value>,
    ) -> Option<SessionSignIn> {
        SessionSignIn::deserialize(data.get(SIGNED_IN_KEY)?).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The keys and field names are what sessions already stored hold: renaming one would
    /// sign everyone out (and lose their CSRF tokens) at the upgrade.
    #[test]
    fn the_stored_shape_is_the_one_sessions_already_hold() {
        let data = r#"{"signed_in":{"user":7,"provider":"github","since_ms":1,"refreshed_ms":2},"csrf":"t","login.pending":[]}"#;
        let shared = SharedData::parse(data).expect("readable");
        let sign_in = shared.signed_in.expect("signed in");
        assert_eq!((sign_in.user, sign_in.since_ms), (UserId(7), 1));
        assert_eq!(sign_in.provider.as_deref(), Some("github"));
        assert_eq!(shared.csrf.as_deref(), Some("t"));
        // Before providers were recorded, and anonymous sessions.
        let old = SharedData::parse(r#"{"signed_in":{"user":7,"since_ms":1,"refreshed_ms":2}}"#);
        assert_eq!(old.and_then(|d| d.signed_in).map(|s| s.provider), Some(None));
        assert!(SharedData::parse("{}").expect("readable").signed_in.is_none());
        // Only the person is required: whatever else is missing, the row names its owner.
        let bare = SharedData::parse(r#"{"signed_in":{"user":7}}"#).and_then(|d| d.signed_in);
        assert_eq!(bare.map(|s| (s.user, s.since_ms)), Some((UserId(7), 0)));
    }
}
