//! Status: what the running daemon knows about itself, shared by the watcher, the workers, the
//! health endpoint and the systemd watchdog.

use crate::dependency::Dependency;
use crate::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub(crate) struct Status {
    started: Instant,
    /// Catalogs whose first scan is still to finish (one per tenant).
    scans_pending: AtomicUsize,
    engine_ready: AtomicBool,
    /// What the daemon relies on outside itself (a remote engine, the cluster's broker).
    dependencies: Mutex<Vec<Arc<dyn Dependency>>>,
    /// Rescans asked for so far (SIGHUP): each watcher compares with the count it has seen.
    rescans: AtomicU64,
    shutting_down: AtomicBool,
    watch_mode: Mutex<&'static str>,
    /// Milliseconds since `started` when a job last finished.
    last_progress_ms: AtomicU64,
    /// Wakes jobs waiting to be retried (the remote engine answers again).
    retry_now: tokio::sync::Notify,
}

/// One catalog's first scan, which readiness waits for: [`FirstScan::done`] once it is over.
/// Dropped before that — its catalog stopped, a tenant a reload removed mid-scan — it counts as
/// done, so readiness never waits for a catalog no longer served.
pub(crate) struct FirstScan {
    status: Arc<Status>,
    pending: bool,
}

impl FirstScan {
    pub(crate) fn done(&mut self) {
        if std::mem::take(&mut self.pending) {
            self.status.first_scan_done();
        }
    }
}

impl Drop for FirstScan {
    fn drop(&mut self) {
        self.done();
    }
}

impl Default for Status {
    fn default() -> Self {
        Status {
            started: Instant::now(),
            scans_pending: AtomicUsize::new(1),
            engine_ready: AtomicBool::new(false),
            dependencies: Mutex::new(Vec::new()),
            rescans: AtomicU64::new(0),
            shutting_down: AtomicBool::new(false),
            watch_mode: Mutex::new("starting"),
            last_progress_ms: AtomicU64::new(0),
            retry_now: tokio::sync::Notify::new(),
        }
    }
}

impl Status {
    pub(crate) fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// Sets how many catalogs scan before the daemon counts as scanned (one unless tenants).
    pub(crate) fn expect_scans(&self, catalogs: usize) {
        self.scans_pending.store(catalogs, Ordering::SeqCst);
    }

    /// One catalog's first scan, as readiness counts it (`counted`: a catalog of the start;
    /// one a reload adds holds no readiness back).
    pub(crate) fn first_scan(self: &Arc<Self>, counted: bool) -> FirstScan {
        FirstScan { status: self.clone(), pending: counted }
    }

    /// One catalog's first scan is done.
    pub(crate) fn first_scan_done(&self) {
        let _ = self.scans_pending.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| Some(n.saturating_sub(1)));
    }

    /// True once every catalog's first scan is done.
    pub(crate) fn is_first_scan_done(&self) -> bool {
        self.scans_pending.load(Ordering::SeqCst) == 0
    }

    pub(crate) fn engine_ready(&self) {
        self.engine_ready.store(true, Ordering::SeqCst);
    }

    pub(crate) fn add_dependency(&self, dependency: Arc<dyn Dependency>) {
        self.dependencies.lock().push(dependency);
    }

    /// Forgets a dependency of a catalog no longer served (a tenant a reload removed).
    pub(crate) fn remove_dependency(&self, gone: &Arc<dyn Dependency>) {
        self.dependencies.lock().retain(|d| !std::ptr::addr_eq(Arc::as_ptr(d), Arc::as_ptr(gone)));
    }

    pub(crate) fn dependencies(&self) -> Vec<Arc<dyn Dependency>> {
        self.dependencies.lock().clone()
    }

    pub(crate) fn is_engine_ready(&self) -> bool {
        self.engine_ready.load(Ordering::SeqCst)
    }

    /// Asks every watcher and lister for a full rescan.
    pub(crate) fn request_rescan(&self) {
        self.rescans.fetch_add(1, Ordering::SeqCst);
    }

    /// Rescans asked for so far: where a watcher started later begins counting.
    pub(crate) fn rescans_asked(&self) -> u64 {
        self.rescans.load(Ordering::SeqCst)
    }

    /// Whether a rescan was asked for since the one a watcher last saw (`seen`, updated).
    pub(crate) fn rescan_requested(&self, seen: &mut u64) -> bool {
        let now = self.rescans.load(Ordering::SeqCst);
        std::mem::replace(seen, now) != now
    }

    pub(crate) fn set_shutting_down(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
    }

    pub(crate) fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }

    pub(crate) fn set_watch_mode(&self, mode: &'static str) {
        *self.watch_mode.lock() = mode;
    }

    pub(crate) fn watch_mode(&self) -> &'static str {
        *self.watch_mode.lock()
    }

    /// Asks every job waiting for a retry to go now.
    pub(crate) fn retry_waiting_now(&self) {
        self.retry_now.notify_waiters();
    }

    /// Resolves when [`Status::retry_waiting_now`] is called.
    pub(crate) async fn retry_signal(&self) {
        self.retry_now.notified().await;
    }

    /// A job finished: the pipeline is moving.
    pub(crate) fn progress(&self) {
        self.last_progress_ms.store(self.started.elapsed().as_millis() as u64, Ordering::SeqCst);
    }

    /// Time since a job last finished (or since start, before the first).
    pub(crate) fn since_progress(&self) -> Duration {
        let last = Duration::from_millis(self.last_progress_ms.load(Ordering::SeqCst));
        self.started.elapsed().saturating_sub(last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readiness_waits_for_each_first_scan_of_the_start_and_never_for_a_catalog_that_stopped() {
        let status = Arc::new(Status::default());
        status.expect_scans(2);
        let (mut a, b) = (status.first_scan(true), status.first_scan(true));
        let mut added = status.first_scan(false);
        added.done();
        assert!(!status.is_first_scan_done(), "a catalog added later does not stand in for one of the start");
        a.done();
        a.done();
        assert!(!status.is_first_scan_done(), "each scan counts once");
        drop(b);
        assert!(status.is_first_scan_done(), "a catalog stopped before its scan ended holds nothing back");
    }
}
