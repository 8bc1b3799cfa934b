//! Backgrounds: a background job validates the image and registers it; the registry is the
//! journal's record of background inputs with their hashes and output stems, so every worker
//! (and, sharing the journal, every node) composes onto the same set.

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
        let registered = self.registered_backgrounds().into_iter().any(|b| b.name == name && b.hash == hash);
        if registered {
            return Ok(Outcome::Background { changed: false });
        }
        validate::decode(&input)?;
        self.claim_stem(InputKind::Background, name)?;
        self.journal
            .record_hash(InputKind::Background, name, input.stamp, &hash)
            .map_err(|e| Transient::new(Cause::Storage, format!("cannot record the background {name}")).because(e))?;
        info!(background = %name, "background ready");
        Ok(Outcome::Background { changed: true })
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
