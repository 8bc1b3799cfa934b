//! The status bar's figures: the engine and its state, queue depth, jobs in flight, thumbnails
//! made today, rejections, free disk — and `changes`, a number that moves whenever the catalog
//! may have changed, so a page refetches what it shows only then.

use super::Console;
use crate::clock;
use crate::dependency::Condition;
use crate::catalog::{Browse, Folder};
use crate::error::RejectReason;
use crate::job::InputKind;
use crate::sync::Mutex;
use serde::Serialize;
use std::hash::{Hash, Hasher};

/// Free space under which the status bar warns (as the health check does).
const DISK_LOW: u64 = 1024 * 1024 * 1024;

#[derive(Clone, Debug, PartialEq, Serialize)]
pub(super) struct Snapshot {
    pub engine: Engine,
    pub queue: usize,
    pub in_flight: i64,
    pub today: u64,
    pub rejected: usize,
    /// Products the catalog shows: photos in `produtos/` and rejected product photos.
    pub products: usize,
    pub backgrounds: usize,
    pub disk_free_bytes: Option<u64>,
    pub disk_low: bool,
    /// The pipeline runs (the API answers).
    pub ready: bool,
    pub max_file_size: u64,
    /// The console has a login (so the page offers to log out).
    pub login: bool,
    pub changes: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub(super) struct Engine {
    /// `local` or `gradio`.
    pub name: &'static str,
    /// `loading`, `ok`, `fallback` (the embedded engine stands in) or `down` (photos wait).
    pub state: &'static str,
    pub message: String,
    /// The remote engine's circuit breaker: `closed`, `failing` or `open`.
    pub circuit: Option<String>,
}

impl Console {
    /// The figures now (blocking: folder stamps, free space).
    pub(super) fn snapshot(&self) -> Snapshot {
        let m = &self.deps.metrics;
        // This catalog's counts (a tenant's own, with tenants).
        let written = m.catalog.written().get();
        let rejections: u64 =
            RejectReason::ALL.iter().map(|r| m.catalog.rejected(*r).get()).sum();
        let detected: u64 = InputKind::ALL.iter().map(|k| m.files_detected.with_label_values(&[k.label()]).get()).sum();
        let rejects = self.rejected.snapshot();
        let rejected = rejects.entries.len();
        // The catalog's count: the photos in `produtos/` and the rejected product photos it shows.
        let rejected_products = rejects.entries.iter().filter(|r| r.kind != Some(InputKind::Background)).count();
        let products = self.products.snapshot().entries.len() + rejected_products;
        let backgrounds = self.backgrounds.snapshot().entries.len();
        // This catalog's own figures: with tenants, the daemon's are every tenant's together.
        let (queue, in_flight) = (self.deps.queue.len(), self.deps.queue.running() as i64);
        let free = self.deps.catalog.free_bytes();
        let today = self.today.count(&*self.deps.catalog, written);
        let mut changes = std::collections::hash_map::DefaultHasher::new();
        (written, rejections, rejected, products, backgrounds, queue, in_flight, today).hash(&mut changes);
        // These counters are every tenant's together: a tenant's console does not follow them.
        if self.deps.tenant.is_none() {
            (detected, m.transient_failures.get()).hash(&mut changes);
        }
        self.running.get().is_some().hash(&mut changes);
        Snapshot {
            engine: self.engine(),
            queue,
            in_flight,
            today,
            rejected,
            products,
            backgrounds,
            disk_free_bytes: free,
            disk_low: free.is_some_and(|f| f < DISK_LOW),
            ready: self.running.get().is_some(),
            max_file_size: self.settings.limits.max_file_size,
            login: self.access.uses_login(),
            changes: changes.finish(),
        }
    }

    fn engine(&self) -> Engine {
        let name = self.deps.engine.label();
        let status = &self.deps.status;
        if !status.is_engine_ready() {
            return Engine { name, state: "loading", message: "the removal engine is loading".into(), circuit: None };
        }
        let Some(report) = status.dependencies().iter().map(|d| d.report()).find(|r| r.name == "engine") else {
            return Engine { name, state: "ok", message: "embedded engine (U²-Netp)".into(), circuit: None };
        };
        let state = match report.condition {
            Condition::Ok => "ok",
            Condition::Degraded => "fallback",
            Condition::Failing => "down",
        };
        let circuit = report.details["circuit"].as_str().map(str::to_owned);
        Engine { name, state, message: report.message, circuit }
    }
}

/// Thumbnails written since local midnight: the files the output folder got today, counted once
/// a day (at the first look, and after midnight), plus the catalog's count of thumbnails written
/// since.
#[derive(Default)]
pub(super) struct Today {
    /// Midnight counted, files counted then, and the catalog's count at that moment.
    counted: Mutex<Option<(i64, u64, u64)>>,
}

impl Today {
    pub(super) fn count(&self, catalog: &dyn Browse, written: u64) -> u64 {
        let midnight = clock::midnight(clock::now());
        let mut counted = self.counted.lock();
        match *counted {
            Some((day, files, at)) if day == midnight => files + written.saturating_sub(at),
            // A catalog that cannot be listed now is counted again at the next look.
            _ => match modified_since(catalog, midnight) {
                Some(files) => {
                    *counted = Some((midnight, files, written));
                    files
                }
                None => 0,
            },
        }
    }
}

/// Outputs modified at or after `since` (seconds since the epoch), when they can be listed.
fn modified_since(catalog: &dyn Browse, since: i64) -> Option<u64> {
    let files = catalog.files(Folder::Output).ok()?;
    Some(files.iter().filter(|(_, stamp)| stamp.mtime_ns.div_euclid(1_000_000_000) >= since).count() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn today_counts_todays_files_once_then_follows_the_daemon() {
        let base = crate::testkit::Base::new();
        let output = &base.folders.output;
        for name in ["a.jpg", "b.jpg", ".hidden.jpg"] {
            std::fs::write(output.join(name), b"x").unwrap();
        }
        crate::testkit::backdate(&output.join("b.jpg"));
        let catalog = crate::catalog::LocalCatalog::new(base.folders.clone());
        let today = Today::default();
        let expected = if clock::now() - clock::midnight(clock::now()) > 60 { 2 } else { 1 };
        assert_eq!(today.count(&catalog, 10), expected);
        std::fs::write(output.join("c.jpg"), b"x").unwrap();
        assert_eq!(today.count(&catalog, 13), expected + 3, "later ones come from the catalog's count");
    }
}
