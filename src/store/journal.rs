//! The local journal: `journal.jsonl`, an append-only log of facts, replayed and compacted at
//! start. A torn last line from a crash, garbage a power cut leaves (zeros, half a UTF-8
//! character) or a line from a newer version is skipped, never a reason not to start.

use super::{Journal, KnownInput, OutputRecord};
use crate::disk::FileStamp;
use crate::job::InputKind;
use crate::sync::Mutex;
use crate::write::{sync_dir, write_atomic};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fs;
use std::io::{self, Write};
use std::path::Path;

const JOURNAL: &str = "journal.jsonl";

/// One fact in the journal.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "k", rename_all = "lowercase")]
enum Record {
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

#[derive(Default)]
struct Tables {
    stamps: HashMap<(InputKind, String), (FileStamp, String)>,
    outputs: HashMap<String, OutputRecord>,
    /// Engine of each cut-out, by content hash.
    cutouts: HashMap<String, String>,
    claims: HashMap<(InputKind, String), String>,
    /// The stem each input holds: the reverse of `claims`.
    stems: HashMap<(InputKind, String), String>,
}

impl Tables {
    fn apply(&mut self, record: Record) {
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

    fn records(&self) -> impl Iterator<Item = Record> + '_ {
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
}

pub(crate) struct FileJournal {
    inner: Mutex<(Tables, fs::File)>,
}

fn encode(records: impl IntoIterator<Item = Record>) -> io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    for record in records {
        serde_json::to_writer(&mut buf, &record).map_err(io::Error::other)?;
        buf.push(b'\n');
    }
    Ok(buf)
}

impl FileJournal {
    /// Opens (creating) the journal in `dir`, replays and compacts it.
    pub(crate) fn open(dir: &Path) -> io::Result<FileJournal> {
        fs::create_dir_all(dir)?;
        crate::write::remove_stale_temps(dir);
        let mut tables = Tables::default();
        match fs::read(dir.join(JOURNAL)) {
            Ok(journal) => {
                for line in journal.split(|&b| b == b'\n') {
                    if let Ok(record) = serde_json::from_slice::<Record>(line) {
                        tables.apply(record);
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        write_atomic(dir, JOURNAL, &encode(tables.records())?)?;
        sync_dir(dir)?;
        let file = fs::OpenOptions::new().append(true).open(dir.join(JOURNAL))?;
        Ok(FileJournal { inner: Mutex::new((tables, file)) })
    }

    fn append(&self, records: Vec<Record>) -> io::Result<()> {
        let buf = encode(records.iter().cloned())?;
        let mut guard = self.inner.lock();
        let (tables, file) = &mut *guard;
        file.write_all(&buf)?;
        file.sync_data()?;
        for record in records {
            tables.apply(record);
        }
        Ok(())
    }

    fn tables<R>(&self, f: impl FnOnce(&Tables) -> R) -> R {
        f(&self.inner.lock().0)
    }
}

impl Journal for FileJournal {
    fn known_hash(&self, kind: InputKind, name: &str, stamp: &FileStamp) -> Option<String> {
        self.tables(|t| t.stamps.get(&(kind, name.to_owned())).filter(|(s, _)| s == stamp).map(|(_, h)| h.clone()))
    }

    fn record_hash(&self, kind: InputKind, name: &str, stamp: FileStamp, hash: &str) -> io::Result<()> {
        if self.known_hash(kind, name, &stamp).as_deref() == Some(hash) {
            return Ok(());
        }
        self.append(vec![Record::Stamp { kind, name: name.to_owned(), stamp, hash: hash.to_owned() }])
    }

    fn forget_input(&self, kind: InputKind, name: &str) -> io::Result<()> {
        // In memory only: the next compaction drops it; a stale entry after a crash costs a rehash.
        self.inner.lock().0.stamps.remove(&(kind, name.to_owned()));
        Ok(())
    }

    fn inputs(&self, kind: InputKind) -> Vec<KnownInput> {
        self.tables(|t| {
            let mut inputs: Vec<KnownInput> = t
                .stamps
                .iter()
                .filter(|((k, _), _)| *k == kind)
                .map(|((_, name), (_, hash))| KnownInput { name: name.clone(), hash: hash.clone() })
                .collect();
            inputs.sort_by(|a, b| a.name.cmp(&b.name));
            inputs
        })
    }

    fn record_outputs(&self, outputs: Vec<(String, OutputRecord)>) -> io::Result<()> {
        let records = outputs
            .into_iter()
            .map(|(file, r)| Record::Output {
                file,
                key: r.key,
                product: r.product,
                background: r.background,
                node: r.node,
            })
            .collect();
        self.append(records)
    }

    fn output(&self, file: &str) -> Option<OutputRecord> {
        self.tables(|t| t.outputs.get(file).cloned())
    }

    fn record_cutout(&self, hash: &str, engine: &str) -> io::Result<()> {
        if self.cutout_engine(hash).as_deref() == Some(engine) {
            return Ok(());
        }
        self.append(vec![Record::Cutout { hash: hash.to_owned(), engine: engine.to_owned() }])
    }

    fn cutout_engine(&self, hash: &str) -> Option<String> {
        self.tables(|t| t.cutouts.get(hash).cloned())
    }

    fn outputs_of(&self, product: Option<&str>, background: Option<&str>) -> Vec<String> {
        self.tables(|t| {
            t.outputs
                .iter()
                .filter(|(_, r)| product.is_none_or(|p| r.product == p))
                .filter(|(_, r)| background.is_none_or(|b| r.background.as_deref() == Some(b)))
                .map(|(file, _)| file.clone())
                .collect()
        })
    }

    fn record_removed(&self, files: &[String]) -> io::Result<()> {
        self.append(files.iter().map(|f| Record::Removed { file: f.clone() }).collect())
    }

    fn claim(&self, kind: InputKind, stem: &str, name: &str, holder_exists: &dyn Fn(&str) -> bool) -> io::Result<bool> {
        let holder = self.tables(|t| t.claims.get(&(kind, stem.to_owned())).cloned());
        match holder {
            Some(h) if h == name => Ok(true),
            Some(h) if holder_exists(&h) => Ok(false),
            _ => {
                self.append(vec![Record::Claim { kind, stem: stem.to_owned(), name: name.to_owned() }])?;
                Ok(true)
            }
        }
    }

    fn stem_of(&self, kind: InputKind, name: &str) -> Option<String> {
        self.tables(|t| t.stems.get(&(kind, name.to_owned())).cloned())
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
            let journal = FileJournal::open(dir.path()).unwrap();
            journal.record_hash(InputKind::Product, "a.jpg", stamp(10), "h1").unwrap();
            let record =
                OutputRecord { key: "k1".into(), product: "a.jpg".into(), background: None, node: Some("n1".into()) };
            journal.record_outputs(vec![("a.jpg".into(), record)]).unwrap();
            journal.record_cutout("h1", "local").unwrap();
        }
        let mut f = fs::OpenOptions::new().append(true).open(dir.path().join(JOURNAL)).unwrap();
        f.write_all(b"{\"k\":\"output\",\"file\":\"b.j").unwrap();
        let journal = FileJournal::open(dir.path()).unwrap();
        assert_eq!(journal.known_hash(InputKind::Product, "a.jpg", &stamp(10)).as_deref(), Some("h1"));
        assert_eq!(journal.known_hash(InputKind::Product, "a.jpg", &stamp(11)), None);
        assert_eq!(journal.outputs_of(Some("a.jpg"), None), vec!["a.jpg".to_string()]);
        assert_eq!(journal.output("a.jpg").unwrap().node.as_deref(), Some("n1"));
        assert_eq!(journal.cutout_engine("h1").as_deref(), Some("local"));
    }

    #[test]
    fn a_journal_with_garbage_from_a_crash_still_opens() {
        let dir = tempfile::tempdir().unwrap();
        {
            let journal = FileJournal::open(dir.path()).unwrap();
            journal.record_hash(InputKind::Product, "tênis.jpg", stamp(10), "h1").unwrap();
        }
        // Half of a UTF-8 character, then the zeros a power cut can leave at the end of a file.
        let mut f = fs::OpenOptions::new().append(true).open(dir.path().join(JOURNAL)).unwrap();
        f.write_all(b"{\"k\":\"stamp\",\"name\":\"t\xc3").unwrap();
        f.write_all(&[0u8; 64]).unwrap();
        drop(f);
        let journal = FileJournal::open(dir.path()).unwrap();
        assert_eq!(journal.known_hash(InputKind::Product, "tênis.jpg", &stamp(10)).as_deref(), Some("h1"));
        let again = fs::read(dir.path().join(JOURNAL)).unwrap();
        assert!(std::str::from_utf8(&again).is_ok() && !again.contains(&0), "compaction drops the garbage");
    }

    #[test]
    fn a_journal_written_before_the_input_kind_rename_still_reads() {
        let dir = tempfile::tempdir().unwrap();
        let old = concat!(
            r#"{"k":"stamp","folder":"background","name":"b.jpg","stamp":{"len":1,"mtime_ns":1,"ino":2},"hash":"hb"}"#,
            "\n",
            r#"{"k":"claim","folder":"background","stem":"b","name":"b.jpg"}"#,
            "\n"
        );
        fs::write(dir.path().join(JOURNAL), old).unwrap();
        let journal = FileJournal::open(dir.path()).unwrap();
        assert_eq!(journal.inputs(InputKind::Background), vec![KnownInput { name: "b.jpg".into(), hash: "hb".into() }]);
        assert_eq!(journal.stem_of(InputKind::Background, "b.jpg").as_deref(), Some("b"));
    }

    #[test]
    fn a_name_belongs_to_its_first_holder_while_it_exists() {
        let dir = tempfile::tempdir().unwrap();
        let journal = FileJournal::open(dir.path()).unwrap();
        assert!(journal.claim(InputKind::Product, "p", "p.jpg", &|_| true).unwrap());
        assert!(!journal.claim(InputKind::Product, "p", "p.png", &|_| true).unwrap());
        assert!(journal.claim(InputKind::Product, "p", "p.png", &|_| false).unwrap());
        assert_eq!(journal.stem_of(InputKind::Product, "p.png").as_deref(), Some("p"));
        assert_eq!(journal.stem_of(InputKind::Product, "p.jpg"), None, "the old holder lost it");
    }
}
