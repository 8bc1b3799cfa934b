//! Outputs: which files a product should have now, and making the missing ones — composed,
//! encoded, written atomically and recorded.

use super::backgrounds::Background;
use super::Pipeline;
use crate::compose::{self, Canvas, Placed};
use crate::cutout::Cutout;
use crate::encode::encode;
use crate::error::{Cause, JobError, Transient};
use crate::naming;
use crate::preset::Backdrop;
use crate::store::{job_key, OutputRecord};
use std::time::Instant;

/// One output file to make.
pub(super) struct Planned {
    file: String,
    key: String,
    preset: usize,
    pub(super) background: Option<Background>,
}

impl Pipeline {
    /// The outputs of product `product` (stem `stem`, content `product_hash`) that are missing or
    /// out of date: each preset on the plain canvas and on each registered background.
    pub(super) fn missing_outputs(&self, product: &str, stem: &str, product_hash: &str) -> Result<Vec<Planned>, JobError> {
        let backgrounds = self.registered_backgrounds();
        let mut plan = Vec::new();
        for (index, slot) in self.presets.iter().enumerate() {
            let ext = slot.preset.format.extension();
            plan.push(Planned {
                file: naming::output_name(stem, None, slot.suffix.as_deref(), ext),
                key: job_key(product_hash, None, &slot.fingerprint),
                preset: index,
                background: None,
            });
            // A transparent preset is the product alone: nothing to make on backgrounds.
            let on_backgrounds = if slot.preset.background == Backdrop::Transparent { &[][..] } else { &backgrounds };
            for background in on_backgrounds {
                plan.push(Planned {
                    file: naming::output_name(stem, Some(&background.stem), slot.suffix.as_deref(), ext),
                    key: job_key(product_hash, Some(&background.hash), &slot.fingerprint),
                    preset: index,
                    background: Some(background.clone()),
                });
            }
        }
        let files: Vec<&str> = plan.iter().map(|p| p.file.as_str()).collect();
        let exist = self.catalog.outputs_exist(&files)?;
        let mut adopted = Vec::new();
        let mut missing = Vec::new();
        for (planned, exists) in plan.into_iter().zip(exist) {
            if !exists {
                missing.push(planned);
            } else if self.journal.output(&planned.file).is_some_and(|r| r.key == planned.key) {
                // Made by this job, as the journal says.
            } else if self.catalog.output_key(&planned.file)?.is_some_and(|stored| stored == planned.key) {
                // Made by this job, as the key stored with it says, but not in this node's
                // journal (a node started with no local state): recorded, not made again.
                adopted.push((planned.file.clone(), self.record_of(&planned, product)));
            } else {
                missing.push(planned);
            }
        }
        if !adopted.is_empty() {
            self.journal
                .record_outputs(adopted)
                .map_err(|e| Transient::new(Cause::Storage, "cannot record finished outputs").because(e))?;
        }
        Ok(missing)
    }

    fn record_of(&self, planned: &Planned, product: &str) -> OutputRecord {
        OutputRecord {
            key: planned.key.clone(),
            product: product.to_owned(),
            background: planned.background.as_ref().map(|b| b.name.clone()),
            node: Some(self.node.clone()),
        }
    }

    /// Makes the `pending` outputs of `product` from its cut-out: the product is placed once per
    /// preset, then every output is blended, encoded and written on its own core. Outputs that
    /// were written are recorded even when another one failed; the first failure is returned.
    pub(super) fn make_outputs(
        &self,
        cutout: &Cutout,
        product: &str,
        pending: &[Planned],
    ) -> Result<Vec<String>, JobError> {
        // Each preset's placement is shared by its outputs: its time is split among them, so the
        // compose stage is observed once per output, like encode and write.
        let placed: Vec<Option<(Placed, f64)>> = self
            .presets
            .iter()
            .enumerate()
            .map(|(index, slot)| {
                let outputs = pending.iter().filter(|p| p.preset == index).count();
                (outputs > 0).then(|| {
                    let started = Instant::now();
                    let placed = compose::place(cutout, &slot.preset);
                    (placed, started.elapsed().as_secs_f64() / outputs as f64)
                })
            })
            .collect();
        let made = crate::parallel::map(pending, |planned| {
            let (placed, share) = placed[planned.preset].as_ref().expect("placed for every preset with outputs");
            self.make_output(planned, placed, *share)
        });
        let mut written = Vec::new();
        let mut records = Vec::new();
        let mut failure = None;
        for (planned, result) in pending.iter().zip(made) {
            match result {
                Ok(true) => {
                    written.push(planned.file.clone());
                    records.push((planned.file.clone(), self.record_of(planned, product)));
                }
                Ok(false) => {}
                Err(e) => {
                    failure.get_or_insert(e);
                }
            }
        }
        if !records.is_empty() {
            self.catalog.outputs_written();
            self.journal
                .record_outputs(records)
                .map_err(|e| Transient::new(Cause::Storage, "cannot record finished outputs").because(e))?;
        }
        match failure {
            Some(e) => Err(e),
            None => Ok(written),
        }
    }

    /// Blends, encodes and writes one output; `false` when its background changed or left
    /// meanwhile (its own job queues the product again).
    /// `placing` is this output's share of the time its preset's placement took.
    fn make_output(&self, planned: &Planned, placed: &Placed, placing: f64) -> Result<bool, JobError> {
        let preset = &self.presets[planned.preset].preset;
        let started = Instant::now();
        let canvas = match &planned.background {
            None => compose::on_backdrop(placed, preset),
            Some(background) => match self.cover(background, preset)? {
                Some(cover) => {
                    let mut canvas = (*cover).clone();
                    compose::blend(&mut canvas, placed);
                    Canvas::Opaque(canvas)
                }
                None => return Ok(false),
            },
        };
        self.metrics.stage("compose", placing + started.elapsed().as_secs_f64());

        let started = Instant::now();
        let bytes = encode(&canvas, preset)
            .map_err(|e| Transient::new(Cause::Encode, format!("cannot encode {}", planned.file)).because(e))?;
        self.metrics.stage("encode", started.elapsed().as_secs_f64());

        let started = Instant::now();
        self.catalog.write_output(&planned.file, bytes, &planned.key).map_err(|e| {
            let place = self.catalog.location();
            Transient::new(Cause::Storage, format!("cannot write {} in {place}", planned.file)).because(e)
        })?;
        self.metrics.stage("write", started.elapsed().as_secs_f64());
        self.metrics.catalog.written().inc();
        // The console's preview, from the pixels at hand (about 1 ms); the console makes it
        // itself if this fails.
        if let Some(previews) = &self.previews {
            if let Err(e) = previews.make_from_canvas(&planned.key, &canvas) {
                tracing::debug!(output = %planned.file, "no preview made: {e}");
            }
        }
        Ok(true)
    }
}
