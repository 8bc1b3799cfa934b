//! File events, handled on notify's own thread: a file is queued when its writer closes it or
//! renames it in; files written to and not yet closed are noted so scans leave them alone.

use crate::folders::Folders;
use crate::job::Job;
use crate::metrics::Metrics;
use crate::naming;
use crate::queue::WorkQueue;
use crate::status::Status;
use crate::sync::{Mutex, MutexGuard};
use notify::event::{AccessKind, AccessMode, CreateKind, EventKind, ModifyKind, RenameMode};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tracing::warn;

/// What the event thread learns that the watcher loop acts on.
#[derive(Default)]
pub(super) struct Notes {
    /// Files written to and not closed since: still being written, so scans leave them alone
    /// (their close event queues them).
    writing: Mutex<HashSet<PathBuf>>,
    /// A watched folder was deleted or moved away: its watch is gone and must be added again,
    /// even when a new folder of the same name (and inode) is already there.
    pub folder_gone: AtomicBool,
}

impl Notes {
    pub(super) fn writing(&self) -> MutexGuard<'_, HashSet<PathBuf>> {
        self.writing.lock()
    }

    /// The files were closed, renamed or removed: nobody is writing them any more.
    fn no_longer_written(&self, paths: &[PathBuf]) {
        let mut writing = self.writing();
        for path in paths {
            writing.remove(path);
        }
    }
}

/// Everything the event callback needs, moved onto notify's thread.
pub(super) struct Handler {
    pub folders: Folders,
    pub queue: Arc<dyn WorkQueue>,
    pub metrics: Arc<Metrics>,
    pub status: Arc<Status>,
    pub notes: Arc<Notes>,
}

impl Handler {
    pub(super) fn handle(&self, event: notify::Result<notify::Event>) {
        match event {
            Ok(event) => self.on_event(&event),
            Err(e) => {
                warn!("file watcher error: {e}; rescanning");
                self.status.request_rescan();
            }
        }
    }

    fn on_event(&self, event: &notify::Event) {
        let (folders, notes) = (&self.folders, &self.notes);
        if event.need_rescan() {
            // Close events may have been lost: forget who was writing rather than wait forever.
            notes.writing().clear();
            self.status.request_rescan();
            return;
        }
        let watched = |p: &PathBuf| folders.kind_of_dir(p).is_some();
        if matches!(event.kind, EventKind::Remove(_) | EventKind::Modify(ModifyKind::Name(RenameMode::From)))
            && event.paths.iter().any(watched)
        {
            // The folder itself went away; its watch went with it.
            notes.folder_gone.store(true, Ordering::SeqCst);
            return;
        }
        let inside = |p: &PathBuf| p.parent().is_some_and(|d| folders.kind_of_dir(d).is_some());
        let complete = match event.kind {
            EventKind::Modify(ModifyKind::Data(_)) => {
                notes.writing().extend(event.paths.iter().filter(|p| inside(p)).cloned());
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
                        self.push_path(path, true);
                    }
                }
                return;
            }
            _ => return,
        };
        for path in &event.paths {
            // A rename's source and target both arrive here: the target exists, the source does not.
            let arrived = complete || std::fs::symlink_metadata(path).is_ok();
            self.push_path(path, arrived);
        }
    }

    fn push_path(&self, path: &Path, arrived: bool) {
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            return;
        };
        if !naming::is_input_name(name) {
            return;
        }
        let Some(kind) = path.parent().and_then(|dir| self.folders.kind_of_dir(dir)) else {
            return;
        };
        if arrived {
            if std::fs::symlink_metadata(path).is_ok_and(|m| m.is_dir()) {
                return;
            }
            self.metrics.files_detected.with_label_values(&[kind.label()]).inc();
        }
        self.queue.push(Job::new(kind, name));
    }
}
