//! Whether the database is in an outage, for the process: what turns thousands of refused
//! requests into one WARN line when it begins and one INFO line when it ends, and what tells
//! `/readyz` to ask for a write (a full or read-only disk still serves reads).
//!
//! An outage begins with the first request that meets the database unavailable
//! ([`StoreError::is_unavailable`](super::StoreError::is_unavailable)). It ends when a write
//! succeeds again ([`over`], called by `/readyz`'s write probe), or, with nobody probing,
//! once no request has met it for [`QUIET`]: the next failure is then a new outage (unless
//! it comes within seconds of the end: stragglers and flapping are the same incident).

use std::{
    sync::Mutex,
    time::{Duration, Instant},
};

use tracing::{info, warn};

/// With nobody probing, an outage is taken to be over once no request has met the database
/// unavailable for this long.
pub const QUIET: Duration = Duration::from_secs(30);

/// A failure this soon after an outage ended belongs to it: requests that were already
/// waiting when the database came back, or a database flapping, are not a new incident
/// with a WARN of its own.
const SETTLING: Duration = Duration::from_secs(10);

struct Outage {
    began: Instant,
    last: Instant,
    /// Requests answered 503 since it began.
    refused: u64,
}

struct State {
    open: Option<Outage>,
    /// When the last outage ended.
    ended: Option<Instant>,
}

static STATE: Mutex<State> = Mutex::new(State {
    open: None,
    ended: None,
});

fn state() -> std::sync::MutexGuard<'static, State> {
    // The state is a few plain fields, consistent after any panic.
    STATE.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A request met the database unavailable (`cause`: the whole error chain). The first of an
/// outage is a WARN; the rest are DEBUG.
pub fn met(cause: &str) {
    let now = Instant::now();
    let new = {
        let mut state = state();
        match state.open.as_mut() {
            Some(open) if now.duration_since(open.last) <= QUIET => {
                open.last = now;
                open.refused += 1;
                false
            }
            _ => {
                state.open = Some(Outage {
                    began: now,
                    last: now,
                    refused: 1,
                });
                state
                    .ended
                    .is_none_or(|ended| now.duration_since(ended) > SETTLING)
            }
        }
    };
    if new {
        warn!(cause, "the database is unavailable: answering 503 (Retry-After) until it answers again");
    } else {
        tracing::debug!(cause, "the database is still unavailable");
    }
}

/// Whether an outage has begun and not yet ended.
pub fn is_open() -> bool {
    state()
        .open
        .as_ref()
        .is_some_and(|open| open.last.elapsed() <= QUIET)
}

/// A write succeeded: the outage, if one is open, is over (one INFO line saying how long it
/// lasted and how many requests it refused).
pub fn over() {
    let ended = {
        let mut state = state();
        let Some(ended) = state.open.take() else {
            return;
        };
        state.ended = Some(Instant::now());
        ended
    };
    info!(
        lasted_ms = u64::try_from(ended.began.elapsed().as_millis()).unwrap_or(u64::MAX),
        refused = ended.refused,
        "the database answers again: the outage is over"
    );
}

/// Forgets any outage, open or just ended: for tests that bring one fault after another in
/// one process, each of which must be logged as the new incident it is.
#[cfg(feature = "test-support")]
pub fn forget() {
    *state() = State {
        open: None,
        ended: None,
    };
}
