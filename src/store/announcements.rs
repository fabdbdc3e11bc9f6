//! Operations finished on other instances, heard through PostgreSQL's `LISTEN`/`NOTIFY`, so
//! that a long poll here answers the moment an exchange there commits.

use sqlx::postgres::PgListener;

use super::{
    OperationId, Store, StoreError,
    backend::{Db, OPERATION_FINISHED},
};

/// What the listener heard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Announcement {
    /// This operation left `pending` (on any instance, this one included).
    Finished(OperationId),
    /// The connection was lost and made again: announcements made meanwhile are gone, so
    /// every waiter should read the database again.
    Missed,
}

/// A connection listening for [`Announcement`]s.
pub struct Announcements {
    listener: PgListener,
}

impl Store {
    /// Listens for operations finishing on every instance; `None` on SQLite, where the
    /// instances sharing a file rely on re-reading it.
    pub async fn announcements(&self) -> Result<Option<Announcements>, StoreError> {
        let Db::Postgres(pool) = &self.db else {
            return Ok(None);
        };
        let mut listener = PgListener::connect_with(pool).await?;
        listener.listen(OPERATION_FINISHED).await?;
        Ok(Some(Announcements { listener }))
    }
}

impl Announcements {
    /// The next announcement. After an error the next call connects again.
    pub async fn next(&mut self) -> Result<Announcement, StoreError> {
        Ok(match self.listener.try_recv().await? {
            Some(notification) => match notification.payload().parse() {
                Ok(id) => Announcement::Finished(OperationId(id)),
                // Not ours to read: treat it as a gap rather than guess.
                Err(_) => Announcement::Missed,
            },
            None => Announcement::Missed,
        })
    }
}
