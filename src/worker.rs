//! Workers: take jobs from the queue, run the pipeline on a blocking thread, and decide what a
//! result means for the rest of the system (retry later, queue every product for a new
//! background, count it for the summary).

use crate::error::JobError;
use crate::metrics::Metrics;
use crate::pipeline::{Job, Outcome, Pipeline};
use crate::queue::Queue;
use crate::state::Folder;
use crate::status::Status;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::broadcast;
use tracing::{error, warn};

/// Longest wait between two attempts of a failing job.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// How often a transient failure is retried.
#[derive(Clone, Copy, Debug)]
pub enum Retries {
    /// The daemon never gives up on a file: it stays and is retried with growing pauses.
    Forever,
    /// `thumbgen process` gives up after this many attempts and reports the file as pending.
    UpTo(u32),
}

/// Counts for the end-of-run summary.
#[derive(Default)]
pub struct Tally {
    /// Distinct inputs finished (a product re-run for a new background counts once).
    seen: Mutex<std::collections::HashSet<Job>>,
    pub thumbnails: AtomicUsize,
    pub rejected: AtomicUsize,
    pub failed: AtomicUsize,
}

impl Tally {
    fn count(&self, job: &Job) {
        self.seen.lock().unwrap().insert(job.clone());
    }

    /// Distinct inputs finished so far.
    pub fn inputs(&self) -> usize {
        self.seen.lock().unwrap().len()
    }
}

pub struct Workers {
    pub pipeline: Arc<Pipeline>,
    pub queue: Arc<Queue>,
    pub status: Arc<Status>,
    pub metrics: Arc<Metrics>,
    pub retries: Retries,
    pub tally: Tally,
    attempts: Mutex<HashMap<Job, u32>>,
    /// Retries sleeping before they re-enter the queue.
    waiting: Arc<AtomicUsize>,
    base_backoff: Duration,
}

impl Workers {
    pub fn new(
        pipeline: Arc<Pipeline>,
        queue: Arc<Queue>,
        status: Arc<Status>,
        metrics: Arc<Metrics>,
        retries: Retries,
        base_backoff: Duration,
    ) -> Arc<Workers> {
        Arc::new(Workers {
            pipeline,
            queue,
            status,
            metrics,
            retries,
            tally: Tally::default(),
            attempts: Mutex::new(HashMap::new()),
            waiting: Arc::new(AtomicUsize::new(0)),
            base_backoff,
        })
    }

    /// Starts `count` workers; each ends when the queue closes.
    pub fn spawn(self: &Arc<Self>, count: usize, shutdown: &broadcast::Sender<()>) -> Vec<tokio::task::JoinHandle<()>> {
        (0..count)
            .map(|_| {
                let me = self.clone();
                let shutdown = shutdown.clone();
                tokio::spawn(async move { me.work(shutdown).await })
            })
            .collect()
    }

    /// True when nothing is queued, running or waiting to be retried.
    pub fn all_done(&self) -> bool {
        self.queue.is_idle() && self.waiting.load(Ordering::SeqCst) == 0
    }

    async fn work(self: Arc<Self>, shutdown: broadcast::Sender<()>) {
        while let Some(job) = self.queue.pop().await {
            let pipeline = self.pipeline.clone();
            let running = job.clone();
            let result = tokio::task::spawn_blocking(move || pipeline.run(&running)).await;
            self.status.progress();
            match result {
                Ok(Ok(outcome)) => self.finished(&job, outcome),
                Ok(Err(JobError::Transient(reason))) => self.failed(&job, reason, &shutdown),
                Ok(Err(other)) => self.failed(&job, other.to_string(), &shutdown),
                Err(panic) => {
                    error!(input = %job.name, "internal error while processing: {panic}");
                    self.failed(&job, "internal error (see the log)".into(), &shutdown);
                }
            }
            self.queue.done(&job);
            if self.queue.is_idle() {
                self.release_memory_if_still_idle();
            }
        }
    }

    /// Gives freed image buffers back to the system once the queue has stayed empty a moment:
    /// files dropped one by one keep their warm buffers, an idle daemon stays small.
    fn release_memory_if_still_idle(self: &Arc<Self>) {
        const GRACE: Duration = Duration::from_secs(2);
        let me = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(GRACE).await;
            if me.queue.is_idle() {
                crate::memory::release_idle();
            }
        });
    }

    fn finished(&self, job: &Job, outcome: Outcome) {
        self.attempts.lock().unwrap().remove(job);
        match outcome {
            Outcome::Product { written, .. } => {
                self.tally.count(job);
                self.tally.thumbnails.fetch_add(written.len(), Ordering::Relaxed);
            }
            Outcome::Background { changed } => {
                self.tally.count(job);
                if changed {
                    // Every product gets its output for this background, from cached cut-outs.
                    for product in crate::watch::all_inputs(self.pipeline.folders()) {
                        if product.folder == Folder::Product {
                            self.queue.push(product);
                        }
                    }
                }
            }
            Outcome::Rejected(_) => {
                self.tally.count(job);
                self.tally.rejected.fetch_add(1, Ordering::Relaxed);
            }
            Outcome::Gone => {}
        }
    }

    fn failed(&self, job: &Job, reason: String, shutdown: &broadcast::Sender<()>) {
        self.metrics.transient_failures.inc();
        let attempt = {
            let mut attempts = self.attempts.lock().unwrap();
            let n = attempts.entry(job.clone()).or_insert(0);
            *n += 1;
            *n
        };
        if let Retries::UpTo(limit) = self.retries {
            if attempt >= limit {
                warn!(input = %job.name, attempts = attempt, "giving up for now: {reason}; the file stays and is tried again on the next run");
                self.tally.failed.fetch_add(1, Ordering::Relaxed);
                self.attempts.lock().unwrap().remove(job);
                return;
            }
        }
        let delay = backoff(self.base_backoff, attempt);
        warn!(input = %job.name, attempt, retry_in_s = delay.as_secs_f32(), "{reason}");
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let queue = self.queue.clone();
        let job = job.clone();
        let mut stop = shutdown.subscribe();
        let waiting = WaitingGuard(self.waiting.clone());
        let status = self.status.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = tokio::time::sleep(delay) => { queue.push(job); }
                _ = status.retry_signal() => { queue.push(job); }
                _ = stop.recv() => {}
            }
            drop(waiting);
        });
    }
}

/// Exponential backoff with ±20 % jitter, capped at [`MAX_BACKOFF`].
fn backoff(base: Duration, attempt: u32) -> Duration {
    let exp = base.saturating_mul(1u32 << attempt.saturating_sub(1).min(16)).min(MAX_BACKOFF);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    let jitter = 0.8 + (nanos % 400) as f64 / 1000.0;
    exp.mul_f64(jitter)
}

/// Counts a retry as waiting until its timer fires or shutdown cancels it.
struct WaitingGuard(Arc<AtomicUsize>);

impl Drop for WaitingGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}
