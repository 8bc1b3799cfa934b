//! Retry: how long a failed job waits before it goes back to the queue.
//!
//! Waits grow from 1 s, doubling to 5 minutes, with jitter. A wait ends early when the reason
//! for it goes away: the remote engine answers again, or — for a full disk — space returns.
//! While a job waits, what it waits for is known ([`Retry::cause_of`]): the console shows a photo
//! waiting for the remote engine as such, and `thumbgen_inputs_waiting{cause}` (read by `/health`
//! too) counts the waiting jobs by cause, so a stall outside the queue is never mistaken for idle.

use super::space::SpaceWatch;
use crate::backoff::Backoff;
use crate::error::{Cause, Transient};
use crate::job::Job;
use crate::shutdown::Shutdown;
use crate::status::Status;
use crate::sync::Mutex;
use crate::metrics::CatalogMetrics;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tracing::{info, warn};

const BACKOFF: Backoff = Backoff { first: Duration::from_secs(1), factor: 2, max: Duration::from_secs(300) };

/// How often a transient failure is retried.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Retries {
    /// The daemon never gives up on a file: it stays and is retried with growing pauses.
    Forever,
    /// `thumbgen process` gives up after this many attempts and reports the file as pending.
    UpTo(u32),
}

pub(super) struct Retry {
    policy: Retries,
    attempts: Mutex<HashMap<Job, u32>>,
    /// Retries sleeping before they re-enter the queue.
    waiting: Arc<AtomicUsize>,
    /// The same, by cause: `thumbgen_inputs_waiting` (this catalog's).
    gauge: CatalogMetrics,
    /// The jobs among them, with the cause of their last failure and how many waits each has.
    causes: Arc<Mutex<HashMap<Job, (Cause, usize)>>>,
    space: Arc<SpaceWatch>,
}

/// One failed job's wait; it counts as waiting until dropped.
pub(super) struct Wait {
    delay: Duration,
    space: Option<Arc<SpaceWatch>>,
    _waiting: Waiting,
}

impl Retry {
    /// `storage` are the folders whose free space a full-disk failure waits for.
    /// `gauge` counts the waiting jobs by cause.
    pub(super) fn new(policy: Retries, storage: Vec<PathBuf>, gauge: CatalogMetrics, shutdown: Shutdown) -> Retry {
        Retry {
            policy,
            attempts: Mutex::new(HashMap::new()),
            waiting: Arc::new(AtomicUsize::new(0)),
            gauge,
            causes: Arc::new(Mutex::new(HashMap::new())),
            space: Arc::new(SpaceWatch::new(storage, shutdown)),
        }
    }

    pub(super) fn waiting(&self) -> usize {
        self.waiting.load(Ordering::SeqCst)
    }

    /// What `job` waits for, when it is waiting to be retried.
    pub(super) fn cause_of(&self, job: &Job) -> Option<Cause> {
        self.causes.lock().get(job).map(|(cause, _)| *cause)
    }

    pub(super) fn succeeded(&self, job: &Job) {
        self.attempts.lock().remove(job);
    }

    /// Counts a failure of `job`; the wait before its next attempt, or `None` when the policy
    /// gives up (the file stays for a later run).
    pub(super) fn schedule(&self, job: &Job, failure: &Transient) -> Option<Wait> {
        let attempt = {
            let mut attempts = self.attempts.lock();
            let n = attempts.entry(job.clone()).or_insert(0);
            *n += 1;
            *n
        };
        if let Retries::UpTo(limit) = self.policy {
            if attempt >= limit {
                warn!(input = %job.name, attempts = attempt, "giving up for now: {failure}; the file stays and is tried again on the next run");
                self.attempts.lock().remove(job);
                return None;
            }
        }
        let space = failure.out_of_space().then(|| self.space.clone());
        let delay = match failure.cause() {
            // Nothing changes before the day turns: the job waits for it, and says so once.
            Cause::OverQuota => {
                let now = crate::clock::now();
                let delay = Duration::from_secs((crate::clock::next_midnight(now) - now).max(1) as u64);
                if attempt == 1 {
                    info!(input = %job.name, retry_in_s = delay.as_secs(), "{failure}");
                }
                delay
            }
            _ => {
                let delay = BACKOFF.delay(attempt);
                let early = if space.is_some() { " (or as soon as disk space returns)" } else { "" };
                warn!(input = %job.name, attempt, retry_in_s = delay.as_secs_f32(), "{failure}; retrying{early}");
                delay
            }
        };
        self.waiting.fetch_add(1, Ordering::SeqCst);
        self.gauge.waiting(failure.cause()).inc();
        let mut causes = self.causes.lock();
        let entry = causes.entry(job.clone()).or_insert((failure.cause(), 0));
        *entry = (failure.cause(), entry.1 + 1);
        drop(causes);
        let waiting = Waiting {
            count: self.waiting.clone(),
            gauge: self.gauge.waiting(failure.cause()),
            causes: self.causes.clone(),
            job: job.clone(),
        };
        Some(Wait { delay, space, _waiting: waiting })
    }
}

impl Wait {
    pub(super) fn delay(&self) -> Duration {
        self.delay
    }

    /// Resolves when the job is due again: its delay passed, the remote engine answers again,
    /// or space returned to a full disk.
    pub(super) async fn until_due(&self, status: &Status) {
        let space = async {
            match &self.space {
                Some(space) => space.returned().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(self.delay) => {}
            _ = status.retry_signal() => {}
            _ = space => {}
        }
    }
}

/// Counts a retry as waiting, with its cause, until its wait ends or shutdown cancels it.
struct Waiting {
    count: Arc<AtomicUsize>,
    gauge: prometheus::IntGauge,
    causes: Arc<Mutex<HashMap<Job, (Cause, usize)>>>,
    job: Job,
}

impl Drop for Waiting {
    fn drop(&mut self) {
        let mut causes = self.causes.lock();
        if let Some((_, n)) = causes.get_mut(&self.job) {
            *n -= 1;
            if *n == 0 {
                causes.remove(&self.job);
            }
        }
        self.count.fetch_sub(1, Ordering::SeqCst);
        self.gauge.dec();
    }
}
