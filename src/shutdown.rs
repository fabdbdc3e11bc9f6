//! Graceful shutdown: what stops at once, what is waited for, and for how long.
//!
//! When shutdown begins (SIGTERM, Ctrl-C, or the future given to [`crate::App::serve`]),
//! `/readyz` answers 503, the listener stops accepting, and long polls answer with what they
//! know. Code exchanges already running are waited for, up to `server.shutdown_grace_secs`;
//! any still running then is cut off and ends as `error` (`internal`), written to the
//! database before the process exits, so no sign-in is left `pending` by a clean stop.

use std::time::Duration;

use tokio::time::Instant;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

/// How long exchanges that were cut off get to write their failure.
const CUT_OFF_WRITE: Duration = Duration::from_secs(5);

/// The shared shutdown state: cheap to clone, one per [`crate::App`].
#[derive(Clone, Default)]
pub struct Shutdown {
    /// Cancelled the moment shutdown begins.
    draining: CancellationToken,
    /// Cancelled when the grace period is over: exchanges still running give up.
    cut_off: CancellationToken,
    /// The exchange tasks, waited for on the way out.
    exchanges: TaskTracker,
}

/// How the exchanges ended once shutdown began.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drained {
    /// Every exchange finished within the grace period.
    Finished,
    /// This many were cut off at the end of the grace period and recorded as failed.
    CutOff(usize),
    /// This many were cut off and had not recorded their failure in time either (their
    /// operations stay pending until the next start-up's clean-up marks them timed out).
    Abandoned(usize),
}

impl Shutdown {
    pub fn new() -> Self {
        Self::default()
    }

    /// Shutdown has begun: stop accepting work, answer what waits.
    pub fn begin(&self) {
        self.draining.cancel();
    }

    pub fn is_draining(&self) -> bool {
        self.draining.is_cancelled()
    }

    /// Completes once shutdown has begun (at once if it already has).
    pub async fn draining(&self) {
        self.draining.cancelled().await;
    }

    /// Completes when the grace period is over and exchanges must give up.
    pub(crate) fn cut_off(&self) -> CancellationToken {
        self.cut_off.clone()
    }

    /// Where exchange tasks are spawned, so that shutdown can wait for them.
    pub(crate) fn exchanges(&self) -> &TaskTracker {
        &self.exchanges
    }

    /// Exchanges running now (for the log).
    pub fn running_exchanges(&self) -> usize {
        self.exchanges.len()
    }

    /// Waits for the exchanges running until `deadline`, then cuts off the rest and waits a
    /// little more for them to record their failure.
    pub async fn drain_exchanges(&self, deadline: Instant) -> Drained {
        self.drain_within(deadline, CUT_OFF_WRITE).await
    }

    async fn drain_within(&self, deadline: Instant, write: Duration) -> Drained {
        self.exchanges.close();
        if tokio::time::timeout_at(deadline, self.exchanges.wait())
            .await
            .is_ok()
        {
            return Drained::Finished;
        }
        let cut = self.exchanges.len();
        self.cut_off.cancel();
        match tokio::time::timeout(write, self.exchanges.wait()).await {
            Ok(()) => Drained::CutOff(cut),
            Err(_) => Drained::Abandoned(self.exchanges.len()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LONG: Duration = Duration::from_secs(60);
    const SHORT: Duration = Duration::from_millis(50);

    #[tokio::test]
    async fn finished_exchanges_are_waited_for() {
        let shutdown = Shutdown::new();
        let (done, finished) = tokio::sync::oneshot::channel::<()>();
        shutdown.exchanges().spawn(async move {
            let _ = finished.await;
        });
        let draining = shutdown.clone();
        let drained =
            tokio::spawn(async move { draining.drain_within(Instant::now() + LONG, LONG).await });
        done.send(()).unwrap();
        assert_eq!(drained.await.unwrap(), Drained::Finished);
    }

    #[tokio::test]
    async fn slow_exchanges_are_cut_off_and_given_time_to_write() {
        let shutdown = Shutdown::new();
        let cut_off = shutdown.cut_off();
        shutdown.exchanges().spawn(async move {
            tokio::select! {
                () = tokio::time::sleep(LONG) => {}
                () = cut_off.cancelled() => {}
            }
        });
        let drained = shutdown.drain_within(Instant::now() + SHORT, LONG).await;
        assert_eq!(drained, Drained::CutOff(1));
    }

    #[tokio::test]
    async fn exchanges_that_ignore_the_cut_off_are_abandoned() {
        let shutdown = Shutdown::new();
        shutdown.exchanges().spawn(std::future::pending::<()>());
        let drained = shutdown.drain_within(Instant::now() + SHORT, SHORT).await;
        assert_eq!(drained, Drained::Abandoned(1));
    }

    #[tokio::test]
    async fn draining_is_seen_by_everyone() {
        let shutdown = Shutdown::new();
        assert!(!shutdown.is_draining());
        let waiter = shutdown.clone();
        let waiting = tokio::spawn(async move { waiter.draining().await });
        shutdown.begin();
        waiting.await.unwrap();
        assert!(shutdown.is_draining());
    }
}
