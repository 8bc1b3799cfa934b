//! Health: the four checks of the prototype (application, dependencies, storage, resources),
//! each `ok | warning | error | critical`, and readiness.
//!
//! Nothing here waits on the network or on a busy pipeline: resource figures come from a sampler
//! that runs in the background, and everything else is a few `stat` calls, so an orchestrator's
//! probe always gets an answer quickly.

use crate::dependency::Condition;
use crate::error::Cause;
use crate::folders::Folders;
use crate::metrics::Metrics;
use crate::queue::WorkQueue;
use crate::remove::EngineKind;
use crate::resources::Resources;
use crate::status::Status;
use crate::sync::Roster;
use serde::Serialize;
use serde_json::{json, Map, Value};
use std::sync::Arc;
use std::time::Duration;

mod storage;

/// Free space on the output filesystem below which the storage check warns, and fails.
const DISK_WARNING: u64 = 1024 * 1024 * 1024;
const DISK_CRITICAL: u64 = 100 * 1024 * 1024;
/// CPU, memory or RSS share above which the resources check warns.
const RESOURCE_WARNING: f64 = 80.0;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Level {
    Ok,
    Warning,
    Error,
    Critical,
}

#[derive(Debug, Serialize)]
pub(crate) struct Check {
    pub status: Level,
    pub message: String,
    #[serde(flatten)]
    pub details: Map<String, Value>,
}

impl Check {
    fn new(status: Level, message: impl Into<String>, details: Value) -> Check {
        let details = match details {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        Check { status, message: message.into(), details }
    }
}

#[derive(Debug, Serialize)]
pub(crate) struct Report {
    pub status: &'static str,
    pub version: &'static str,
    pub uptime_seconds: u64,
    pub timestamp: String,
    pub checks: Checks,
}

#[derive(Debug, Serialize)]
pub(crate) struct Checks {
    pub application: Check,
    pub dependencies: Check,
    pub storage: Check,
    pub resources: Check,
}

impl Report {
    pub(crate) fn healthy(&self) -> bool {
        self.status != "unhealthy"
    }
}

/// One catalog as the checks see it (one per tenant, design §10).
#[derive(Clone)]
pub(crate) struct Watched {
    /// The tenant whose catalog it is; `None` without tenants.
    pub tenant: Option<String>,
    pub folders: Folders,
    /// `s3://bucket/prefix` when the catalog is in a bucket: then only the state folder is local,
    /// and the store's own health is one of the dependencies.
    pub bucket: Option<String>,
    pub queue: Arc<dyn WorkQueue>,
}

/// Everything the checks read.
pub(crate) struct Health {
    pub status: Arc<Status>,
    /// Every catalog served now (a reload adds and removes tenants); the disk of the one with the
    /// least free space is the one reported.
    pub catalogs: Arc<Roster<Watched>>,
    pub resources: Arc<Resources>,
    pub engine: EngineKind,
    /// Inputs waiting to be retried, by cause (`thumbgen_inputs_waiting`, every catalog's).
    pub metrics: Arc<Metrics>,
    /// No job finishing for this long while work waits means the pipeline is stuck.
    pub stuck_after: Duration,
}

impl Health {
    pub(crate) fn report(&self) -> Report {
        let checks = Checks {
            application: self.application(),
            dependencies: self.dependencies(),
            storage: self.storage(),
            resources: self.resources(),
        };
        let worst = [&checks.application, &checks.dependencies, &checks.storage, &checks.resources]
            .iter()
            .map(|c| c.status)
            .max()
            .unwrap_or(Level::Ok);
        Report {
            status: match worst {
                Level::Ok => "healthy",
                Level::Critical => "unhealthy",
                _ => "degraded",
            },
            version: env!("CARGO_PKG_VERSION"),
            uptime_seconds: self.status.uptime().as_secs(),
            timestamp: crate::logging::utc_now(),
            checks,
        }
    }

    fn application(&self) -> Check {
        let catalogs = self.catalogs.now();
        let queued: usize = catalogs.iter().map(|c| c.queue.len()).sum();
        let idle = catalogs.iter().all(|c| c.queue.is_idle());
        let stalled = self.status.since_progress();
        let waiting: Vec<(Cause, i64)> = Cause::ALL
            .into_iter()
            .map(|cause| (cause, self.metrics.waiting_total(cause)))
            .filter(|(_, n)| *n > 0)
            .collect();
        let by_cause: Map<String, Value> = waiting.iter().map(|(c, n)| (c.label().to_owned(), json!(n))).collect();
        let details = json!({
            "queue_depth": queued,
            "inputs_waiting": by_cause,
            "watch_mode": self.status.watch_mode(),
            "seconds_since_last_job": stalled.as_secs(),
        });
        if self.status.is_shutting_down() {
            return Check::new(Level::Warning, "shutting down: finishing jobs in flight", details);
        }
        if !self.status.is_first_scan_done() {
            return Check::new(Level::Warning, "starting: first scan of the folders not finished", details);
        }
        if !idle && stalled > self.stuck_after {
            return Check::new(
                Level::Critical,
                format!(
                    "no job has finished for {} s while work is waiting: the pipeline looks stuck",
                    stalled.as_secs()
                ),
                details,
            );
        }
        // Waiting on a file still being copied in, or on another worker's cut-out, is normal.
        let troubled: Vec<String> = waiting
            .iter()
            .filter(|(cause, _)| !matches!(cause, Cause::StillBeingWritten | Cause::Busy | Cause::OverQuota))
            .map(|(cause, n)| format!("{n} for {}", waits_for(*cause)))
            .collect();
        if !troubled.is_empty() {
            let total: i64 = waiting.iter().map(|(_, n)| n).sum();
            return Check::new(
                Level::Warning,
                format!("{total} input(s) waiting to be retried after a passing failure: {}", troubled.join(", ")),
                details,
            );
        }
        let message = match (idle, waiting.is_empty()) {
            (true, true) => "idle, watching for files".to_owned(),
            (true, false) if waiting.iter().all(|(cause, _)| *cause == Cause::StillBeingWritten) => {
                "waiting for files still being written".to_owned()
            }
            (true, false) => {
                let each: Vec<String> = waiting.iter().map(|(cause, n)| format!("{n} for {}", waits_for(*cause))).collect();
                format!("idle; inputs waiting: {}", each.join(", "))
            }
            (false, _) => "processing".to_owned(),
        };
        Check::new(Level::Ok, message, details)
    }

    /// The removal engine, and every dependency outside the process. The engine's own report
    /// (a remote app) is the check's top level; other dependencies (the broker) are nested under
    /// their name; the worst level wins.
    fn dependencies(&self) -> Check {
        let engine = self.engine.label();
        if !self.status.is_engine_ready() {
            return Check::new(
                Level::Warning,
                format!("removal engine `{engine}` loading"),
                json!({ "engine": engine }),
            );
        }
        let mut level = Level::Ok;
        let mut messages = Vec::new();
        let mut details = Map::new();
        details.insert("engine".into(), json!(engine));
        let mut engine_reported = false;
        for report in self.status.dependencies().iter().map(|d| d.report()) {
            let this = match report.condition {
                Condition::Ok => Level::Ok,
                Condition::Degraded => Level::Warning,
                Condition::Failing => Level::Error,
            };
            level = level.max(this);
            messages.push(report.message.clone());
            if report.name == "engine" {
                engine_reported = true;
                if let serde_json::Value::Object(map) = report.details {
                    details.extend(map);
                }
            } else {
                let mut nested = match report.details {
                    serde_json::Value::Object(map) => map,
                    _ => Map::new(),
                };
                nested.insert("status".into(), json!(this));
                nested.insert("message".into(), json!(report.message));
                // One per tenant (each its own broker connection): nested by tenant.
                match nested.remove("tenant").and_then(|t| t.as_str().map(str::to_owned)) {
                    Some(tenant) => {
                        let by_tenant = details.entry(report.name).or_insert_with(|| json!({}));
                        by_tenant[tenant] = serde_json::Value::Object(nested);
                    }
                    None => {
                        details.insert(report.name.into(), serde_json::Value::Object(nested));
                    }
                }
            }
        }
        if !engine_reported {
            messages.insert(0, "embedded removal engine (u2netp) loaded".into());
        }
        Check { status: level, message: messages.join("; "), details }
    }

    fn resources(&self) -> Check {
        let r = self.resources.latest();
        let details = json!({
            "cpu_percent": (r.cpu_percent * 10.0).round() / 10.0,
            "memory_percent": (r.memory_percent * 10.0).round() / 10.0,
            "process_rss_bytes": r.rss_bytes,
        });
        if !r.sampled {
            return Check::new(Level::Ok, "not sampled yet", details);
        }
        let mut high = Vec::new();
        if r.cpu_percent > RESOURCE_WARNING {
            high.push(format!("CPU {:.0} %", r.cpu_percent));
        }
        if r.memory_percent > RESOURCE_WARNING {
            high.push(format!("memory {:.0} %", r.memory_percent));
        }
        if r.rss_percent > RESOURCE_WARNING {
            high.push(format!("thumbgen RSS {:.0} % of memory", r.rss_percent));
        }
        if high.is_empty() {
            Check::new(Level::Ok, "within limits", details)
        } else {
            Check::new(Level::Warning, format!("high usage: {}", high.join(", ")), details)
        }
    }

    /// Ready once the folders exist, the engine is loaded and the first scan is done.
    pub(crate) fn ready(&self) -> (bool, Value) {
        let folders = self.catalogs.now().iter().all(|c| match c.bucket {
            Some(_) => c.folders.state.is_dir(),
            None => c.folders.products.is_dir() && c.folders.backgrounds.is_dir() && c.folders.output.is_dir(),
        });
        let engine = self.status.is_engine_ready();
        let scanned = self.status.is_first_scan_done();
        let mut body = json!({ "folders": folders, "engine": engine, "first_scan": scanned });
        let mut dependencies_ready = true;
        for report in self.status.dependencies().iter().map(|d| d.report()).filter(|r| r.name != "engine") {
            // Several of one name (a broker per tenant): ready when every one is.
            let all = body.get(report.name).and_then(Value::as_bool).unwrap_or(true) && report.ready;
            body[report.name] = json!(all);
            dependencies_ready &= report.ready;
        }
        let ready = folders && engine && scanned && dependencies_ready && !self.status.is_shutting_down();
        body["status"] = json!(if ready { "ready" } else { "not_ready" });
        (ready, body)
    }
}

/// What an input waiting after a failure of `cause` waits for, in words.
fn waits_for(cause: Cause) -> &'static str {
    match cause {
        Cause::Engine => "the removal engine",
        Cause::Storage => "storage (disk full or not writable)",
        Cause::Read => "its file to become readable",
        Cause::Encode => "an encoding failure to pass",
        Cause::StillBeingWritten => "its file to be complete",
        Cause::Busy => "another worker's cut-out",
        Cause::Internal => "a retry after an internal error (see the log)",
        Cause::OverQuota => "the next day (their tenant's daily quota is used up)",
    }
}

#[cfg(test)]
mod tests;
