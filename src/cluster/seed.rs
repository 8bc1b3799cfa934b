//! Seeding: what a journal bucket new to the cluster is given — the single-node journal of the
//! base folder on the very first cluster start (so a catalog that ran on one node is not redone),
//! or, after the broker came back without its store, every fact the nodes still hold in their
//! replicas.

use super::broker::Handles;
use super::names::key;
use super::replica::Replica;
use super::BrokerError;
use crate::store::{FileJournal, Record};
use async_nats::jetstream::kv::CreateErrorKind;
use std::path::Path;
use std::time::Duration;

/// Creates sent before their answers are awaited.
const BATCH: usize = 128;

/// Waits until the replica holds everything the bucket holds now.
pub(super) async fn catch_up(handles: &Handles, replica: &Replica) -> bool {
    match handles.journal.status().await {
        Ok(status) => replica.caught_up(status.info.state.last_sequence, Duration::from_secs(60)).await,
        Err(_) => false,
    }
}

/// Seeds the bucket unless it was seeded already; returns how many facts it wrote.
pub(super) async fn seed(
    handles: &Handles,
    replica: &Replica,
    state_dir: &Path,
    node: &str,
) -> Result<usize, BrokerError> {
    let bucket = &handles.journal;
    if bucket.get(key::SEEDED).await.map_err(|e| BrokerError::new("cannot read the journal", e))?.is_some() {
        return Ok(0);
    }
    let facts: Vec<Record> = {
        let tables = replica.tables();
        if tables.is_empty() {
            drop(tables);
            FileJournal::facts_in(state_dir).map_err(|e| BrokerError::new("cannot read the single-node journal", e))?
        } else {
            tables.records().collect()
        }
    };
    let mut written = 0;
    for chunk in facts.chunks(BATCH) {
        let creates = chunk.iter().filter_map(|record| {
            let key = key_of(record)?;
            let value = serde_json::to_vec(record).ok()?;
            Some(async move { bucket.create(key, value.into()).await })
        });
        for result in futures_util::future::join_all(creates).await {
            match result {
                Ok(_) => written += 1,
                Err(e) if e.kind() == CreateErrorKind::AlreadyExists => {}
                Err(e) => return Err(BrokerError::new("cannot seed the journal", e)),
            }
        }
    }
    bucket
        .put(key::SEEDED, node.to_owned().into())
        .await
        .map_err(|e| BrokerError::new("cannot mark the journal", e))?;
    Ok(written)
}

/// The bucket key a fact is kept under (removals are not facts to seed).
fn key_of(record: &Record) -> Option<String> {
    match record {
        Record::Stamp { kind, name, .. } => Some(key::stamp(*kind, name)),
        Record::Output { file, .. } => Some(key::output(file)),
        Record::Claim { kind, stem, .. } => Some(key::claim(*kind, stem)),
        Record::Cutout { hash, .. } => Some(key::cutout(hash)),
        Record::Removed { .. } | Record::Forget { .. } => None,
    }
}
