//! Metrics: the Prometheus series dashboards rely on (names fixed by the design contract).
//!
//! Every labelled series is created at zero when the daemon starts, so a dashboard shows a flat
//! line rather than "no data" before the first event.

use crate::error::Cause;
use crate::job::InputKind;
use crate::remove::EngineKind;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};

mod catalog;
mod cluster;

pub(crate) use catalog::CatalogMetrics;
pub(crate) use cluster::ClusterMetrics;

use catalog::CatalogFamilies;
use cluster::ClusterFamilies;
use std::sync::Arc;

/// Pipeline stages timed by `thumbgen_stage_duration_seconds`.
const STAGES: [&str; 5] = ["validate", "remove", "compose", "encode", "write"];

/// The series object storage adds (`STORAGE_URL` set).
#[derive(Clone)]
pub(crate) struct StorageMetrics {
    pub requests: IntCounterVec,
    pub duration: HistogramVec,
    /// From an object's `LastModified` to its job being queued.
    pub discovery_lag: prometheus::Histogram,
}

/// The requests `thumbgen_storage_requests_total` counts, by its `op` label.
const STORAGE_OPS: [&str; 10] = [
    "list",
    "head",
    "get",
    "put",
    "copy",
    "delete",
    "create_multipart",
    "upload_part",
    "complete_multipart",
    "abort_multipart",
];

/// The process's series. With tenants (design §10) the series of one catalog's work — written,
/// rejected, queued, waiting, removal seconds — carry a `tenant` label ([`catalog`]); each
/// tenant's parts get a copy of this whose [`Metrics::catalog`] is the tenant's.
#[derive(Clone)]
pub(crate) struct Metrics {
    registry: Registry,
    /// The object-storage series, once a catalog in a bucket asked for them.
    storage: Arc<std::sync::OnceLock<StorageMetrics>>,
    /// The cluster series, once a catalog in cluster mode asked for them.
    cluster: Arc<std::sync::OnceLock<ClusterFamilies>>,
    /// The series of one catalog's work, for every catalog.
    families: CatalogFamilies,
    /// This catalog's series among them. With tenants, only the copies [`Metrics::for_tenant`]
    /// makes have one (the deployment's own has no catalog: its series need a tenant).
    pub catalog: CatalogMetrics,
    pub files_detected: IntCounterVec,
    pub removals: IntCounterVec,
    pub stage_duration: HistogramVec,
    pub jobs_in_flight: IntGauge,
    pub cutout_cache_hits: IntCounter,
    pub transient_failures: IntCounter,
}

impl Metrics {
    /// The series for removals by `engines`, with a `tenant` label on a catalog's series when
    /// `tenants` are configured.
    pub(crate) fn new(engines: &[EngineKind], tenants: &[String]) -> Metrics {
        let registry = Registry::new();
        let files_detected = IntCounterVec::new(
            Opts::new("thumbgen_files_detected_total", "Input files seen in the watched folders."),
            &["folder"],
        )
        .unwrap();
        let removals = IntCounterVec::new(
            Opts::new("thumbgen_removals_total", "Background removals, by engine and outcome."),
            &["engine", "outcome"],
        )
        .unwrap();
        let stage_duration = HistogramVec::new(
            HistogramOpts::new("thumbgen_stage_duration_seconds", "Time spent in each pipeline stage per input.")
                .buckets(vec![0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0]),
            &["stage"],
        )
        .unwrap();
        let jobs_in_flight = IntGauge::new("thumbgen_jobs_in_flight", "Inputs being processed right now.").unwrap();
        let cutout_cache_hits = IntCounter::new(
            "thumbgen_cutout_cache_hits_total",
            "Cut-outs taken from the cache instead of a new removal.",
        )
        .unwrap();
        let transient_failures = IntCounter::new(
            "thumbgen_transient_failures_total",
            "Jobs that failed for a passing reason (disk, engine) and were scheduled again.",
        )
        .unwrap();
        let families = CatalogFamilies::new(tenants, engines);
        let build_info = IntGaugeVec::new(
            Opts::new("thumbgen_build_info", "Build information; the value is always 1."),
            &["version"],
        )
        .unwrap();
        build_info.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);

        for kind in InputKind::ALL {
            files_detected.with_label_values(&[kind.label()]);
        }
        for engine in engines {
            for outcome in ["success", "failure"] {
                removals.with_label_values(&[engine.label(), outcome]);
            }
        }
        for stage in STAGES {
            stage_duration.with_label_values(&[stage]);
        }

        let collectors: Vec<Box<dyn prometheus::core::Collector>> = vec![
            Box::new(files_detected.clone()),
            Box::new(families.written.clone()),
            Box::new(families.rejected.clone()),
            Box::new(removals.clone()),
            Box::new(families.removal.clone()),
            Box::new(stage_duration.clone()),
            Box::new(families.depth.clone()),
            Box::new(jobs_in_flight.clone()),
            Box::new(cutout_cache_hits.clone()),
            Box::new(transient_failures.clone()),
            Box::new(families.waiting.clone()),
            Box::new(build_info),
            Box::new(prometheus::process_collector::ProcessCollector::for_self()),
        ];
        for c in collectors {
            registry.register(c).expect("metric names are unique");
        }
        Metrics {
            registry,
            storage: Arc::default(),
            cluster: Arc::default(),
            catalog: families.of(None),
            families,
            files_detected,
            removals,
            stage_duration,
            jobs_in_flight,
            cutout_cache_hits,
            transient_failures,
        }
    }

    /// The same series, with a tenant's as this catalog's.
    pub(crate) fn for_tenant(&self, tenant: &str) -> Metrics {
        Metrics { catalog: self.families.of(Some(tenant)), ..self.clone() }
    }

    /// A tenant a reload added: its series appear at zero.
    pub(crate) fn add_tenant(&self, tenant: &str) {
        self.families.add(tenant);
    }

    /// A tenant a reload removed: its series go.
    pub(crate) fn remove_tenant(&self, tenant: &str) {
        self.families.remove(tenant);
        if let Some(cluster) = self.cluster.get() {
            cluster.remove(tenant);
        }
    }

    /// Inputs of every catalog waiting to be retried after a failure of `cause`.
    pub(crate) fn waiting_total(&self, cause: Cause) -> i64 {
        self.families.sum_gauges(&self.families.waiting, &[cause.label()])
    }

    /// This catalog's cluster series, the families registered when a catalog first asks
    /// (cluster mode only).
    pub(crate) fn cluster(&self) -> ClusterMetrics {
        let families = self.cluster.get_or_init(|| ClusterFamilies::register(&self.registry, self.families.labelled()));
        families.of(self.catalog.tenant())
    }

    /// The object-storage series, added when a catalog in a bucket first asks (every tenant's
    /// bucket counts into them).
    pub(crate) fn storage(&self) -> StorageMetrics {
        self.storage.get_or_init(|| self.register_storage()).clone()
    }

    fn register_storage(&self) -> StorageMetrics {
        let storage = StorageMetrics {
            requests: IntCounterVec::new(
                Opts::new("thumbgen_storage_requests_total", "Requests to the object store, by operation and outcome."),
                &["op", "outcome"],
            )
            .unwrap(),
            duration: HistogramVec::new(
                HistogramOpts::new(
                    "thumbgen_storage_request_duration_seconds",
                    "Time one request to the object store took, retries included.",
                )
                .buckets(vec![0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0]),
                &["op"],
            )
            .unwrap(),
            discovery_lag: prometheus::Histogram::with_opts(
                HistogramOpts::new(
                    "thumbgen_discovery_lag_seconds",
                    "Time from an object's LastModified in the bucket to its job being queued.",
                )
                .buckets(vec![0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0]),
            )
            .unwrap(),
        };
        for op in STORAGE_OPS {
            storage.duration.with_label_values(&[op]);
            for outcome in ["ok", "error"] {
                storage.requests.with_label_values(&[op, outcome]);
            }
        }
        self.registry.register(Box::new(storage.requests.clone())).expect("registered once");
        self.registry.register(Box::new(storage.duration.clone())).expect("registered once");
        self.registry.register(Box::new(storage.discovery_lag.clone())).expect("registered once");
        storage
    }

    /// Records how long `stage` took.
    pub(crate) fn stage(&self, stage: &str, seconds: f64) {
        self.stage_duration.with_label_values(&[stage]).observe(seconds);
    }

    /// The Prometheus text exposition (format 0.0.4).
    pub(crate) fn render(&self) -> String {
        let mut buf = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut buf).expect("text encoding");
        String::from_utf8(buf).expect("text format is UTF-8")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contract_series_exist_from_the_start() {
        let text = Metrics::new(&[EngineKind::Local], &[]).render();
        for needle in [
            "thumbgen_files_detected_total{folder=\"produtos\"} 0",
            "thumbgen_thumbnails_written_total 0",
            "thumbgen_inputs_rejected_total{reason=\"corrupt\"} 0",
            "thumbgen_removals_total{engine=\"local\",outcome=\"success\"} 0",
            "thumbgen_stage_duration_seconds_bucket{stage=\"compose\",le=\"0.005\"} 0",
            "thumbgen_queue_depth 0",
            "thumbgen_jobs_in_flight 0",
            "thumbgen_cutout_cache_hits_total 0",
            "thumbgen_inputs_waiting{cause=\"engine\"} 0",
            "thumbgen_build_info{version=\"",
            "process_resident_memory_bytes",
        ] {
            assert!(text.contains(needle), "missing {needle}\n{text}");
        }
    }
}
