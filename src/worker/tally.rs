//! Counts for the end-of-run summary of `thumbgen process`.

use crate::job::Job;
use crate::sync::Mutex;
use std::collections::HashSet;
use std::sync::atomic::AtomicUsize;

#[derive(Default)]
pub(crate) struct Tally {
    /// Distinct inputs finished (a product re-run for a new background counts once).
    seen: Mutex<HashSet<Job>>,
    pub thumbnails: AtomicUsize,
    pub rejected: AtomicUsize,
    pub failed: AtomicUsize,
}

impl Tally {
    pub(super) fn count(&self, job: &Job) {
        self.seen.lock().insert(job.clone());
    }

    /// Distinct inputs finished so far.
    pub(crate) fn inputs(&self) -> usize {
        self.seen.lock().len()
    }
}
