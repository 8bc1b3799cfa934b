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
    /// `name` in `folder` with this stamp has this content hash.
    Stamp {
        #[serde(rename = "folder")]
        kind: InputKind,
        name: String,
        stamp: FileStamp,
        hash: String,
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
    pub(crate) fn output(file: String, r: OutputRecord) -> Record {
        Record::Output { file, key: r.key, product: r.product, background: r.background, node: r.node }
    }
}

/// The facts, replayed: what every journal answers its questions from.
#[derive(Default)]
pub(crate) struct Tables {
    stamps: HashMap<(InputKind, String), (FileStamp, String)>,
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
            Record::Stamp { kind, name, stamp, hash } => {
                self.stamps.insert((kind, name), (stamp, hash));
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
        let stamps = self.stamps.iter().map(|((kind, name), (stamp, hash))| Record::Stamp {
            kind: *kind,
            name: name.clone(),
            stamp: *stamp,
            hash: hash.clone(),
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
        self.stamps.get(&(kind, name.to_owned())).filter(|(s, _)| s == stamp).map(|(_, h)| h.clone())
    }

    pub(crate) fn inputs(&self, kind: InputKind) -> Vec<KnownInput> {
        let mut inputs: Vec<KnownInput> = self
            .stamps
            .iter()
            .filter(|((k, _), _)| *k == kind)
            .map(|((_, name), (_, hash))| KnownInput { name: name.clone(), hash: hash.clone() })
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
