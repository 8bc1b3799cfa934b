//! The cluster's journal: the same facts as the single-node journal, kept in the broker's
//! key-value bucket (one key per fact, so nothing is ever appended to by several nodes) and read
//! from this node's [`Replica`]. Name claims are compare-and-set on their key, so two nodes never
//! give one name to two inputs.

use super::broker::Broker;
use super::names::key;
use super::replica::Replica;
use super::BrokerError;
use crate::disk::FileStamp;
use crate::job::InputKind;
use crate::store::{Journal, KnownInput, OutputRecord, Record};
use async_nats::jetstream::kv::{self, CreateErrorKind, Operation, UpdateErrorKind};
use std::future::Future;
use std::io;
use std::sync::Arc;

pub(crate) struct ClusterJournal {
    broker: Arc<Broker>,
    replica: Arc<Replica>,
    runtime: tokio::runtime::Handle,
}

impl ClusterJournal {
    pub(super) fn new(broker: Arc<Broker>, replica: Arc<Replica>) -> ClusterJournal {
        ClusterJournal { broker, replica, runtime: tokio::runtime::Handle::current() }
    }

    /// Runs one request to the bucket from a job's thread.
    fn on_bucket<T, F>(&self, what: &'static str, request: impl FnOnce(kv::Store) -> F) -> io::Result<T>
    where
        F: Future<Output = Result<T, BrokerError>>,
    {
        let handles = self.broker.handles().ok_or_else(|| io::Error::other(BrokerError::unavailable(what)))?;
        self.runtime.block_on(request(handles.journal.clone())).map_err(io::Error::other)
    }

    /// Stores a fact under its key, then applies it here.
    fn put(&self, key: String, record: Record) -> io::Result<()> {
        let value = serde_json::to_vec(&record).map_err(io::Error::other)?;
        self.on_bucket("cannot record a fact", |bucket| async move {
            bucket.put(key, value.into()).await.map_err(|e| BrokerError::new("cannot record a fact", e))
        })?;
        self.replica.apply(record);
        Ok(())
    }

    fn delete(&self, key: String, record: Record) -> io::Result<()> {
        self.on_bucket("cannot remove a fact", |bucket| async move {
            bucket.delete(key).await.map_err(|e| BrokerError::new("cannot remove a fact", e))
        })?;
        self.replica.apply(record);
        Ok(())
    }
}

impl Journal for ClusterJournal {
    fn knows(&self, kind: InputKind, name: &str) -> bool {
        self.replica.tables().knows(kind, name)
    }

    fn known_hash(&self, kind: InputKind, name: &str, stamp: &FileStamp) -> Option<String> {
        self.replica.tables().known_hash(kind, name, stamp)
    }

    fn record_hash(&self, kind: InputKind, name: &str, stamp: FileStamp, hash: &str) -> io::Result<()> {
        if self.known_hash(kind, name, &stamp).as_deref() == Some(hash) {
            return Ok(());
        }
        self.put(key::stamp(kind, name), Record::stamp(kind, name, stamp, hash, false))
    }

    fn register_background(&self, name: &str, stamp: FileStamp, hash: &str) -> io::Result<()> {
        let kind = InputKind::Background;
        self.put(key::stamp(kind, name), Record::stamp(kind, name, stamp, hash, true))
    }

    fn fanned_out(&self, name: &str, hash: &str) -> io::Result<()> {
        let record = self.replica.tables().fanned_out(name, hash);
        match record {
            Some(record) => self.put(key::stamp(InputKind::Background, name), record),
            None => Ok(()),
        }
    }

    fn forget_input(&self, kind: InputKind, name: &str) -> io::Result<()> {
        self.delete(key::stamp(kind, name), Record::Forget { kind, name: name.to_owned() })
    }

    fn inputs(&self, kind: InputKind) -> Vec<KnownInput> {
        self.replica.tables().inputs(kind)
    }

    fn record_outputs(&self, outputs: Vec<(String, OutputRecord)>) -> io::Result<()> {
        for (file, record) in outputs {
            self.put(key::output(&file), Record::output(file, record))?;
        }
        Ok(())
    }

    fn output(&self, file: &str) -> Option<OutputRecord> {
        self.replica.tables().output(file)
    }

    fn record_cutout(&self, hash: &str, engine: &str) -> io::Result<()> {
        if self.cutout_engine(hash).as_deref() == Some(engine) {
            return Ok(());
        }
        self.put(key::cutout(hash), Record::Cutout { hash: hash.to_owned(), engine: engine.to_owned() })
    }

    fn cutout_engine(&self, hash: &str) -> Option<String> {
        self.replica.tables().cutout_engine(hash)
    }

    fn outputs_of(&self, product: Option<&str>, background: Option<&str>) -> Vec<String> {
        self.replica.tables().outputs_of(product, background)
    }

    fn record_removed(&self, files: &[String]) -> io::Result<()> {
        for file in files {
            self.delete(key::output(file), Record::Removed { file: file.clone() })?;
        }
        Ok(())
    }

    fn claim(&self, kind: InputKind, stem: &str, name: &str, holder_exists: &dyn Fn(&str) -> bool) -> io::Result<bool> {
        let key = key::claim(kind, stem);
        let record = Record::Claim { kind, stem: stem.to_owned(), name: name.to_owned() };
        let value = serde_json::to_vec(&record).map_err(io::Error::other)?;
        let claimed = self.on_bucket("cannot claim an output name", |bucket| async move {
            loop {
                let entry = bucket.entry(&key).await.map_err(|e| BrokerError::new("cannot read a name claim", e))?;
                let current = entry.filter(|e| e.operation == Operation::Put);
                let holder = current.as_ref().and_then(|e| match serde_json::from_slice(&e.value) {
                    Ok(Record::Claim { name, .. }) => Some(name),
                    _ => None,
                });
                let written = match (&current, holder) {
                    (_, Some(h)) if h == name => return Ok(true),
                    (_, Some(h)) if holder_exists(&h) => return Ok(false),
                    (Some(entry), _) => bucket.update(&key, value.clone().into(), entry.revision).await.map_err(|e| {
                        (e.kind() != UpdateErrorKind::WrongLastRevision)
                            .then(|| BrokerError::new("cannot take over a name claim", e))
                    }),
                    (None, _) => bucket.create(&key, value.clone().into()).await.map_err(|e| {
                        (e.kind() != CreateErrorKind::AlreadyExists).then(|| BrokerError::new("cannot claim a name", e))
                    }),
                };
                match written {
                    Ok(_) => return Ok(true),
                    Err(None) => continue, // another node changed it first: look again
                    Err(Some(e)) => return Err(e),
                }
            }
        })?;
        if claimed {
            self.replica.apply(record);
        }
        Ok(claimed)
    }

    fn stem_of(&self, kind: InputKind, name: &str) -> Option<String> {
        self.replica.tables().stem_of(kind, name)
    }
}
