//! The pipeline for one input, top to bottom: validate → remove → compose → encode → write.
//!
//! A product makes one output per (canvas, preset): the plain marketplace canvas and every known
//! background. Each output is keyed by the content of what it is made from, so only missing or
//! outdated outputs are made, and the cut-out comes from the cache whenever the photo was seen
//! before. A background only registers itself; the caller then queues every product, which
//! finds exactly the outputs for the new background missing.

use crate::compose;
use crate::config::Config;
use crate::cutout::{self, Cutout};
use crate::encode::encode;
use crate::error::{JobError, RejectReason, Rejection};
use crate::folders::Folders;
use crate::metrics::Metrics;
use crate::naming;
use crate::preset::Preset;
use crate::reject::reject;
use crate::remove::{self, RemovalEngine, Source};
use crate::state::{content_hash, job_key, Folder, OutputRecord, State};
use crate::validate::{self, InputFile, Limits};
use crate::write::{sync_dir, write_atomic};
use image::{DynamicImage, RgbImage};
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tracing::{info, warn};

/// One input to look at: a file name in one of the watched folders. What to do is decided when
/// the job runs (the file may have changed or gone since it was queued).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Job {
    pub folder: Folder,
    pub name: String,
}

/// How a job ended, when it did not fail.
#[derive(Debug)]
pub enum Outcome {
    /// Outputs were made (`written` may be empty when everything was already up to date).
    Product { written: Vec<String>, source: Option<Source> },
    /// A background was checked; `changed` when it is new or its content changed.
    Background { changed: bool },
    /// The input left its folder.
    Gone,
    /// The input was moved to the rejected folder.
    Rejected(RejectReason),
}

/// A preset and what makes its outputs distinct.
struct PresetSlot {
    suffix: Option<String>,
    preset: Preset,
    fingerprint: String,
}

#[derive(Clone)]
struct BackgroundEntry {
    hash: String,
    stem: String,
}

/// One output file to make.
struct Planned {
    file: String,
    key: String,
    preset: usize,
    background: Option<(String, BackgroundEntry)>,
}

/// A background resized for a canvas: (content hash, width, height).
type CoverKey = (String, u32, u32);

/// How many resized backgrounds are kept in memory (about 4 MB each at 1200²).
const COVER_CACHE: usize = 16;

pub struct Pipeline {
    folders: Folders,
    limits: Limits,
    presets: Vec<PresetSlot>,
    engine: Arc<dyn RemovalEngine>,
    state: State,
    metrics: Arc<Metrics>,
    backgrounds: Mutex<BTreeMap<String, BackgroundEntry>>,
    covers: Mutex<VecDeque<(CoverKey, Arc<RgbImage>)>>,
    delete_orphans: bool,
}

impl Pipeline {
    pub fn new(config: &Config, engine: Arc<dyn RemovalEngine>, metrics: Arc<Metrics>) -> Result<Pipeline, String> {
        let folders = Folders::from_config(config);
        folders.create_all()?;
        let state = State::open(&folders.state, config.cache_enabled.0)
            .map_err(|e| format!("cannot open the state folder {}: {e}", folders.state.display()))?;
        crate::write::remove_stale_temps(&folders.output);
        crate::write::remove_stale_temps(&folders.rejected); // notes of rejections cut short
        let main = PresetSlot { suffix: None, fingerprint: config.preset.fingerprint(), preset: config.preset.clone() };
        let extras = config.extra_presets.iter().map(|p| PresetSlot {
            suffix: Some(p.name.clone()),
            fingerprint: p.fingerprint(),
            preset: p.clone(),
        });
        Ok(Pipeline {
            limits: Limits::from_config(config),
            presets: std::iter::once(main).chain(extras).collect(),
            engine,
            state,
            metrics,
            backgrounds: Mutex::new(BTreeMap::new()),
            covers: Mutex::new(VecDeque::new()),
            delete_orphans: config.delete_orphans.0,
            folders,
        })
    }

    pub fn folders(&self) -> &Folders {
        &self.folders
    }

    pub fn state(&self) -> &State {
        &self.state
    }

    pub fn engine_name(&self) -> &'static str {
        self.engine.name()
    }

    /// Runs one job. Rejections are carried out here (file moved, note written, metric counted);
    /// a transient failure is returned for the caller to retry.
    pub fn run(&self, job: &Job) -> Result<Outcome, JobError> {
        let started = Instant::now();
        let result = match job.folder {
            Folder::Product => self.product(&job.name),
            Folder::Background => self.background(&job.name),
        };
        match result {
            Err(JobError::Rejected(rejection)) if self.still_being_written(job, &rejection) => {
                Err(JobError::Transient(format!(
                    "{} looks incomplete and was modified moments ago; waiting for the writer to finish",
                    job.name
                )))
            }
            Err(JobError::Rejected(rejection)) => self.reject(job, &rejection),
            Err(JobError::Vanished) => Ok(self.gone(job)),
            Ok(Outcome::Product { written, source }) => {
                if !written.is_empty() {
                    info!(
                        input = %job.name,
                        outputs = %written.join(", "),
                        engine = source.map_or("cache", Source::label),
                        duration_ms = started.elapsed().as_millis() as u64,
                        "thumbnails written"
                    );
                }
                Ok(Outcome::Product { written, source })
            }
            other => other,
        }
    }

    /// An empty or truncated file modified in the last seconds is probably still being copied by
    /// a writer that closes and reopens it; it gets another look instead of a rejection.
    fn still_being_written(&self, job: &Job, rejection: &Rejection) -> bool {
        const SETTLE: std::time::Duration = std::time::Duration::from_secs(3);
        matches!(rejection.reason, RejectReason::Corrupt | RejectReason::Empty)
            && std::fs::symlink_metadata(self.folders.input_dir(job.folder).join(&job.name))
                .and_then(|m| m.modified())
                .is_ok_and(|t| t.elapsed().unwrap_or_default() < SETTLE)
    }

    fn reject(&self, job: &Job, rejection: &Rejection) -> Result<Outcome, JobError> {
        let path = self.folders.input_dir(job.folder).join(&job.name);
        match reject(&path, &self.folders.rejected, rejection) {
            Ok(moved) => {
                self.metrics.inputs_rejected.with_label_values(&[rejection.reason.label()]).inc();
                warn!(
                    input = %job.name,
                    folder = job.folder.label(),
                    reason = rejection.reason.label(),
                    problem = %rejection.problem,
                    moved_to = %moved.display(),
                    "input rejected"
                );
                self.state.forget_input(job.folder, &job.name);
                Ok(Outcome::Rejected(rejection.reason))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(self.gone(job)),
            Err(e) => Err(JobError::Transient(format!(
                "{} must be rejected ({}) but cannot be moved to {}: {e}",
                job.name,
                rejection.problem,
                self.folders.rejected.display()
            ))),
        }
    }

    /// The input is no longer in its folder: forget it, and delete its outputs when asked to.
    fn gone(&self, job: &Job) -> Outcome {
        self.state.forget_input(job.folder, &job.name);
        if job.folder == Folder::Background {
            self.backgrounds.lock().unwrap().remove(&job.name);
        }
        if self.delete_orphans {
            let files = match job.folder {
                Folder::Product => self.state.outputs_of(Some(&job.name), None),
                Folder::Background => self.state.outputs_of(None, Some(&job.name)),
            };
            let removed: Vec<String> = files
                .into_iter()
                .filter(|f| match std::fs::remove_file(self.folders.output.join(f)) {
                    Ok(()) => true,
                    Err(e) => e.kind() == std::io::ErrorKind::NotFound,
                })
                .collect();
            if !removed.is_empty() {
                info!(input = %job.name, removed = %removed.join(", "), "input deleted: its outputs were removed (DELETE_ORPHANS)");
                if let Err(e) = self.state.record_removed(&removed) {
                    warn!("cannot record removed outputs: {e}");
                }
            }
        }
        Outcome::Gone
    }

    /// Reads and validates an input, returning the file and its content hash.
    fn read(&self, folder: Folder, name: &str) -> Result<(InputFile, String), JobError> {
        let path = self.folders.input_dir(folder).join(name);
        let input = validate::read_input(&path, &self.limits)?;
        let hash = content_hash(&input.bytes);
        Ok((input, hash))
    }

    fn product(&self, name: &str) -> Result<Outcome, JobError> {
        let started = Instant::now();
        let path = self.folders.products.join(name);
        let (_, stamp) = validate::open_regular(&path, &self.limits)?;
        // An unchanged file is known by its stamp: no read, no hash.
        let (mut input, hash) = match self.state.known_hash(Folder::Product, name, &stamp) {
            Some(hash) => (None, hash),
            None => {
                let (input, hash) = self.read(Folder::Product, name)?;
                (Some(input), hash)
            }
        };
        let stem = self.claim_stem(Folder::Product, name)?;
        let pending: Vec<Planned> = self
            .plan(&stem, &hash)
            .into_iter()
            .filter(|p| !self.state.output_done(&self.folders.output, &p.file, &p.key))
            .collect();
        if pending.is_empty() {
            self.record_hash(Folder::Product, name, &input, stamp, &hash);
            return Ok(Outcome::Product { written: Vec::new(), source: None });
        }

        let (cutout, source) = match self.state.load_cutout(&hash) {
            Some(cutout) => {
                self.metrics.cutout_cache_hits.inc();
                (cutout, None)
            }
            None => {
                let input = match input.take() {
                    Some(input) => input,
                    None => self.read(Folder::Product, name)?.0,
                };
                let photo = validate::decode(&input)?;
                self.metrics.stage("validate", started.elapsed().as_secs_f64());
                let (cutout, source) = self.cut_out(photo)?;
                // A photo that is its own cut-out is cheaper to decode again than to cache.
                if source != Source::OwnTransparency {
                    self.state.save_cutout(&hash, &cutout).map_err(|e| {
                        JobError::Transient(format!("cannot save the cut-out in the state folder: {e}"))
                    })?;
                }
                (cutout, Some(source))
            }
        };
        self.record_hash(Folder::Product, name, &input, stamp, &hash);
        let written = self.make_outputs(&cutout, name, &pending)?;
        Ok(Outcome::Product { written, source })
    }

    fn record_hash(
        &self,
        folder: Folder,
        name: &str,
        input: &Option<InputFile>,
        stamp: validate::FileStamp,
        hash: &str,
    ) {
        // The stamp read at open time, unless the file was read later (then the read one is exact).
        let stamp = input.as_ref().map_or(stamp, |i| i.stamp);
        if let Err(e) = self.state.record_hash(folder, name, stamp, hash) {
            warn!("cannot record the hash of {name}: {e}");
        }
    }

    /// Makes the cut-out of a decoded photo: its own transparency when it has some, else the
    /// engine's mask.
    fn cut_out(&self, photo: DynamicImage) -> Result<(Cutout, Source), JobError> {
        if cutout::has_real_transparency(&photo) {
            let cut = Cutout::from_transparent(photo.into_rgba8()).ok_or_else(remove::no_product)?;
            return Ok((cut, Source::OwnTransparency));
        }
        let rgb = photo.into_rgb8();
        let started = Instant::now();
        let result = self.engine.mask(&rgb);
        let seconds = started.elapsed().as_secs_f64();
        let engine = match &result {
            Ok(Some(mask)) => mask.engine,
            _ => self.engine.name(),
        };
        let outcome = if result.is_ok() { "success" } else { "failure" };
        self.metrics.removals.with_label_values(&[engine, outcome]).inc();
        self.metrics.removal_duration.with_label_values(&[engine]).observe(seconds);
        self.metrics.stage("remove", seconds);
        let cut = result?.and_then(|mask| Cutout::from_mask(&rgb, &mask.alpha)).ok_or_else(remove::no_product)?;
        Ok((cut, Source::Engine(engine)))
    }

    /// Every output a product should have now: each preset on the plain canvas and on each
    /// known background.
    fn plan(&self, stem: &str, product_hash: &str) -> Vec<Planned> {
        let backgrounds: Vec<(String, BackgroundEntry)> =
            self.backgrounds.lock().unwrap().iter().map(|(n, e)| (n.clone(), e.clone())).collect();
        let mut plan = Vec::new();
        for (index, slot) in self.presets.iter().enumerate() {
            let ext = slot.preset.format.extension();
            plan.push(Planned {
                file: naming::output_name(stem, None, slot.suffix.as_deref(), ext),
                key: job_key(product_hash, None, &slot.fingerprint),
                preset: index,
                background: None,
            });
            for (name, entry) in &backgrounds {
                plan.push(Planned {
                    file: naming::output_name(stem, Some(&entry.stem), slot.suffix.as_deref(), ext),
                    key: job_key(product_hash, Some(&entry.hash), &slot.fingerprint),
                    preset: index,
                    background: Some((name.clone(), entry.clone())),
                });
            }
        }
        plan
    }

    fn make_outputs(&self, cutout: &Cutout, product: &str, pending: &[Planned]) -> Result<Vec<String>, JobError> {
        let mut written = Vec::new();
        let mut records = Vec::new();
        let result = (|| {
            for (index, slot) in self.presets.iter().enumerate() {
                let mine: Vec<&Planned> = pending.iter().filter(|p| p.preset == index).collect();
                if mine.is_empty() {
                    continue;
                }
                let started = Instant::now();
                let placed = compose::place(cutout, &slot.preset);
                let mut compose_seconds = started.elapsed().as_secs_f64();
                for planned in mine {
                    let started = Instant::now();
                    let mut canvas = match &planned.background {
                        None => compose::plain_canvas(&slot.preset),
                        Some((name, entry)) => match self.cover(name, entry, &slot.preset)? {
                            Some(cover) => (*cover).clone(),
                            None => continue, // changed or gone meanwhile: its own job requeues us
                        },
                    };
                    compose::blend(&mut canvas, &placed);
                    compose_seconds += started.elapsed().as_secs_f64();

                    let started = Instant::now();
                    let bytes = encode(&canvas, &slot.preset).map_err(JobError::Transient)?;
                    self.metrics.stage("encode", started.elapsed().as_secs_f64());

                    let started = Instant::now();
                    write_atomic(&self.folders.output, &planned.file, &bytes).map_err(|e| {
                        JobError::Transient(format!(
                            "cannot write {}: {e}",
                            self.folders.output.join(&planned.file).display()
                        ))
                    })?;
                    self.metrics.stage("write", started.elapsed().as_secs_f64());
                    self.metrics.thumbnails_written.inc();
                    written.push(planned.file.clone());
                    records.push((
                        planned.file.clone(),
                        OutputRecord {
                            key: planned.key.clone(),
                            product: product.to_owned(),
                            background: planned.background.as_ref().map(|(n, _)| n.clone()),
                        },
                    ));
                }
                self.metrics.stage("compose", compose_seconds);
            }
            Ok(())
        })();
        if !records.is_empty() {
            let _ = sync_dir(&self.folders.output);
            self.state
                .record_outputs(records)
                .map_err(|e| JobError::Transient(format!("cannot record finished outputs: {e}")))?;
        }
        result.map(|()| written)
    }

    /// The background scaled and cropped to a preset's canvas, from memory when possible.
    /// `None` when the file no longer has the content it was registered with.
    fn cover(&self, name: &str, entry: &BackgroundEntry, preset: &Preset) -> Result<Option<Arc<RgbImage>>, JobError> {
        let key = (entry.hash.clone(), preset.width, preset.height);
        if let Some((_, cover)) = self.covers.lock().unwrap().iter().find(|(k, _)| *k == key) {
            return Ok(Some(cover.clone()));
        }
        let (input, hash) = match self.read(Folder::Background, name) {
            Ok(read) => read,
            Err(JobError::Transient(e)) => return Err(JobError::Transient(e)),
            Err(_) => return Ok(None),
        };
        if hash != entry.hash {
            return Ok(None);
        }
        let Ok(image) = validate::decode(&input) else {
            return Ok(None);
        };
        let cover = Arc::new(compose::cover(&flatten(image), preset.width, preset.height));
        let mut covers = self.covers.lock().unwrap();
        covers.push_front((key, cover.clone()));
        covers.truncate(COVER_CACHE);
        Ok(Some(cover))
    }

    fn background(&self, name: &str) -> Result<Outcome, JobError> {
        let (input, hash) = self.read(Folder::Background, name)?;
        if self.backgrounds.lock().unwrap().get(name).is_some_and(|e| e.hash == hash) {
            return Ok(Outcome::Background { changed: false });
        }
        validate::decode(&input)?;
        let stem = self.claim_stem(Folder::Background, name)?;
        if let Err(e) = self.state.record_hash(Folder::Background, name, input.stamp, &hash) {
            warn!("cannot record the hash of {name}: {e}");
        }
        self.backgrounds.lock().unwrap().insert(name.to_owned(), BackgroundEntry { hash, stem });
        info!(background = %name, "background ready");
        Ok(Outcome::Background { changed: true })
    }

    /// The output stem of an input: its sanitised name, or, when another existing input already
    /// owns that, the name with its extension (`foto.png` → `foto-png`).
    fn claim_stem(&self, folder: Folder, name: &str) -> Result<String, JobError> {
        let dir = self.folders.input_dir(folder);
        let exists = |holder: &str| std::fs::symlink_metadata(dir.join(holder)).is_ok();
        for stem in [naming::output_stem(name), naming::disambiguated_stem(name)] {
            match self.state.claim(folder, &stem, name, exists) {
                Ok(true) => return Ok(stem),
                Ok(false) => continue,
                Err(e) => return Err(JobError::Transient(format!("cannot record the name of {name}: {e}"))),
            }
        }
        Err(JobError::Rejected(Rejection::new(
            RejectReason::NameCollision,
            format!("other files already produce the output names of {name}"),
            "Rename the file so its name differs from the others (letters and digits) and copy it in again.",
        )))
    }

    /// Removes cut-outs of photos that left the catalog longer than `ttl` ago.
    pub fn prune_cache(&self, ttl: std::time::Duration) {
        let pruned = self.state.prune_cutouts(ttl);
        if pruned > 0 {
            info!(pruned, "old cut-outs removed from the cache (CACHE_TTL)");
        }
    }
}

/// Backgrounds with transparency are laid on white, the marketplace colour.
fn flatten(image: DynamicImage) -> RgbImage {
    if !image.color().has_alpha() {
        return image.into_rgb8();
    }
    let rgba = image.into_rgba8();
    RgbImage::from_fn(rgba.width(), rgba.height(), |x, y| {
        let p = rgba.get_pixel(x, y);
        let a = p[3] as u32;
        image::Rgb([0, 1, 2].map(|c| ((p[c] as u32 * a + 255 * (255 - a) + 127) / 255) as u8))
    })
}
