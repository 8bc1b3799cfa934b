//! The outbox between the watcher and the stream: pushing a job never waits on the network.
//!
//! Jobs wait here (deduplicated, bounded by the queue capacity) until a publisher task gets them
//! into the work-queue stream; while the broker is unreachable they stay, and when the outbox is
//! full the push is refused and the watcher's rescan finds the file again later. A publish of a
//! new file version carries a message id made of the input's subject and stamp, so the same file
//! seen by several scanning nodes becomes one job (JetStream de-duplication); requeues carry none.
//! The stream keeps at most two jobs per input (one running, one waiting): a publish beyond that
//! is refused by the broker and counts as done, since it would add nothing.

use super::broker::Broker;
use super::BrokerError;
use crate::disk::FileStamp;
use crate::catalog::bucket::{stamp, Bucket};
use crate::folders::Folders;
use crate::job::Job;
use crate::shutdown::Shutdown;
use crate::sync::Mutex;
use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::{self, ErrorCode};
use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tracing::debug;

/// Publishes sent before their acknowledgements are awaited.
const PUBLISH_BATCH: usize = 64;
/// Pause after the broker could not be reached.
const PAUSE: Duration = Duration::from_millis(500);

struct Pending {
    job: Job,
    /// Merged with other publishes of the same file version (false for requeues).
    merge: bool,
}

#[derive(Default)]
struct Waiting {
    order: VecDeque<Pending>,
    queued: HashSet<Job>,
}

/// Where the version (stamp) of a file is read for its message id: the shared folders, or the
/// bucket (a HEAD).
#[derive(Clone)]
pub(crate) enum Versions {
    Folders(Folders),
    Bucket(Arc<Bucket>),
}

impl Versions {
    async fn stamp(&self, job: &Job) -> Option<FileStamp> {
        match self {
            Versions::Folders(folders) => FileStamp::look(&folders.input_dir(job.kind).join(&job.name)),
            Versions::Bucket(bucket) => {
                let head = bucket.head(&bucket.key(job.kind.label(), &job.name)).await.ok()?;
                Some(stamp(head.size, head.modified, head.etag.as_deref()))
            }
        }
    }
}

pub(super) struct Outbox {
    broker: Arc<Broker>,
    versions: Versions,
    shutdown: Shutdown,
    capacity: usize,
    waiting: Mutex<Waiting>,
    ready: Notify,
    overflowed: AtomicBool,
    depth: prometheus::IntGauge,
}

impl Outbox {
    /// An empty outbox whose publisher runs until shutdown.
    pub(super) fn new(
        broker: Arc<Broker>,
        versions: Versions,
        capacity: usize,
        depth: prometheus::IntGauge,
        shutdown: Shutdown,
    ) -> Arc<Outbox> {
        let outbox = Arc::new(Outbox {
            broker,
            versions,
            shutdown: shutdown.clone(),
            capacity,
            waiting: Mutex::default(),
            ready: Notify::new(),
            overflowed: AtomicBool::new(false),
            depth,
        });
        shutdown.spawn(outbox.clone().publish());
        outbox
    }

    /// Jobs not yet in the stream.
    pub(super) fn len(&self) -> usize {
        self.waiting.lock().order.len()
    }

    /// Whether `job` waits here to be published.
    pub(super) fn holds(&self, job: &Job) -> bool {
        self.waiting.lock().queued.contains(job)
    }

    /// Whether a push was refused since the last call.
    pub(super) fn take_overflow(&self) -> bool {
        self.overflowed.swap(false, Ordering::SeqCst)
    }

    /// Queues `job` for publishing; `merge` lets publishes of the same file version become one
    /// job. False when the outbox is full.
    pub(super) fn push(&self, job: Job, merge: bool) -> bool {
        let mut outbox = self.waiting.lock();
        if outbox.queued.contains(&job) {
            if !merge {
                outbox.order.iter_mut().filter(|p| p.job == job).for_each(|p| p.merge = false);
            }
            return true;
        }
        if outbox.queued.len() >= self.capacity {
            self.overflowed.store(true, Ordering::SeqCst);
            return false;
        }
        outbox.queued.insert(job.clone());
        outbox.order.push_back(Pending { job, merge });
        self.depth.set(outbox.order.len() as i64);
        drop(outbox);
        self.ready.notify_one();
        true
    }

    /// Drains the outbox into the stream until shutdown.
    async fn publish(self: Arc<Self>) {
        loop {
            let batch: Vec<(Job, bool)> =
                self.waiting.lock().order.iter().take(PUBLISH_BATCH).map(|p| (p.job.clone(), p.merge)).collect();
            if batch.is_empty() {
                if self.shutdown.until(self.ready.notified()).await.is_none() {
                    return;
                }
                continue;
            }
            if !self.broker.connected() {
                if !self.shutdown.sleep(PAUSE).await {
                    return;
                }
                continue;
            }
            let (published, failed) = self.send(batch).await;
            if let Some(e) = failed {
                debug!("cannot publish jobs yet ({e}); keeping them");
            }
            let stalled = published.is_empty();
            {
                let mut outbox = self.waiting.lock();
                for job in published {
                    outbox.queued.remove(&job);
                    if let Some(at) = outbox.order.iter().position(|p| p.job == job) {
                        outbox.order.remove(at);
                    }
                }
                self.depth.set(outbox.order.len() as i64);
            }
            if stalled && !self.shutdown.sleep(PAUSE).await {
                return;
            }
        }
    }

    /// Publishes `jobs` (requeues: no message id) now, past the outbox and its bound, and returns
    /// once the stream holds them: what must not wait in memory, such as a new background's
    /// products, whose record of being queued is written only after this.
    pub(super) async fn publish_now(&self, jobs: Vec<Job>) -> Result<(), BrokerError> {
        let mut jobs = jobs.into_iter().peekable();
        while jobs.peek().is_some() {
            if !self.broker.connected() {
                return Err(BrokerError::unavailable("cannot queue jobs"));
            }
            let batch: Vec<(Job, bool)> = jobs.by_ref().take(PUBLISH_BATCH).map(|job| (job, false)).collect();
            if let (_, Some(e)) = self.send(batch).await {
                return Err(BrokerError::new("cannot queue jobs", e));
            }
        }
        Ok(())
    }

    /// Sends a batch, then awaits the acknowledgements: the jobs the stream took (or refused as
    /// adding nothing), in order, up to the first failure, which is returned with them.
    async fn send(&self, batch: Vec<(Job, bool)>) -> (Vec<Job>, Option<jetstream::context::PublishError>) {
        let mut sent = Vec::new();
        for (job, merge) in &batch {
            let mut message = jetstream::message::PublishMessage::build().payload(job.name.clone().into_bytes().into());
            if *merge {
                message = message.message_id(self.message_id(job).await);
            }
            sent.push(self.broker.js.send_publish(self.broker.names.subject(job), message).await);
        }
        let mut published = Vec::new();
        for (result, (job, _)) in sent.into_iter().zip(batch) {
            let acked = match result {
                Ok(ack) => ack.await,
                Err(e) => Err(e),
            };
            match acked {
                Ok(_) => published.push(job),
                // The input already has a job running and one waiting: this one adds nothing.
                Err(e) if already_queued(&e) => published.push(job),
                Err(e) => {
                    if e.kind() == PublishErrorKind::StreamNotFound {
                        self.broker.lost();
                    }
                    return (published, Some(e));
                }
            }
        }
        (published, None)
    }

    /// The id that makes publishes of one file version one job: kind, name and stamp.
    async fn message_id(&self, job: &Job) -> String {
        let stamp = self.versions.stamp(job).await;
        let stamp = stamp.map_or("gone".into(), |s| format!("{}:{}:{}", s.len, s.mtime_ns, s.ino));
        let mut h = blake3::Hasher::new();
        for part in [self.broker.names.subject(job).as_str(), &stamp] {
            h.update(part.as_bytes());
            h.update(b"\0");
        }
        h.finalize().to_hex()[..32].to_owned()
    }
}

/// Whether a publish was refused because the input already has its jobs queued.
fn already_queued(e: &jetstream::context::PublishError) -> bool {
    use std::error::Error as _;
    e.source()
        .and_then(|s| s.downcast_ref::<jetstream::Error>())
        .is_some_and(|j| j.error_code() == ErrorCode::STREAM_STORE_FAILED)
}
