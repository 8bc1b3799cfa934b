//! Jobs this node is starting: between the check that no worker of this node runs a job and the
//! moment its lease is held, two awaits pass (taking the lease, catching up the journal). The
//! stream keeps up to two messages per input, so a second worker may pop the same job meanwhile;
//! the first to mark it starting wins and the other hands its message back.

use crate::job::Job;
use crate::sync::Mutex;
use std::collections::HashSet;

#[derive(Default)]
pub(super) struct Starting {
    jobs: Mutex<HashSet<Job>>,
}

/// A job marked as starting; unmarked when dropped.
pub(super) struct Mark<'a> {
    starting: &'a Starting,
    job: Job,
}

impl Starting {
    /// Marks `job` as starting, unless it already is.
    pub(super) fn mark(&self, job: &Job) -> Option<Mark<'_>> {
        self.jobs.lock().insert(job.clone()).then(|| Mark { starting: self, job: job.clone() })
    }
}

impl Drop for Mark<'_> {
    fn drop(&mut self) {
        self.starting.jobs.lock().remove(&self.job);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::InputKind;

    #[test]
    fn a_job_is_started_by_one_worker_at_a_time() {
        let starting = Starting::default();
        let job = Job::new(InputKind::Product, "p.jpg");
        let first = starting.mark(&job).expect("the first worker starts it");
        assert!(starting.mark(&job).is_none(), "a second worker must hand its message back");
        assert!(starting.mark(&Job::new(InputKind::Product, "q.jpg")).is_some(), "other jobs start freely");
        drop(first);
        assert!(starting.mark(&job).is_some(), "free again once the first is running or gave up");
    }
}
