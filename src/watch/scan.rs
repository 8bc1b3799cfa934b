//! Scans: list both folders and queue what is complete — at start, on a timer, after an overflow
//! and after a folder was replaced.

use super::Watch;
use crate::disk::{FileStamp, SETTLE};
use crate::job::{InputKind, Job};
use std::time::SystemTime;

impl Watch {
    /// Lists both folders (backgrounds first) and queues what is complete. `force` queues every
    /// stable file; otherwise only files that changed since they were last queued.
    pub(super) fn scan_all(&mut self, force: bool) {
        for kind in InputKind::ALL {
            let listing = self.folders.inputs(kind);
            let present: std::collections::HashSet<&String> = listing.iter().map(|(n, _)| n).collect();
            // Files that disappeared since the last scan: their job forgets them.
            let gone: Vec<Job> =
                self.queued_as.keys().filter(|j| j.kind == kind && !present.contains(&j.name)).cloned().collect();
            for job in gone {
                self.queued_as.remove(&job);
                self.queue.push(job);
            }
            let now = SystemTime::now();
            let dir = self.folders.input_dir(kind).to_owned();
            for (name, look) in listing {
                if self.notes.writing().contains(&dir.join(&name)) {
                    continue; // its close event queues it
                }
                let job = Job::new(kind, name);
                if !force && self.queued_as.get(&job) == Some(&look) {
                    continue;
                }
                let settled = self.unsettled.get(&job) == Some(&look) || look.age(now) >= SETTLE;
                if settled {
                    self.take(job, look);
                } else {
                    self.unsettled.insert(job, look);
                }
            }
        }
    }

    /// Re-looks at files that were still changing; queues those that held still.
    pub(super) fn check_unsettled(&mut self) {
        let now = SystemTime::now();
        let pending: Vec<(Job, FileStamp)> = self.unsettled.drain().collect();
        for (job, before) in pending {
            let path = self.folders.input_dir(job.kind).join(&job.name);
            if self.notes.writing().contains(&path) {
                continue; // its close event queues it
            }
            match FileStamp::look(&path) {
                Some(look) if look == before || look.age(now) >= SETTLE => self.take(job, look),
                Some(look) => {
                    self.unsettled.insert(job, look);
                }
                None => {}
            }
        }
    }

    fn take(&mut self, job: Job, look: FileStamp) {
        self.unsettled.remove(&job);
        if self.queued_as.get(&job) != Some(&look) {
            self.metrics.files_detected.with_label_values(&[job.kind.label()]).inc();
        }
        if self.queue.push(job.clone()) {
            self.queued_as.insert(job, look);
        }
    }
}
