//! The remote engine's health: a background probe of the app's reachability (never inside a
//! health request), the circuit breaker's state, and what the `dependencies` check shows.

use super::breaker::Gate;
use super::GradioEngine;
use crate::dependency::{Condition, Dependency, Report};
use crate::remove::EngineKind;
use crate::shutdown::Shutdown;
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::info;

/// How often the app's reachability is probed.
const PROBE_INTERVAL: Duration = Duration::from_secs(30);
/// While it does not answer, more often, so waiting photos go as soon as it is back.
const PROBE_INTERVAL_DOWN: Duration = Duration::from_secs(5);

/// What the background probe last saw.
#[derive(Clone, Debug, Default)]
pub(super) struct Probe {
    reachable: Option<bool>,
    detail: String,
}

impl GradioEngine {
    /// Probes the app until shutdown; `recovered` runs each time it answers again after it did not.
    pub(crate) async fn keep_probing(self: Arc<Self>, shutdown: Shutdown, recovered: impl Fn()) {
        loop {
            if self.probe_once().await {
                recovered();
            }
            let interval = if self.reachable() { PROBE_INTERVAL } else { PROBE_INTERVAL_DOWN };
            if !shutdown.sleep(interval).await {
                return;
            }
        }
    }

    /// Whether the last probe reached the app (true before the first probe).
    fn reachable(&self) -> bool {
        self.probe.lock().reachable != Some(false)
    }

    /// Checks that the app answers; true when it answers again after it did not.
    async fn probe_once(&self) -> bool {
        let result = self.remote.probe(Duration::from_secs(5)).await;
        let mut probe = self.probe.lock();
        let was_down = probe.reachable == Some(false);
        *probe = match result {
            Ok(version) => Probe { reachable: Some(true), detail: format!("gradio {version}") },
            Err(e) => Probe { reachable: Some(false), detail: e.to_string() },
        };
        let recovered = was_down && probe.reachable == Some(true);
        if recovered {
            self.breaker.lock().success();
            info!(url = %self.remote.base(), "gradio app answers again; retrying waiting photos now");
        }
        recovered
    }
}

impl Dependency for GradioEngine {
    fn report(&self) -> Report {
        let probe = self.probe.lock().clone();
        let breaker = self.breaker.lock();
        let details = json!({
            "engine": EngineKind::Gradio.label(),
            "url": self.remote.base(),
            "reachable": probe.reachable,
            "circuit": breaker.state(),
            "fallback": self.fallback.is_some(),
        });
        let problem = match (breaker.gate(), probe.reachable) {
            (Gate::Open(until, reason), _) => Some(format!(
                "remote calls suspended for {} s more: {reason}",
                until.saturating_duration_since(Instant::now()).as_secs()
            )),
            (_, Some(false)) => Some(format!("gradio app unreachable: {}", probe.detail)),
            _ => None,
        };
        let (condition, message) = match problem {
            None => (Condition::Ok, format!("gradio app at {} ({})", self.remote.base(), probe.detail)),
            Some(p) if self.fallback.is_some() => (Condition::Degraded, format!("{p}; the embedded engine stands in")),
            Some(p) => (Condition::Failing, format!("{p}; photos wait and are retried")),
        };
        // A failing remote keeps the daemon ready: photos wait and are retried, nothing is lost.
        Report { name: "engine", condition, message, details, ready: true }
    }
}
