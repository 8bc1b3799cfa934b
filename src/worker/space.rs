//! Space: wakes jobs that failed on a full disk as soon as space returns, rather than after
//! their backoff (which grows to minutes).
//!
//! One poller reads the free space of the storage folders every [`POLL`] while some job waits,
//! and wakes them all when any folder gained at least [`ENOUGH`].

use crate::disk;
use crate::shutdown::Shutdown;
use crate::sync::Mutex;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

const POLL: Duration = Duration::from_secs(1);
/// Free space gained that counts as "space returned".
const ENOUGH: u64 = 1 << 20;

pub(super) struct SpaceWatch {
    dirs: Vec<PathBuf>,
    shutdown: Shutdown,
    returned: Notify,
    /// Jobs waiting, and whether the poller runs.
    state: Mutex<(usize, bool)>,
}

impl SpaceWatch {
    pub(super) fn new(dirs: Vec<PathBuf>, shutdown: Shutdown) -> SpaceWatch {
        SpaceWatch { dirs, shutdown, returned: Notify::new(), state: Mutex::new((0, false)) }
    }

    /// Resolves once space returns to one of the folders.
    pub(super) async fn returned(self: &Arc<Self>) {
        let notified = self.returned.notified();
        let _waiter = Waiter::enter(self);
        notified.await;
    }

    fn free(&self) -> Vec<u64> {
        self.dirs.iter().map(|d| disk::free_bytes(d).unwrap_or(0)).collect()
    }

    /// Polls while jobs wait; ends when none is left.
    async fn poll(self: Arc<Self>) {
        let mut low = self.free();
        while self.shutdown.sleep(POLL).await {
            let now = self.free();
            if now.iter().zip(&low).any(|(now, low)| *now >= low.saturating_add(ENOUGH)) {
                self.returned.notify_waiters();
            }
            low = low.iter().zip(&now).map(|(a, b)| *a.min(b)).collect();
            let mut state = self.state.lock();
            if state.0 == 0 {
                state.1 = false;
                return;
            }
        }
        self.state.lock().1 = false;
    }
}

/// One waiting job; the first starts the poller.
struct Waiter(Arc<SpaceWatch>);

impl Waiter {
    fn enter(watch: &Arc<SpaceWatch>) -> Waiter {
        let mut state = watch.state.lock();
        state.0 += 1;
        if !state.1 {
            state.1 = true;
            watch.shutdown.spawn(watch.clone().poll());
        }
        Waiter(watch.clone())
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        self.0.state.lock().0 -= 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn waiting_jobs_wake_when_a_folder_gains_space() {
        // A folder whose free space cannot change shows the mechanism: the poller sees no gain,
        // so the wait goes on, and it stops once nobody waits. (A temporary folder on the shared
        // disk would gain space whenever another test deletes its files, and wake the job.)
        let nowhere = std::path::PathBuf::from("/nonexistent/thumbgen-space-test");
        let watch = Arc::new(SpaceWatch::new(vec![nowhere], Shutdown::new()));
        let waited = tokio::time::timeout(Duration::from_millis(1500), watch.returned()).await;
        assert!(waited.is_err(), "no space was freed, so nobody is woken");
        tokio::time::sleep(POLL * 2).await;
        assert_eq!(*watch.state.lock(), (0, false), "the poller ends when no job waits");
    }
}
