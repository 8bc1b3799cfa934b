//! Watch: turn the watched folders into jobs, taking each file only once it is complete.
//!
//! With inotify a file is complete when the writer closes it or renames it into the folder
//! (never on the first write) — see [`events`], which runs on notify's own thread. With polling
//! (network mounts, or when inotify is unavailable) and for files found by a scan, a file is
//! complete when its stamp stays the same across one look, or it is older than
//! [`crate::disk::SETTLE`]; with inotify, a scan also leaves alone a file that was written to and
//! not yet closed — see [`scan`]. A full rescan runs at start, every `RESCAN_INTERVAL`, after the
//! kernel's event queue overflows and after a watched folder is deleted and recreated, so no file
//! is ever missed.

mod events;
mod scan;

use crate::config::WatchMode;
use crate::disk::{self, FileStamp};
use crate::folders::Folders;
use crate::job::{InputKind, Job};
use crate::metrics::Metrics;
use crate::queue::WorkQueue;
use crate::shutdown::Shutdown;
use crate::status::{FirstScan, Status};
use events::Notes;
use notify::{RecursiveMode, Watcher as _};
use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tracing::{debug, error, info, warn};

/// Identity of a watched folder: inode and creation time. A folder deleted and made again often
/// gets the same inode number back, so the inode alone cannot tell them apart.
type DirId = (u64, Option<SystemTime>);

/// How often the watcher looks at its timers in inotify mode.
const TICK: Duration = Duration::from_millis(500);

#[derive(Clone, Debug)]
pub(crate) struct WatchSettings {
    pub mode: WatchMode,
    pub poll_interval: Duration,
    pub rescan_interval: Duration,
}

pub(crate) struct Watch {
    folders: Folders,
    queue: Arc<dyn WorkQueue>,
    metrics: Arc<Metrics>,
    status: Arc<Status>,
    settings: WatchSettings,
    first_scan: FirstScan,
    /// Files seen by a scan that were not yet stable, by their last look.
    unsettled: HashMap<Job, FileStamp>,
    /// The look of each file when it was last queued, so a scan queues only what changed.
    queued_as: HashMap<Job, FileStamp>,
    /// Identity of each watched folder, to notice one deleted and recreated.
    watched_ids: HashMap<InputKind, DirId>,
    notes: Arc<Notes>,
}

/// The watcher between two ticks.
struct Running {
    watch: Watch,
    /// `None` when polling.
    watcher: Option<notify::RecommendedWatcher>,
    tick: Duration,
    last_poll: Instant,
    last_rescan: Instant,
    /// Rescans asked for that this watcher has seen.
    rescans_seen: u64,
}

impl Running {
    /// One tick: folders recreated, rescans and polls when due, unsettled files looked at again.
    fn step(mut self) -> Running {
        let me = &mut self.watch;
        let recreated = me.ensure_folders(self.watcher.as_mut());
        let rescan_due = self.last_rescan.elapsed() >= me.settings.rescan_interval;
        // After an overflow only files not yet queued as they are now are looked for: forcing
        // every file in again would fill the queue with finished ones, in the same directory
        // order each time, and starve the files the overflow dropped.
        let overflowed = me.queue.take_overflow();
        let polling = self.watcher.is_none();
        if recreated || rescan_due || me.status.rescan_requested(&mut self.rescans_seen) {
            debug!("full rescan");
            me.scan_all(true);
            self.last_rescan = Instant::now();
        } else if overflowed || (polling && self.last_poll.elapsed() >= me.settings.poll_interval) {
            me.scan_all(false);
            self.last_poll = Instant::now();
        } else if !me.unsettled.is_empty() {
            me.check_unsettled();
        }
        self
    }
}

impl Watch {
    pub(crate) fn new(
        folders: Folders,
        queue: Arc<dyn WorkQueue>,
        metrics: Arc<Metrics>,
        status: Arc<Status>,
        settings: WatchSettings,
        first_scan: FirstScan,
    ) -> Watch {
        Watch {
            folders,
            queue,
            metrics,
            status,
            settings,
            first_scan,
            unsettled: HashMap::new(),
            queued_as: HashMap::new(),
            watched_ids: HashMap::new(),
            notes: Arc::new(Notes::default()),
        }
    }

    /// Runs until shutdown: initial scan, then events and timers. Everything that touches the
    /// file system runs on a blocking thread, never on the runtime's: on a slow network volume a
    /// scan may take seconds, while the runtime's threads answer HTTP and send heartbeats.
    pub(crate) async fn run(self, shutdown: Shutdown) {
        let Ok(mut running) = tokio::task::spawn_blocking(move || self.start()).await else {
            error!("the watcher failed to start (see above); restart thumbgen");
            return;
        };
        let tick = running.tick;
        while shutdown.sleep(tick).await {
            match tokio::task::spawn_blocking(move || running.step()).await {
                Ok(next) => running = next,
                Err(e) => {
                    error!("the watcher stopped: {e}; restart thumbgen");
                    return;
                }
            }
        }
    }

    /// Chooses events or polling and runs the first scan.
    fn start(mut self) -> Running {
        let watcher = match self.settings.mode {
            WatchMode::Poll => None,
            mode => match self.start_inotify() {
                Ok(w) => Some(w),
                Err(e) if mode == WatchMode::Auto => {
                    warn!(
                        "file events unavailable ({e}); polling every {:?} instead (WATCH_MODE=poll)",
                        self.settings.poll_interval
                    );
                    None
                }
                Err(e) => {
                    warn!("WATCH_MODE=inotify but file events are unavailable ({e}); polling so no file is missed");
                    None
                }
            },
        };
        let polling = watcher.is_none();
        self.status.set_watch_mode(if polling { "poll" } else { "inotify" });
        self.scan_all(true);
        self.first_scan.done();
        info!(
            mode = if polling { "poll" } else { "inotify" },
            "watching {} and {}",
            self.folders.products.display(),
            self.folders.backgrounds.display()
        );
        let tick = if polling { self.settings.poll_interval } else { TICK };
        let rescans_seen = self.status.rescans_asked();
        Running { tick, watch: self, watcher, last_poll: Instant::now(), last_rescan: Instant::now(), rescans_seen }
    }

    fn start_inotify(&mut self) -> Result<notify::RecommendedWatcher, WatchError> {
        for kind in InputKind::ALL {
            let dir = self.folders.input_dir(kind);
            if self.settings.mode == WatchMode::Auto && disk::is_network_mount(dir) {
                return Err(WatchError::NetworkMount(dir.display().to_string()));
            }
        }
        let handler = events::Handler {
            folders: self.folders.clone(),
            queue: self.queue.clone(),
            metrics: self.metrics.clone(),
            status: self.status.clone(),
            notes: self.notes.clone(),
        };
        let mut watcher =
            notify::recommended_watcher(move |event| handler.handle(event)).map_err(WatchError::Notify)?;
        for kind in InputKind::ALL {
            let dir = self.folders.input_dir(kind);
            watcher.watch(dir, RecursiveMode::NonRecursive).map_err(WatchError::Notify)?;
            self.watched_ids.insert(kind, dir_id(dir).unwrap_or((0, None)));
        }
        Ok(watcher)
    }

    /// Recreates a watched folder that was deleted (and re-watches it, as well as a folder that
    /// was deleted and made again meanwhile). True when one was.
    fn ensure_folders(&mut self, mut watcher: Option<&mut notify::RecommendedWatcher>) -> bool {
        let mut recreated = false;
        let gone = self.notes.folder_gone.swap(false, Ordering::SeqCst);
        for kind in InputKind::ALL {
            let dir = self.folders.input_dir(kind).to_owned();
            let before = self.watched_ids.get(&kind).copied();
            if dir_id(&dir).is_none() {
                if let Err(e) = std::fs::create_dir_all(&dir) {
                    warn!("watched folder {} is gone and cannot be recreated: {e}", dir.display());
                    continue;
                }
                warn!("watched folder {} was deleted; recreated it", dir.display());
            }
            let now = dir_id(&dir);
            if now != before || gone {
                if gone {
                    self.notes.writing().retain(|p| !p.starts_with(&dir));
                }
                if let Some(w) = watcher.as_deref_mut() {
                    let _ = w.unwatch(&dir);
                    if let Err(e) = w.watch(&dir, RecursiveMode::NonRecursive) {
                        warn!("cannot watch {} again: {e}; the periodic rescan still finds its files", dir.display());
                    }
                }
                if now != before && before.is_some() {
                    info!("watched folder {} was replaced; watching the new one", dir.display());
                }
                self.watched_ids.insert(kind, now.unwrap_or((0, None)));
                recreated |= before.is_some();
            }
        }
        recreated
    }
}

/// Why file events cannot be used (then the folders are polled).
#[derive(Debug)]
enum WatchError {
    NetworkMount(String),
    Notify(notify::Error),
}

impl std::fmt::Display for WatchError {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self {
            WatchError::NetworkMount(dir) => {
                write!(f, "{dir} is on a network filesystem, where file events do not arrive")
            }
            WatchError::Notify(e) => write!(f, "{e}"),
        }
    }
}

fn dir_id(dir: &Path) -> Option<DirId> {
    std::fs::metadata(dir).ok().filter(|m| m.is_dir()).map(|m| (m.ino(), m.created().ok()))
}

#[cfg(test)]
mod tests;
