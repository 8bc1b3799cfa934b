//! Rejected files: what `rejeitados/` holds, each with what its note says, and the two actions on
//! them — *retry* moves the file back into the folder it came from (under its original name, never
//! over a file already there), *delete* removes it and its note.

use super::listing::{Listed, Listing, Snapshot};
use super::problem::Problem;
use crate::catalog::{Browse, Folder};
use crate::disk::FileStamp;
use crate::job::InputKind;
use crate::naming::is_input_name;
use crate::reject::{is_note, read_note, Note, NOTE_SUFFIX};
use crate::sync::Mutex;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::io;
use std::sync::Arc;

/// Notes are a few hundred bytes; anything far larger is not one of ours.
const MAX_NOTE: u64 = 64 * 1024;

/// A file in `rejeitados/`.
pub(super) struct RejectedFile {
    pub name: String,
    pub stamp: FileStamp,
    pub note: Note,
    /// The folder it was rejected from, when its note says (else it goes back to `produtos/`).
    pub kind: Option<InputKind>,
}

impl Listed for RejectedFile {
    fn name(&self) -> &str {
        &self.name
    }

    fn stamp(&self) -> &FileStamp {
        &self.stamp
    }
}

impl RejectedFile {
    /// The name it had before it was rejected, when that is still a usable input name.
    pub(super) fn original(&self) -> &str {
        self.note.file.file_name().and_then(|n| n.to_str()).filter(|n| is_input_name(n)).unwrap_or(&self.name)
    }

    /// What the console shows of it.
    pub(super) fn to_json(&self) -> Value {
        json!({
            "name": self.name,
            "folder": self.kind.map(InputKind::label),
            "original": self.original(),
            "reason": self.note.reason,
            "problem": self.note.problem,
            "advice": self.note.advice,
            "when": self.note.when,
            "modified": self.stamp.mtime_ns.div_euclid(1_000_000_000),
            "size": self.stamp.len,
        })
    }
}

/// Notes read so far, by name, with the stamp they were read at: a listing reads only new ones.
type Notes = Mutex<HashMap<String, (FileStamp, Note)>>;

pub(super) struct Rejected {
    catalog: Arc<dyn Browse>,
    listing: Listing<RejectedFile>,
}

impl Rejected {
    pub(super) fn new(catalog: &Arc<dyn Browse>) -> Rejected {
        let (owned, notes) = (catalog.clone(), Notes::default());
        Rejected { catalog: catalog.clone(), listing: Listing::new(catalog, Folder::Rejected, move || list(&*owned, &notes)) }
    }

    pub(super) fn snapshot(&self) -> Arc<Snapshot<RejectedFile>> {
        self.listing.snapshot()
    }

    /// Moves rejected file `name` back where it came from; its folder and name there.
    pub(super) fn retry(&self, name: &str) -> Result<(InputKind, String), Problem> {
        let snapshot = self.listing.fresh();
        let file = snapshot.find(name).ok_or_else(|| Problem::NotFound(format!("rejected file {name}")))?;
        let kind = file.kind.unwrap_or(InputKind::Product);
        let original = file.original().to_owned();
        let restored = self.catalog.restore(&file.name, kind, &original);
        self.listing.forget();
        match restored {
            Ok(()) => Ok((kind, original)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(Problem::Conflict {
                error: format!("{}/ already has a file named {original}", kind.label()),
                advice: "Delete or rename that file first, or delete this rejected copy.".into(),
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(Problem::NotFound(format!("rejected file {name}"))),
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes rejected file `name` and its note.
    pub(super) fn delete(&self, name: &str) -> Result<(), Problem> {
        let snapshot = self.listing.fresh();
        let file = snapshot.find(name).ok_or_else(|| Problem::NotFound(format!("rejected file {name}")))?;
        let deleted = self.catalog.delete_rejected(&file.name);
        self.listing.forget();
        Ok(deleted?)
    }
}

/// The rejected files (not their notes), each with what its note says. A folder that cannot be
/// listed now shows as empty until it can.
fn list(catalog: &dyn Browse, notes: &Notes) -> Vec<RejectedFile> {
    let files = catalog.files(Folder::Rejected).unwrap_or_default();
    let stamps: HashMap<&str, FileStamp> = files.iter().map(|(name, stamp)| (name.as_str(), *stamp)).collect();
    let mut read = notes.lock();
    read.retain(|name, (stamp, _)| stamps.get(name.as_str()) == Some(stamp));
    let origins: Vec<_> = InputKind::ALL.into_iter().map(|k| (k, catalog.input_location(k))).collect();
    files
        .iter()
        .filter(|(name, _)| !is_note(name))
        .map(|(name, stamp)| {
            let note_name = format!("{name}{NOTE_SUFFIX}");
            let note = match (stamps.get(note_name.as_str()), read.get(&note_name)) {
                (Some(now), Some((then, note))) if now == then => note.clone(),
                (Some(now), _) => match catalog.read_file(Folder::Rejected, &note_name, MAX_NOTE) {
                    Ok((bytes, _)) => {
                        let note = read_note(&String::from_utf8_lossy(&bytes));
                        read.insert(note_name, (*now, note.clone()));
                        note
                    }
                    // Not kept: read again at the next listing (a store may fail for a moment).
                    Err(_) => Note::default(),
                },
                (None, _) => Note::default(),
            };
            let from = note.file.parent();
            let kind = origins.iter().find(|(_, dir)| from == Some(dir.as_path())).map(|(k, _)| *k);
            RejectedFile { name: name.clone(), stamp: *stamp, note, kind }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{RejectReason, Rejection};
    use crate::testkit::Base;

    fn catalog(base: &Base) -> Arc<dyn Browse> {
        Arc::new(crate::catalog::LocalCatalog::new(base.folders.clone()))
    }

    fn rejected_copy(base: &Base, folder: &str, name: &str) -> String {
        base.put(folder, name, b"not a photo");
        let r = Rejection::new(RejectReason::UnsupportedFormat, "text", "export again");
        let from = base.dir.path().join(folder).join(name);
        let dest = crate::reject::reject(&from, &base.folders.rejected, &r).unwrap();
        dest.file_name().unwrap().to_string_lossy().into_owned()
    }

    #[test]
    fn a_retry_goes_back_to_its_folder_under_its_name_and_never_over_another_file() {
        let base = Base::new();
        let rejected = Rejected::new(&catalog(&base));
        let bg = rejected_copy(&base, "backgrounds", "b.png");
        let first = rejected_copy(&base, "produtos", "p.png");
        let second = rejected_copy(&base, "produtos", "p.png");
        assert_eq!((first.as_str(), second.as_str()), ("p.png", "p (2).png"));
        let listed = rejected.snapshot();
        assert_eq!(listed.entries.len(), 3, "notes are not listed");
        assert_eq!(listed.find(&bg).unwrap().kind, Some(InputKind::Background));
        assert_eq!(listed.find(&second).unwrap().note.reason, "unsupported_format");

        assert_eq!(rejected.retry(&bg).unwrap(), (InputKind::Background, "b.png".to_owned()));
        assert!(base.folders.backgrounds.join("b.png").is_file());
        assert!(!base.folders.rejected.join("b.png.error.txt").exists());
        assert_eq!(rejected.retry(&second).unwrap(), (InputKind::Product, "p.png".to_owned()));
        let taken = rejected.retry(&first).unwrap_err();
        assert!(matches!(taken, Problem::Conflict { .. }), "{taken:?}");
        assert!(base.folders.rejected.join("p.png").is_file(), "nothing moved");
        assert!(matches!(rejected.retry("../produtos/p.png"), Err(Problem::NotFound(_))));
    }

    #[test]
    fn a_delete_removes_the_file_and_its_note_and_nothing_else() {
        let base = Base::new();
        let rejected = Rejected::new(&catalog(&base));
        let name = rejected_copy(&base, "produtos", "x.jpg");
        assert!(matches!(rejected.delete("x.jpg.error.txt"), Err(Problem::NotFound(_))));
        rejected.delete(&name).unwrap();
        assert!(crate::testkit::names(&base.folders.rejected).is_empty());
    }

    #[test]
    fn a_note_that_is_a_link_is_not_read() {
        let base = Base::new();
        let secret = base.dir.path().join("secret.txt");
        std::fs::write(&secret, "Problem: top secret").unwrap();
        std::fs::write(base.folders.rejected.join("x.jpg"), b"x").unwrap();
        std::os::unix::fs::symlink(&secret, base.folders.rejected.join("x.jpg.error.txt")).unwrap();
        let listed = Rejected::new(&catalog(&base)).snapshot();
        assert_eq!(listed.find("x.jpg").unwrap().note, Note::default());
    }
}
