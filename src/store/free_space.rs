//! How much room the SQLite file's file system has left (issue 22). A full disk stops every
//! sign-in (nothing can be written), so loginwith says so while there is still time to act:
//! a WARN when the room left falls below `database.min_free_mb` (at start-up, and whenever it
//! crosses the margin afterwards), an INFO when it is back above, and the number of bytes
//! left as a gauge in `/metrics`. PostgreSQL's disk is the server's business: nothing here.

use std::{
    path::{Path, PathBuf},
    sync::atomic::{AtomicBool, Ordering},
};

use tracing::{info, warn};

/// The SQLite file's file system, watched against a margin.
#[derive(Debug)]
pub struct FreeSpace {
    /// The folder holding the database file (and its `-wal` and `-shm` companions).
    folder: PathBuf,
    /// Fewer bytes than this left is "low".
    margin: u64,
    /// Whether the last reading was below the margin, so that a crossing is logged once.
    low: AtomicBool,
}

/// One reading of the room left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Room {
    /// Bytes an unprivileged writer may still use (`statvfs`'s `f_bavail`, as `df` shows).
    pub available: u64,
    /// Whether that is below the configured margin.
    pub low: bool,
}

impl FreeSpace {
    /// Watches the file system holding `database_file`, with a margin of `margin` bytes (0:
    /// never low).
    pub fn new(database_file: &Path, margin: u64) -> Self {
        let folder = match database_file.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_owned(),
            _ => PathBuf::from("."),
        };
        Self {
            folder,
            margin,
            low: AtomicBool::new(false),
        }
    }

    /// Reads the room left and logs a crossing of the margin (WARN going below, INFO coming
    /// back); `None` when the file system cannot be asked (logged at DEBUG: the database
    /// itself will say more).
    pub fn check(&self) -> Option<Room> {
        let stats = match rustix::fs::statvfs(&self.folder) {
            Ok(stats) => stats,
            Err(error) => {
                tracing::debug!(folder = %self.folder.display(), %error, "cannot read the database's free space");
                return None;
            }
        };
        let available = stats.f_bavail.saturating_mul(stats.f_frsize);
        let low = available < self.margin;
        let was_low = self.low.swap(low, Ordering::Relaxed);
        let (available_mb, margin_mb) = (available / MB, self.margin / MB);
        match (was_low, low) {
            (false, true) => warn!(
                folder = %self.folder.display(),
                available_mb,
                margin_mb,
                "the database's file system is nearly full (database.min_free_mb): when it is full, no one can sign in until room is made"
            ),
            (true, false) => info!(
                folder = %self.folder.display(),
                available_mb,
                "the database's file system has room again"
            ),
            _ => {}
        }
        Some(Room { available, low })
    }
}

const MB: u64 = 1024 * 1024;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_margin_above_what_is_left_reads_low_and_none_reads_fine() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("loginwith.db");
        let never = FreeSpace::new(&file, 0).check().unwrap();
        assert!(!never.low);
        assert!(never.available > 0);
        // No file system here has an exabyte free.
        let always = FreeSpace::new(&file, u64::MAX).check().unwrap();
        assert!(always.low);
        // A bare file name is in the working folder.
        assert!(FreeSpace::new(Path::new("loginwith.db"), 0).check().is_some());
    }

    #[test]
    fn a_folder_that_does_not_exist_is_no_reading() {
        let file = Path::new("/nonexistent-loginwith-folder/loginwith.db");
        assert_eq!(FreeSpace::new(file, 1).check(), None);
    }
}
