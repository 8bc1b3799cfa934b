//! Shutdown: the one handle every long-running task holds.
//!
//! Tasks are started through [`Shutdown::spawn`], so the daemon can wait for every one of them on
//! the way out ([`Shutdown::join`]); each task ends when [`Shutdown::stop`] is called, either by
//! checking [`Shutdown::sleep`]'s answer in its loop or by awaiting [`Shutdown::stopped`].
//! A [`Shutdown::child`] (one tenant's tasks) stops with its parent or alone, and the parent's
//! join waits for its tasks too.

use std::future::Future;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

#[derive(Clone, Default)]
pub(crate) struct Shutdown {
    token: CancellationToken,
    tasks: TaskTracker,
    /// The trackers of the shutdowns this one is a child of, which count its tasks too.
    parents: Vec<TaskTracker>,
}

impl Shutdown {
    pub(crate) fn new() -> Shutdown {
        Shutdown::default()
    }

    /// Starts a task that [`Shutdown::join`] waits for.
    pub(crate) fn spawn<F>(&self, task: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let task = self.tasks.track_future(task);
        match self.parents.as_slice() {
            [] => tokio::spawn(task),
            [parent] => tokio::spawn(parent.track_future(task)),
            _ => unreachable!("shutdowns are nested one deep"),
        }
    }

    /// A shutdown for a part that can stop alone (a tenant a reload removes): it stops when this
    /// one does, and this one's [`Shutdown::join`] waits for its tasks.
    pub(crate) fn child(&self) -> Shutdown {
        assert!(self.parents.is_empty(), "shutdowns are nested one deep");
        Shutdown { token: self.token.child_token(), tasks: TaskTracker::new(), parents: vec![self.tasks.clone()] }
    }

    /// Asks every task to end.
    pub(crate) fn stop(&self) {
        self.token.cancel();
    }

    pub(crate) fn is_stopping(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Resolves once stopping has begun.
    pub(crate) fn stopped(&self) -> impl Future<Output = ()> + Send + 'static {
        self.token.clone().cancelled_owned()
    }

    /// Waits `duration`; false when stopping began first (the task should end).
    pub(crate) async fn sleep(&self, duration: Duration) -> bool {
        self.until(tokio::time::sleep(duration)).await.is_some()
    }

    /// Runs `work` until it ends or stopping begins (then `None`).
    pub(crate) async fn until<T>(&self, work: impl Future<Output = T>) -> Option<T> {
        tokio::select! {
            _ = self.token.cancelled() => None,
            value = work => Some(value),
        }
    }

    /// True once [`Shutdown::join`] was called and every task has ended.
    pub(crate) fn is_finished(&self) -> bool {
        self.tasks.is_closed() && self.tasks.is_empty()
    }

    /// Waits at most `limit` for every task to end; false when some were still running.
    pub(crate) async fn join(&self, limit: Duration) -> bool {
        self.tasks.close();
        tokio::time::timeout(limit, self.tasks.wait()).await.is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_task_ends_when_stopping_and_join_waits_for_them() {
        let shutdown = Shutdown::new();
        let ended = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        for _ in 0..3 {
            let (s, ended) = (shutdown.clone(), ended.clone());
            shutdown.spawn(async move {
                while s.sleep(Duration::from_secs(3600)).await {}
                ended.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            });
        }
        assert!(!shutdown.join(Duration::from_millis(50)).await, "nothing asked them to stop yet");
        shutdown.stop();
        assert!(shutdown.join(Duration::from_secs(5)).await);
        assert_eq!(ended.load(std::sync::atomic::Ordering::SeqCst), 3);
        assert!(shutdown.until(std::future::pending::<()>()).await.is_none());
    }

    #[tokio::test]
    async fn a_child_stops_alone_or_with_its_parent_whose_join_waits_for_its_tasks() {
        let parent = Shutdown::new();
        let (alone, with_parent) = (parent.child(), parent.child());
        for child in [&alone, &with_parent] {
            let c = child.clone();
            child.spawn(async move { while c.sleep(Duration::from_secs(3600)).await {} });
        }
        alone.stop();
        assert!(alone.join(Duration::from_secs(5)).await, "a child stops alone");
        assert!(!with_parent.is_stopping(), "its sibling runs on");
        assert!(!parent.join(Duration::from_millis(50)).await, "the parent waits for the sibling's task");
        parent.stop();
        assert!(with_parent.is_stopping());
        assert!(parent.join(Duration::from_secs(5)).await);
    }
}
