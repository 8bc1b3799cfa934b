//! Dependencies: what the daemon relies on outside itself (a remote removal engine, the cluster's
//! message broker) reports its own health through [`Dependency`]; the health check and readiness
//! only ever see these reports, never the concrete engine or client.

/// How a dependency is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Condition {
    Ok,
    /// Not usable right now, but a stand-in does its work.
    Degraded,
    /// Not usable right now: work waits.
    Failing,
}

/// One dependency's own view of its health.
pub(crate) struct Report {
    /// The key it is shown under in the `dependencies` check (`engine`, `broker`).
    pub name: &'static str,
    pub condition: Condition,
    pub message: String,
    pub details: serde_json::Value,
    /// Whether the daemon can do its work now (else `/health/ready` answers 503).
    pub ready: bool,
}

pub(crate) trait Dependency: Send + Sync {
    fn report(&self) -> Report;
}
