//! Outputs: which files a product should have now, and making the missing ones — composed,
//! encoded, written atomically and recorded.

use super::backgrounds::Background;
use super::Pipeline;
use crate::compose;
use crate::cutout::Cutout;
use crate::encode::encode;
use crate::error::{Cause, JobError, Transient};
use crate::naming;
use crate::store::{job_key, OutputRecord};
use crate::write::{sync_dir, write_atomic};
use std::time::Instant;

/// One output file to make.
pub(super) struct Planned {
    file: String,
    key: String,
    preset: usize,
    background: Option<Background>,
}

impl Pipeline {
    /// The outputs of product `stem` (content `product_hash`) that are missing or out of date:
    /// each preset on the plain canvas and on each registered background.
    pub(super) fn missing_outputs(&self, stem: &str, product_hash: &str) -> Vec<Planned> {
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
            for background in &backgrounds {
                plan.push(Planned {
                    file: naming::output_name(stem, Some(&background.stem), slot.suffix.as_deref(), ext),
                    key: job_key(product_hash, Some(&background.hash), &slot.fingerprint),
                    preset: index,
                    background: Some(background.clone()),
                });
            }
        }
        plan.retain(|p| !self.output_done(&p.file, &p.key));
        plan
    }

    /// True when `file` exists and was made from job `key`.
    fn output_done(&self, file: &str, key: &str) -> bool {
        self.journal.output(file).is_some_and(|r| r.key == key) && self.folders.output.join(file).is_file()
    }

    pub(super) fn make_outputs(
        &self,
        cutout: &Cutout,
        product: &str,
        pending: &[Planned],
    ) -> Result<Vec<String>, JobError> {
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
                        Some(background) => match self.cover(background, &slot.preset)? {
                            Some(cover) => (*cover).clone(),
                            None => continue, // changed or gone meanwhile: its own job requeues us
                        },
                    };
                    compose::blend(&mut canvas, &placed);
                    compose_seconds += started.elapsed().as_secs_f64();

                    let started = Instant::now();
                    let bytes = encode(&canvas, &slot.preset).map_err(|e| {
                        Transient::new(Cause::Encode, format!("cannot encode {}", planned.file)).because(e)
                    })?;
                    self.metrics.stage("encode", started.elapsed().as_secs_f64());

                    let started = Instant::now();
                    write_atomic(&self.folders.output, &planned.file, &bytes).map_err(|e| {
                        let path = self.folders.output.join(&planned.file);
                        Transient::new(Cause::Storage, format!("cannot write {}", path.display())).because(e)
                    })?;
                    self.metrics.stage("write", started.elapsed().as_secs_f64());
                    self.metrics.thumbnails_written.inc();
                    written.push(planned.file.clone());
                    records.push((
                        planned.file.clone(),
                        OutputRecord {
                            key: planned.key.clone(),
                            product: product.to_owned(),
                            background: planned.background.as_ref().map(|b| b.name.clone()),
                            node: Some(self.node.clone()),
                        },
                    ));
                }
                self.metrics.stage("compose", compose_seconds);
            }
            Ok::<(), JobError>(())
        })();
        if !records.is_empty() {
            let _ = sync_dir(&self.folders.output);
            self.journal
                .record_outputs(records)
                .map_err(|e| Transient::new(Cause::Storage, "cannot record finished outputs").because(e))?;
        }
        result.map(|()| written)
    }
}
