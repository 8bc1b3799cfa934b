//! Queue: inputs waiting for a worker. The [`WorkQueue`] trait is the seam; [`LocalQueue`] keeps
//! the jobs in this process.
//!
//! Besides pushing and popping, the queue answers one read-only question for the web console:
//! where a given job is right now ([`WorkQueue::place`]).

mod local;

pub(crate) use local::LocalQueue;

use crate::error::{Cause, Transient};
use crate::job::Job;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// Runs of one job that may die with their worker before it is rejected instead of run again.
pub(crate) const CRASHES_BEFORE_REJECTION: u32 = 3;

/// Where a job is in the queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Place {
    /// Queued, not yet handed to a worker.
    Waiting,
    /// Handed to a worker and not yet marked [`WorkQueue::done`].
    Running,
}

/// A job queue shared by the watcher (which pushes) and the workers (which pop).
pub(crate) trait WorkQueue: Send + Sync {
    /// Queues a job unless it is already waiting. False when it could not be taken (full); the
    /// queue then asks for a rescan through [`WorkQueue::take_overflow`], so nothing is lost.
    fn push(&self, job: Job) -> bool;
    /// The next job no worker is running; `None` once the queue is closed.
    fn pop(&self) -> Pin<Box<dyn Future<Output = Option<Job>> + Send + '_>>;
    /// Marks a popped job finished, letting a newer event for the same input run.
    fn done(&self, job: &Job);
    /// True (once) when pushes were refused since the last call.
    fn take_overflow(&self) -> bool;
    /// Nothing waiting and nothing running.
    fn is_idle(&self) -> bool;
    /// Jobs waiting.
    fn len(&self) -> usize;
    /// Jobs running (on this node).
    fn running(&self) -> usize;
    /// Where `job` is now; `None` when it is neither waiting nor running. Read-only and cheap: the
    /// console asks it for each product it shows (and for every product when filtering by state).
    /// A job that is running and also queued again (a newer event) is `Running`.
    fn place(&self, job: &Job) -> Option<Place>;
    /// Stops handing out jobs; waiting workers see `None`.
    fn close(&self);

    /// Queues a job again because something it depends on changed (a new background): unlike
    /// [`WorkQueue::push`], never merged with an earlier push of the same file version.
    fn requeue(&self, job: Job) -> bool {
        self.push(job)
    }

    /// Queues each of `jobs` again (see [`WorkQueue::requeue`]) and resolves once all are held
    /// where they outlive this process's memory or a restart finds them: a caller may then record
    /// them as queued. Here a refused one (a full queue) fails the whole, to be tried again later.
    fn requeue_all(&self, jobs: Vec<Job>) -> Pin<Box<dyn Future<Output = Result<(), Transient>> + Send + '_>> {
        let refused = jobs.into_iter().filter(|job| !self.requeue(job.clone())).count();
        Box::pin(async move {
            match refused {
                0 => Ok(()),
                n => Err(Transient::new(Cause::Busy, format!("the queue is full: {n} jobs could not be queued again"))),
            }
        })
    }

    /// Hands a job that failed for a passing reason back to be run again after `delay`, by any
    /// worker. False when this queue cannot hold it (the caller then pushes it again itself).
    /// The job still gets its [`WorkQueue::done`].
    fn defer(&self, _job: &Job, _delay: Duration) -> bool {
        false
    }

    /// Hands a popped job back unrun, to be taken again soon by any worker, keeping its count
    /// of [`WorkQueue::crashed_runs`]. The job still gets its [`WorkQueue::done`].
    fn set_aside(&self, job: &Job) -> bool {
        self.defer(job, Duration::from_secs(1))
    }

    /// How many runs of this popped job started before and never finished (the worker running
    /// it died): a job that keeps killing workers is rejected instead of run again.
    fn crashed_runs(&self, _job: &Job) -> u32 {
        0
    }

    /// The popped job's run begins (its worker has its turn): from now on the worker dying counts
    /// as a crashed run of this job. Until then a death says nothing about the job.
    fn start(&self, _job: &Job) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(async {})
    }

    /// At exit, after the time given to jobs in flight: hands the unfinished ones back so other
    /// workers take them at once.
    fn hand_back(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(async {})
    }
}
