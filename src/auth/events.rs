//! In-process notifications that an operation left `pending`, so a long-polling
//! `/get-status` answers the moment the exchange ends instead of at its next poll.
//!
//! With several instances the exchange may run on another one: on PostgreSQL its commit is
//! announced to every instance (`LISTEN`/`NOTIFY`, see `App`'s listener), and waiters also
//! re-read the database periodically, never relying on notifications alone.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
};

use tokio::sync::Notify;

use crate::store::OperationId;

/// Who waits for which operation.
#[derive(Default)]
pub struct OperationEvents {
    waiters: Mutex<HashMap<OperationId, Arc<Notify>>>,
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

    /// Wakes everyone waiting for `id`.
    pub fn finished(&self, id: OperationId) {
        if let Some(notify) = self.lock().remove(&id) {
            notify.notify_waiters();
        }
    }

    /// Wakes every waiter, to read the database again (announcements from other instances
    /// may have been missed).
    pub fn wake_all(&self) {
        for (_, notify) in self.lock().drain() {
            notify.notify_waiters();
        }
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
}
