//! Cut-outs in cluster mode: the files stay in the shared state folder (`.thumbgen/cutouts/`, on
//! the volume every node mounts) or in the bucket (`.thumbgen/cutouts/` there) — content-addressed and written by atomic rename, so two nodes
//! can only ever write the same bytes under one name, and no 12 MP image travels through the
//! broker. What the broker adds is the reservation: a lease per content hash, so one photo is
//! sent for removal once across the cluster.

use super::broker::Broker;
use super::leases::{self, Taken};
use super::names::key;
use super::nodes::Nodes;
use super::BrokerError;
use crate::cutout::Cutout;
use crate::shutdown::Shutdown;
use crate::store::{CutoutCache, Reservation};
use std::collections::HashSet;
use std::io;
use std::sync::Arc;
use std::time::Duration;

pub(crate) struct ClusterCutouts {
    /// Where the cut-outs are: the shared state folder, or the bucket.
    inner: Arc<dyn CutoutCache>,
    broker: Arc<Broker>,
    nodes: Arc<Nodes>,
    shutdown: Shutdown,
    runtime: tokio::runtime::Handle,
}

impl ClusterCutouts {
    pub(super) fn new(
        inner: Arc<dyn CutoutCache>,
        broker: Arc<Broker>,
        nodes: Arc<Nodes>,
        shutdown: Shutdown,
    ) -> ClusterCutouts {
        ClusterCutouts { inner, broker, nodes, shutdown, runtime: tokio::runtime::Handle::current() }
    }
}

/// Gives a cut-out lease back when the reservation drops.
struct Held {
    bucket: async_nats::jetstream::kv::Store,
    key: String,
    revision: u64,
    shutdown: Shutdown,
}

impl Drop for Held {
    fn drop(&mut self) {
        let (bucket, key, revision) = (self.bucket.clone(), std::mem::take(&mut self.key), self.revision);
        self.shutdown.spawn(async move {
            while !leases::release(&bucket, &key, revision).await {
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            }
        });
    }
}

impl CutoutCache for ClusterCutouts {
    fn reserve(&self, hash: &str) -> io::Result<Option<Reservation>> {
        // This node's own workers first, then the cluster.
        let Some(local) = self.inner.reserve(hash)? else { return Ok(None) };
        let handles = self
            .broker
            .handles()
            .ok_or_else(|| io::Error::other(BrokerError::unavailable("cannot reserve a cut-out")))?;
        let key = key::cutout_lease(hash);
        let taken =
            self.runtime.block_on(leases::take(&handles.journal, &key, &self.nodes)).map_err(io::Error::other)?;
        Ok(match taken {
            Taken::Busy => None,
            Taken::Held { revision, .. } => {
                let held = Held { bucket: handles.journal.clone(), key, revision, shutdown: self.shutdown.clone() };
                Some(Reservation::new((local, held)))
            }
        })
    }

    fn load(&self, hash: &str) -> Option<Cutout> {
        self.inner.load(hash)
    }

    fn save(&self, hash: &str, cutout: &Cutout) -> io::Result<()> {
        self.inner.save(hash, cutout)
    }

    fn prune(&self, keep: &HashSet<String>, ttl: Duration) -> usize {
        self.inner.prune(keep, ttl)
    }
}
