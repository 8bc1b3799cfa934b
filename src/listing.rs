//! Listing: with the catalog in a bucket, new and replaced objects are found by listing it
//! (ListObjectsV2) — the one way every S3-compatible store supports (design §9).
//!
//! S3 has no change feed and lists keys in lexical order only, so the lister does three things:
//! - a **tail** listing of each input folder (`start-after` the last key seen) finds new keys that
//!   sort after the others (camera and upload names mostly do) with one small request;
//! - the tail is listed **adaptively**: every `min` interval while objects arrive, doubling to
//!   `max` while nothing does (an idle hour costs about 2 × 3 600 / `max` requests);
//! - a full **sweep** every `RESCAN_INTERVAL` (and at start, after a queue overflow or when asked)
//!   finds everything else: keys that sort earlier, replaced objects (a new ETag), deleted ones.
//!
//! An object is queued once per version (its stamp: size, LastModified, ETag); objects appear
//! whole, so nothing waits to settle. `thumbgen_discovery_lag_seconds` observes LastModified →
//! queued for objects written while the lister runs.

use crate::catalog::bucket::{is_input, stamp, Bucket, Listed};
use crate::cluster::Cluster;
use crate::disk::FileStamp;
use crate::job::{InputKind, Job};
use crate::metrics::{Metrics, StorageMetrics};
use crate::sync::Mutex;
use crate::queue::WorkQueue;
use crate::shutdown::Shutdown;
use crate::status::{FirstScan, Status};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::{debug, info, warn};

/// How often a node that does not list looks whether the lister lease came free.
const TURN_CHECK: Duration = Duration::from_secs(5);

#[derive(Clone, Debug)]
pub(crate) struct ListingSettings {
    /// The tail is listed this often while objects arrive.
    pub min: Duration,
    /// … and backs off to this while none do.
    pub max: Duration,
    /// A full listing this often.
    pub sweep: Duration,
}

/// The object versions queued so far, shared by the lister and the webhook (`POST /hooks/s3`), so
/// an object found both ways is queued once.
pub(crate) struct Discovered {
    queue: Arc<dyn WorkQueue>,
    metrics: Arc<Metrics>,
    storage: StorageMetrics,
    /// Each input's stamp when it was last queued.
    queued_as: Mutex<HashMap<Job, FileStamp>>,
    started: chrono::DateTime<chrono::Utc>,
}

impl Discovered {
    pub(crate) fn new(queue: Arc<dyn WorkQueue>, metrics: Arc<Metrics>, storage: StorageMetrics) -> Arc<Discovered> {
        Arc::new(Discovered {
            queue,
            metrics,
            storage,
            queued_as: Mutex::default(),
            // Stores keep LastModified to the second: an object written in the second the lister
            // started counts as written while it runs.
            started: chrono::Utc::now() - chrono::TimeDelta::seconds(1),
        })
    }

    /// Queues this version of an input unless it was queued already; true when it was queued now.
    pub(crate) fn offer(&self, job: Job, look: FileStamp, modified: chrono::DateTime<chrono::Utc>) -> bool {
        if self.queued_as.lock().get(&job) == Some(&look) {
            return false;
        }
        self.metrics.files_detected.with_label_values(&[job.kind.label()]).inc();
        if !self.queue.push(job.clone()) {
            return false;
        }
        self.queued_as.lock().insert(job, look);
        if modified >= self.started {
            let lag = (chrono::Utc::now() - modified).to_std().unwrap_or_default();
            self.storage.discovery_lag.observe(lag.as_secs_f64());
        }
        true
    }

    /// Queues the inputs of `kind` queued before that are no longer `present` (their jobs forget
    /// them); true when there was one.
    fn gone(&self, kind: InputKind, present: &HashSet<&str>) -> bool {
        let gone: Vec<Job> = {
            let mut queued_as = self.queued_as.lock();
            let gone: Vec<Job> =
                queued_as.keys().filter(|j| j.kind == kind && !present.contains(j.name.as_str())).cloned().collect();
            for job in &gone {
                queued_as.remove(job);
            }
            gone
        };
        for job in &gone {
            debug!(input = %job.name, "left the bucket");
            self.queue.push(job.clone());
        }
        !gone.is_empty()
    }
}

pub(crate) struct Lister {
    bucket: Arc<Bucket>,
    /// In cluster mode: one node lists for all, the holder of the lister lease.
    cluster: Option<Arc<Cluster>>,
    discovered: Arc<Discovered>,
    queue: Arc<dyn WorkQueue>,
    status: Arc<Status>,
    settings: ListingSettings,
    first_scan: FirstScan,
    /// Per folder, the last key listed: where the tail listing starts.
    tail: HashMap<InputKind, String>,
    /// Rescans asked for that this lister has seen.
    rescans_seen: u64,
}

impl Lister {
    pub(crate) fn new(
        bucket: Arc<Bucket>,
        cluster: Option<Arc<Cluster>>,
        discovered: Arc<Discovered>,
        queue: Arc<dyn WorkQueue>,
        status: Arc<Status>,
        settings: ListingSettings,
        first_scan: FirstScan,
    ) -> Lister {
        let rescans_seen = status.rescans_asked();
        Lister { bucket, cluster, discovered, queue, status, settings, first_scan, tail: HashMap::new(), rescans_seen }
    }

    /// Runs until shutdown: a sweep at start (readiness waits for it), then tails and sweeps. In
    /// cluster mode only the node holding the lister lease lists; the others look every few
    /// seconds whether it is theirs (its holder stopped), and begin with a sweep when it is.
    pub(crate) async fn run(mut self, shutdown: Shutdown) {
        self.status.set_watch_mode("list");
        let mut listing = self.my_turn().await;
        if listing && self.cluster.is_some() {
            info!(bucket = %self.bucket.url(), "this node lists the bucket for the cluster");
        }
        while listing && self.sweep().await.is_none() {
            // A store that does not answer yet: readiness waits, the health check says why.
            if !shutdown.sleep(self.settings.min.max(Duration::from_secs(1))).await {
                return;
            }
        }
        self.first_scan.done();
        info!(
            bucket = %self.bucket.url(),
            every_s = self.settings.min.as_secs_f64(),
            idle_up_to_s = self.settings.max.as_secs_f64(),
            sweep_s = self.settings.sweep.as_secs_f64(),
            "listing the bucket for new photos and backgrounds"
        );
        let mut interval = self.settings.min;
        let mut last_sweep = Instant::now();
        while shutdown.sleep(interval).await {
            let mut sweep_due = last_sweep.elapsed() >= self.settings.sweep;
            match (listing, self.my_turn().await) {
                (_, false) => {
                    listing = false;
                    interval = TURN_CHECK;
                    continue;
                }
                (false, true) => {
                    info!(bucket = %self.bucket.url(), "this node lists the bucket for the cluster now");
                    listing = true;
                    sweep_due = true;
                }
                (true, true) => {}
            }
            let found = if sweep_due || self.queue.take_overflow() || self.status.rescan_requested(&mut self.rescans_seen) {
                let swept = self.sweep().await;
                if swept.is_some() {
                    last_sweep = Instant::now();
                }
                swept.unwrap_or(false)
            } else {
                self.tails().await
            };
            interval = if found { self.settings.min } else { (interval * 2).min(self.settings.max) };
        }
    }

    /// Whether this node lists now: always alone, the lease holder in a cluster.
    async fn my_turn(&self) -> bool {
        let Some(cluster) = &self.cluster else { return true };
        cluster.holds_listing().await
    }

    /// Lists each folder in full: queues what is new or changed and what left. `None` when a
    /// listing failed, else whether something was queued.
    async fn sweep(&mut self) -> Option<bool> {
        let mut queued = false;
        for kind in InputKind::ALL {
            let listed = match self.bucket.list(kind.label(), None).await {
                Ok(listed) => listed,
                Err(e) => {
                    warn!("cannot list {}: {e}; listing again soon", self.bucket.key_url(kind.label()));
                    return None;
                }
            };
            if let Some(last) = listed.last() {
                self.tail.insert(kind, last.name.clone());
            }
            let present: HashSet<&str> = listed.iter().filter(|l| is_input(&l.name)).map(|l| l.name.as_str()).collect();
            queued |= self.discovered.gone(kind, &present);
            queued |= self.take_all(kind, &listed);
        }
        Some(queued)
    }

    /// Lists each folder after its last key; true when something new was queued.
    async fn tails(&mut self) -> bool {
        let mut queued = false;
        for kind in InputKind::ALL {
            let after = self.tail.get(&kind).cloned();
            match self.bucket.list(kind.label(), after.as_deref()).await {
                Ok(listed) => {
                    if let Some(last) = listed.last() {
                        self.tail.insert(kind, last.name.clone());
                    }
                    queued |= self.take_all(kind, &listed);
                }
                Err(e) => warn!("cannot list {}: {e}; listing again soon", self.bucket.key_url(kind.label())),
            }
        }
        queued
    }

    /// Queues every listed input whose version was not queued yet; true when one was.
    fn take_all(&mut self, kind: InputKind, listed: &[Listed]) -> bool {
        let mut queued = false;
        for object in listed.iter().filter(|l| is_input(&l.name)) {
            let look = stamp(object.size, object.modified, object.etag.as_deref());
            queued |= self.discovered.offer(Job::new(kind, object.name.clone()), look, object.modified);
        }
        queued
    }
}
