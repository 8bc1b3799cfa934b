//! The cluster series (cluster mode only): jobs pending and in flight in the broker, redeliveries
//! this node received, nodes heard from, and whether the broker is connected. With tenants each
//! tenant's catalog has its own stream, so each series carries the `tenant` label.

use prometheus::core::Collector;
use prometheus::{IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};

/// One catalog's cluster series.
#[derive(Clone)]
pub(crate) struct ClusterMetrics {
    pub jobs_pending: IntGauge,
    pub jobs_in_flight: IntGauge,
    pub redeliveries: IntCounter,
    pub nodes: IntGauge,
    pub broker_connected: IntGauge,
}

/// The families, registered once for every catalog.
pub(super) struct ClusterFamilies {
    pending: IntGaugeVec,
    in_flight: IntGaugeVec,
    redeliveries: IntCounterVec,
    nodes: IntGaugeVec,
    broker: IntGaugeVec,
}

impl ClusterFamilies {
    /// Registers the families, with a `tenant` label when `labelled`.
    pub(super) fn register(registry: &Registry, labelled: bool) -> ClusterFamilies {
        let labels: &[&str] = if labelled { &["tenant"] } else { &[] };
        let gauge = |name: &str, help: &str| IntGaugeVec::new(Opts::new(name, help), labels).unwrap();
        let families = ClusterFamilies {
            pending: gauge("thumbgen_cluster_jobs_pending", "Jobs waiting in the cluster's queue."),
            in_flight: gauge(
                "thumbgen_cluster_jobs_in_flight",
                "Jobs taken by a node of the cluster and not finished yet.",
            ),
            redeliveries: IntCounterVec::new(
                Opts::new(
                    "thumbgen_cluster_redeliveries_total",
                    "Jobs this node received again (a node died, a job was handed back, or it waited for another node).",
                ),
                labels,
            )
            .unwrap(),
            nodes: gauge("thumbgen_cluster_nodes", "Nodes of the cluster heard from recently."),
            broker: gauge(
                "thumbgen_cluster_broker_connected",
                "1 while this node is connected to the NATS broker and its stream and buckets are there, else 0.",
            ),
        };
        let collectors: [Box<dyn Collector>; 5] = [
            Box::new(families.pending.clone()),
            Box::new(families.in_flight.clone()),
            Box::new(families.redeliveries.clone()),
            Box::new(families.nodes.clone()),
            Box::new(families.broker.clone()),
        ];
        for c in collectors {
            registry.register(c).expect("registered once");
        }
        families
    }

    /// The series of the catalog of `tenant` (`None`: the only catalog's).
    pub(super) fn of(&self, tenant: Option<&str>) -> ClusterMetrics {
        let labels: Vec<&str> = tenant.into_iter().collect();
        ClusterMetrics {
            jobs_pending: self.pending.with_label_values(&labels),
            jobs_in_flight: self.in_flight.with_label_values(&labels),
            redeliveries: self.redeliveries.with_label_values(&labels),
            nodes: self.nodes.with_label_values(&labels),
            broker_connected: self.broker.with_label_values(&labels),
        }
    }

    /// A tenant no longer served: its series go.
    pub(super) fn remove(&self, tenant: &str) {
        for gauge in [&self.pending, &self.in_flight, &self.nodes, &self.broker] {
            let _ = gauge.remove_label_values(&[tenant]);
        }
        let _ = self.redeliveries.remove_label_values(&[tenant]);
    }
}
