//! The journal's facts as records, and the tables they replay into: what every journal
//! implementation answers its questions from. A record is also the unit a journal stores (a line
//! of `journal.jsonl`, a value in the cluster's key-value bucket).

use super::{KnownInput, OutputRecord};
use crate::disk::FileStamp;
use crate::job::InputKind;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// One fact in the journal.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "k", rename_all = "lowercase")]
pub(crate) enum Record {
    /// `name` in `folder` with this stamp has this content hash. For a background, `fan_out`
    /// says the products are still to be queued again for this version (see
    /// [`super::Journal::register_background`]).
    Stamp {
        #[serde(rename = "folder")]
        kind: InputKind,
        name: String,
        stamp: FileStamp,
        hash: String,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        fan_out: bool,
    },
    /// Output file `file` holds the result of job `key`, made by `node`.
    Output {
        file: String,
        key: String,
        product: String,
        background: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        node: Option<String>,
    },
    /// The cut-out of content `hash` was made by `engine`.
    Cutout { hash: String, engine: String },
    /// Input `name` of `folder` left it.
    Forget {
        #[serde(rename = "folder")]
        kind: InputKind,
        name: String,
    },
    /// Output file `file` was removed.
    Removed { file: String },
    /// Output stem `stem` belongs to input `name` of `folder`.
    Claim {
        #[serde(rename = "folder")]
        kind: InputKind,
        stem: String,
        name: String,
    },
}

impl Record {
    /// The fact that input `name` with `stamp` has content `hash`.
    pub(crate) fn stamp(kind: InputKind, name: &str, stamp: FileStamp, hash: &str, fan_out: bool) -> Record {
        Record::Stamp { kind, name: name.to_owned(), stamp, hash: hash.to_owned(), fan_out }
    }

    pub(crate) fn output(file: String, r: OutputRecord) -> Record {
        Record::Output { file, key: r.key, product: r.product, background: r.background, node: r.node }
    }
}

/// The last recorded version of an input.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Known {
    pub stamp: FileStamp,
    pub hash: String,
    /// A background whose products are still to be queued again (see [`Record::Stamp`]).
    pub fan_out: bool,
}

/// The facts, replayed: what every journal answers its questions from.
#[derive(Default)]
pub(crate) struct Tables {
    stamps: HashMap<(InputKind, String), Known>,
    outputs: HashMap<String, OutputRecord>,
    /// Engine of each cut-out, by content hash.
    cutouts: HashMap<String, String>,
    claims: HashMap<(InputKind, String), String>,
    /// The stem each input holds: the reverse of `claims`.
    stems: HashMap<(InputKind, String), String>,
}

impl Tables {
    pub(crate) fn apply(&mut self, record: Record) {
        match record {
            Record::Stamp { kind, name, stamp, hash, fan_out } => {
                self.stamps.insert((kind, name), Known { stamp, hash, fan_out });
            }
            Record::Output { file, key, product, background, node } => {
                self.outputs.insert(file, OutputRecord { key, product, background, node });
            }
            Record::Cutout { hash, engine } => {
                self.cutouts.insert(hash, engine);
            }
            Record::Forget { kind, name } => {
                self.stamps.remove(&(kind, name));
            }
            Record::Removed { file } => {
                self.outputs.remove(&file);
            }
            Record::Claim { kind, stem, name } => {
                if let Some(previous) = self.claims.insert((kind, stem.clone()), name.clone()) {
                    self.stems.remove(&(kind, previous));
                }
                self.stems.insert((kind, name), stem);
            }
        }
    }

    /// Every live fact, as the records that rebuild these tables.
    pub(crate) fn records(&self) -> impl Iterator<Item = Record> + '_ {
        let stamps = self.stamps.iter().map(|((kind, name), known)| Record::Stamp {
            kind: *kind,
            name: name.clone(),
            stamp: known.stamp,
            hash: known.hash.clone(),
            fan_out: known.fan_out,
        });
        let claims = self.claims.iter().map(|((kind, stem), name)| Record::Claim {
            kind: *kind,
            stem: stem.clone(),
            name: name.clone(),
        });
        let outputs = self.outputs.iter().map(|(file, r)| Record::Output {
            file: file.clone(),
            key: r.key.clone(),
            product: r.product.clone(),
            background: r.background.clone(),
            node: r.node.clone(),
        });
        let cutouts =
            self.cutouts.iter().map(|(hash, engine)| Record::Cutout { hash: hash.clone(), engine: engine.clone() });
        stamps.chain(claims).chain(outputs).chain(cutouts)
    }

    /// No fact at all.
    pub(crate) fn is_empty(&self) -> bool {
        self.stamps.is_empty() && self.outputs.is_empty() && self.claims.is_empty() && self.cutouts.is_empty()
    }

    pub(crate) fn knows(&self, kind: InputKind, name: &str) -> bool {
        self.stamps.contains_key(&(kind, name.to_owned()))
    }

    pub(crate) fn known_hash(&self, kind: InputKind, name: &str, stamp: &FileStamp) -> Option<String> {
        self.stamps.get(&(kind, name.to_owned())).filter(|k| k.stamp == *stamp).map(|k| k.hash.clone())
    }

    /// The record that marks background `name`'s products queued again for version `hash`;
    /// `None` when that version is not the one waiting for it.
    pub(crate) fn fanned_out(&self, name: &str, hash: &str) -> Option<Record> {
        let known = self.known(InputKind::Background, name).filter(|k| k.hash == hash && k.fan_out)?;
        Some(Record::stamp(InputKind::Background, name, known.stamp, hash, false))
    }

    /// The last recorded version of input `name`.
    pub(crate) fn known(&self, kind: InputKind, name: &str) -> Option<Known> {
        self.stamps.get(&(kind, name.to_owned())).cloned()
    }

    pub(crate) fn inputs(&self, kind: InputKind) -> Vec<KnownInput> {
        let mut inputs: Vec<KnownInput> = self
            .stamps
            .iter()
            .filter(|((k, _), _)| *k == kind)
            .map(|((_, name), k)| KnownInput { name: name.clone(), hash: k.hash.clone(), fan_out: k.fan_out })
            .collect();
        inputs.sort_by(|a, b| a.name.cmp(&b.name));
        inputs
    }

    pub(crate) fn output(&self, file: &str) -> Option<OutputRecord> {
        self.outputs.get(file).cloned()
    }

    pub(crate) fn outputs_of(&self, product: Option<&str>, background: Option<&str>) -> Vec<String> {
        self.outputs
            .iter()
            .filter(|(_, r)| product.is_none_or(|p| r.product == p))
            .filter(|(_, r)| background.is_none_or(|b| r.background.as_deref() == Some(b)))
            .map(|(file, _)| file.clone())
            .collect()
    }

    /// The input holding output stem `stem`.
    pub(crate) fn holder(&self, kind: InputKind, stem: &str) -> Option<String> {
        self.claims.get(&(kind, stem.to_owned())).cloned()
    }

    pub(crate) fn stem_of(&self, kind: InputKind, name: &str) -> Option<String> {
        self.stems.get(&(kind, name.to_owned())).cloned()
    }

    pub(crate) fn cutout_engine(&self, hash: &str) -> Option<String> {
        self.cutouts.get(hash).cloned()
    }
}
