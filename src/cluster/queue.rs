//! The cluster's work queue: jobs are messages on a JetStream work-queue stream, one subject per
//! input, shared by every node.
//!
//! - Pushing hands the job to the [`super::outbox`], which publishes it without making the watcher
//!   wait on the network.
//! - Popping takes backgrounds first. A job is held under a lease (see [`super::leases`]) so no two
//!   nodes run one input at once; while it runs, in-progress acks keep its deadline alive; done,
//!   it is acknowledged; failed for a passing reason, it is handed back with a delay; a node that
//!   dies holding it loses it to another node when the ack deadline passes.

use super::broker::{Broker, Handles};
use super::gauges::Gauges;
use super::keepalive::keep_alive;
use super::leases::{self, Taken};
use super::names::key;
use super::nodes::Nodes;
use super::outbox::{Outbox, Versions};
use super::replica::Replica;
use super::starting::Starting;
use super::status::{record_dead_letter, DeadLetter};
use crate::error::{Cause, Transient};
use crate::job::{InputKind, Job};
use crate::queue::{Place, WorkQueue, CRASHES_BEFORE_REJECTION};
use crate::shutdown::Shutdown;
use crate::sync::Mutex;
use async_nats::jetstream::{self, AckKind};
use futures_util::StreamExt;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tracing::warn;

/// Longest wait of one pull for a product job.
const LONG_POLL: Duration = Duration::from_secs(1);
/// Pause after the broker could not be reached.
const PAUSE: Duration = Duration::from_millis(500);
/// A job whose lease is held elsewhere comes back after this.
const BUSY_DELAY: Duration = Duration::from_secs(1);

/// A job this node is running.
struct Running {
    message: Arc<jetstream::Message>,
    lease: String,
    revision: u64,
    crashed: u32,
    /// Handed back with a delay: no acknowledgement when it is done.
    deferred: bool,
    /// Handed back unrun: its lease is parked, not released, so its crash count survives.
    parked: bool,
    /// Its run began ([`WorkQueue::start`]); until then its worker waits for a turn holding it.
    started: bool,
    progress: tokio::task::AbortHandle,
}

pub(crate) struct ClusterQueue {
    broker: Arc<Broker>,
    nodes: Arc<Nodes>,
    replica: Arc<Replica>,
    shutdown: Shutdown,
    outbox: Arc<Outbox>,
    running: Mutex<HashMap<Job, Running>>,
    /// Jobs between the "not running here" check and their entry in `running`.
    starting: Starting,
    closed: AtomicBool,
    gauges: Gauges,
}

impl ClusterQueue {
    pub(super) fn new(
        broker: Arc<Broker>,
        nodes: Arc<Nodes>,
        replica: Arc<Replica>,
        versions: Versions,
        capacity: usize,
        gauges: Gauges,
        shutdown: Shutdown,
    ) -> Arc<ClusterQueue> {
        Arc::new(ClusterQueue {
            outbox: Outbox::new(broker.clone(), versions, capacity, gauges.depth.clone(), shutdown.clone()),
            broker,
            nodes,
            replica,
            shutdown,
            running: Mutex::default(),
            starting: Starting::default(),
            closed: AtomicBool::new(false),
            gauges,
        })
    }

    /// The next message, backgrounds first; `None` when none came within the long poll.
    async fn next_message(&self, handles: &Handles) -> Result<Option<jetstream::Message>, ()> {
        let now = handles.consumer(InputKind::Background).fetch().max_messages(1).messages().await;
        if let Some(message) = now.map_err(|_| ())?.next().await {
            return message.map(Some).map_err(|_| ());
        }
        let polled = handles.consumer(InputKind::Product).batch().max_messages(1).expires(LONG_POLL).messages().await;
        match polled.map_err(|_| ())?.next().await {
            Some(message) => message.map(Some).map_err(|_| ()),
            None => Ok(None),
        }
    }

    async fn take(&self) -> Option<Job> {
        loop {
            if self.closed.load(Ordering::SeqCst) || self.shutdown.is_stopping() {
                return None;
            }
            let Some(handles) = self.broker.handles().filter(|_| self.broker.connected()) else {
                self.shutdown.sleep(PAUSE).await;
                continue;
            };
            let message = match self.shutdown.until(self.next_message(&handles)).await {
                None => return None,
                Some(Ok(Some(message))) => message,
                Some(Ok(None)) => continue,
                Some(Err(())) => {
                    self.shutdown.sleep(PAUSE).await;
                    continue;
                }
            };
            if let Some(job) = self.hold(&handles, message).await {
                return Some(job);
            }
        }
    }

    /// Takes the lease of a fetched job; `None` when it must wait (the message is handed back).
    async fn hold(&self, handles: &Handles, message: jetstream::Message) -> Option<Job> {
        let Some(job) = self.broker.names.job_of(&message.subject) else {
            warn!(subject = %message.subject, "a message that is not a thumbgen job; dropping it");
            let _ = message.ack_with(AckKind::Term).await;
            return None;
        };
        if message.info().is_ok_and(|i| i.delivered > 1) {
            self.gauges.redeliveries.inc();
            self.nodes.redeliveries.fetch_add(1, Ordering::Relaxed);
        }
        // Checked and marked at once: another worker of this node holding a second message for
        // the same input finds it starting (or running) and hands its message back.
        let mark = {
            let running = self.running.lock();
            let free = !self.closed.load(Ordering::SeqCst) && !running.contains_key(&job);
            free.then(|| self.starting.mark(&job)).flatten()
        };
        let lease = key::job_lease(job.kind, &job.name);
        let taken = match mark {
            None => Ok(Taken::Busy),
            Some(_) => leases::take(&handles.journal, &lease, &self.nodes).await,
        };
        let (revision, crashed) = match taken {
            Ok(Taken::Held { revision, crashed }) => (revision, crashed),
            Ok(Taken::Busy) | Err(_) => {
                let _ = message.ack_with(AckKind::Nak(Some(BUSY_DELAY))).await;
                return None;
            }
        };
        // Everything the node before recorded is in the journal before this lease: wait for it.
        if !self.replica.caught_up(revision, Duration::from_secs(5)).await {
            let _ = leases::release(&handles.journal, &lease, revision).await;
            let _ = message.ack_with(AckKind::Nak(Some(BUSY_DELAY))).await;
            return None;
        }
        let message = Arc::new(message);
        let progress = self.shutdown.spawn(keep_alive(message.clone(), self.broker.ack_wait() / 3)).abort_handle();
        let mut running = self.running.lock();
        running.insert(
            job.clone(),
            Running { message, lease, revision, crashed, deferred: false, parked: false, started: false, progress },
        );
        Some(job)
    }

    /// Ends a running job's lease and answers its message (`ack` is `None` for a deferred job,
    /// whose answer was already sent).
    fn finish(&self, running: Running, ack: Option<AckKind>) {
        running.progress.abort();
        let Some(handles) = self.broker.handles() else { return };
        let (shutdown, nodes) = (self.shutdown.clone(), self.nodes.clone());
        self.shutdown.spawn(async move {
            if let Some(kind) = ack {
                let _ = match kind {
                    AckKind::Ack => running.message.double_ack().await,
                    other => running.message.ack_with(other).await,
                };
            }
            // A lease left behind would keep the input from every other node while this one
            // lives: keep trying until the broker hears it (or this node stops, which ends it).
            let (bucket, lease, revision) = (&handles.journal, &running.lease, running.revision);
            while !if running.parked {
                leases::park(bucket, lease, revision, running.crashed, &nodes).await
            } else {
                leases::release(bucket, lease, revision).await
            } {
                if !shutdown.sleep(PAUSE).await {
                    break;
                }
            }
        });
    }
}

impl WorkQueue for ClusterQueue {
    fn push(&self, job: Job) -> bool {
        self.outbox.push(job, true)
    }

    fn requeue(&self, job: Job) -> bool {
        self.outbox.push(job, false)
    }

    /// Published at once, past the outbox: resolved when the stream holds them all.
    fn requeue_all(&self, jobs: Vec<Job>) -> Pin<Box<dyn Future<Output = Result<(), Transient>> + Send + '_>> {
        Box::pin(async move {
            self.outbox
                .publish_now(jobs)
                .await
                .map_err(|e| Transient::new(Cause::Storage, "cannot queue the jobs on the NATS broker").because(e))
        })
    }

    fn pop(&self) -> Pin<Box<dyn Future<Output = Option<Job>> + Send + '_>> {
        Box::pin(self.take())
    }

    fn done(&self, job: &Job) {
        let removed = {
            let mut running = self.running.lock();
            let removed = running.remove(job);
            self.gauges.running(running.values().filter(|r| r.started).count());
            removed
        };
        let Some(running) = removed else { return };
        let ack = (!running.deferred).then_some(AckKind::Ack);
        if ack.is_some() {
            self.nodes.jobs_done.fetch_add(1, Ordering::Relaxed);
        }
        // A job rejected for killing its workers is kept for `thumbgen cluster status`.
        if let Some(handles) = self.broker.handles().filter(|_| running.crashed >= CRASHES_BEFORE_REJECTION) {
            let letter = DeadLetter::new(job, running.crashed, &self.nodes.me.node);
            self.shutdown.spawn(async move { record_dead_letter(&handles, &letter).await });
        }
        self.finish(running, ack);
    }

    fn defer(&self, job: &Job, delay: Duration) -> bool {
        let mut running = self.running.lock();
        let Some(entry) = running.get_mut(job) else { return false };
        entry.deferred = true;
        let message = entry.message.clone();
        self.shutdown.spawn(async move {
            let _ = message.ack_with(AckKind::Nak(Some(delay))).await;
        });
        true
    }

    fn set_aside(&self, job: &Job) -> bool {
        let mut running = self.running.lock();
        let Some(entry) = running.get_mut(job) else { return false };
        entry.deferred = true;
        entry.parked = true;
        let message = entry.message.clone();
        self.shutdown.spawn(async move {
            let _ = message.ack_with(AckKind::Nak(Some(BUSY_DELAY))).await;
        });
        true
    }

    fn crashed_runs(&self, job: &Job) -> u32 {
        self.running.lock().get(job).map_or(0, |r| r.crashed)
    }

    fn start(&self, job: &Job) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        let job = job.clone();
        Box::pin(async move {
            {
                let mut running = self.running.lock();
                if let Some(entry) = running.get_mut(&job) {
                    entry.started = true;
                }
                self.gauges.running(running.values().filter(|r| r.started).count());
            }
            let Some(handles) = self.broker.handles() else { return };
            let Some((lease, revision, crashed)) =
                self.running.lock().get(&job).map(|r| (r.lease.clone(), r.revision, r.crashed))
            else {
                return;
            };
            if let Some(started) = leases::start(&handles.journal, &lease, revision, crashed, &self.nodes).await {
                if let Some(running) = self.running.lock().get_mut(&job) {
                    running.revision = started;
                }
            }
        })
    }

    fn take_overflow(&self) -> bool {
        self.outbox.take_overflow()
    }

    fn is_idle(&self) -> bool {
        self.outbox.len() == 0 && self.running.lock().is_empty()
    }

    fn len(&self) -> usize {
        self.outbox.len()
    }

    fn running(&self) -> usize {
        self.running.lock().values().filter(|r| r.started).count()
    }

    /// What this node knows without asking the broker: the jobs it runs, and those it has not
    /// published yet. A job in the stream, or running on another node, is `None` here.
    fn place(&self, job: &Job) -> Option<Place> {
        if self.running.lock().get(job).is_some_and(|r| r.started && !r.deferred) {
            Some(Place::Running)
        } else {
            self.outbox.holds(job).then_some(Place::Waiting)
        }
    }

    fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
    }

    fn hand_back(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(async move {
            let unfinished: Vec<Running> = {
                let mut running = self.running.lock();
                self.gauges.running(0);
                running.drain().map(|(_, r)| r).collect()
            };
            let Some(handles) = self.broker.handles() else { return };
            for running in unfinished {
                running.progress.abort();
                if !running.deferred {
                    let _ = running.message.ack_with(AckKind::Nak(None)).await;
                }
                let _ = leases::release(&handles.journal, &running.lease, running.revision).await;
            }
        })
    }
}
