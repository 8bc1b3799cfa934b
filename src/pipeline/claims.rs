//! Output names: each input claims the stem its outputs are named by, first come first served.

use super::Pipeline;
use crate::error::{Cause, JobError, RejectReason, Rejection, Transient};
use crate::job::InputKind;
use crate::naming;

impl Pipeline {
    /// The output stem of an input: its sanitised name, or, when another existing input already
    /// owns that, the name with its extension (`foto.png` → `foto-png`).
    pub(super) fn claim_stem(&self, kind: InputKind, name: &str) -> Result<String, JobError> {
        let exists = |holder: &str| self.catalog.holds(kind, holder);
        for stem in [naming::output_stem(name), naming::disambiguated_stem(name)] {
            let claimed = self
                .journal
                .claim(kind, &stem, name, &exists)
                .map_err(|e| Transient::new(Cause::Storage, format!("cannot record the name of {name}")).because(e))?;
            if claimed {
                return Ok(stem);
            }
        }
        Err(JobError::Rejected(Rejection::new(
            RejectReason::NameCollision,
            format!("other files already produce the output names of {name}"),
            "Rename the file so its name differs from the others (letters and digits) and copy it in again.",
        )))
    }
}
