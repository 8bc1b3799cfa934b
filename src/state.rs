//! State: what has been done, keyed by content, so a restart redoes nothing and a photo is never
//! sent for removal twice.
//!
//! Two stores live under `STATE_PATH` (default `.thumbgen/`):
//! - `journal.jsonl`, an append-only log of facts (an input's hash for a given size/mtime/inode, an
//!   output made from a given job key, a name claimed by an input). It is replayed and compacted at
//!   start; a torn last line from a crash is ignored.
//! - `cutouts/<hash>.png`, the cut-out of every product photo, by content hash.
//!
//! Deleting the folder only costs recomputation.

use crate::cutout::Cutout;
use crate::validate::FileStamp;
use crate::write::{sync_dir, write_atomic};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

/// Bumped when composing changes in a way that should regenerate existing outputs.
const PIPELINE_VERSION: &str = "1";

/// Content hash of an input (BLAKE3, 128 bits in hex).
pub fn content_hash(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex()[..32].to_owned()
}

/// Which watched folder an input lives in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Folder {
    Product,
    Background,
}

impl Folder {
    pub fn label(self) -> &'static str {
        match self {
            Folder::Product => "produtos",
            Folder::Background => "backgrounds",
        }
    }
}

/// The identity of one output's content: the product, the canvas (white or a background) and the
/// preset. An output whose recorded key matches is up to date.
pub fn job_key(product_hash: &str, background_hash: Option<&str>, preset_fingerprint: &str) -> String {
    let mut h = blake3::Hasher::new();
    for part in [PIPELINE_VERSION, product_hash, background_hash.unwrap_or("-"), preset_fingerprint] {
        h.update(part.as_bytes());
        h.update(b"\0");
    }
    h.finalize().to_hex()[..32].to_owned()
}

/// One fact in the journal.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "k", rename_all = "lowercase")]
enum Record {
    /// `name` in `folder` with this stamp has this content hash.
    Stamp { folder: Folder, name: String, stamp: FileStamp, hash: String },
    /// Output file `file` holds the result of job `key`.
    Output { file: String, key: String, product: String, background: Option<String> },
    /// Output file `file` was removed.
    Removed { file: String },
    /// Output stem `stem` belongs to input `name` of `folder`.
    Claim { folder: Folder, stem: String, name: String },
}

/// What an output file was made from.
#[derive(Clone, Debug, PartialEq)]
pub struct OutputRecord {
    pub key: String,
    pub product: String,
    pub background: Option<String>,
}

#[derive(Default)]
struct Tables {
    stamps: HashMap<(Folder, String), (FileStamp, String)>,
    outputs: HashMap<String, OutputRecord>,
    claims: HashMap<(Folder, String), String>,
}

impl Tables {
    fn apply(&mut self, record: Record) {
        match record {
            Record::Stamp { folder, name, stamp, hash } => {
                self.stamps.insert((folder, name), (stamp, hash));
            }
            Record::Output { file, key, product, background } => {
                self.outputs.insert(file, OutputRecord { key, product, background });
            }
            Record::Removed { file } => {
                self.outputs.remove(&file);
            }
            Record::Claim { folder, stem, name } => {
                self.claims.insert((folder, stem), name);
            }
        }
    }

    fn records(&self) -> Vec<Record> {
        let stamps = self.stamps.iter().map(|((folder, name), (stamp, hash))| Record::Stamp {
            folder: *folder,
            name: name.clone(),
            stamp: *stamp,
            hash: hash.clone(),
        });
        let claims = self.claims.iter().map(|((folder, stem), name)| Record::Claim {
            folder: *folder,
            stem: stem.clone(),
            name: name.clone(),
        });
        let outputs = self.outputs.iter().map(|(file, r)| Record::Output {
            file: file.clone(),
            key: r.key.clone(),
            product: r.product.clone(),
            background: r.background.clone(),
        });
        stamps.chain(claims).chain(outputs).collect()
    }
}

pub struct State {
    dir: PathBuf,
    cutouts: PathBuf,
    cache_enabled: bool,
    inner: Mutex<(Tables, fs::File)>,
}

const JOURNAL: &str = "journal.jsonl";

impl State {
    /// Opens (creating) the state folder, replays and compacts the journal.
    pub fn open(dir: &Path, cache_enabled: bool) -> io::Result<State> {
        let cutouts = dir.join("cutouts");
        fs::create_dir_all(&cutouts)?;
        crate::write::remove_stale_temps(dir);
        crate::write::remove_stale_temps(&cutouts);
        let mut tables = Tables::default();
        match fs::read(dir.join(JOURNAL)) {
            Ok(journal) => {
                // Lines are split as bytes: a torn line from a crash, garbage left by a power cut
                // (zeros, half a UTF-8 character) or a line from a newer version is skipped, never
                // a reason not to start.
                for line in journal.split(|&b| b == b'\n') {
                    if let Ok(record) = serde_json::from_slice::<Record>(line) {
                        tables.apply(record);
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let mut compact = Vec::new();
        for record in tables.records() {
            serde_json::to_writer(&mut compact, &record).map_err(io::Error::other)?;
            compact.push(b'\n');
        }
        write_atomic(dir, JOURNAL, &compact)?;
        sync_dir(dir)?;
        let file = fs::OpenOptions::new().append(true).open(dir.join(JOURNAL))?;
        Ok(State { dir: dir.to_owned(), cutouts, cache_enabled, inner: Mutex::new((tables, file)) })
    }

    fn append(&self, records: Vec<Record>) -> io::Result<()> {
        let mut guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let (tables, file) = &mut *guard;
        let mut buf = Vec::new();
        for record in &records {
            serde_json::to_writer(&mut buf, record).map_err(io::Error::other)?;
            buf.push(b'\n');
        }
        file.write_all(&buf)?;
        file.sync_data()?;
        for record in records {
            tables.apply(record);
        }
        Ok(())
    }

    fn tables<R>(&self, f: impl FnOnce(&Tables) -> R) -> R {
        let guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        f(&guard.0)
    }

    /// The content hash recorded for this exact file version, if any.
    pub fn known_hash(&self, folder: Folder, name: &str, stamp: &FileStamp) -> Option<String> {
        self.tables(|t| t.stamps.get(&(folder, name.to_owned())).filter(|(s, _)| s == stamp).map(|(_, h)| h.clone()))
    }

    pub fn record_hash(&self, folder: Folder, name: &str, stamp: FileStamp, hash: &str) -> io::Result<()> {
        if self.known_hash(folder, name, &stamp).as_deref() == Some(hash) {
            return Ok(());
        }
        self.append(vec![Record::Stamp { folder, name: name.to_owned(), stamp, hash: hash.to_owned() }])
    }

    /// Forgets an input that left its folder.
    pub fn forget_input(&self, folder: Folder, name: &str) {
        let mut guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        guard.0.stamps.remove(&(folder, name.to_owned()));
    }

    /// Hashes of every product photo currently recorded.
    pub fn product_hashes(&self) -> Vec<String> {
        self.tables(|t| {
            t.stamps
                .iter()
                .filter(|((folder, _), _)| *folder == Folder::Product)
                .map(|(_, (_, hash))| hash.clone())
                .collect()
        })
    }

    /// True when `file` exists and was made from job `key`.
    pub fn output_done(&self, output_dir: &Path, file: &str, key: &str) -> bool {
        self.tables(|t| t.outputs.get(file).is_some_and(|r| r.key == key)) && output_dir.join(file).is_file()
    }

    pub fn record_outputs(&self, outputs: Vec<(String, OutputRecord)>) -> io::Result<()> {
        let records = outputs
            .into_iter()
            .map(|(file, r)| Record::Output { file, key: r.key, product: r.product, background: r.background })
            .collect();
        self.append(records)
    }

    /// Output files made from product `product` (and, when given, background `background`).
    pub fn outputs_of(&self, product: Option<&str>, background: Option<&str>) -> Vec<String> {
        self.tables(|t| {
            t.outputs
                .iter()
                .filter(|(_, r)| product.is_none_or(|p| r.product == p))
                .filter(|(_, r)| background.is_none_or(|b| r.background.as_deref() == Some(b)))
                .map(|(file, _)| file.clone())
                .collect()
        })
    }

    pub fn record_removed(&self, files: &[String]) -> io::Result<()> {
        self.append(files.iter().map(|f| Record::Removed { file: f.clone() }).collect())
    }

    /// Gives input `name` the output stem `stem` unless another input that still exists holds it.
    /// Returns false when the stem belongs to someone else.
    pub fn claim(
        &self,
        folder: Folder,
        stem: &str,
        name: &str,
        holder_exists: impl Fn(&str) -> bool,
    ) -> io::Result<bool> {
        let holder = self.tables(|t| t.claims.get(&(folder, stem.to_owned())).cloned());
        match holder {
            Some(h) if h == name => Ok(true),
            Some(h) if holder_exists(&h) => Ok(false),
            _ => {
                self.append(vec![Record::Claim { folder, stem: stem.to_owned(), name: name.to_owned() }])?;
                Ok(true)
            }
        }
    }

    fn cutout_path(&self, hash: &str) -> PathBuf {
        self.cutouts.join(format!("{hash}.png"))
    }

    /// The cached cut-out of a photo, if one was made before.
    pub fn load_cutout(&self, hash: &str) -> Option<Cutout> {
        let path = self.cutout_path(hash);
        let bytes = fs::read(&path).ok()?;
        match image::load_from_memory_with_format(&bytes, image::ImageFormat::Png) {
            Ok(img) => Some(Cutout { image: img.into_rgba8() }),
            Err(_) => {
                let _ = fs::remove_file(&path);
                None
            }
        }
    }

    /// Keeps a cut-out so no photo is ever sent for removal twice.
    pub fn save_cutout(&self, hash: &str, cutout: &Cutout) -> io::Result<()> {
        if !self.cache_enabled {
            return Ok(());
        }
        let mut png = Vec::new();
        image::ImageEncoder::write_image(
            image::codecs::png::PngEncoder::new_with_quality(
                &mut png,
                image::codecs::png::CompressionType::Fast,
                image::codecs::png::FilterType::Adaptive,
            ),
            cutout.image.as_raw(),
            cutout.image.width(),
            cutout.image.height(),
            image::ExtendedColorType::Rgba8,
        )
        .map_err(io::Error::other)?;
        write_atomic(&self.cutouts, &format!("{hash}.png"), &png)?;
        sync_dir(&self.cutouts)
    }

    /// Deletes cut-outs of photos no longer in the catalog once they are older than `ttl`.
    pub fn prune_cutouts(&self, ttl: Duration) -> usize {
        let live: std::collections::HashSet<String> = self.product_hashes().into_iter().collect();
        let Ok(entries) = fs::read_dir(&self.cutouts) else {
            return 0;
        };
        let now = SystemTime::now();
        entries
            .flatten()
            .filter(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                let hash = name.trim_end_matches(".png");
                !live.contains(hash)
                    && e.metadata()
                        .and_then(|m| m.modified())
                        .is_ok_and(|t| now.duration_since(t).unwrap_or_default() > ttl)
            })
            .filter(|e| fs::remove_file(e.path()).is_ok())
            .count()
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp(len: u64) -> FileStamp {
        FileStamp { len, mtime_ns: 1, ino: 2 }
    }

    #[test]
    fn facts_survive_a_restart_and_a_torn_line() {
        let dir = tempfile::tempdir().unwrap();
        {
            let state = State::open(dir.path(), true).unwrap();
            state.record_hash(Folder::Product, "a.jpg", stamp(10), "h1").unwrap();
            state
                .record_outputs(vec![(
                    "a.jpg".into(),
                    OutputRecord { key: "k1".into(), product: "a.jpg".into(), background: None },
                )])
                .unwrap();
        }
        let mut f = fs::OpenOptions::new().append(true).open(dir.path().join(JOURNAL)).unwrap();
        f.write_all(b"{\"k\":\"output\",\"file\":\"b.j").unwrap();
        let state = State::open(dir.path(), true).unwrap();
        assert_eq!(state.known_hash(Folder::Product, "a.jpg", &stamp(10)).as_deref(), Some("h1"));
        assert_eq!(state.known_hash(Folder::Product, "a.jpg", &stamp(11)), None);
        assert_eq!(state.outputs_of(Some("a.jpg"), None), vec!["a.jpg".to_string()]);
    }

    #[test]
    fn a_journal_with_garbage_from_a_crash_still_opens() {
        let dir = tempfile::tempdir().unwrap();
        {
            let state = State::open(dir.path(), true).unwrap();
            state.record_hash(Folder::Product, "tênis.jpg", stamp(10), "h1").unwrap();
        }
        // Half of a UTF-8 character, then the zeros a power cut can leave at the end of a file.
        let mut f = fs::OpenOptions::new().append(true).open(dir.path().join(JOURNAL)).unwrap();
        f.write_all(b"{\"k\":\"stamp\",\"name\":\"t\xc3").unwrap();
        f.write_all(&[0u8; 64]).unwrap();
        drop(f);
        let state = State::open(dir.path(), true).unwrap();
        assert_eq!(state.known_hash(Folder::Product, "tênis.jpg", &stamp(10)).as_deref(), Some("h1"));
        let again = fs::read(dir.path().join(JOURNAL)).unwrap();
        assert!(std::str::from_utf8(&again).is_ok() && !again.contains(&0), "compaction drops the garbage");
    }

    #[test]
    fn a_name_belongs_to_its_first_holder_while_it_exists() {
        let dir = tempfile::tempdir().unwrap();
        let state = State::open(dir.path(), true).unwrap();
        assert!(state.claim(Folder::Product, "p", "p.jpg", |_| true).unwrap());
        assert!(!state.claim(Folder::Product, "p", "p.png", |_| true).unwrap());
        assert!(state.claim(Folder::Product, "p", "p.png", |_| false).unwrap());
    }

    #[test]
    fn job_keys_change_with_every_input() {
        let base = job_key("p", Some("b"), "preset");
        assert_ne!(base, job_key("p2", Some("b"), "preset"));
        assert_ne!(base, job_key("p", Some("b2"), "preset"));
        assert_ne!(base, job_key("p", None, "preset"));
        assert_ne!(base, job_key("p", Some("b"), "preset2"));
    }
}
