//! The local journal: `journal.jsonl`, an append-only log of facts, replayed and compacted at
//! start. A torn last line from a crash, garbage a power cut leaves (zeros, half a UTF-8
//! character) or a line from a newer version is skipped, never a reason not to start.

use super::tables::{Record, Tables};
use super::{Journal, KnownInput, OutputRecord};
use crate::disk::FileStamp;
use crate::job::InputKind;
use crate::sync::Mutex;
use crate::write::{sync_dir, write_atomic};
use std::fs;
use std::io::{self, Write};
use std::path::Path;

const JOURNAL: &str = "journal.jsonl";

pub(crate) struct FileJournal {
    inner: Mutex<(Tables, fs::File)>,
}

/// The tables `dir`'s journal replays into (empty when there is none).
fn replay(dir: &Path) -> io::Result<Tables> {
    let mut tables = Tables::default();
    match fs::read(dir.join(JOURNAL)) {
        Ok(journal) => {
            for line in journal.split(|&b| b == b'\n') {
                if let Ok(record) = serde_json::from_slice::<Record>(line) {
                    tables.apply(record);
                }
            }
            Ok(tables)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(tables),
        Err(e) => Err(e),
    }
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
        crate::write::remove_stale_temps(dir, std::time::Duration::ZERO);
        let tables = replay(dir)?;
        write_atomic(dir, JOURNAL, &encode(tables.records())?)?;
        sync_dir(dir)?;
        let file = fs::OpenOptions::new().append(true).open(dir.join(JOURNAL))?;
        Ok(FileJournal { inner: Mutex::new((tables, file)) })
    }

    /// The live facts of the journal in `dir`, read without opening it for writing (to import a
    /// single-node journal into the cluster's).
    pub(crate) fn facts_in(dir: &Path) -> io::Result<Vec<Record>> {
        Ok(replay(dir)?.records().collect())
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
    fn knows(&self, kind: InputKind, name: &str) -> bool {
        self.tables(|t| t.knows(kind, name))
    }

    fn known_hash(&self, kind: InputKind, name: &str, stamp: &FileStamp) -> Option<String> {
        self.tables(|t| t.known_hash(kind, name, stamp))
    }

    fn record_hash(&self, kind: InputKind, name: &str, stamp: FileStamp, hash: &str) -> io::Result<()> {
        if self.known_hash(kind, name, &stamp).as_deref() == Some(hash) {
            return Ok(());
        }
        self.append(vec![Record::stamp(kind, name, stamp, hash, false)])
    }

    fn register_background(&self, name: &str, stamp: FileStamp, hash: &str) -> io::Result<()> {
        self.append(vec![Record::stamp(InputKind::Background, name, stamp, hash, true)])
    }

    fn fanned_out(&self, name: &str, hash: &str) -> io::Result<()> {
        match self.tables(|t| t.fanned_out(name, hash)) {
            Some(record) => self.append(vec![record]),
            None => Ok(()),
        }
    }

    fn forget_input(&self, kind: InputKind, name: &str) -> io::Result<()> {
        // In memory only: the next compaction drops it; a stale entry after a crash costs a rehash.
        self.inner.lock().0.apply(Record::Forget { kind, name: name.to_owned() });
        Ok(())
    }

    fn inputs(&self, kind: InputKind) -> Vec<KnownInput> {
        self.tables(|t| t.inputs(kind))
    }

    fn record_outputs(&self, outputs: Vec<(String, OutputRecord)>) -> io::Result<()> {
        self.append(outputs.into_iter().map(|(file, r)| Record::output(file, r)).collect())
    }

    fn output(&self, file: &str) -> Option<OutputRecord> {
        self.tables(|t| t.output(file))
    }

    fn record_cutout(&self, hash: &str, engine: &str) -> io::Result<()> {
        if self.cutout_engine(hash).as_deref() == Some(engine) {
            return Ok(());
        }
        self.append(vec![Record::Cutout { hash: hash.to_owned(), engine: engine.to_owned() }])
    }

    fn cutout_engine(&self, hash: &str) -> Option<String> {
        self.tables(|t| t.cutout_engine(hash))
    }

    fn outputs_of(&self, product: Option<&str>, background: Option<&str>) -> Vec<String> {
        self.tables(|t| t.outputs_of(product, background))
    }

    fn record_removed(&self, files: &[String]) -> io::Result<()> {
        self.append(files.iter().map(|f| Record::Removed { file: f.clone() }).collect())
    }

    fn claim(&self, kind: InputKind, stem: &str, name: &str, holder_exists: &dyn Fn(&str) -> bool) -> io::Result<bool> {
        match self.tables(|t| t.holder(kind, stem)) {
            Some(h) if h == name => Ok(true),
            Some(h) if holder_exists(&h) => Ok(false),
            _ => {
                self.append(vec![Record::Claim { kind, stem: stem.to_owned(), name: name.to_owned() }])?;
                Ok(true)
            }
        }
    }

    fn stem_of(&self, kind: InputKind, name: &str) -> Option<String> {
        self.tables(|t| t.stem_of(kind, name))
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
        assert_eq!(journal.inputs(InputKind::Background), vec![KnownInput { name: "b.jpg".into(), hash: "hb".into(), fan_out: false }]);
        assert_eq!(journal.stem_of(InputKind::Background, "b.jpg").as_deref(), Some("b"));
    }

    #[test]
    fn a_new_background_waits_for_its_fan_out_across_restarts_until_it_is_marked_done() {
        let dir = tempfile::tempdir().unwrap();
        let pending = |journal: &FileJournal| journal.inputs(InputKind::Background).iter().map(|b| b.fan_out).collect::<Vec<_>>();
        {
            let journal = FileJournal::open(dir.path()).unwrap();
            journal.register_background("b.jpg", stamp(5), "h1").unwrap();
            assert_eq!(pending(&journal), [true]);
        }
        let journal = FileJournal::open(dir.path()).unwrap();
        assert_eq!(pending(&journal), [true], "a restart keeps the fan-out owed");
        journal.fanned_out("b.jpg", "h0").unwrap();
        assert_eq!(pending(&journal), [true], "a fan-out for another version does not count");
        journal.fanned_out("b.jpg", "h1").unwrap();
        assert_eq!(pending(&journal), [false]);
        // Recording the same version again (a rescan) does not make it owed again.
        journal.record_hash(InputKind::Background, "b.jpg", stamp(5), "h1").unwrap();
        drop(journal);
        let journal = FileJournal::open(dir.path()).unwrap();
        assert_eq!(pending(&journal), [false]);
        assert_eq!(journal.known_hash(InputKind::Background, "b.jpg", &stamp(5)).as_deref(), Some("h1"));
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
