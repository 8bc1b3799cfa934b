//! The local queue: inputs waiting for a worker in this process, bounded and deduplicated by path.
//!
//! Only names are queued, never pixels, so a burst of thousands of files costs little memory.
//! A path is queued at most once; a path being processed is not handed to a second worker (a new
//! event for it waits until the first run ends). A popped job counts as waiting until its run
//! starts (its worker may still wait for a turn behind other tenants' jobs), and as running from
//! then: so the console, the depth and the in-flight gauge show what really runs. When the queue
//! is full, pushes are dropped and
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
    /// Popped and not done; those of them whose run began are in `started` too.
    in_flight: HashSet<Job>,
    started: HashSet<Job>,
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
        let now = (inner.waiting() as i64, inner.started.len() as i64);
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

impl Inner {
    /// Queued, or popped by a worker still waiting for its turn.
    fn waiting(&self) -> usize {
        self.queued.len() + self.in_flight.len() - self.started.len()
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
        inner.started.remove(job);
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
        self.lock().started.len()
    }

    fn len(&self) -> usize {
        self.lock().waiting()
    }

    fn place(&self, job: &Job) -> Option<Place> {
        let inner = self.lock();
        if inner.started.contains(job) {
            Some(Place::Running)
        } else {
            (inner.in_flight.contains(job) || inner.queued.contains(job)).then_some(Place::Waiting)
        }
    }

    fn start(&self, job: &Job) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        let mut inner = self.lock();
        if inner.in_flight.contains(job) {
            inner.started.insert(job.clone());
            self.report(&mut inner);
        }
        Box::pin(async {})
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
        q.start(&a).await;
        assert_eq!(q.place(&a), Some(Place::Running));
        q.push(job(InputKind::Product, "a.jpg")); // new event while a.jpg runs
        assert_eq!(q.place(&a), Some(Place::Running), "running wins over queued again");
        assert!(q.try_pop().is_none(), "a.jpg must wait for its running job");
        q.done(&a);
        assert_eq!(q.pop().await.unwrap(), a);
    }

    #[tokio::test]
    async fn a_popped_job_waits_until_its_run_starts_then_runs() {
        let (depth, in_flight) = (prometheus::IntGauge::new("d", "d").unwrap(), prometheus::IntGauge::new("f", "f").unwrap());
        let q = LocalQueue::new(10, depth.clone(), in_flight.clone());
        q.push(job(InputKind::Product, "a.jpg"));
        q.push(job(InputKind::Product, "b.jpg"));
        let a = q.pop().await.unwrap();
        // Its worker waits for a turn: still waiting, as the console and the gauges show it.
        assert_eq!(q.place(&a), Some(Place::Waiting));
        assert_eq!((q.len(), q.running(), depth.get(), in_flight.get()), (2, 0, 2, 0));
        q.start(&a).await;
        assert_eq!(q.place(&a), Some(Place::Running));
        assert_eq!((q.len(), q.running(), depth.get(), in_flight.get()), (1, 1, 1, 1));
        q.done(&a);
        assert_eq!((q.place(&a), q.len(), q.running(), in_flight.get()), (None, 1, 0, 0));
        // One popped and handed back unrun (never started) leaves nothing behind.
        let b = q.pop().await.unwrap();
        q.done(&b);
        assert!(q.is_idle());
        assert_eq!((depth.get(), in_flight.get()), (0, 0));
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
