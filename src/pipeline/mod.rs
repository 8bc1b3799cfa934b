//! The pipeline for one input, top to bottom: validate → remove → compose → encode → write.
//!
//! A product makes one output per (canvas, preset): the plain marketplace canvas and every
//! registered background. Each output is keyed by the content of what it is made from, so only
//! missing or outdated outputs are made, and the cut-out comes from the cache whenever the photo
//! was seen before. A background only registers itself; the caller then queues every known
//! product ([`Pipeline::products`]), which finds exactly the outputs for the new background
//! missing.
//!
//! One concept per file: [`product`] (a product job), [`outputs`] (planning and making its
//! files), [`backgrounds`] (the registry and a background job), [`covers`] (backgrounds resized
//! for a canvas, kept in memory), [`claims`] (output names), [`rejection`] (moving hopeless inputs
//! aside, and the still-being-written exception), [`orphans`] (inputs that left).

mod backgrounds;
mod claims;
mod covers;
mod orphans;
mod outputs;
mod product;
mod rejection;

use crate::catalog::Catalog;
use crate::config::Config;
use crate::error::{JobError, Transient};
use crate::folders::Folders;
use crate::job::{InputKind, Job};
use crate::metrics::Metrics;
use crate::preset::Preset;
use crate::preview::PreviewDir;
use crate::quota::Quota;
use crate::remove::{RemovalEngine, Source};
use crate::store::{CutoutCache, Journal};
use crate::validate::Limits;
use covers::Covers;
use std::sync::Arc;
use std::time::Instant;
use tracing::info;

/// How a job ended, when it did not fail.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Outputs were made (`written` may be empty when everything was already up to date).
    Product { written: Vec<String>, source: Option<Source> },
    /// A background was checked. `fan_out` holds its content hash when every product is to be
    /// queued again for it (a new version, or one whose earlier fan-out never finished); the
    /// caller then tells [`Pipeline::fanned_out`].
    Background { fan_out: Option<String> },
    /// The input left its folder.
    Gone,
    /// The input was moved to the rejected folder.
    Rejected,
}

/// A preset and what makes its outputs distinct.
struct PresetSlot {
    suffix: Option<String>,
    preset: Preset,
    fingerprint: String,
}

pub(crate) struct Pipeline {
    /// Where inputs come from and outputs go: folders or a bucket.
    catalog: Arc<dyn Catalog>,
    /// The local folders: the state folder holds the console's previews.
    folders: Folders,
    limits: Limits,
    presets: Vec<PresetSlot>,
    engine: Arc<dyn RemovalEngine>,
    journal: Arc<dyn Journal>,
    cutouts: Arc<dyn CutoutCache>,
    metrics: Arc<Metrics>,
    covers: Covers,
    delete_orphans: bool,
    /// This node's name, recorded with every output.
    node: String,
    /// Where each thumbnail's console preview is made as it is written (console on).
    previews: Option<PreviewDir>,
    /// The tenant's photos per day, when it has a quota.
    quota: Option<Quota>,
}

impl Pipeline {
    /// A pipeline over `catalog` (with local `folders` already created) that keeps its facts in
    /// `journal` and its cut-outs in `cutouts`.
    pub(crate) fn new(
        config: &Config,
        catalog: Arc<dyn Catalog>,
        folders: Folders,
        engine: Arc<dyn RemovalEngine>,
        journal: Arc<dyn Journal>,
        cutouts: Arc<dyn CutoutCache>,
        metrics: Arc<Metrics>,
    ) -> Pipeline {
        let main = PresetSlot { suffix: None, fingerprint: config.preset.fingerprint(), preset: config.preset.clone() };
        let extras = config.extra_presets.iter().map(|p| PresetSlot {
            suffix: Some(p.name.clone()),
            fingerprint: p.fingerprint(),
            preset: p.clone(),
        });
        let previews = config.console_enabled.0.then(|| PreviewDir::under(&folders.state));
        Pipeline {
            catalog,
            folders,
            limits: Limits::from_config(config),
            presets: std::iter::once(main).chain(extras).collect(),
            engine,
            journal,
            cutouts,
            metrics,
            covers: Covers::default(),
            delete_orphans: config.delete_orphans.0,
            node: config.node(),
            previews,
            quota: None,
        }
    }

    /// The same pipeline, processing at most `quota`'s photos a day (a tenant's
    /// `max_photos_per_day`).
    pub(crate) fn with_quota(mut self, quota: Quota) -> Pipeline {
        self.quota = Some(quota);
        self
    }

    /// Runs one job. Rejections are carried out here (file moved, note written, metric counted);
    /// a transient failure is returned for the caller to retry.
    pub(crate) fn run(&self, job: &Job) -> Result<Outcome, JobError> {
        let started = Instant::now();
        let result = match job.kind {
            InputKind::Product => self.product(&job.name),
            InputKind::Background => self.background(&job.name),
        };
        match result {
            Err(JobError::Rejected(rejection)) => self.reject(job, &rejection),
            Err(JobError::Vanished) => Ok(self.gone(job)),
            Ok(Outcome::Product { written, source }) => {
                if !written.is_empty() {
                    info!(
                        input = %job.name,
                        outputs = %written.join(", "),
                        engine = source.map_or("cache", Source::label),
                        node = %self.node,
                        duration_ms = started.elapsed().as_millis() as u64,
                        "thumbnails written"
                    );
                }
                Ok(Outcome::Product { written, source })
            }
            other => other,
        }
    }

    /// Every product in the catalog folder: after a new background each of them needs its
    /// output for it (made from the cached cut-outs). Listed after the background registered, so
    /// a product whose job started before that is run again and none is left without it.
    pub(crate) fn products(&self) -> Result<Vec<Job>, Transient> {
        let listing = self.catalog.inputs(InputKind::Product)?;
        Ok(listing.into_iter().map(|(name, _)| Job::new(InputKind::Product, name)).collect())
    }

    /// The folders this pipeline writes to: where a full disk stops it.
    pub(crate) fn storage_dirs(&self) -> Vec<std::path::PathBuf> {
        vec![self.folders.output.clone(), self.folders.rejected.clone(), self.folders.state.clone()]
    }

    /// Lets the removal engine give back its model while there is nothing to do.
    pub(crate) fn release_engine(&self) {
        self.engine.release_idle();
    }

    /// Removes cut-outs of photos that left the catalog longer than `ttl` ago.
    pub(crate) fn prune_cache(&self, ttl: std::time::Duration) {
        let live = self.journal.inputs(InputKind::Product).into_iter().map(|p| p.hash).collect();
        let pruned = self.cutouts.prune(&live, ttl);
        if pruned > 0 {
            info!(pruned, "old cut-outs removed from the cache (CACHE_TTL)");
        }
    }
}

/// Test builds only (`--features test-hooks`): an input whose name contains
/// `THUMBGEN_TEST_CRASH_ON` aborts the process: a photo where a decoder would crash on it, so the
/// tests can show that such a photo is rejected after a bounded number of runs instead of killing
/// every node in turn; a background between its registration and the queueing of its products,
/// so they can show that this fan-out is owed to the next run.
#[cfg(feature = "test-hooks")]
pub(crate) fn crash_on_purpose(name: &str) {
    if std::env::var("THUMBGEN_TEST_CRASH_ON").is_ok_and(|part| !part.is_empty() && name.contains(&part)) {
        tracing::error!(input = %name, "test hook: aborting the process on purpose");
        std::process::abort();
    }
}

#[cfg(not(feature = "test-hooks"))]
pub(crate) fn crash_on_purpose(_name: &str) {}

#[cfg(test)]
mod tests;
