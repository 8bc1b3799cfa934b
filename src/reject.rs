//! Reject: move an input that can never succeed out of the watched folder, with a note beside it
//! saying what was wrong and what to do.
//!
//! Moving (not deleting) keeps the seller's file; the note makes the failure visible to someone
//! who never reads logs.

use crate::error::Rejection;
use crate::write::write_atomic;
use std::ffi::{OsStr, OsString};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// Moves `source` into `rejected_dir` (never overwriting an earlier rejection) and writes
/// `<name>.error.txt` beside it. Returns the new path.
pub fn reject(source: &Path, rejected_dir: &Path, rejection: &Rejection) -> io::Result<PathBuf> {
    fs::create_dir_all(rejected_dir)?;
    let name = source.file_name().map(fitted).unwrap_or_else(|| "input".into());
    let dest = free_name(rejected_dir, &name);
    if let Err(e) = fs::rename(source, &dest) {
        // Another filesystem: copy the bytes of a regular file, then remove the original.
        let meta = fs::symlink_metadata(source)?;
        if !meta.is_file() || e.raw_os_error() != Some(libc::EXDEV) {
            return Err(e);
        }
        fs::copy(source, &dest)?;
        fs::remove_file(source)?;
    }
    let note_name = format!("{}.error.txt", dest.file_name().unwrap_or_default().to_string_lossy());
    write_atomic(rejected_dir, &note_name, note(source, rejection).as_bytes())?;
    Ok(dest)
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

/// `name`, or `name` with ` (2)`, ` (3)`… before its extension when taken.
fn free_name(dir: &Path, name: &OsString) -> PathBuf {
    let first = dir.join(name);
    if fs::symlink_metadata(&first).is_err() {
        return first;
    }
    let path = Path::new(name);
    let stem = path.file_stem().unwrap_or_default().to_string_lossy().into_owned();
    let ext = path.extension().map(|e| format!(".{}", e.to_string_lossy())).unwrap_or_default();
    (2..)
        .map(|n| dir.join(format!("{stem} ({n}){ext}")))
        .find(|p| fs::symlink_metadata(p).is_err())
        .expect("some number is free")
}

fn note(source: &Path, r: &Rejection) -> String {
    format!(
        "thumbgen could not make thumbnails from this file.\n\n\
         File:       {}\n\
         When:       {}\n\
         Problem:    {}\n\
         What to do: {}\n\n\
         Reason code: {} (counted in the thumbgen_inputs_rejected_total metric)\n",
        source.display(),
        crate::logging::utc_now(),
        r.problem,
        r.advice,
        r.reason.label(),
    )
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
}
