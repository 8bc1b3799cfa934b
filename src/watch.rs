//! Watch: turn the watched folders into jobs, taking each file only once it is complete.
//!
//! With inotify a file is complete when the writer closes it or renames it into the folder
//! (never on the first write). With polling (network mounts, or when inotify is unavailable) and
//! for files found by a scan, a file is complete when its size and mtime stay the same across one
//! interval; with inotify, a scan also leaves alone a file that was written to and not yet closed
//! (a slow upload that stalls must not be taken half-written). A full rescan runs at start, every
//! `RESCAN_INTERVAL`, after the kernel's event queue overflows and after a watched folder is
//! deleted and recreated, so no file is ever missed.

use crate::config::WatchMode;
use crate::folders::Folders;
use crate::metrics::Metrics;
use crate::naming;
use crate::pipeline::Job;
use crate::queue::Queue;
use crate::state::Folder;
use crate::status::Status;
use notify::event::{AccessKind, AccessMode, CreateKind, EventKind, ModifyKind, RenameMode};
use notify::{RecursiveMode, Watcher as _};
use std::collections::{HashMap, HashSet};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use tokio::sync::broadcast;
use tracing::{debug, info, warn};

/// How a file looked when last listed: size, mtime (ns) and inode.
type Look = (u64, i128, u64);

/// Identity of a watched folder: inode and creation time. A folder deleted and made again often
/// gets the same inode number back, so the inode alone cannot tell them apart.
type DirId = (u64, Option<SystemTime>);

/// What the event thread learns that the watcher loop acts on.
#[derive(Default)]
struct Notes {
    /// Files written to and not closed since: still being written, so scans leave them alone
    /// (their close event queues them).
    writing: Mutex<HashSet<PathBuf>>,
    /// A watched folder was deleted or moved away: its watch is gone and must be added again,
    /// even when a new folder of the same name (and inode) is already there.
    folder_gone: AtomicBool,
}

impl Notes {
    fn writing(&self) -> std::sync::MutexGuard<'_, HashSet<PathBuf>> {
        self.writing.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The files were closed, renamed or removed: nobody is writing them any more.
    fn no_longer_written(&self, paths: &[PathBuf]) {
        let mut writing = self.writing();
        for path in paths {
            writing.remove(path);
        }
    }
}

/// A file modified more recently than this is not taken by a scan until it holds still.
const SETTLE: Duration = Duration::from_secs(2);
/// How often the watcher looks at its timers in inotify mode.
const TICK: Duration = Duration::from_millis(500);

#[derive(Clone, Debug)]
pub struct WatchSettings {
    pub mode: WatchMode,
    pub poll_interval: Duration,
    pub rescan_interval: Duration,
}

pub struct Watch {
    folders: Folders,
    queue: Arc<Queue>,
    metrics: Arc<Metrics>,
    status: Arc<Status>,
    settings: WatchSettings,
    /// Files seen by a scan that were not yet stable, by their last look.
    unsettled: HashMap<Job, Look>,
    /// The look of each file when it was last queued, so a scan queues only what changed.
    queued_as: HashMap<Job, Look>,
    /// Identity of each watched folder, to notice one deleted and recreated.
    watched_ids: HashMap<Folder, DirId>,
    notes: Arc<Notes>,
}

impl Watch {
    pub fn new(
        folders: Folders,
        queue: Arc<Queue>,
        metrics: Arc<Metrics>,
        status: Arc<Status>,
        settings: WatchSettings,
    ) -> Watch {
        Watch {
            folders,
            queue,
            metrics,
            status,
            settings,
            unsettled: HashMap::new(),
            queued_as: HashMap::new(),
            watched_ids: HashMap::new(),
            notes: Arc::new(Notes::default()),
        }
    }

    /// Runs until shutdown: initial scan, then events and timers.
    pub async fn run(mut self, mut shutdown: broadcast::Receiver<()>) {
        let mut watcher = match self.settings.mode {
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
        self.status.first_scan_done();
        info!(
            mode = if polling { "poll" } else { "inotify" },
            "watching {} and {}",
            self.folders.products.display(),
            self.folders.backgrounds.display()
        );

        let tick = if polling { self.settings.poll_interval } else { TICK };
        let mut last_poll = tokio::time::Instant::now();
        let mut last_rescan = tokio::time::Instant::now();
        loop {
            tokio::select! {
                _ = shutdown.recv() => break,
                _ = tokio::time::sleep(tick) => {}
            }
            let recreated = self.ensure_folders(watcher.as_mut());
            let rescan_due = last_rescan.elapsed() >= self.settings.rescan_interval;
            // After an overflow only files not yet queued as they are now are looked for: forcing
            // every file in again would fill the queue with finished ones, in the same directory
            // order each time, and starve the files the overflow dropped.
            let overflowed = self.queue.take_overflow();
            if recreated || rescan_due || self.status.take_rescan_request() {
                debug!("full rescan");
                self.scan_all(true);
                last_rescan = tokio::time::Instant::now();
            } else if overflowed || (polling && last_poll.elapsed() >= self.settings.poll_interval) {
                self.scan_all(false);
                last_poll = tokio::time::Instant::now();
            } else if !self.unsettled.is_empty() {
                self.check_unsettled();
            }
        }
    }

    fn start_inotify(&mut self) -> Result<notify::RecommendedWatcher, String> {
        for folder in [Folder::Background, Folder::Product] {
            if remote_filesystem(self.folders.input_dir(folder)) && self.settings.mode == WatchMode::Auto {
                return Err(format!(
                    "{} is on a network filesystem, where file events do not arrive",
                    self.folders.input_dir(folder).display()
                ));
            }
        }
        let queue = self.queue.clone();
        let metrics = self.metrics.clone();
        let status = self.status.clone();
        let folders = self.folders.clone();
        let notes = self.notes.clone();
        let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| match event {
            Ok(event) => on_event(&event, &folders, &queue, &metrics, &status, &notes),
            Err(e) => {
                warn!("file watcher error: {e}; rescanning");
                status.request_rescan();
            }
        })
        .map_err(|e| e.to_string())?;
        for folder in [Folder::Background, Folder::Product] {
            let dir = self.folders.input_dir(folder);
            watcher
                .watch(dir, RecursiveMode::NonRecursive)
                .map_err(|e| format!("cannot watch {}: {e}", dir.display()))?;
            self.watched_ids.insert(folder, dir_id(dir).unwrap_or((0, None)));
        }
        Ok(watcher)
    }

    /// Recreates a watched folder that was deleted (and re-watches it, as well as a folder that
    /// was deleted and made again meanwhile). True when one was.
    fn ensure_folders(&mut self, watcher: Option<&mut notify::RecommendedWatcher>) -> bool {
        let mut recreated = false;
        let mut watcher = watcher;
        let gone = self.notes.folder_gone.swap(false, Ordering::SeqCst);
        for folder in [Folder::Background, Folder::Product] {
            let dir = self.folders.input_dir(folder).to_owned();
            let before = self.watched_ids.get(&folder).copied();
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
                self.watched_ids.insert(folder, now.unwrap_or((0, None)));
                recreated |= before.is_some();
            }
        }
        recreated
    }

    /// Lists both folders (backgrounds first) and queues what is complete. `force` queues every
    /// stable file; otherwise only files that changed since they were last queued.
    fn scan_all(&mut self, force: bool) {
        for folder in [Folder::Background, Folder::Product] {
            let listing = list_inputs(self.folders.input_dir(folder));
            let present: std::collections::HashSet<&String> = listing.iter().map(|(n, _)| n).collect();
            // Files that disappeared since the last scan: their job forgets them.
            let gone: Vec<Job> =
                self.queued_as.keys().filter(|j| j.folder == folder && !present.contains(&j.name)).cloned().collect();
            for job in gone {
                self.queued_as.remove(&job);
                self.queue.push(job);
            }
            let now = SystemTime::now();
            let writing = self.notes.writing().clone();
            let dir = self.folders.input_dir(folder).to_owned();
            for (name, look) in listing {
                if writing.contains(&dir.join(&name)) {
                    continue;
                }
                let job = Job { folder, name };
                if !force && self.queued_as.get(&job) == Some(&look) {
                    continue;
                }
                let settled = self.unsettled.get(&job) == Some(&look) || age(look, now) >= SETTLE;
                if settled {
                    self.take(job, look);
                } else {
                    self.unsettled.insert(job, look);
                }
            }
        }
    }

    /// Re-looks at files that were still changing; queues those that held still.
    fn check_unsettled(&mut self) {
        let now = SystemTime::now();
        let pending: Vec<(Job, Look)> = self.unsettled.drain().collect();
        for (job, before) in pending {
            let path = self.folders.input_dir(job.folder).join(&job.name);
            if self.notes.writing().contains(&path) {
                continue; // its close event queues it
            }
            match look_at(&path) {
                Some(look) if look == before || age(look, now) >= SETTLE => self.take(job, look),
                Some(look) => {
                    self.unsettled.insert(job, look);
                }
                None => {}
            }
        }
    }

    fn take(&mut self, job: Job, look: Look) {
        self.unsettled.remove(&job);
        if self.queued_as.get(&job) != Some(&look) {
            self.metrics.files_detected.with_label_values(&[job.folder.label()]).inc();
        }
        if self.queue.push(job.clone()) {
            self.queued_as.insert(job, look);
        }
    }
}

/// Handles one file event (runs on notify's thread).
fn on_event(
    event: &notify::Event,
    folders: &Folders,
    queue: &Queue,
    metrics: &Metrics,
    status: &Status,
    notes: &Notes,
) {
    if event.need_rescan() {
        // Close events may have been lost: forget who was writing rather than wait forever.
        notes.writing().clear();
        status.request_rescan();
        return;
    }
    let watched = |p: &PathBuf| *p == folders.products || *p == folders.backgrounds;
    if matches!(event.kind, EventKind::Remove(_) | EventKind::Modify(ModifyKind::Name(RenameMode::From)))
        && event.paths.iter().any(watched)
    {
        // The folder itself went away; its watch went with it.
        notes.folder_gone.store(true, Ordering::SeqCst);
        return;
    }
    let inside = |p: &PathBuf| p.parent().is_some_and(|d| d == folders.products || d == folders.backgrounds);
    let complete = match event.kind {
        EventKind::Modify(ModifyKind::Data(_)) => {
            let mut writing = notes.writing();
            writing.extend(event.paths.iter().filter(|p| inside(p)).cloned());
            return;
        }
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => {
            notes.no_longer_written(&event.paths);
            true
        }
        // Both halves of a rename inside the folder also arrive on their own (From, To).
        EventKind::Modify(ModifyKind::Name(RenameMode::Both)) => return,
        EventKind::Modify(ModifyKind::Name(_)) | EventKind::Remove(_) => {
            notes.no_longer_written(&event.paths);
            false
        }
        // A link or a FIFO never gets a close-after-write; queue it so it is rejected visibly.
        EventKind::Create(CreateKind::File | CreateKind::Other | CreateKind::Any) => {
            for path in &event.paths {
                let special = std::fs::symlink_metadata(path).is_ok_and(|m| !m.is_file() && !m.is_dir());
                if special {
                    push_path(path, folders, queue, metrics, true);
                }
            }
            return;
        }
        _ => return,
    };
    for path in &event.paths {
        // A rename's source and target both arrive here: the target exists, the source does not.
        let arrived = complete || std::fs::symlink_metadata(path).is_ok();
        push_path(path, folders, queue, metrics, arrived);
    }
}

fn push_path(path: &Path, folders: &Folders, queue: &Queue, metrics: &Metrics, arrived: bool) {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return;
    };
    if !naming::is_input_name(name) {
        return;
    }
    let folder = match path.parent() {
        Some(p) if p == folders.products => Folder::Product,
        Some(p) if p == folders.backgrounds => Folder::Background,
        _ => return,
    };
    if arrived {
        if std::fs::symlink_metadata(path).is_ok_and(|m| m.is_dir()) {
            return;
        }
        metrics.files_detected.with_label_values(&[folder.label()]).inc();
    }
    queue.push(Job { folder, name: name.to_owned() });
}

/// Input files directly in `dir` (no folders, no hidden or temporary names), with their look.
fn list_inputs(dir: &Path) -> Vec<(String, Look)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<(String, Look)> = entries
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            if !naming::is_input_name(&name) {
                return None;
            }
            let meta = std::fs::symlink_metadata(entry.path()).ok()?;
            if meta.is_dir() {
                return None;
            }
            Some((name, look_of(&meta)))
        })
        .collect();
    out.sort();
    out
}

fn look_of(meta: &std::fs::Metadata) -> Look {
    (meta.len(), meta.mtime() as i128 * 1_000_000_000 + meta.mtime_nsec() as i128, meta.ino())
}

fn look_at(path: &Path) -> Option<Look> {
    std::fs::symlink_metadata(path).ok().map(|m| look_of(&m))
}

fn age(look: Look, now: SystemTime) -> Duration {
    let now_ns = now.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as i128);
    Duration::from_nanos((now_ns - look.1).max(0) as u64)
}

fn dir_id(dir: &Path) -> Option<DirId> {
    std::fs::metadata(dir).ok().filter(|m| m.is_dir()).map(|m| (m.ino(), m.created().ok()))
}

/// NFS, SMB/CIFS and FUSE mounts (Docker Desktop shares) deliver no inotify events for changes
/// made by other machines.
fn remote_filesystem(dir: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c_path) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
        return false;
    };
    let mut stat: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: a valid NUL-terminated path and a zeroed struct the kernel fills in.
    if unsafe { libc::statfs(c_path.as_ptr(), &mut stat) } != 0 {
        return false;
    }
    const NFS: i64 = 0x6969;
    const SMB: i64 = 0x517B;
    const SMB2: i64 = 0xFE53_4D42;
    const CIFS: i64 = 0xFF53_4D42;
    const FUSE: i64 = 0x6573_5546;
    const NINEP: i64 = 0x0102_1997;
    matches!(stat.f_type as i64, NFS | SMB | SMB2 | CIFS | FUSE | NINEP)
}

/// Used by tests and `process`: the jobs a full scan would queue right now, settled or not.
pub fn all_inputs(folders: &Folders) -> Vec<Job> {
    [Folder::Background, Folder::Product]
        .into_iter()
        .flat_map(|folder| {
            list_inputs(folders.input_dir(folder)).into_iter().map(move |(name, _)| Job { folder, name })
        })
        .collect()
}
