//! Backgrounds: a background job validates the image and registers it; the registry is the
//! journal's record of background inputs with their hashes and output stems, so every worker
//! (and, sharing the journal, every node) composes onto the same set.
//!
//! A new version is registered as owing a fan-out (every product queued again for it). The debt
//! is paid only once the products are queued ([`Pipeline::fanned_out`]), so a run that dies, or a
//! queue that fails, in between leaves it owed, and the next run of the background's job (its
//! redelivery, retry or the next start's scan) queues them again.

use super::{Outcome, Pipeline};
use crate::error::{Cause, JobError, Transient};
use crate::job::InputKind;
use crate::validate;
use tracing::info;

/// A registered background: its content and the stem its outputs are named with.
#[derive(Clone, Debug)]
pub(super) struct Background {
    pub name: String,
    pub hash: String,
    pub stem: String,
}

impl Pipeline {
    pub(super) fn background(&self, name: &str) -> Result<Outcome, JobError> {
        let (input, hash) = self.read(InputKind::Background, name)?;
        let registered = self.journal.stem_of(InputKind::Background, name).is_some();
        let known = self.journal.inputs(InputKind::Background).into_iter().find(|b| b.name == name && b.hash == hash);
        if let Some(known) = known.filter(|_| registered) {
            return Ok(Outcome::Background { fan_out: known.fan_out.then_some(hash) });
        }
        validate::decode(&input)?;
        self.claim_stem(InputKind::Background, name)?;
        self.journal
            .register_background(name, input.stamp, &hash)
            .map_err(|e| Transient::new(Cause::Storage, format!("cannot record the background {name}")).because(e))?;
        info!(background = %name, "background ready");
        Ok(Outcome::Background { fan_out: Some(hash) })
    }

    /// Every product was queued again for version `hash` of background `name`.
    pub(crate) fn fanned_out(&self, name: &str, hash: &str) -> Result<(), Transient> {
        self.journal.fanned_out(name, hash).map_err(|e| {
            Transient::new(Cause::Storage, format!("cannot record that the products were queued for the background {name}"))
                .because(e)
        })
    }

    /// Every background registered now, by name.
    pub(super) fn registered_backgrounds(&self) -> Vec<Background> {
        self.journal
            .inputs(InputKind::Background)
            .into_iter()
            .filter_map(|b| {
                let stem = self.journal.stem_of(InputKind::Background, &b.name)?;
                Some(Background { name: b.name, hash: b.hash, stem })
            })
            .collect()
    }
}
