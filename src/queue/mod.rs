//! Queue: inputs waiting for a worker. The [`WorkQueue`] trait is the seam; [`LocalQueue`] keeps
//! the jobs in this process.

mod local;

pub(crate) use local::LocalQueue;

use crate::job::Job;
use std::future::Future;
use std::pin::Pin;

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
    /// Stops handing out jobs; waiting workers see `None`.
    fn close(&self);
}
