//! Rejection: an input that can never succeed is moved aside with its note and counted — unless
//! it only looks broken because it is still being written, which earns it another look instead.

use super::{Outcome, Pipeline};
use crate::catalog::RejectFailure;
use crate::error::{Cause, JobError, RejectReason, Rejection, Transient};
use crate::job::Job;
use tracing::warn;

impl Pipeline {
    /// Rejects a job whose runs keep dying with their worker (`crashed` of them), without running
    /// it again: a photo that crashes a decoder must not take every node down in turn.
    pub(crate) fn reject_crasher(&self, job: &Job, crashed: u32) -> Result<Outcome, JobError> {
        let rejection = Rejection::new(
            RejectReason::RepeatedCrash,
            format!("processing this file stopped {crashed} thumbgen workers in a row (a crash while decoding or cutting it out)"),
            "Open the photo in an image editor, export it again as JPEG or PNG and copy the new file in; if that one \
             crashes too, keep it aside and report it to the thumbgen maintainers.",
        );
        self.reject(job, &rejection)
    }

    pub(super) fn reject(&self, job: &Job, rejection: &Rejection) -> Result<Outcome, JobError> {
        // An empty or truncated file may be an upload in progress (a writer that closes and
        // reopens it, or one that started before the daemon): look again rather than reject.
        if matches!(rejection.reason, RejectReason::Corrupt | RejectReason::Empty) && self.catalog.still_being_written(job.kind, &job.name) {
            return Err(Transient::new(
                Cause::StillBeingWritten,
                format!("{} looks incomplete and is still being written; waiting for the writer to finish", job.name),
            )
            .into());
        }
        match self.catalog.reject(job.kind, &job.name, rejection) {
            Ok(moved) => {
                self.metrics.catalog.rejected(rejection.reason).inc();
                warn!(
                    input = %job.name,
                    folder = job.kind.label(),
                    reason = rejection.reason.label(),
                    problem = %rejection.problem,
                    moved_to = %moved,
                    "input rejected"
                );
                if let Err(e) = self.journal.forget_input(job.kind, &job.name) {
                    warn!(input = %job.name, "cannot forget the rejected input: {e}");
                }
                Ok(Outcome::Rejected)
            }
            Err(RejectFailure::Gone) => Ok(self.gone(job)),
            Err(RejectFailure::Changed) => Err(Transient::new(
                Cause::Read,
                format!("{} was replaced while being rejected; the new version is looked at again", job.name),
            )
            .into()),
            Err(RejectFailure::Failed(e)) => Err(Transient::new(
                Cause::Storage,
                format!(
                    "{} must be rejected ({}) but cannot be moved to the rejected folder of {}",
                    job.name,
                    rejection.problem,
                    self.catalog.location()
                ),
            )
            .because(e)
            .into()),
        }
    }
}
