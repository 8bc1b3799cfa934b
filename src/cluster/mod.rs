//! Cluster mode: several nodes share one catalog through NATS JetStream.
//!
//! Off unless `NATS_URL` is set. Every node mounts the same base folder; what they share beyond
//! it lives in the broker:
//! - jobs, on a work-queue stream ([`queue`]): at most one node runs an input at a time, a job
//!   whose node died goes to another after the ack deadline, passing failures come back later;
//! - the journal of done work and name claims, in a key-value bucket ([`journal`]), read from a
//!   local [`replica`] kept current by a watch;
//! - leases ([`leases`]) on jobs and on cut-outs being made, which also count the runs that died;
//! - heartbeats ([`nodes`]), for liveness and `thumbgen cluster status` ([`status`]).
//!
//! Cut-outs stay files in the shared state folder ([`cutouts`]). [`broker`] provisions the
//! stream, consumers and buckets, and provisions them again when the broker comes back without
//! its store; then the journal is seeded again from the nodes' replicas (or, on the very first
//! cluster start, from the single-node journal) and the folders are rescanned, so nothing is lost
//! and nothing done is redone.

mod broker;
mod cutouts;
mod gauges;
mod journal;
mod keepalive;
mod leases;
mod names;
mod nodes;
mod outbox;
mod queue;
mod replica;
mod seed;
mod starting;
pub(crate) mod status;

use crate::config::Config;
use crate::error::{chain, Source, StartError};
use crate::catalog::bucket::Bucket;
use outbox::Versions;
use crate::folders::Folders;
use crate::metrics::{ClusterMetrics, Metrics};
use crate::queue::WorkQueue;
use crate::shutdown::Shutdown;
use crate::status::Status;
use crate::store::{CutoutCache, Journal};
use broker::Broker;
use nodes::{Me, Nodes};
use replica::Replica;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tracing::{info, warn};

/// How often the supervisor looks at the broker.
const TICK: Duration = Duration::from_secs(1);
/// How often it checks that the broker still has what was provisioned.
const RECHECK: Duration = Duration::from_secs(3);
/// How often the cluster figures in the metrics are refreshed.
const SAMPLE: Duration = Duration::from_secs(5);

/// A failed request to the broker, with its cause.
#[derive(Debug)]
pub(crate) struct BrokerError {
    what: &'static str,
    source: Option<Source>,
}

impl BrokerError {
    fn new(what: &'static str, source: impl Into<Source>) -> BrokerError {
        BrokerError { what, source: Some(source.into()) }
    }

    /// The broker is not reachable (or not provisioned yet).
    fn unavailable(what: &'static str) -> BrokerError {
        BrokerError { what, source: Some("the NATS broker is not reachable".into()) }
    }
}

impl fmt::Display for BrokerError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        crate::error::write_caused(f, self.what, self.source.as_ref())
    }
}

impl std::error::Error for BrokerError {}

pub(crate) struct Cluster {
    broker: Arc<Broker>,
    nodes: Arc<Nodes>,
    replica: Arc<Replica>,
    queue: Arc<queue::ClusterQueue>,
    shutdown: Shutdown,
    /// True once the replica caught up with the broker's journal after provisioning.
    current: watch::Sender<bool>,
}

impl Cluster {
    /// Connects to the broker (in the background when it is not up yet) and starts the node's
    /// supervisor, heartbeat and publisher.
    pub(crate) async fn start(
        config: &Config,
        folders: &Folders,
        bucket: Option<Arc<Bucket>>,
        status: &Arc<Status>,
        metrics: &Metrics,
        shutdown: &Shutdown,
    ) -> Result<Arc<Cluster>, StartError> {
        let (queue_depth, jobs_in_flight) = (metrics.catalog.queue_depth(), metrics.jobs_in_flight.clone());
        let metrics = metrics.cluster();
        let servers = config.nats_servers().ok_or_else(|| StartError::new("cluster mode needs NATS_URL"))?;
        let me = Me { node: config.node(), instance: nodes::new_instance(), role: config.node_role };
        let broker = Arc::new(Broker::connect(config, servers, &me.node).await?);
        status.add_dependency(broker.clone());
        let nodes = Arc::new(Nodes::new(me));
        let replica = Arc::new(Replica::default());
        let gauges =
            gauges::Gauges {
                depth: queue_depth,
                in_flight: jobs_in_flight,
                redeliveries: metrics.redeliveries.clone(),
                reported: Default::default(),
            };
        let queue = queue::ClusterQueue::new(
            broker.clone(),
            nodes.clone(),
            replica.clone(),
            match bucket {
                Some(bucket) => Versions::Bucket(bucket),
                None => Versions::Folders(folders.clone()),
            },
            config.queue_capacity,
            gauges,
            shutdown.clone(),
        );
        let cluster = Arc::new(Cluster {
            broker,
            nodes,
            replica,
            queue,
            shutdown: shutdown.clone(),
            current: watch::channel(false).0,
        });
        let seed_from = folders.state.clone();
        shutdown.spawn(cluster.clone().supervise(status.clone(), metrics, seed_from));
        info!(node = %cluster.nodes.me.node, role = ?cluster.nodes.me.role, "cluster mode: connecting to NATS");
        Ok(cluster)
    }

    /// The broker as a dependency in the health checks (taken out when its tenant goes).
    pub(crate) fn dependency(&self) -> Arc<dyn crate::dependency::Dependency> {
        self.broker.clone()
    }

    pub(crate) fn queue(&self) -> Arc<dyn WorkQueue> {
        self.queue.clone()
    }

    /// Whether this node lists the bucket now: one lister per cluster, by a lease that passes to
    /// another node when its holder stops (its heartbeats end). Taken again at every listing, so
    /// a holder that lost the broker for a while finds out; `false` while the broker is away.
    pub(crate) async fn holds_listing(&self) -> bool {
        let Some(handles) = self.broker.handles() else { return false };
        let taken = leases::take(&handles.journal, names::key::LISTER_LEASE, &self.nodes).await;
        matches!(taken, Ok(leases::Taken::Held { .. }))
    }

    pub(crate) fn journal(&self) -> Arc<dyn Journal> {
        Arc::new(journal::ClusterJournal::new(self.broker.clone(), self.replica.clone()))
    }

    pub(crate) fn cutouts(&self, inner: Arc<dyn CutoutCache>) -> Arc<dyn CutoutCache> {
        Arc::new(cutouts::ClusterCutouts::new(inner, self.broker.clone(), self.nodes.clone(), self.shutdown.clone()))
    }

    /// Resolves once this node's copy of the journal is current (the first time).
    pub(crate) async fn journal_current(&self) {
        let mut current = self.current.subscribe();
        let _ = current.wait_for(|c| *c).await;
    }

    /// Keeps the node connected to what the broker should hold, until shutdown.
    async fn supervise(self: Arc<Self>, status: Arc<Status>, metrics: ClusterMetrics, state_dir: std::path::PathBuf) {
        let mut watchers: Vec<tokio::task::JoinHandle<()>> = Vec::new();
        let (mut checked, mut beaten, mut sampled) = (None::<Instant>, None::<Instant>, None::<Instant>);
        let mut complained = false;
        loop {
            let due = |at: &Option<Instant>, every: Duration| at.is_none_or(|t| t.elapsed() >= every);
            if self.broker.handles().is_none() || (due(&checked, RECHECK) && !self.broker.still_provisioned().await) {
                match self.broker.provision().await {
                    Ok(new) => {
                        complained = false;
                        watchers.iter().for_each(|w| w.abort());
                        watchers.clear();
                        if new {
                            self.replica.restart_revisions();
                        }
                        watchers = self.watch();
                        if new {
                            self.catch_up_and_seed(&state_dir).await;
                            status.request_rescan();
                        }
                    }
                    Err(e) => {
                        self.broker.lost();
                        if !std::mem::replace(&mut complained, true) {
                            warn!("NATS broker not ready ({e}); jobs wait, nothing is lost");
                        }
                    }
                }
                checked = Some(Instant::now());
            }
            if watchers.iter().any(|w| w.is_finished()) {
                self.broker.lost(); // a watch ended: the broker went away or lost its buckets
            }
            let up = self.broker.connected() && self.broker.handles().is_some();
            metrics.broker_connected.set(i64::from(up));
            if let Some(handles) = self.broker.handles() {
                if due(&beaten, nodes::BEAT) {
                    if let Err(e) = self.nodes.beat(&handles.nodes).await {
                        warn!("cannot publish this node's heartbeat: {}", chain(&e));
                    }
                    beaten = Some(Instant::now());
                }
                if due(&sampled, SAMPLE) {
                    status::sample(&handles, &self.nodes, &metrics).await;
                    sampled = Some(Instant::now());
                }
            }
            if !self.shutdown.sleep(TICK).await {
                watchers.iter().for_each(|w| w.abort());
                return;
            }
        }
    }

    /// Starts following the journal and the heartbeats.
    fn watch(&self) -> Vec<tokio::task::JoinHandle<()>> {
        let Some(handles) = self.broker.handles() else { return Vec::new() };
        let (replica, journal) = (self.replica.clone(), handles.journal.clone());
        let follow_journal = self.shutdown.spawn(async move {
            use futures_util::StreamExt;
            let Ok(mut entries) = journal.watch_with_history(">").await else { return };
            while let Some(Ok(entry)) = entries.next().await {
                replica.absorb(&entry);
            }
        });
        let (nodes, bucket) = (self.nodes.clone(), handles.nodes.clone());
        let follow_nodes = self.shutdown.spawn(async move { nodes.watch(&bucket).await });
        vec![follow_journal, follow_nodes]
    }

    /// After provisioning found a journal new to this node: wait until the replica holds it,
    /// then put back what the broker lost (or, on the first cluster start, import the
    /// single-node journal).
    async fn catch_up_and_seed(&self, state_dir: &std::path::Path) {
        let Some(handles) = self.broker.handles() else { return };
        if !seed::catch_up(&handles, &self.replica).await {
            warn!("the journal copy did not catch up with the broker; will try again");
            self.broker.lost();
            return;
        }
        match seed::seed(&handles, &self.replica, state_dir, &self.nodes.me.node).await {
            Ok(0) => {}
            Ok(n) => info!(facts = n, "journal seeded into the broker"),
            Err(e) => warn!("cannot seed the journal: {e}"),
        }
        self.current.send_replace(true);
    }
}

#[cfg(test)]
mod tests;
