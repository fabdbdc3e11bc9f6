//! Sealing: what a cookie carries that the browser may hold but neither read nor change.
//!
//! AES-256-GCM through the `cookie` crate's private jar: the value is encrypted and
//! authenticated, with the cookie's name bound in (a value sealed for one cookie opens under
//! no other name). Each sealed value names its key by id (`{id}.{sealed}`), so that every
//! instance opens what any instance sealed:
//!
//! - **keys in the database** (the default): the first instance creates one, `loginwith
//!   rotate-key` adds a newer one. The newest seals; one replaced less than
//!   [`KEY_LIFETIME`] ago still opens. An instance that meets a key id it does not know
//!   reads the keys again, so a rotation on another instance is picked up at the first
//!   cookie sealed with the new key (and every few minutes anyway); an id the database does
//!   not know either (made up) stops such reads for a second.
//! - **`session.sealing_key`**: one key from the configuration, id `0`, never read from the
//!   database.

use std::{
    sync::{Arc, Mutex, PoisonError, RwLock},
    time::Duration,
};

use cookie::{Cookie, CookieJar, Key};
use tokio::time::Instant;
use tracing::{info, warn};

use crate::store::{Store, StoreError, StoredKey};

/// How long a replaced key still opens: as long as a sealed cookie lives (see
/// `pre_sign_in::COOKIE_LIFETIME`), so that a rotation ends no sign-in in progress.
pub const KEY_LIFETIME: Duration = Duration::from_secs(60 * 60);

/// After a read of the keys that did not find a key id, none is read again for this long (a
/// browser sending made-up ids costs one statement a second at most, for everyone together).
const QUIET_AFTER_A_MISS: Duration = Duration::from_secs(1);

/// The keys in memory: the newest, which seals, and the older ones that still open.
struct Keyring {
    newest: (i64, Key),
    older: Vec<(i64, Key)>,
}

impl Keyring {
    /// From the stored keys, newest first; `None` without any.
    fn from_stored(stored: Vec<StoredKey>) -> Option<Self> {
        let mut keys = stored
            .into_iter()
            .map(|key| (key.id, cookie_key(&key.secret)));
        Some(Self {
            newest: keys.next()?,
            older: keys.collect(),
        })
    }

    fn get(&self, id: i64) -> Option<&Key> {
        std::iter::once(&self.newest)
            .chain(&self.older)
            .find(|(key_id, _)| *key_id == id)
            .map(|(_, key)| key)
    }
}

/// The private jar takes a 64-byte key: a signing half it does not use here, and the
/// encryption half, which is the 32-byte secret. Both halves are the secret.
fn cookie_key(secret: &[u8; 32]) -> Key {
    let mut both = [0u8; 64];
    both[..32].copy_from_slice(secret);
    both[32..].copy_from_slice(secret);
    Key::from(&both)
}

/// A new random 32-byte secret (the operating system's generator).
pub fn new_secret() -> [u8; 32] {
    use rand::RngCore;
    let mut secret = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut secret);
    secret
}

/// Seals and opens values with the shared keys; cheap to clone.
#[derive(Clone)]
pub struct Sealer(Arc<Inner>);

struct Inner {
    ring: RwLock<Arc<Keyring>>,
    /// `None` with a configured key: nothing to read again.
    store: Option<Store>,
    /// When a read of the keys last failed to find the key id asked for.
    missed_at: Mutex<Option<Instant>>,
}

impl Sealer {
    /// Keys from the database (created there if there is none yet).
    pub async fn from_store(store: Store) -> Result<Self, StoreError> {
        let stored = store.sealing_keys(&new_secret(), KEY_LIFETIME).await?;
        // The store adds one when there is none, and never deletes the newest.
        let ring = Keyring::from_stored(stored).ok_or(StoreError::Database(sqlx::Error::RowNotFound))?;
        Ok(Self(Arc::new(Inner {
            ring: RwLock::new(Arc::new(ring)),
            store: Some(store),
            missed_at: Mutex::new(None),
        })))
    }

    /// The one key `session.sealing_key` gives.
    pub fn configured(secret: &[u8; 32]) -> Self {
        Self(Arc::new(Inner {
            ring: RwLock::new(Arc::new(Keyring {
                newest: (0, cookie_key(secret)),
                older: Vec::new(),
            })),
            store: None,
            missed_at: Mutex::new(None),
        }))
    }

    fn ring(&self) -> Arc<Keyring> {
        self.0
            .ring
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// `plain` sealed for the cookie `name` with the newest key: `{key id}.{sealed}`, text a
    /// cookie value may hold.
    pub fn seal(&self, name: &str, plain: &str) -> String {
        let ring = self.ring();
        let (id, key) = &ring.newest;
        let mut jar = CookieJar::new();
        jar.private_mut(key)
            .add(Cookie::new(name.to_owned(), plain.to_owned()));
        let sealed = jar
            .get(name)
            .map(|cookie| cookie.value().to_owned())
            .unwrap_or_default();
        format!("{id}.{sealed}")
    }

    /// What `value` was sealed from for the cookie `name`, when it opens with a key this
    /// instance knows, after reading the keys again when it names one it does not know yet
    /// (a rotation on another instance). Anything else (tampered, sealed for another name,
    /// by an unknown or retired key, malformed) is `None`.
    pub async fn open(&self, name: &str, value: &str) -> Option<String> {
        let (id, sealed) = value.split_once('.')?;
        let id: i64 = id.parse().ok()?;
        let mut key = self.ring().get(id).cloned();
        if key.is_none() && self.may_read_again() {
            if self.reload().await {
                key = self.ring().get(id).cloned();
            }
            if key.is_none() {
                *self.missed() = Some(Instant::now());
            }
        }
        let jar = CookieJar::new();
        jar.private(&key?)
            .decrypt(Cookie::new(name.to_owned(), sealed.to_owned()))
            .map(|cookie| cookie.value().to_owned())
    }

    /// Whether an unknown key id may read the keys again: not within a second of a read that
    /// did not find the one asked for.
    fn may_read_again(&self) -> bool {
        self.missed()
            .is_none_or(|missed| missed.elapsed() >= QUIET_AFTER_A_MISS)
    }

    fn missed(&self) -> std::sync::MutexGuard<'_, Option<Instant>> {
        self.0.missed_at.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Reads the keys from the database again (the maintenance schedule calls it too, so
    /// that an instance nobody sends a new key to still stops sealing with a retired one).
    /// A failure keeps the keys it had; whether it read.
    pub async fn reload(&self) -> bool {
        let Some(store) = &self.0.store else {
            return false;
        };
        match store.sealing_keys(&new_secret(), KEY_LIFETIME).await {
            Ok(stored) => {
                // None read (which the store never leaves): the keys in memory stay.
                let Some(ring) = Keyring::from_stored(stored) else {
                    return false;
                };
                let mut current = self.0.ring.write().unwrap_or_else(PoisonError::into_inner);
                if current.newest.0 != ring.newest.0 {
                    info!(key = ring.newest.0, "sealing with a newer key");
                }
                *current = Arc::new(ring);
                true
            }
            Err(e) => {
                warn!(error = %e, "could not read the sealing keys; keeping the ones in memory");
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_sealed_value_opens_only_under_its_name_unchanged_and_with_its_key() {
        let sealer = Sealer::configured(&new_secret());
        let sealed = sealer.seal("pre", "hello 👋");
        assert!(sealed.starts_with("0."));
        assert!(!sealed.contains("hello"));
        assert_eq!(sealer.open("pre", &sealed).await.as_deref(), Some("hello 👋"));
        assert_eq!(sealer.open("other", &sealed).await, None);
        // One byte changed anywhere in the sealed part.
        let (id, body) = sealed.split_once('.').unwrap();
        for at in 0..body.len() {
            let mut bytes = body.as_bytes().to_vec();
            bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
            let tampered = format!("{id}.{}", String::from_utf8(bytes).unwrap());
            assert_eq!(sealer.open("pre", &tampered).await, None, "byte {at}");
        }
        // Sealed by another key, and named by a key id nobody has.
        let other = Sealer::configured(&new_secret());
        assert_eq!(other.open("pre", &sealed).await, None);
        assert_eq!(sealer.open("pre", &format!("7.{body}")).await, None);
        for garbage in ["", ".", "0.", "x.y", "0.!!!", "99999999999999999999.a"] {
            assert_eq!(sealer.open("pre", garbage).await, None, "{garbage:?}");
        }
    }
}
