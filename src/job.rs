//! Jobs: the vocabulary every stage shares. A job names one input — which folder it lives in and
//! its file name — and nothing else; what to do with it is decided when it runs, since the file
//! may have changed or gone since it was queued.
//!
//! This module depends on nothing else in the crate.

use serde::{Deserialize, Serialize};

/// The two kinds of input, one per watched folder.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InputKind {
    /// A product photo in `produtos/`.
    Product,
    /// A background image in `backgrounds/`.
    Background,
}

impl InputKind {
    /// Both kinds, backgrounds first: products handled after them get every output in one pass.
    pub(crate) const ALL: [InputKind; 2] = [InputKind::Background, InputKind::Product];

    /// The folder's contract name: the `folder` label of the metrics and what logs say.
    pub(crate) fn label(self) -> &'static str {
        match self {
            InputKind::Product => "produtos",
            InputKind::Background => "backgrounds",
        }
    }
}

/// One input to look at.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Job {
    pub kind: InputKind,
    pub name: String,
}

impl Job {
    pub(crate) fn new(kind: InputKind, name: impl Into<String>) -> Job {
        Job { kind, name: name.into() }
    }
}

/// Content hash of an input (BLAKE3, 128 bits in hex): the key of all work.
pub fn content_hash(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex()[..32].to_owned()
}
