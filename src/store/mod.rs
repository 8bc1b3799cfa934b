//! Store: what has been done, keyed by content, so a restart redoes nothing and a photo is never
//! sent for removal twice. Two seams, each a small trait whose local implementation keeps its data
//! under `STATE_PATH` (default `.thumbgen/`; deleting it only costs recomputation):
//!
//! - [`Journal`]: facts about inputs and outputs — the content hash of each input version, which
//!   job made each output file, and which input holds each output name ([`journal::FileJournal`],
//!   `journal.jsonl`);
//! - [`CutoutCache`]: the cut-out of every product photo, by content hash
//!   ([`cutouts::CutoutDir`], `cutouts/<hash>.png`).

mod cutouts;
mod journal;
mod tables;

pub(crate) use cutouts::CutoutDir;
pub(crate) use journal::FileJournal;
pub(crate) use tables::{Record, Tables};

use crate::cutout::Cutout;
use crate::disk::FileStamp;
use crate::job::InputKind;
use crate::sync::Mutex;
use std::collections::HashSet;
use std::io;
use std::sync::Arc;
use std::time::Duration;

/// What an output file was made from.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct OutputRecord {
    /// The job key of its content (see [`job_key`]).
    pub key: String,
    pub product: String,
    pub background: Option<String>,
    /// The node that made it.
    pub node: Option<String>,
}

/// An input the journal knows, with the content hash of its last recorded version.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct KnownInput {
    pub name: String,
    pub hash: String,
    /// A background whose products are still to be queued again for this version.
    pub fan_out: bool,
}

/// Facts about done work. Every write is durable before it returns.
pub(crate) trait Journal: Send + Sync {
    /// Whether a hash is recorded for any version of this input.
    fn knows(&self, kind: InputKind, name: &str) -> bool;
    /// The content hash recorded for this exact file version, if any.
    fn known_hash(&self, kind: InputKind, name: &str, stamp: &FileStamp) -> Option<String>;
    /// Records that `name` with `stamp` has content `hash`.
    fn record_hash(&self, kind: InputKind, name: &str, stamp: FileStamp, hash: &str) -> io::Result<()>;
    /// Records a new background version whose products are still to be queued again: until
    /// [`Journal::fanned_out`] says they are, every run of its job queues them (a run that died,
    /// or a broker that failed, between the two leaves no product without it).
    fn register_background(&self, name: &str, stamp: FileStamp, hash: &str) -> io::Result<()>;
    /// The products were queued again for background `name` at version `hash`.
    fn fanned_out(&self, name: &str, hash: &str) -> io::Result<()>;
    /// Forgets an input that left its folder.
    fn forget_input(&self, kind: InputKind, name: &str) -> io::Result<()>;
    /// Every input of `kind` with a recorded hash.
    fn inputs(&self, kind: InputKind) -> Vec<KnownInput>;
    fn record_outputs(&self, outputs: Vec<(String, OutputRecord)>) -> io::Result<()>;
    /// The record of output file `file`, if it was made.
    fn output(&self, file: &str) -> Option<OutputRecord>;
    /// Records which engine (by its label) made the cut-out of content `hash`.
    fn record_cutout(&self, hash: &str, engine: &str) -> io::Result<()>;
    /// The engine that made the cut-out of content `hash`, when known.
    fn cutout_engine(&self, hash: &str) -> Option<String>;
    /// Output files made from `product` (and, when given, `background`); `None` matches any.
    fn outputs_of(&self, product: Option<&str>, background: Option<&str>) -> Vec<String>;
    fn record_removed(&self, files: &[String]) -> io::Result<()>;
    /// Gives input `name` the output stem `stem` unless another input holds it and
    /// `holder_exists` says that input is still there. False when the stem belongs to someone else.
    fn claim(&self, kind: InputKind, stem: &str, name: &str, holder_exists: &dyn Fn(&str) -> bool) -> io::Result<bool>;
    /// The stem input `name` holds, if any.
    fn stem_of(&self, kind: InputKind, name: &str) -> Option<String>;
}

/// The right to make one cut-out, held while it is made; dropping it lets others try.
pub(crate) struct Reservation {
    _guard: Box<dyn Send>,
}

impl Reservation {
    /// A reservation that releases itself when `guard` drops.
    pub(crate) fn new(guard: impl Send + 'static) -> Reservation {
        Reservation { _guard: Box::new(guard) }
    }
}

/// A cut-out as the caches keep it: a lossless RGBA PNG.
pub(crate) fn cutout_png(cutout: &Cutout) -> io::Result<Vec<u8>> {
    let (w, h) = cutout.image.dimensions();
    crate::imaging::encode_png(cutout.image.as_raw(), w, h, image::ExtendedColorType::Rgba8).map_err(io::Error::other)
}

/// A cut-out read back from its PNG; `None` for a damaged entry (which the cache then drops).
pub(crate) fn cutout_from_png(bytes: &[u8]) -> Option<Cutout> {
    let image = image::load_from_memory_with_format(bytes, image::ImageFormat::Png).ok()?;
    Some(Cutout { image: image.into_rgba8() })
}

/// Cut-outs being made by this process's workers, each reserved by one of them at a time.
#[derive(Default)]
pub(crate) struct Reservations(Arc<Mutex<HashSet<String>>>);

/// Releases a hash reserved in [`Reservations`].
struct Making(Arc<Mutex<HashSet<String>>>, String);

impl Drop for Making {
    fn drop(&mut self) {
        self.0.lock().remove(&self.1);
    }
}

impl Reservations {
    /// Reserves `hash`; `None` while another worker of this process holds it.
    pub(crate) fn reserve(&self, hash: &str) -> Option<Reservation> {
        let fresh = self.0.lock().insert(hash.to_owned());
        fresh.then(|| Reservation::new(Making(self.0.clone(), hash.to_owned())))
    }
}

/// Cut-outs by the content hash of their photo.
pub(crate) trait CutoutCache: Send + Sync {
    /// Reserves making the cut-out of `hash`, so two workers never send the same photo for
    /// removal at once; `None` while another worker holds it.
    fn reserve(&self, hash: &str) -> io::Result<Option<Reservation>>;
    /// The cut-out made before, if any (an unreadable entry counts as none and is dropped).
    fn load(&self, hash: &str) -> Option<Cutout>;
    /// Keeps a cut-out, durably, so no photo is ever sent for removal twice.
    fn save(&self, hash: &str, cutout: &Cutout) -> io::Result<()>;
    /// Deletes cut-outs not in `keep` that are older than `ttl`; returns how many.
    fn prune(&self, keep: &HashSet<String>, ttl: Duration) -> usize;
}

/// Bumped when composing changes in a way that should regenerate existing outputs.
const PIPELINE_VERSION: &str = "1";

/// The identity of one output's content: the product, the canvas (white or a background) and the
/// preset. An output whose recorded key matches is up to date.
pub(crate) fn job_key(product_hash: &str, background_hash: Option<&str>, preset_fingerprint: &str) -> String {
    let mut h = blake3::Hasher::new();
    for part in [PIPELINE_VERSION, product_hash, background_hash.unwrap_or("-"), preset_fingerprint] {
        h.update(part.as_bytes());
        h.update(b"\0");
    }
    h.finalize().to_hex()[..32].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_keys_change_with_every_input() {
        let base = job_key("p", Some("b"), "preset");
        assert_ne!(base, job_key("p2", Some("b"), "preset"));
        assert_ne!(base, job_key("p", Some("b2"), "preset"));
        assert_ne!(base, job_key("p", None, "preset"));
        assert_ne!(base, job_key("p", Some("b"), "preset2"));
    }
}
