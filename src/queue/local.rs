//! The local queue: inputs waiting for a worker in this process, bounded and deduplicated by path.
//!
//! Only names are queued, never pixels, so a burst of thousands of files costs little memory.
//! A path is queued at most once; a path being processed is not handed to a second worker (a new
//! event for it waits until the first run ends). When the queue is full, pushes are dropped and
//! the overflow flag asks the watcher for a full rescan, so nothing is lost. Backgrounds go first:
//! products processed after them get all their outputs in one pass.

use super::{Place, WorkQueue};
use crate::job::{InputKind, Job};
use crate::sync::{Mutex, MutexGuard};
use std::collections::{HashSet, VecDeque};
use std::future::Future;
use std::pin::Pin;
use tokio::sync::Notify;

#[derive(Default)]
struct Inner {
    backgrounds: VecDeque<Job>,
    products: VecDeque<Job>,
    queued: HashSet<Job>,
    in_flight: HashSet<Job>,
    overflowed: bool,
    closed: bool,
    /// What this queue has added to the shared gauges (several tenants' queues add up in them).
    reported: (i64, i64),
}

pub(crate) struct LocalQueue {
    inner: Mutex<Inner>,
    ready: Notify,
    capacity: usize,
    depth: prometheus::IntGauge,
    in_flight: prometheus::IntGauge,
}

impl LocalQueue {
    pub(crate) fn new(capacity: usize, depth: prometheus::IntGauge, in_flight: prometheus::IntGauge) -> LocalQueue {
        LocalQueue { inner: Mutex::new(Inner::default()), ready: Notify::new(), capacity, depth, in_flight }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock()
    }

    async fn next(&self) -> Option<Job> {
        loop {
            let notified = self.ready.notified();
            if let Some(job) = self.try_pop() {
                return Some(job);
            }
            if self.lock().closed {
                return None;
            }
            notified.await;
        }
    }

    /// Brings the depth and in-flight gauges up to date with this queue's share of them.
    fn report(&self, inner: &mut Inner) {
        let now = (inner.queued.len() as i64, inner.in_flight.len() as i64);
        self.depth.add(now.0 - inner.reported.0);
        self.in_flight.add(now.1 - inner.reported.1);
        inner.reported = now;
    }

    fn try_pop(&self) -> Option<Job> {
        let mut inner = self.lock();
        let inner = &mut *inner;
        let in_flight = &inner.in_flight;
        let pick =
            |list: &mut VecDeque<Job>| list.iter().position(|j| !in_flight.contains(j)).and_then(|i| list.remove(i));
        let job = pick(&mut inner.backgrounds).or_else(|| pick(&mut inner.products))?;
        inner.queued.remove(&job);
        inner.in_flight.insert(job.clone());
        self.report(inner);
        Some(job)
    }
}

impl WorkQueue for LocalQueue {
    fn push(&self, job: Job) -> bool {
        let mut inner = self.lock();
        if inner.closed || inner.queued.contains(&job) {
            return true;
        }
        if inner.queued.len() >= self.capacity {
            inner.overflowed = true;
            return false;
        }
        inner.queued.insert(job.clone());
        match job.kind {
            InputKind::Background => inner.backgrounds.push_back(job),
            InputKind::Product => inner.products.push_back(job),
        }
        self.report(&mut inner);
        drop(inner);
        self.ready.notify_one();
        true
    }

    fn pop(&self) -> Pin<Box<dyn Future<Output = Option<Job>> + Send + '_>> {
        Box::pin(self.next())
    }

    fn done(&self, job: &Job) {
        let mut inner = self.lock();
        inner.in_flight.remove(job);
        self.report(&mut inner);
        drop(inner);
        self.ready.notify_waiters();
        self.ready.notify_one();
    }

    fn take_overflow(&self) -> bool {
        std::mem::take(&mut self.lock().overflowed)
    }

    fn is_idle(&self) -> bool {
        let inner = self.lock();
        inner.queued.is_empty() && inner.in_flight.is_empty()
    }

    fn running(&self) -> usize {
        self.lock().in_flight.len()
    }

    fn len(&self) -> usize {
        self.lock().queued.len()
    }

    fn place(&self, job: &Job) -> Option<Place> {
        let inner = self.lock();
        if inner.in_flight.contains(job) {
            Some(Place::Running)
        } else {
            inner.queued.contains(job).then_some(Place::Waiting)
        }
    }

    fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(kind: InputKind, name: &str) -> Job {
        Job::new(kind, name)
    }

    fn queue(capacity: usize) -> LocalQueue {
        LocalQueue::new(
            capacity,
            prometheus::IntGauge::new("d", "d").unwrap(),
            prometheus::IntGauge::new("f", "f").unwrap(),
        )
    }

    #[tokio::test]
    async fn dedups_prefers_backgrounds_and_never_runs_a_path_twice_at_once() {
        let q = queue(10);
        q.push(job(InputKind::Product, "a.jpg"));
        q.push(job(InputKind::Product, "a.jpg"));
        q.push(job(InputKind::Background, "b.jpg"));
        assert_eq!(q.len(), 2);
        assert_eq!(q.place(&job(InputKind::Product, "a.jpg")), Some(Place::Waiting));
        assert_eq!(q.place(&job(InputKind::Product, "other.jpg")), None);
        assert_eq!(q.pop().await.unwrap(), job(InputKind::Background, "b.jpg"));
        let a = q.pop().await.unwrap();
        assert_eq!(q.place(&a), Some(Place::Running));
        q.push(job(InputKind::Product, "a.jpg")); // new event while a.jpg runs
        assert_eq!(q.place(&a), Some(Place::Running), "running wins over queued again");
        assert!(q.try_pop().is_none(), "a.jpg must wait for its running job");
        q.done(&a);
        assert_eq!(q.pop().await.unwrap(), a);
    }

    #[test]
    fn a_full_queue_asks_for_a_rescan() {
        let q = queue(1);
        assert!(q.push(job(InputKind::Product, "a")));
        assert!(!q.push(job(InputKind::Product, "b")));
        assert!(q.take_overflow());
        assert!(!q.take_overflow());
    }
}
