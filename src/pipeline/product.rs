//! A product job: read the photo (or know it by its stamp), find which outputs are missing, get
//! the cut-out (cache, the photo's own transparency, or the engine) and make them.

use super::{Outcome, Pipeline};
use crate::catalog::bucket::StoreError;
use crate::cutout::{self, Cutout, Decoded};
use crate::disk::FileStamp;
use crate::error::{Cause, JobError, Transient};
use crate::job::{content_hash, InputKind};
use crate::remove::{self, EngineKind, Source};
use crate::validate::InputFile;
use image::DynamicImage;
use std::time::{Duration, Instant};
use tracing::warn;

/// How long a cut-out just made waits for a cache that cannot take it before its job fails.
const SAVE_PATIENCE: Duration = Duration::from_secs(30);

impl Pipeline {
    /// Reads and validates an input, returning the file and its content hash.
    pub(super) fn read(&self, kind: InputKind, name: &str) -> Result<(InputFile, String), JobError> {
        let input = self.catalog.read(kind, name, &self.limits)?;
        let hash = content_hash(&input.bytes);
        Ok((input, hash))
    }

    pub(super) fn product(&self, name: &str) -> Result<Outcome, JobError> {
        let started = Instant::now();
        // A new photo while today's quota is used up waits, unread.
        let new_name = !self.journal.knows(InputKind::Product, name);
        if let Some(quota) = self.quota.as_ref().filter(|q| new_name && q.is_full_for(name)) {
            return Err(over_quota(quota.limit(), name));
        }
        // An unchanged file is known by its stamp: no read, no hash. A name the journal has never
        // seen is read at once (its stamp comes with it; in a bucket that saves a request).
        let known = match self.journal.knows(InputKind::Product, name) {
            true => {
                let stamp = self.catalog.look(InputKind::Product, name, &self.limits)?;
                self.journal.known_hash(InputKind::Product, name, &stamp).map(|hash| (stamp, hash))
            }
            false => None,
        };
        let (mut input, hash, stamp) = match known {
            Some((stamp, hash)) => (None, hash, stamp),
            None => {
                let (input, hash) = self.read(InputKind::Product, name)?;
                let stamp = input.stamp;
                (Some(input), hash, stamp)
            }
        };
        let stem = self.claim_stem(InputKind::Product, name)?;
        let pending = self.missing_outputs(name, &stem, &hash)?;
        if pending.is_empty() {
            self.record_hash(name, &input, stamp, &hash);
            return Ok(Outcome::Product { written: Vec::new(), source: None });
        }
        // A photo counts against a quota when its own image is to be made: versions on a new
        // background of photos made already do not.
        let new_photo = pending.iter().any(|planned| planned.background.is_none());
        if let Some(quota) = self.quota.as_ref().filter(|q| new_photo && !q.admit(&hash, name)) {
            return Err(over_quota(quota.limit(), name));
        }

        let (cutout, source) = match self.cutouts.load(&hash) {
            Some(cutout) => {
                self.metrics.cutout_cache_hits.inc();
                (cutout, None)
            }
            None => {
                let input = match input.take() {
                    Some(input) => input,
                    None => self.read(InputKind::Product, name)?.0,
                };
                super::crash_on_purpose(name);
                let decoded = cutout::decode(&input)?;
                self.metrics.stage("validate", started.elapsed().as_secs_f64());
                self.cut_out(decoded, &hash)?
            }
        };
        self.record_hash(name, &input, stamp, &hash);
        let written = self.make_outputs(&cutout, name, &pending)?;
        Ok(Outcome::Product { written, source })
    }

    fn record_hash(&self, name: &str, input: &Option<InputFile>, stamp: FileStamp, hash: &str) {
        // The stamp read at open time, unless the file was read later (then the read one is exact).
        let stamp = input.as_ref().map_or(stamp, |i| i.stamp);
        if let Err(e) = self.journal.record_hash(InputKind::Product, name, stamp, hash) {
            warn!("cannot record the hash of {name}: {e}");
        }
    }

    /// Makes the cut-out of a decoded input of content `hash`: its own transparency when it has
    /// some, else the engine's mask — made by one worker at a time (another one waiting for it
    /// finds it in the cache; `None` as the source then) and kept in the cache.
    fn cut_out(&self, decoded: Decoded, hash: &str) -> Result<(Cutout, Option<Source>), JobError> {
        let photo = match decoded {
            Decoded::Own(cut) => {
                // A photo that is its own cut-out is cheaper to decode again than to cache.
                let cut = cut.ok_or_else(remove::no_product)?;
                self.record_engine(hash, Source::OwnTransparency);
                return Ok((cut, Some(Source::OwnTransparency)));
            }
            Decoded::Photo(photo) => photo,
        };
        let storage = |e| Transient::new(Cause::Storage, "cannot use the cut-out cache in the state folder").because(e);
        let Some(_reservation) = self.cutouts.reserve(hash).map_err(storage)? else {
            return Err(Transient::new(
                Cause::Busy,
                "another worker is cutting out the same photo; looking again soon",
            )
            .into());
        };
        if let Some(cutout) = self.cutouts.load(hash) {
            self.metrics.cutout_cache_hits.inc();
            return Ok((cutout, None));
        }
        let (cutout, engine) = self.remove_background(photo)?;
        self.keep(hash, &cutout).map_err(storage)?;
        self.record_engine(hash, Source::Engine(engine));
        Ok((cutout, Some(Source::Engine(engine))))
    }

    /// Saves a cut-out just made, waiting up to [`SAVE_PATIENCE`] for a bucket that does not
    /// answer (a store restarting): a cut-out lost would cost the photo another removal. Other
    /// failures (a full disk) fail the job at once, to be retried later.
    fn keep(&self, hash: &str, cutout: &Cutout) -> std::io::Result<()> {
        let started = Instant::now();
        let mut pause = Duration::from_millis(250);
        loop {
            match self.cutouts.save(hash, cutout) {
                Err(e) if StoreError::is_unanswered(&e) && started.elapsed() + pause < SAVE_PATIENCE => {
                    warn!("cannot keep the cut-out {hash} yet ({e}); trying again in {} ms", pause.as_millis());
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_secs(4));
                }
                result => return result,
            }
        }
    }

    fn record_engine(&self, hash: &str, source: Source) {
        if let Err(e) = self.journal.record_cutout(hash, source.label()) {
            warn!("cannot record which engine made the cut-out {hash}: {e}");
        }
    }

    /// The engine's cut-out of a photo without transparency.
    fn remove_background(&self, photo: DynamicImage) -> Result<(Cutout, EngineKind), JobError> {
        let rgb = photo.into_rgb8();
        let started = Instant::now();
        let result = self.engine.mask(&rgb);
        let seconds = started.elapsed().as_secs_f64();
        let engine = match &result {
            Ok(Some(mask)) => mask.engine,
            _ => self.engine.kind(),
        };
        let outcome = if result.is_ok() { "success" } else { "failure" };
        self.metrics.removals.with_label_values(&[engine.label(), outcome]).inc();
        self.metrics.catalog.removal_seconds(engine).observe(seconds);
        self.metrics.stage("remove", seconds);
        let cut = result?.and_then(|mask| Cutout::from_mask(&rgb, &mask.alpha)).ok_or_else(remove::no_product)?;
        Ok((cut, engine))
    }
}

/// A photo waiting for the next day: its tenant's `limit` photos of today are used up.
fn over_quota(limit: u64, name: &str) -> JobError {
    let why = format!("the {limit} photos of today (max_photos_per_day) are used up; {name} waits for tomorrow");
    Transient::new(Cause::OverQuota, why).into()
}

