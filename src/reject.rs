//! Reject: move an input that can never succeed out of the watched folder, with a note beside it
//! saying what was wrong and what to do.
//!
//! Moving (not deleting) keeps the seller's file; the note makes the failure visible to someone
//! who never reads logs. The note is written (atomically) before the file moves, so a crash in
//! between leaves the file in place with a spare note — the file is rejected again on the next
//! start, under the same name — and never a rejected file without its explanation. Notes whose
//! file never arrived are removed at start ([`remove_orphan_notes`]). The note's format is known
//! here only: [`read_note`] reads one back (for the web console).

use crate::error::Rejection;
use crate::write::write_atomic;
use std::ffi::{OsStr, OsString};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// Moves `source` into `rejected_dir` (never overwriting an earlier rejection) and writes
/// `<name>.error.txt` beside it. Returns the new path.
pub(crate) fn reject(source: &Path, rejected_dir: &Path, rejection: &Rejection) -> io::Result<PathBuf> {
    fs::create_dir_all(rejected_dir)?;
    // Fail early (and leave no note behind) when the input is already gone.
    fs::symlink_metadata(source)?;
    let name = source.file_name().map(OsStr::to_owned).unwrap_or_else(|| "input".into());
    let dest = free_name(rejected_dir, &name);
    let note_name = note_name(&dest);
    write_atomic(rejected_dir, &note_name, note(&source.display().to_string(), rejection).as_bytes())?;
    if let Err(e) = move_file(source, &dest) {
        let _ = fs::remove_file(rejected_dir.join(&note_name));
        return Err(e);
    }
    Ok(dest)
}

/// `<name>.error.txt` for a rejected file.
pub(crate) fn note_name(rejected: &Path) -> String {
    format!("{}{NOTE_SUFFIX}", rejected.file_name().unwrap_or_default().to_string_lossy())
}

/// True for the name of a note rather than of a rejected file.
pub(crate) fn is_note(name: &str) -> bool {
    name.ends_with(NOTE_SUFFIX)
}

/// What a note's name adds to its file's name.
pub(crate) const NOTE_SUFFIX: &str = ".error.txt";

// The note's lines, as written by `note` and read by `read_note`.
const FILE: &str = "File:";
const WHEN: &str = "When:";
const PROBLEM: &str = "Problem:";
const ADVICE: &str = "What to do:";
const REASON: &str = "Reason code:";

/// What a note says, read back: each field as written, empty when the line is missing.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Note {
    /// Where the file was when it was rejected.
    pub file: PathBuf,
    pub when: String,
    pub problem: String,
    pub advice: String,
    /// The reason's label (`corrupt`, `too_large`, …).
    pub reason: String,
}

/// Reads a note written by [`reject`]; lines it does not know are ignored.
pub(crate) fn read_note(text: &str) -> Note {
    let mut note = Note::default();
    for line in text.lines() {
        let field = |label: &str| line.strip_prefix(label).map(|v| v.trim().to_owned());
        if let Some(v) = field(FILE) {
            note.file = PathBuf::from(v);
        } else if let Some(v) = field(WHEN) {
            note.when = v;
        } else if let Some(v) = field(PROBLEM) {
            note.problem = v;
        } else if let Some(v) = field(ADVICE) {
            note.advice = v;
        } else if let Some(v) = field(REASON) {
            note.reason = v.split_whitespace().next().unwrap_or_default().to_owned();
        }
    }
    note
}

/// Renames `source` to `dest`; across filesystems, copies a regular file under a temporary name,
/// renames it into place and removes the original.
fn move_file(source: &Path, dest: &Path) -> io::Result<()> {
    let Err(e) = fs::rename(source, dest) else { return Ok(()) };
    let meta = fs::symlink_metadata(source)?;
    if !meta.is_file() || e.raw_os_error() != Some(libc::EXDEV) {
        return Err(e);
    }
    let dir = dest.parent().unwrap_or(Path::new("."));
    let name = dest.file_name().unwrap_or_default().to_string_lossy().into_owned();
    write_atomic(dir, &name, &fs::read(source)?)?;
    fs::remove_file(source)
}

/// Removes notes in `rejected_dir` whose rejected file is not there (left by a crash between
/// writing a note and moving its file). Returns how many.
pub(crate) fn remove_orphan_notes(rejected_dir: &Path, older_than: std::time::Duration) -> usize {
    let Ok(entries) = fs::read_dir(rejected_dir) else { return 0 };
    entries
        .flatten()
        .filter(|e| crate::write::older(e, older_than))
        .filter(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.strip_suffix(NOTE_SUFFIX)
                .is_some_and(|file| !file.is_empty() && fs::symlink_metadata(rejected_dir.join(file)).is_err())
        })
        .filter(|e| fs::remove_file(e.path()).is_ok())
        .count()
}

/// Longest name, in bytes, a rejected file keeps: its note (`.error.txt`), a ` (n)` suffix and the
/// temporary name the note is written under must all fit in the 255-byte limit of file names.
const MAX_NAME_BYTES: usize = 180;

/// `name`, with its stem shortened (at a character boundary, extension kept) when it is longer
/// than [`MAX_NAME_BYTES`]. The note still names the original file in full.
fn fitted(name: &OsStr) -> OsString {
    if name.len() <= MAX_NAME_BYTES {
        return name.to_owned();
    }
    let text = name.to_string_lossy();
    let path = Path::new(&*text);
    let ext = path.extension().map(|e| e.to_string_lossy().into_owned()).filter(|e| e.len() <= 16);
    let stem = match &ext {
        Some(_) => path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default(),
        None => text.clone().into_owned(),
    };
    let room = MAX_NAME_BYTES - ext.as_ref().map_or(0, |e| e.len() + 1);
    let mut short = String::with_capacity(room);
    for c in stem.chars() {
        if short.len() + c.len_utf8() > room {
            break;
        }
        short.push(c);
    }
    if let Some(ext) = ext {
        short.push('.');
        short.push_str(&ext);
    }
    short.into()
}

/// `name`, or `name` with ` (2)`, ` (3)`… before its extension when taken. A note alone (from a
/// crash before its file moved) does not take a name.
fn free_name(dir: &Path, name: &OsString) -> PathBuf {
    let name = name.to_string_lossy();
    names_for(&name).map(|n| dir.join(n)).find(|p| fs::symlink_metadata(p).is_err()).expect("some number is free")
}

/// The names a rejected file may take, in order: its own (shortened to fit, see [`fitted`]),
/// then with ` (2)`, ` (3)`… before its extension.
pub(crate) fn names_for(name: &str) -> impl Iterator<Item = String> {
    let first = fitted(OsStr::new(name)).to_string_lossy().into_owned();
    let path = Path::new(&first);
    let stem = path.file_stem().unwrap_or_default().to_string_lossy().into_owned();
    let ext = path.extension().map(|e| format!(".{}", e.to_string_lossy())).unwrap_or_default();
    std::iter::once(first.clone()).chain((2..).map(move |n| format!("{stem} ({n}){ext}")))
}

/// The note of a rejected file that was at `source` (a path or a key).
pub(crate) fn note(source: &str, r: &Rejection) -> String {
    format!(
        "thumbgen could not make thumbnails from this file.\n\n\
         {FILE}       {}\n\
         {WHEN}       {}\n\
         {PROBLEM}    {}\n\
         {ADVICE} {}\n\n\
         {REASON} {} (counted in the thumbgen_inputs_rejected_total metric)\n",
        source,
        crate::logging::utc_now(),
        one_line(&r.problem),
        one_line(&r.advice),
        r.reason.label(),
    )
}

/// Text on one line, so every field of a note reads back whole.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::RejectReason;

    #[test]
    fn moves_the_file_and_explains_why_without_overwriting() {
        let dir = tempfile::tempdir().unwrap();
        let rejected = dir.path().join("rejeitados");
        let r = Rejection::new(RejectReason::Corrupt, "broken", "export again");
        for round in 0..2 {
            let src = dir.path().join("x.jpg");
            fs::write(&src, format!("bad {round}")).unwrap();
            let dest = reject(&src, &rejected, &r).unwrap();
            assert!(!src.exists());
            assert_eq!(fs::read_to_string(&dest).unwrap(), format!("bad {round}"));
        }
        assert!(rejected.join("x (2).jpg").exists());
        let text = fs::read_to_string(rejected.join("x.jpg.error.txt")).unwrap();
        assert!(text.contains("broken") && text.contains("export again") && text.contains("corrupt"));
    }

    #[test]
    fn a_note_reads_back_field_by_field() {
        let dir = tempfile::tempdir().unwrap();
        let rejected = dir.path().join("rejeitados");
        let src = dir.path().join("produtos").join("<b>x</b>.jpg");
        fs::create_dir_all(src.parent().unwrap()).unwrap();
        fs::write(&src, "bad").unwrap();
        let r = Rejection::new(RejectReason::TooLarge, "too big:\nreally", "export it smaller");
        let dest = reject(&src, &rejected, &r).unwrap();
        let note = read_note(&fs::read_to_string(rejected.join(note_name(&dest))).unwrap());
        assert_eq!(note.file, src);
        assert_eq!((note.problem.as_str(), note.advice.as_str()), ("too big: really", "export it smaller"));
        assert_eq!(note.reason, "too_large");
        assert!(note.when.ends_with('Z'), "{}", note.when);
        assert!(is_note("x.jpg.error.txt") && !is_note("x.jpg"));
    }

    #[test]
    fn a_name_at_the_length_limit_is_shortened_so_its_note_fits() {
        let dir = tempfile::tempdir().unwrap();
        let rejected = dir.path().join("rejeitados");
        let r = Rejection::new(RejectReason::UnsupportedFormat, "text", "export again");
        let name = format!("{}.jpg", "é".repeat(123)); // 250 bytes
        for _ in 0..2 {
            let src = dir.path().join(&name);
            fs::write(&src, "not a photo").unwrap();
            let dest = reject(&src, &rejected, &r).unwrap();
            let moved = dest.file_name().unwrap().to_str().unwrap().to_owned();
            assert!(moved.len() <= MAX_NAME_BYTES + 4 && moved.ends_with(".jpg") && moved.starts_with("éé"), "{moved}");
            let note = fs::read_to_string(rejected.join(format!("{moved}.error.txt"))).unwrap();
            assert!(note.contains(&name), "the note names the original file");
        }
        assert_eq!(fs::read_dir(&rejected).unwrap().count(), 4);
    }

    #[test]
    fn a_crash_between_note_and_move_leaves_the_file_in_place_and_the_next_try_keeps_one_note() {
        let dir = tempfile::tempdir().unwrap();
        let rejected = dir.path().join("rejeitados");
        fs::create_dir_all(&rejected).unwrap();
        let src = dir.path().join("x.jpg");
        fs::write(&src, "bad").unwrap();
        // What a kill after the note and before the move leaves behind.
        fs::write(rejected.join("x.jpg.error.txt"), "spare note").unwrap();
        let r = Rejection::new(RejectReason::Corrupt, "broken", "export again");
        let dest = reject(&src, &rejected, &r).unwrap();
        assert_eq!(dest, rejected.join("x.jpg"));
        let note = fs::read_to_string(rejected.join("x.jpg.error.txt")).unwrap();
        assert!(note.contains("broken"), "{note}");
        assert_eq!(fs::read_dir(&rejected).unwrap().count(), 2);
    }

    #[test]
    fn notes_without_their_file_are_removed_at_start() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("kept.jpg"), "bad").unwrap();
        fs::write(dir.path().join("kept.jpg.error.txt"), "why").unwrap();
        fs::write(dir.path().join("fixed.jpg.error.txt"), "why").unwrap();
        assert_eq!(remove_orphan_notes(dir.path(), std::time::Duration::ZERO), 1);
        assert!(dir.path().join("kept.jpg.error.txt").exists());
        assert!(!dir.path().join("fixed.jpg.error.txt").exists());
    }

    #[test]
    fn an_input_gone_before_its_rejection_leaves_no_note() {
        let dir = tempfile::tempdir().unwrap();
        let rejected = dir.path().join("rejeitados");
        let r = Rejection::new(RejectReason::Corrupt, "broken", "export again");
        let err = reject(&dir.path().join("gone.jpg"), &rejected, &r).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert_eq!(fs::read_dir(&rejected).unwrap().count(), 0);
    }
}
