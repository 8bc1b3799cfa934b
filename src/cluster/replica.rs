//! The replica: this node's copy of the journal bucket, kept current by a watch on the bucket,
//! so reads are local and never wait on the network. Writes go to the broker first; a job this
//! node takes waits until the replica has caught up with the lease that hands it the job, so it
//! sees everything the node before it recorded.

use super::names::{self, Fact};
use crate::store::{Record, Tables};
use crate::sync::{Mutex, MutexGuard};
use async_nats::jetstream::kv::{Entry, Operation};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::Notify;

#[derive(Default)]
pub(super) struct Replica {
    tables: Mutex<Tables>,
    /// The highest bucket revision applied.
    applied: AtomicU64,
    advanced: Notify,
}

impl Replica {
    pub(super) fn tables(&self) -> MutexGuard<'_, Tables> {
        self.tables.lock()
    }

    /// Applies a record this node wrote (it also comes back through the watch).
    pub(super) fn apply(&self, record: Record) {
        self.tables.lock().apply(record);
    }

    /// Applies one change of the bucket.
    pub(super) fn absorb(&self, entry: &Entry) {
        let record = match (&entry.operation, names::fact_of(&entry.key)) {
            (Operation::Put, Some(_)) => serde_json::from_slice::<Record>(&entry.value).ok(),
            (_, Some(Fact::Stamp(kind, name))) => Some(Record::Forget { kind, name }),
            (_, Some(Fact::Output(file))) => Some(Record::Removed { file }),
            _ => None,
        };
        if let Some(record) = record {
            self.apply(record);
        }
        self.applied.fetch_max(entry.revision, Ordering::SeqCst);
        self.advanced.notify_waiters();
    }

    /// A new bucket starts again from revision 1.
    pub(super) fn restart_revisions(&self) {
        self.applied.store(0, Ordering::SeqCst);
    }

    /// Waits (at most `limit`) until every change up to `revision` is applied.
    pub(super) async fn caught_up(&self, revision: u64, limit: Duration) -> bool {
        let wait = async {
            loop {
                let notified = self.advanced.notified();
                if self.applied.load(Ordering::SeqCst) >= revision {
                    return;
                }
                notified.await;
            }
        };
        tokio::time::timeout(limit, wait).await.is_ok()
    }
}
