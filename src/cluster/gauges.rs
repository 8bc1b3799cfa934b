//! Gauges: a node's share of the cluster queue's metrics — jobs waiting to be published, jobs
//! running here (which several tenants' queues add up in), redeliveries received.

use std::sync::atomic::{AtomicI64, Ordering};

/// This node's share of the metrics: jobs waiting to be published, jobs running, redeliveries.
pub(super) struct Gauges {
    pub depth: prometheus::IntGauge,
    /// The process's jobs in flight, which several tenants' queues add up in.
    pub in_flight: prometheus::IntGauge,
    pub redeliveries: prometheus::IntCounter,
    /// What this queue has added to `in_flight`.
    pub reported: AtomicI64,
}

impl Gauges {
    /// Brings this queue's share of the jobs in flight to `running`.
    pub(super) fn running(&self, running: usize) {
        let before = self.reported.swap(running as i64, Ordering::SeqCst);
        self.in_flight.add(running as i64 - before);
    }
}
