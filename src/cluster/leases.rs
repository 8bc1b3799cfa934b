//! Leases: a key in the journal bucket that says which running instance holds a job or is making
//! a cut-out. Taken with compare-and-set, released by deleting it; a lease whose holder is no
//! longer alive is taken over, and counts the runs that died holding it.
//!
//! Only a run that started counts: a job is taken, then [`start`]ed when its worker begins it. A
//! node killed while it still waits to begin (its journal replica catching up, another job run
//! alone first) has not touched the photo, so that death says nothing about the photo.

use super::nodes::Nodes;
use super::BrokerError;
use async_nats::jetstream::kv::{self, CreateErrorKind, DeleteErrorKind, Operation, UpdateErrorKind};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
struct Holder {
    node: String,
    instance: String,
    /// Runs under this lease that started and never finished, this holder's own included once it
    /// has started.
    runs: u32,
    /// Whether this holder has begun the run (a lease written before this field existed had).
    #[serde(default = "started_by_default")]
    started: bool,
    /// Handed back unrun: anyone may take it, and it keeps its count.
    #[serde(default)]
    parked: bool,
}

fn started_by_default() -> bool {
    true
}

/// Where a holder is with the lease it writes.
#[derive(Clone, Copy)]
enum Stage {
    /// Taken, the run not begun.
    Held,
    /// The run has begun: it counts if the holder dies.
    Started,
    /// Handed back unrun.
    Parked,
}

impl Holder {
    /// The lease value this node writes: `runs` counted so far, at `stage`.
    fn written_by(nodes: &Nodes, runs: u32, stage: Stage) -> Vec<u8> {
        let me = &nodes.me;
        let holder = Holder {
            node: me.node.clone(),
            instance: me.instance.clone(),
            runs,
            started: matches!(stage, Stage::Started),
            parked: matches!(stage, Stage::Parked),
        };
        serde_json::to_vec(&holder).expect("a lease serialises")
    }
}

/// What taking a lease gave.
pub(super) enum Taken {
    /// Held now, at this bucket revision; `crashed` earlier runs died holding it.
    Held { revision: u64, crashed: u32 },
    /// Another live instance holds it.
    Busy,
}

/// Takes the lease `key` for this instance.
pub(super) async fn take(bucket: &kv::Store, key: &str, nodes: &Nodes) -> Result<Taken, BrokerError> {
    let me = &nodes.me;
    loop {
        let entry = bucket.entry(key).await.map_err(|e| BrokerError::new("cannot read a lease", e))?;
        let current = entry.filter(|e| e.operation == Operation::Put);
        let (previous_runs, revision) = match &current {
            None => (0, None),
            Some(entry) => {
                let holder: Option<Holder> = serde_json::from_slice(&entry.value).ok();
                match holder {
                    Some(h) if h.parked => (h.runs, Some(entry.revision)),
                    // Left by this instance after a run whose release did not reach the broker.
                    Some(h) if h.instance == me.instance => (0, Some(entry.revision)),
                    Some(h) if nodes.alive(&h.node, &h.instance) => return Ok(Taken::Busy),
                    Some(h) => (h.runs, Some(entry.revision)),
                    None => (0, Some(entry.revision)),
                }
            }
        };
        let value = Holder::written_by(nodes, previous_runs, Stage::Held).into();
        let written = match revision {
            None => bucket.create(key, value).await.map_err(|e| match e.kind() {
                CreateErrorKind::AlreadyExists => None,
                _ => Some(BrokerError::new("cannot take a lease", e)),
            }),
            Some(revision) => bucket.update(key, value, revision).await.map_err(|e| match e.kind() {
                UpdateErrorKind::WrongLastRevision => None,
                _ => Some(BrokerError::new("cannot take over a lease", e)),
            }),
        };
        match written {
            Ok(revision) => return Ok(Taken::Held { revision, crashed: previous_runs }),
            Err(None) => continue, // another instance was faster: look again
            Err(Some(e)) => return Err(e),
        }
    }
}

/// Records that the run under a lease taken at `revision` begins: from now on its holder dying
/// counts against the input. The lease's new revision; `None` when the broker could not be told
/// or the lease was taken over meanwhile (the run goes on; the lease keeps its old revision).
pub(super) async fn start(bucket: &kv::Store, key: &str, revision: u64, crashed: u32, nodes: &Nodes) -> Option<u64> {
    bucket.update(key, Holder::written_by(nodes, crashed + 1, Stage::Started).into(), revision).await.ok()
}

/// Releases a lease taken at `revision`. False when the broker could not be told (try again);
/// true also when the lease was taken over meanwhile.
pub(super) async fn release(bucket: &kv::Store, key: &str, revision: u64) -> bool {
    match bucket.delete_expect_revision(key, Some(revision)).await {
        Ok(()) => true,
        Err(e) => e.kind() == DeleteErrorKind::WrongLastRevision,
    }
}

/// Parks a lease taken at `revision` whose job was handed back without running: the next taker,
/// on any node, inherits its `crashed` earlier runs. False when the broker could not be told.
pub(super) async fn park(bucket: &kv::Store, key: &str, revision: u64, crashed: u32, nodes: &Nodes) -> bool {
    match bucket.update(key, Holder::written_by(nodes, crashed, Stage::Parked).into(), revision).await {
        Ok(_) => true,
        Err(e) => e.kind() == UpdateErrorKind::WrongLastRevision,
    }
}
