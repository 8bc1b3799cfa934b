//! Inputs that left their folder: forgotten, and their outputs deleted when `DELETE_ORPHANS` asks
//! — whether they left while the daemon ran or while it was stopped.

use super::{Outcome, Pipeline};
use crate::job::{InputKind, Job};
use tracing::{info, warn};

impl Pipeline {
    /// The input is no longer in its folder: forget it, and delete its outputs when asked to.
    pub(super) fn gone(&self, job: &Job) -> Outcome {
        if let Err(e) = self.journal.forget_input(job.kind, &job.name) {
            warn!(input = %job.name, "cannot forget the deleted input: {e}");
        }
        if self.delete_orphans {
            let files = match job.kind {
                InputKind::Product => self.journal.outputs_of(Some(&job.name), None),
                InputKind::Background => self.journal.outputs_of(None, Some(&job.name)),
            };
            let removed: Vec<String> = files
                .into_iter()
                .filter(|f| self.catalog.remove_output(f))
                .collect();
            if !removed.is_empty() {
                info!(input = %job.name, removed = %removed.join(", "), "input deleted: its outputs were removed (DELETE_ORPHANS)");
                if let Err(e) = self.journal.record_removed(&removed) {
                    warn!("cannot record removed outputs: {e}");
                }
            }
        }
        Outcome::Gone
    }

    /// Forgets inputs the journal knows that left their folder while the daemon was stopped.
    pub(crate) fn reconcile(&self) {
        for kind in InputKind::ALL {
            for known in self.journal.inputs(kind) {
                if !self.catalog.holds(kind, &known.name) {
                    self.gone(&Job::new(kind, known.name));
                }
            }
        }
    }
}
