//! Whether the database is in an outage, for the process: what turns thousands of refused
//! requests into one WARN line when it begins and one INFO line when it is over, and what
//! `/readyz` answers by (a full or read-only disk still serves reads).
//!
//! An outage begins with the first failure that meets the database unavailable
//! ([`StoreError::is_unavailable`](super::StoreError::is_unavailable)). It does not end
//! with the failures stopping (a quiet night is no proof), only with a write that succeeds:
//! `/readyz`'s probe, or the watch the app runs while an outage is open
//! ([`Store::watch_outages`](super::Store::watch_outages)), calls [`recovered`]. From then on
//! the database counts as available; the INFO line waits until it has stayed so for a
//! settling time ([`settle`]), so that a request already waiting when it came back, or a
//! database that flaps, is the same incident and not a new WARN. A failure after the INFO
//! is a new outage with a WARN of its own.

use std::{
    sync::Mutex,
    time::{Duration, Instant},
};

use tracing::{info, warn};

struct Outage {
    began: Instant,
    /// Failures that met it (refused requests, exchanges and the listener waiting on it).
    failures: u64,
    /// When a write first succeeded again, if one has since the last failure.
    recovered: Option<Instant>,
}

static OUTAGE: Mutex<Option<Outage>> = Mutex::new(None);

fn outage() -> std::sync::MutexGuard<'static, Option<Outage>> {
    // The state is a few plain fields, consistent after any panic.
    OUTAGE.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Something met the database unavailable (`cause`: the whole error chain). The first failure
/// of an outage is a WARN; the rest, and those while it is settling, are DEBUG.
pub fn met(cause: &str) {
    let new = {
        let mut outage = outage();
        match outage.as_mut() {
            Some(open) => {
                open.failures += 1;
                open.recovered = None;
                false
            }
            None => {
                *outage = Some(Outage {
                    began: Instant::now(),
                    failures: 1,
                    recovered: None,
                });
                true
            }
        }
    };
    if new {
        warn!(cause, "the database is unavailable: answering 503 (Retry-After) until it answers again");
    } else {
        tracing::debug!(cause, "the database is still unavailable");
    }
}

/// Whether the database counts as unavailable now: an outage has begun and no write has
/// succeeded since its last failure.
pub fn is_open() -> bool {
    outage().as_ref().is_some_and(|open| open.recovered.is_none())
}

/// A write succeeded: the database is available again (the outage, if one is open, settles
/// from now on).
pub fn recovered() {
    if let Some(open) = outage().as_mut() {
        open.recovered.get_or_insert_with(Instant::now);
    }
}

/// Ends an outage that has had no failure for `settling` since a write succeeded, with one
/// INFO line: how long it lasted (to the first write that succeeded) and what it refused.
pub fn settle(settling: Duration) {
    let ended = {
        let mut outage = outage();
        match outage.as_ref() {
            Some(Outage {
                recovered: Some(at),
                ..
            }) if at.elapsed() >= settling => outage.take(),
            _ => None,
        }
    };
    if let Some(ended) = ended {
        let lasted = ended
            .recovered
            .map_or(Duration::ZERO, |at| at.duration_since(ended.began));
        info!(
            lasted_ms = u64::try_from(lasted.as_millis()).unwrap_or(u64::MAX),
            failures = ended.failures,
            "the database answers again: the outage is over"
        );
    }
}

/// Forgets any outage: for tests that bring one fault after another in one process, each of
/// which must be logged as the new incident it is.
#[cfg(feature = "test-support")]
pub fn forget() {
    *outage() = None;
}

#[cfg(test)]
mod tests {
    use super::*;

    // One test for the whole life cycle: the state is the process's.
    #[test]
    fn an_outage_is_open_until_a_write_succeeds_and_over_once_it_has_settled() {
        *outage() = None;
        assert!(!is_open());
        met("down");
        assert!(is_open());
        // Failures stopping is not the end of it.
        settle(Duration::ZERO);
        assert!(is_open());
        recovered();
        assert!(!is_open());
        // A straggler while settling reopens the same outage, silently.
        met("a request that was already waiting");
        assert!(is_open());
        assert_eq!(outage().as_ref().map(|o| o.failures), Some(2));
        recovered();
        settle(Duration::from_secs(3600));
        assert!(outage().is_some(), "not settled yet");
        settle(Duration::ZERO);
        assert!(outage().is_none(), "over");
        assert!(!is_open());
    }
}
