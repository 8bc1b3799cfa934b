//! Isolation of suspects. A job that was in flight when a process died (it has crashed runs)
//! may be what killed it, or may only have been running beside what did. Such a job runs alone
//! on this node: no other job is held while it runs, so if it kills the process again nothing
//! innocent dies with it and is blamed, and if it is innocent it finishes and its count ends.
//!
//! A suspect waits for the jobs already running here to finish; meanwhile, and while it runs,
//! every job this node pops (another suspect included) is handed back unrun, keeping its count,
//! for any node to take; the workers here pop again once the suspect is done.

use crate::shutdown::Shutdown;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

/// How often a worker that handed a job back looks whether the suspect is done.
const LOOK_AGAIN: Duration = Duration::from_millis(100);

#[derive(Default)]
pub(super) struct Isolation {
    lock: RwLock<()>,
    /// A suspect waits for its turn or runs.
    suspect: AtomicBool,
}

/// A job's permission to run; held until it is done.
pub(super) enum Turn<'a> {
    Together { _guard: RwLockReadGuard<'a, ()> },
    Alone { _guard: RwLockWriteGuard<'a, ()>, suspect: &'a AtomicBool },
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        if let Turn::Alone { suspect, .. } = self {
            suspect.store(false, Ordering::SeqCst);
        }
    }
}

impl Isolation {
    /// The turn of a popped job with `crashed` earlier runs that died (0 for an ordinary job);
    /// `None` when it must be handed back because a suspect waits or runs here.
    pub(super) async fn turn(&self, crashed: u32) -> Option<Turn<'_>> {
        if crashed > 0 {
            if self.suspect.swap(true, Ordering::SeqCst) {
                return None;
            }
            return Some(Turn::Alone { _guard: self.lock.write().await, suspect: &self.suspect });
        }
        // Taken before the flag is read: a suspect that comes later waits for this job.
        let guard = self.lock.try_read().ok()?;
        if self.suspect.load(Ordering::SeqCst) {
            return None;
        }
        Some(Turn::Together { _guard: guard })
    }

    /// Waits until no suspect waits or runs here (or shutdown).
    pub(super) async fn clear(&self, shutdown: &Shutdown) {
        while self.suspect.load(Ordering::SeqCst) {
            if !shutdown.sleep(LOOK_AGAIN).await {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_suspect_runs_alone_and_every_job_popped_meanwhile_is_handed_back() {
        let isolation = Isolation::default();
        let ordinary = isolation.turn(0).await.expect("nothing to wait for");
        let waiting = {
            let isolation = &isolation;
            async move { isolation.turn(1).await.is_some() }
        };
        tokio::pin!(waiting);
        // The suspect waits for the job already running...
        assert!(tokio::time::timeout(Duration::from_millis(50), &mut waiting).await.is_err());
        // ...and meanwhile jobs popped here, suspects or not, go back.
        assert!(isolation.turn(0).await.is_none());
        assert!(isolation.turn(2).await.is_none());
        drop(ordinary);
        assert!(waiting.await, "the suspect's turn comes once the running job is done");
    }

    #[tokio::test]
    async fn once_the_suspect_is_done_jobs_run_together_again() {
        let isolation = Isolation::default();
        drop(isolation.turn(1).await.expect("alone"));
        let a = isolation.turn(0).await;
        let b = isolation.turn(0).await;
        assert!(a.is_some() && b.is_some());
        isolation.clear(&Shutdown::new()).await;
    }
}
