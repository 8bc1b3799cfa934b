//! The series of one catalog's work: thumbnails written, inputs rejected (by reason), inputs
//! queued, inputs waiting to be retried (by cause; `over_quota` among them) and removal seconds
//! (by engine). With tenants each carries a `tenant` label, for configured tenants only, so the
//! number of series stays bounded; without tenants they are exactly the single catalog's series.

use crate::error::{Cause, RejectReason};
use crate::remove::EngineKind;
use crate::sync::Mutex;
use std::sync::Arc;
use prometheus::{Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts};

/// The families, shared by every catalog's view.
#[derive(Clone)]
pub(super) struct CatalogFamilies {
    /// Whether the series carry a `tenant` label (tenants configured at start).
    labelled: bool,
    /// The tenants served now (a reload adds and removes them).
    tenants: Arc<Mutex<Vec<String>>>,
    /// The engines whose removal series exist from the start.
    engines: Vec<EngineKind>,
    pub written: IntCounterVec,
    pub rejected: IntCounterVec,
    pub removal: HistogramVec,
    pub depth: IntGaugeVec,
    pub waiting: IntGaugeVec,
}

/// One catalog's series: the only catalog's, or a tenant's.
#[derive(Clone)]
pub(crate) struct CatalogMetrics {
    tenant: Option<String>,
    families: CatalogFamilies,
}

impl CatalogFamilies {
    pub(super) fn new(tenants: &[String], engines: &[EngineKind]) -> CatalogFamilies {
        let labels = |rest: &[&'static str]| -> Vec<&'static str> {
            if tenants.is_empty() { rest.to_vec() } else { [&["tenant"], rest].concat() }
        };
        let families = CatalogFamilies {
            labelled: !tenants.is_empty(),
            tenants: Arc::default(),
            engines: engines.to_vec(),
            written: IntCounterVec::new(
                Opts::new("thumbgen_thumbnails_written_total", "Thumbnail files written to the output folder."),
                &labels(&[]),
            )
            .unwrap(),
            rejected: IntCounterVec::new(
                Opts::new("thumbgen_inputs_rejected_total", "Inputs moved to the rejected folder, by reason."),
                &labels(&["reason"]),
            )
            .unwrap(),
            removal: HistogramVec::new(
                HistogramOpts::new("thumbgen_removal_duration_seconds", "Time one background removal took.")
                    .buckets(vec![0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0, 120.0]),
                &labels(&["engine"]),
            )
            .unwrap(),
            depth: IntGaugeVec::new(Opts::new("thumbgen_queue_depth", "Inputs waiting to be processed."), &labels(&[]))
                .unwrap(),
            waiting: IntGaugeVec::new(
                Opts::new(
                    "thumbgen_inputs_waiting",
                    "Inputs waiting to be retried after a passing failure, by its cause (engine: the removal engine is failing; storage: a disk is full or unwritable; over_quota: the tenant's photos for today are used up).",
                ),
                &labels(&["cause"]),
            )
            .unwrap(),
        };
        match families.labelled {
            false => families.prepare(&families.of(None)),
            true => tenants.iter().for_each(|t| families.add(t)),
        }
        families
    }

    /// Creates a catalog's series at zero, so they are there before the first event.
    fn prepare(&self, view: &CatalogMetrics) {
        let _ = (view.written(), view.queue_depth());
        for reason in RejectReason::ALL {
            let _ = view.rejected(reason);
        }
        for cause in Cause::ALL {
            let _ = view.waiting(cause);
        }
        for engine in &self.engines {
            let _ = view.removal_seconds(*engine);
        }
    }

    /// Whether the series carry a `tenant` label (tenants configured at start).
    pub(super) fn labelled(&self) -> bool {
        self.labelled
    }

    /// A tenant served from now on: its series appear at zero.
    pub(super) fn add(&self, tenant: &str) {
        let mut tenants = self.tenants.lock();
        if !tenants.iter().any(|t| t == tenant) {
            tenants.push(tenant.to_owned());
            self.prepare(&self.of(Some(tenant)));
        }
    }

    /// A tenant no longer served: its series go, as a stopped target's do.
    pub(super) fn remove(&self, tenant: &str) {
        self.tenants.lock().retain(|t| t != tenant);
        let _ = self.written.remove_label_values(&[tenant]);
        let _ = self.depth.remove_label_values(&[tenant]);
        for reason in RejectReason::ALL {
            let _ = self.rejected.remove_label_values(&[tenant, reason.label()]);
        }
        for cause in Cause::ALL {
            let _ = self.waiting.remove_label_values(&[tenant, cause.label()]);
        }
        for engine in &self.engines {
            let _ = self.removal.remove_label_values(&[tenant, engine.label()]);
        }
    }

    /// The view of `tenant`'s series (`None`: the only catalog's).
    pub(super) fn of(&self, tenant: Option<&str>) -> CatalogMetrics {
        CatalogMetrics { tenant: tenant.map(str::to_owned), families: self.clone() }
    }

    /// A gauge family's total over every catalog, for the labels after `tenant`.
    pub(super) fn sum_gauges(&self, family: &IntGaugeVec, rest: &[&str]) -> i64 {
        match self.labelled {
            false => family.with_label_values(rest).get(),
            true => {
                let tenants = self.tenants.lock().clone();
                tenants.iter().map(|t| family.with_label_values(&[&[t.as_str()], rest].concat()).get()).sum()
            }
        }
    }
}

impl CatalogMetrics {
    /// The tenant whose series these are; `None` without tenants.
    pub(super) fn tenant(&self) -> Option<&str> {
        self.tenant.as_deref()
    }

    /// The label values: the tenant's name first, when there are tenants.
    fn labels<'a>(&'a self, rest: &[&'a str]) -> Vec<&'a str> {
        match &self.tenant {
            Some(tenant) => [&[tenant.as_str()], rest].concat(),
            None => rest.to_vec(),
        }
    }

    pub(crate) fn written(&self) -> IntCounter {
        self.families.written.with_label_values(&self.labels(&[]))
    }

    pub(crate) fn rejected(&self, reason: RejectReason) -> IntCounter {
        self.families.rejected.with_label_values(&self.labels(&[reason.label()]))
    }

    pub(crate) fn removal_seconds(&self, engine: EngineKind) -> Histogram {
        self.families.removal.with_label_values(&self.labels(&[engine.label()]))
    }

    pub(crate) fn queue_depth(&self) -> IntGauge {
        self.families.depth.with_label_values(&self.labels(&[]))
    }

    pub(crate) fn waiting(&self, cause: Cause) -> IntGauge {
        self.families.waiting.with_label_values(&self.labels(&[cause.label()]))
    }
}
