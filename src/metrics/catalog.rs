//! The series of one catalog's work: thumbnails written, inputs rejected (by reason), inputs
//! queued, inputs waiting to be retried (by cause; `over_quota` among them) and removal seconds
//! (by engine). With tenants each carries a `tenant` label, for configured tenants only, so the
//! number of series stays bounded; without tenants they are exactly the single catalog's series.

use crate::error::{Cause, RejectReason};
use crate::remove::EngineKind;
use prometheus::{Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts};

/// The families, shared by every catalog's view.
#[derive(Clone)]
pub(super) struct CatalogFamilies {
    /// The configured tenants (none: one catalog, no `tenant` label).
    tenants: Vec<String>,
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
    pub(super) fn new(tenants: &[String]) -> CatalogFamilies {
        let labels = |rest: &[&'static str]| -> Vec<&'static str> {
            if tenants.is_empty() { rest.to_vec() } else { [&["tenant"], rest].concat() }
        };
        CatalogFamilies {
            tenants: tenants.to_vec(),
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
        }
    }

    /// Creates every catalog's series at zero, so they are there before the first event.
    pub(super) fn prepare(&self, engines: &[EngineKind]) {
        let catalogs: Vec<Option<&str>> = match self.tenants.is_empty() {
            true => vec![None],
            false => self.tenants.iter().map(|t| Some(t.as_str())).collect(),
        };
        for catalog in catalogs {
            let view = self.of(catalog);
            let _ = (view.written(), view.queue_depth());
            for reason in RejectReason::ALL {
                let _ = view.rejected(reason);
            }
            for cause in Cause::ALL {
                let _ = view.waiting(cause);
            }
            for engine in engines {
                let _ = view.removal_seconds(*engine);
            }
        }
    }

    /// The view of `tenant`'s series (`None`: the only catalog's).
    pub(super) fn of(&self, tenant: Option<&str>) -> CatalogMetrics {
        CatalogMetrics { tenant: tenant.map(str::to_owned), families: self.clone() }
    }

    /// A gauge family's total over every catalog, for the labels after `tenant`.
    pub(super) fn sum_gauges(&self, family: &IntGaugeVec, rest: &[&str]) -> i64 {
        match self.tenants.is_empty() {
            true => family.with_label_values(rest).get(),
            false => self.tenants.iter().map(|t| family.with_label_values(&[&[t.as_str()], rest].concat()).get()).sum(),
        }
    }
}

impl CatalogMetrics {
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
