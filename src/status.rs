//! Status: what the running daemon knows about itself, shared by the watcher, the workers, the
//! health endpoint and the systemd watchdog.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct Status {
    started: Instant,
    first_scan: AtomicBool,
    engine_ready: AtomicBool,
    /// The remote engine, when one is configured, for the health check.
    remote: std::sync::OnceLock<std::sync::Arc<crate::remove::GradioEngine>>,
    rescan_requested: AtomicBool,
    shutting_down: AtomicBool,
    watch_mode: Mutex<&'static str>,
    /// Milliseconds since `started` when a job last finished.
    last_progress_ms: AtomicU64,
    /// Wakes jobs waiting to be retried (the remote engine answers again).
    retry_now: tokio::sync::Notify,
}

impl Default for Status {
    fn default() -> Self {
        Status {
            started: Instant::now(),
            first_scan: AtomicBool::new(false),
            engine_ready: AtomicBool::new(false),
            remote: std::sync::OnceLock::new(),
            rescan_requested: AtomicBool::new(false),
            shutting_down: AtomicBool::new(false),
            watch_mode: Mutex::new("starting"),
            last_progress_ms: AtomicU64::new(0),
            retry_now: tokio::sync::Notify::new(),
        }
    }
}

impl Status {
    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    pub fn first_scan_done(&self) {
        self.first_scan.store(true, Ordering::SeqCst);
    }

    pub fn is_first_scan_done(&self) -> bool {
        self.first_scan.load(Ordering::SeqCst)
    }

    pub fn engine_ready(&self) {
        self.engine_ready.store(true, Ordering::SeqCst);
    }

    pub fn set_remote(&self, engine: std::sync::Arc<crate::remove::GradioEngine>) {
        let _ = self.remote.set(engine);
    }

    pub fn remote(&self) -> Option<&std::sync::Arc<crate::remove::GradioEngine>> {
        self.remote.get()
    }

    pub fn is_engine_ready(&self) -> bool {
        self.engine_ready.load(Ordering::SeqCst)
    }

    pub fn request_rescan(&self) {
        self.rescan_requested.store(true, Ordering::SeqCst);
    }

    pub fn take_rescan_request(&self) -> bool {
        self.rescan_requested.swap(false, Ordering::SeqCst)
    }

    pub fn set_shutting_down(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }

    pub fn set_watch_mode(&self, mode: &'static str) {
        *self.watch_mode.lock().unwrap_or_else(|e| e.into_inner()) = mode;
    }

    pub fn watch_mode(&self) -> &'static str {
        *self.watch_mode.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Asks every job waiting for a retry to go now.
    pub fn retry_waiting_now(&self) {
        self.retry_now.notify_waiters();
    }

    /// Resolves when [`Status::retry_waiting_now`] is called.
    pub async fn retry_signal(&self) {
        self.retry_now.notified().await;
    }

    /// A job finished: the pipeline is moving.
    pub fn progress(&self) {
        self.last_progress_ms.store(self.started.elapsed().as_millis() as u64, Ordering::SeqCst);
    }

    /// Time since a job last finished (or since start, before the first).
    pub fn since_progress(&self) -> Duration {
        let last = Duration::from_millis(self.last_progress_ms.load(Ordering::SeqCst));
        self.started.elapsed().saturating_sub(last)
    }
}
