//! In-process notifications that an operation left `pending`, so a long-polling
//! `/get-status` answers the moment the exchange ends instead of at its next poll.
//!
//! With several instances the exchange may run on another one: on PostgreSQL its commit is
//! announced to every instance (`LISTEN`/`NOTIFY`, see `App`'s listener), and waiters also
//! re-read the database periodically, never relying on notifications alone.

use std::{
    collections::{HashMap, HashSet, VecDeque},
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use tokio::{sync::Notify, time::Instant};

use crate::store::{OperationId, OperationStatus};

/// A finished operation's status is answered from memory this long after it was read.
const SETTLED_KEPT: Duration = Duration::from_secs(60);
/// The most finished operations remembered (a few MiB at most, whatever the load).
const SETTLED_MAX: usize = 100_000;

/// Who waits for which operation, the operations whose exchange runs in this process, and the
/// statuses of operations seen finished.
#[derive(Default)]
pub struct OperationEvents {
    waiters: Mutex<HashMap<OperationId, Arc<Notify>>>,
    running: Mutex<HashSet<OperationId>>,
    settled: Mutex<Settled>,
}

/// Finished operations' statuses, oldest first in `order`.
#[derive(Default)]
struct Settled {
    status: HashMap<OperationId, (OperationStatus, Instant)>,
    order: VecDeque<(Instant, OperationId)>,
}

impl OperationEvents {
    /// Registers interest in `id`. Create the subscription (and enable its `Notified`)
    /// before reading the status, so a finish between the read and the wait is not missed.
    pub fn subscribe(self: &Arc<Self>, id: OperationId) -> Subscription {
        let notify = self
            .lock()
            .entry(id)
            .or_insert_with(|| Arc::new(Notify::new()))
            .clone();
        Subscription {
            events: self.clone(),
            id,
            notify,
        }
    }

    /// `id`'s exchange runs in this process from now until [`Self::finished`] (or until the
    /// guard returned is dropped, should the task end otherwise): until then it is pending,
    /// which its polls here know without a read.
    pub fn began(self: &Arc<Self>, id: OperationId) -> Running {
        self.running().insert(id);
        Running {
            events: self.clone(),
            id,
        }
    }

    /// `id`'s exchange in this process ended (its outcome recorded, and remembered when
    /// known for certain): wakes everyone waiting for it.
    pub fn finished(&self, id: OperationId) {
        self.running().remove(&id);
        self.announced(id);
    }

    /// `id` left `pending` as the database announced it (on PostgreSQL, any instance's
    /// commit): wakes everyone waiting for it, who then read it, unless its exchange runs
    /// here, whose own [`Self::finished`] follows with the outcome in memory (the
    /// announcement of this process's own commit can arrive first).
    pub fn announced(&self, id: OperationId) {
        // The entry stays while someone waits (their subscriptions forget it): a waiter that
        // waits again, for this process's own exchange, must still be found by its finish.
        if let Some(notify) = self.lock().get(&id) {
            notify.notify_waiters();
        }
    }

    /// What this process knows of `id` without a read: its finished status (see
    /// [`Self::remember`]), or pending while its exchange runs here.
    pub fn known(&self, id: OperationId) -> Option<OperationStatus> {
        self.settled(id).or_else(|| {
            self.running()
                .contains(&id)
                .then_some(OperationStatus::Pending)
        })
    }

    fn running(&self) -> std::sync::MutexGuard<'_, HashSet<OperationId>> {
        self.running.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Wakes every waiter, to read the database again (announcements from other instances
    /// may have been missed).
    pub fn wake_all(&self) {
        for (_, notify) in self.lock().drain() {
            notify.notify_waiters();
        }
    }

    /// Remembers `status` for `id` when it is finished: a finished operation's status never
    /// changes, so the next polls of its preloader are answered without a read. Kept a
    /// minute; should the row go meanwhile (its person deleted), `/success` then finds
    /// nothing to finish, as it would have.
    pub fn remember(&self, id: OperationId, status: OperationStatus) {
        self.remember_at(id, status, Instant::now());
    }

    fn remember_at(&self, id: OperationId, status: OperationStatus, now: Instant) {
        if status == OperationStatus::Pending {
            return;
        }
        let mut settled = self.settled.lock().unwrap_or_else(PoisonError::into_inner);
        if settled.status.insert(id, (status, now)).is_none() {
            settled.order.push_back((now, id));
        }
        while let Some(&(at, oldest)) = settled.order.front() {
            if now.duration_since(at) < SETTLED_KEPT && settled.order.len() <= SETTLED_MAX {
                break;
            }
            settled.order.pop_front();
            settled.status.remove(&oldest);
        }
    }

    /// The status remembered for `id` (see [`Self::remember`]), if it is still fresh.
    pub fn settled(&self, id: OperationId) -> Option<OperationStatus> {
        self.settled_at(id, Instant::now())
    }

    fn settled_at(&self, id: OperationId, now: Instant) -> Option<OperationStatus> {
        let settled = self.settled.lock().unwrap_or_else(PoisonError::into_inner);
        let (status, at) = settled.status.get(&id).copied()?;
        // Entries are pruned as others arrive; one left over in a quiet minute is stale.
        (now.duration_since(at) < SETTLED_KEPT).then_some(status)
    }

    #[cfg(any(test, feature = "test-support"))]
    /// Operations someone is waiting for (for tests).
    pub fn watched(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<OperationId, Arc<Notify>>> {
        self.waiters.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// An exchange running in this process ([`OperationEvents::began`]).
pub struct Running {
    events: Arc<OperationEvents>,
    id: OperationId,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.events.running().remove(&self.id);
    }
}

/// One waiter's registration; dropping the last one for an operation forgets it.
pub struct Subscription {
    events: Arc<OperationEvents>,
    id: OperationId,
    notify: Arc<Notify>,
}

impl Subscription {
    pub fn notify(&self) -> &Notify {
        &self.notify
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut waiters = self.events.lock();
        if let Some(entry) = waiters.get(&self.id) {
            // The map's reference plus ours: nobody else waits.
            if Arc::ptr_eq(entry, &self.notify) && Arc::strong_count(entry) == 2 {
                waiters.remove(&self.id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_finish_wakes_an_enabled_waiter_and_entries_are_forgotten() {
        let events = Arc::new(OperationEvents::default());
        let subscription = events.subscribe(OperationId(1));
        {
            let notified = subscription.notify().notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            events.finished(OperationId(1));
            notified.await;
        }
        drop(subscription);
        assert_eq!(events.watched(), 0);

        let first = events.subscribe(OperationId(2));
        let second = events.subscribe(OperationId(2));
        drop(first);
        assert_eq!(events.watched(), 1, "still watched by the second");
        drop(second);
        assert_eq!(events.watched(), 0);
    }

    #[test]
    fn finished_statuses_are_remembered_for_a_minute_and_pending_ones_never() {
        let events = OperationEvents::default();
        let start = Instant::now();
        events.remember_at(OperationId(1), OperationStatus::Pending, start);
        assert_eq!(events.settled_at(OperationId(1), start), None);
        events.remember_at(OperationId(1), OperationStatus::Ok, start);
        events.remember_at(OperationId(2), OperationStatus::Error, start);
        assert_eq!(events.settled_at(OperationId(1), start), Some(OperationStatus::Ok));
        assert_eq!(events.settled_at(OperationId(2), start), Some(OperationStatus::Error));
        assert_eq!(events.settled_at(OperationId(3), start), None);
        let later = start + SETTLED_KEPT;
        assert_eq!(events.settled_at(OperationId(1), later), None, "stale after a minute");
        // The next one remembered prunes the stale ones.
        events.remember_at(OperationId(4), OperationStatus::Ok, later);
        let settled = events.settled.lock().unwrap();
        assert_eq!(settled.status.len(), 1);
        assert_eq!(settled.order.len(), 1);
    }
}
