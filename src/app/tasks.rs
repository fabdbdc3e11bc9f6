//! The app's background tasks, spawned once by [`App::build`](super::App::build): clean-up,
//! the rate limiters' upkeep, the free-space watch and, on PostgreSQL, the announcement
//! listener that wakes long polls when another instance finishes a sign-in.

use std::{sync::Arc, time::Duration};

use tracing::{debug, info, warn};

use crate::{
    auth::OperationEvents,
    shutdown::Shutdown,
    store::{Announcement, Announcements, FINISHED_OPERATION_RETENTION, Store},
    web::{RateLimiter, Sealer},
};

/// After the announcement listener loses its connection, it tries again this much later.
const LISTENER_RETRY: Duration = Duration::from_secs(1);
/// How often the rate limiters drop the addresses they no longer need.
const LIMITER_UPKEEP_PERIOD: Duration = Duration::from_secs(60);
/// How often the room left beside a SQLite file is read (`database.min_free_mb`).
const FREE_SPACE_PERIOD: Duration = Duration::from_secs(60);
/// How often the sealing keys are read again (a rotation elsewhere is picked up sooner, by
/// the first cookie sealed with the new key).
const SEALING_KEY_RELOAD_PERIOD: Duration = Duration::from_secs(5 * 60);
/// How often the clean-up runs.
const MAINTENANCE_PERIOD: Duration = Duration::from_secs(10 * 60);

/// The clean-up at start-up: not a reason to refuse to start, as maintenance tries again.
pub async fn first_housekeeping(
    store: &Store,
    exchange_timeout: Duration,
    activity_retention: Duration,
) {
    match store
        .housekeeping(
            exchange_timeout,
            FINISHED_OPERATION_RETENTION,
            activity_retention,
        )
        .await
    {
        Ok(0) => {}
        Ok(orphaned) => warn!(
            orphaned,
            "pending sign-ins from a previous run were marked as timed out"
        ),
        Err(e) => warn!(error = %e, "the clean-up at start-up failed; maintenance will retry"),
    }
}

/// On PostgreSQL: wakes this instance's long polls when an operation finishes on any
/// instance. A lost connection may have dropped announcements, so every waiter re-reads then.
pub fn spawn_announcement_listener(
    mut announcements: Announcements,
    events: Arc<OperationEvents>,
    shutdown: Shutdown,
) {
    tokio::spawn(async move {
        // Whether the last attempt failed: a lost connection is one line, not one a second.
        let mut lost = false;
        loop {
            let heard = tokio::select! {
                heard = announcements.next() => heard,
                () = shutdown.draining() => return,
            };
            if heard.is_ok() && std::mem::take(&mut lost) {
                info!("listening for finished sign-ins again");
            }
            match heard {
                Ok(Announcement::Finished(id)) => events.announced(id),
                Ok(Announcement::Missed) => events.wake_all(),
                Err(e) => {
                    if std::mem::replace(&mut lost, true) {
                        debug!(error = %e, "still not listening for finished sign-ins");
                    } else if e.is_unavailable() {
                        // The database is down: the outage's one WARN says so.
                        crate::store::outage::met(&e.to_string());
                        info!(error = %e, "listening for finished sign-ins failed; reconnecting");
                    } else {
                        warn!(error = %e, "listening for finished sign-ins failed; reconnecting");
                    }
                    events.wake_all();
                    // Not in a loop of failed connections at full speed.
                    tokio::time::sleep(LISTENER_RETRY).await;
                }
            }
        }
    });
}

/// Every minute, the rate limiters forget the addresses whose buckets are full again.
pub fn spawn_limiter_upkeep(limiters: Vec<Arc<RateLimiter>>) {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(LIMITER_UPKEEP_PERIOD);
        loop {
            ticks.tick().await;
            limiters.iter().for_each(|limiter| limiter.forget_idle());
        }
    });
}

/// Reads the room left on the SQLite file's file system now and then: [`Store::free_space`]
/// warns when it falls below `database.min_free_mb`, before the disk is full.
pub fn spawn_free_space_watch(store: Store) {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(FREE_SPACE_PERIOD);
        ticks.tick().await;
        loop {
            ticks.tick().await;
            store.free_space();
        }
    });
}

/// Reads the sealing keys again every few minutes: an instance that no browser brings a
/// cookie sealed with a newer key still moves to it, well before its old key is retired.
pub fn spawn_sealing_key_reload(sealer: Sealer) {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(SEALING_KEY_RELOAD_PERIOD);
        ticks.tick().await;
        loop {
            ticks.tick().await;
            sealer.reload().await;
        }
    });
}

/// Periodic clean-up: orphaned pending operations, old finished ones, expired sessions, old
/// activity, expired logout tokens.
pub fn spawn_maintenance(store: Store, exchange_timeout: Duration, activity_retention: Duration) {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(MAINTENANCE_PERIOD);
        ticks.tick().await;
        loop {
            ticks.tick().await;
            let result = store
                .housekeeping(
                    exchange_timeout,
                    FINISHED_OPERATION_RETENTION,
                    activity_retention,
                )
                .await;
            if let Err(e) = result {
                warn!(error = %e, "maintenance failed; will retry");
            }
        }
    });
}
