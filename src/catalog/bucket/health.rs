//! The store's health, from what its requests said: failing from the first request that failed
//! (after the client's own retries) until one is answered again — never probed on the health
//! check's path, so `/health` never waits on the network.

use super::Bucket;
use crate::dependency::{Condition, Dependency, Report};
use crate::sync::Mutex;
use std::time::Instant;

#[derive(Default)]
pub(super) struct Seen {
    failing: Mutex<Option<Failing>>,
}

struct Failing {
    since: Instant,
    last: String,
}

impl Seen {
    pub(super) fn answered(&self) {
        if let Some(was) = self.failing.lock().take() {
            tracing::info!(down_for_s = was.since.elapsed().as_secs(), "the object store answers again");
        }
    }

    pub(super) fn failed(&self, error: String) {
        let mut failing = self.failing.lock();
        match failing.as_mut() {
            Some(f) => f.last = error,
            None => {
                tracing::warn!(error = %error, "the object store fails; work waits and is retried");
                *failing = Some(Failing { since: Instant::now(), last: error });
            }
        }
    }
}

impl Dependency for Bucket {
    fn report(&self) -> Report {
        let failing = self.seen.failing.lock();
        let details = serde_json::json!({ "url": self.url(), "endpoint": self.settings.endpoint_label() });
        match failing.as_ref() {
            None => Report {
                name: "storage",
                condition: Condition::Ok,
                message: format!("{} answers", self.url()),
                details,
                ready: true,
            },
            Some(f) => Report {
                name: "storage",
                condition: Condition::Failing,
                message: format!("{} failing for {} s: {}", self.url(), f.since.elapsed().as_secs(), f.last),
                details,
                ready: false,
            },
        }
    }
}
