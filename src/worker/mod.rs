//! Workers: take jobs from the queue, run the pipeline on a blocking thread, and decide what a
//! result means for the rest of the system — retry later ([`retry`]), queue every product for a
//! new background, count it for the summary ([`tally`]); jobs that were in flight when a process
//! died run alone ([`isolation`]); how many run at once, and whose runs next when tenants share the
//! workers, is [`turns`].

mod isolation;
mod retry;
mod space;
mod tally;
mod turns;

pub(crate) use retry::Retries;
pub(crate) use tally::Tally;
pub(crate) use turns::Turns;

use crate::error::{Cause, JobError, Transient};
use crate::job::Job;
use crate::metrics::Metrics;
use crate::pipeline::{Outcome, Pipeline};
use crate::queue::{WorkQueue, CRASHES_BEFORE_REJECTION};
use crate::shutdown::Shutdown;
use crate::status::Status;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tracing::{error, warn};

/// Freed image buffers go back to the system once the queue has stayed empty this long.
const TRIM_GRACE: Duration = Duration::from_secs(2);
/// The removal model (tens of MB) is released once no job has finished for this long; the next
/// photo loads it again (about 0.1 s with onnxruntime).
const MODEL_GRACE: Duration = Duration::from_secs(60);

/// A catalog's place among those whose workers take turns (one per tenant, design §10).
pub(crate) struct Share {
    pub turns: Arc<Turns>,
    /// Its index among the turns' tenants.
    pub index: usize,
    /// The tenant's name, which its logs carry; `None` without tenants.
    pub tenant: Option<String>,
}

pub(crate) struct Workers {
    pipeline: Arc<Pipeline>,
    queue: Arc<dyn WorkQueue>,
    status: Arc<Status>,
    metrics: Arc<Metrics>,
    retry: retry::Retry,
    shutdown: Shutdown,
    isolation: isolation::Isolation,
    share: Share,
    pub tally: Tally,
}

impl Workers {
    pub(crate) fn new(
        pipeline: Arc<Pipeline>,
        queue: Arc<dyn WorkQueue>,
        status: Arc<Status>,
        metrics: Arc<Metrics>,
        retries: Retries,
        shutdown: Shutdown,
        share: Share,
    ) -> Arc<Workers> {
        // A full disk is one of these: where outputs, rejections and the state are written.
        let storage = pipeline.storage_dirs();
        Arc::new(Workers {
            retry: retry::Retry::new(retries, storage, metrics.catalog.clone(), shutdown.clone()),
            pipeline,
            queue,
            status,
            metrics,
            shutdown,
            isolation: isolation::Isolation::default(),
            share,
            tally: Tally::default(),
        })
    }

    /// Starts `count` workers; each ends when the queue closes. A tenant's workers log under its
    /// name.
    pub(crate) fn spawn(self: &Arc<Self>, count: usize) {
        for _ in 0..count {
            let me = self.clone();
            let span = match &self.share.tenant {
                Some(name) => tracing::info_span!("tenant", tenant = %name),
                None => tracing::Span::none(),
            };
            self.shutdown.spawn(tracing::Instrument::instrument(async move { me.work().await }, span));
        }
    }

    /// What `job` is waiting for when it waits to be retried after a passing failure (the
    /// console's "waiting for the remote engine" is [`Cause::Engine`]); `None` otherwise.
    /// Retries wait in the process whose worker ran the job.
    pub(crate) fn retry_cause(&self, job: &Job) -> Option<Cause> {
        self.retry.cause_of(job)
    }

    /// True when nothing is queued, running or waiting to be retried.
    ///
    /// A job moving on is counted in both places for a moment: a failed run waits before it
    /// leaves the running jobs, and a due retry is queued before it stops waiting. So the
    /// retries are read before and after the queue, and a job moving either way between two
    /// reads is seen by one of them.
    pub(crate) fn all_done(&self) -> bool {
        self.retry.waiting() == 0 && self.queue.is_idle() && self.retry.waiting() == 0
    }

    async fn work(self: Arc<Self>) {
        while let Some(job) = self.queue.pop().await {
            // A turn that comes after the stop, or no turn because the stop came first: the job
            // goes back unrun at once (in cluster mode to another node, its crash count kept;
            // here a restart finds it again), never acknowledged as done.
            let share = self.shutdown.until(self.share.turns.take(self.share.index)).await;
            if share.is_none() || self.shutdown.is_stopping() {
                self.hand_back_unrun(job);
                break;
            }
            let pipeline = self.pipeline.clone();
            let running = job.clone();
            let crashed = self.queue.crashed_runs(&job);
            let suspect = if crashed < CRASHES_BEFORE_REJECTION { crashed } else { 0 };
            let Some(turn) = self.isolation.turn(suspect).await else {
                self.hand_back_unrun(job);
                self.isolation.clear(&self.shutdown).await;
                continue;
            };
            self.queue.start(&job).await;
            if suspect > 0 {
                warn!(
                    input = %job.name,
                    crashed_runs = suspect,
                    "running alone: {suspect} earlier run(s) of this input died with their thumbgen process; \
                     it is rejected if {} in a row do",
                    CRASHES_BEFORE_REJECTION
                );
            }
            let span = tracing::Span::current();
            let result = if crashed >= CRASHES_BEFORE_REJECTION {
                tokio::task::spawn_blocking(move || span.in_scope(|| pipeline.reject_crasher(&running, crashed))).await
            } else {
                tokio::task::spawn_blocking(move || span.in_scope(|| pipeline.run(&running))).await
            };
            drop(turn);
            drop(share);
            self.status.progress();
            match result {
                Ok(Ok(outcome)) => self.finished(&job, outcome).await,
                Ok(Err(JobError::Transient(failure))) => self.failed(&job, failure),
                Ok(Err(other)) => {
                    error!(input = %job.name, "the pipeline returned {other} unhandled");
                    self.failed(&job, Transient::new(Cause::Internal, other.to_string()));
                }
                Err(panic) => {
                    error!(input = %job.name, "internal error while processing: {panic}");
                    self.failed(&job, Transient::new(Cause::Internal, "internal error (see the log)"));
                }
            }
            self.queue.done(&job);
            if self.queue.is_idle() {
                self.release_memory_if_still_idle();
            }
        }
    }

    /// Hands a popped job back without running it: to be taken again soon, by any worker.
    fn hand_back_unrun(&self, job: Job) {
        if !self.queue.set_aside(&job) {
            self.queue.requeue(job.clone());
        }
        self.queue.done(&job);
    }

    /// Gives freed image buffers back to the system once the queue has stayed empty a moment,
    /// and the removal model once nothing has happened for longer: files dropped one by one keep
    /// their warm buffers and model, an idle daemon stays small.
    fn release_memory_if_still_idle(&self) {
        let (queue, shutdown) = (self.queue.clone(), self.shutdown.clone());
        let (pipeline, status) = (self.pipeline.clone(), self.status.clone());
        self.shutdown.spawn(async move {
            if !shutdown.sleep(TRIM_GRACE).await || !queue.is_idle() {
                return;
            }
            crate::memory::release_idle();
            if !shutdown.sleep(MODEL_GRACE - TRIM_GRACE).await {
                return;
            }
            if queue.is_idle() && status.since_progress() >= MODEL_GRACE {
                pipeline.release_engine();
                crate::memory::release_idle();
            }
        });
    }

    async fn finished(&self, job: &Job, outcome: Outcome) {
        if let Outcome::Background { fan_out: Some(hash) } = &outcome {
            if let Err(failure) = self.fan_out(job, hash).await {
                warn!(background = %job.name, "cannot queue the products again for the background: {failure}; trying again");
                self.failed(job, failure);
                return;
            }
        }
        self.retry.succeeded(job);
        match outcome {
            Outcome::Product { written, .. } => {
                self.tally.count(job);
                self.tally.thumbnails.fetch_add(written.len(), Ordering::Relaxed);
            }
            Outcome::Background { .. } => self.tally.count(job),
            Outcome::Rejected => {
                self.tally.count(job);
                self.tally.rejected.fetch_add(1, Ordering::Relaxed);
            }
            Outcome::Gone => {}
        }
    }

    /// Every product gets its output for a new background, from cached cut-outs: all are queued
    /// again (listed after the background registered), then the journal records the fan-out
    /// done. The background's job is acknowledged only after this, so a failure or a death in
    /// between leaves the fan-out owed to its next run. Listing and recording are I/O: off the
    /// runtime's threads.
    async fn fan_out(&self, background: &Job, hash: &str) -> Result<(), Transient> {
        let lister = self.pipeline.clone();
        let products = tokio::task::spawn_blocking(move || lister.products())
            .await
            .map_err(|e| Transient::new(Cause::Internal, "listing the products stopped").because(e))??;
        crate::pipeline::crash_on_purpose(&background.name);
        self.queue.requeue_all(products).await?;
        let (pipeline, name, hash) = (self.pipeline.clone(), background.name.clone(), hash.to_owned());
        tokio::task::spawn_blocking(move || pipeline.fanned_out(&name, &hash))
            .await
            .map_err(|e| Transient::new(Cause::Internal, "recording the fan-out stopped").because(e))?
    }

    fn failed(&self, job: &Job, failure: Transient) {
        if failure.cause() == Cause::OverQuota {
            // Not a failure: it waits for the next day, once (a rescan that ran it again meanwhile
            // leaves it to the wait it has).
            if self.retry.cause_of(job) == Some(Cause::OverQuota) {
                return;
            }
        } else {
            self.metrics.transient_failures.inc();
        }
        let Some(wait) = self.retry.schedule(job, &failure) else {
            self.tally.failed.fetch_add(1, Ordering::Relaxed);
            return;
        };
        if self.queue.defer(job, wait.delay()) {
            return; // the queue delivers it again, to any worker
        }
        let (queue, job, status, shutdown) =
            (self.queue.clone(), job.clone(), self.status.clone(), self.shutdown.clone());
        self.shutdown.spawn(async move {
            let woken = shutdown.until(wait.until_due(&status)).await;
            if woken.is_some() {
                queue.push(job);
            }
            // Waiting until queued: `thumbgen process` must never see it in neither place and
            // stop with the job unrun and uncounted.
            drop(wait);
        });
    }
}

#[cfg(test)]
mod tests;
