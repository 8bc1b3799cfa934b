//! Write: outputs appear whole or not at all.
//!
//! Each file is written under a hidden temporary name in its final folder, flushed to disk and
//! renamed over the final name, so a reader (or a crash) never sees half a thumbnail. Temporary
//! names carry a fixed suffix so leftovers from a killed process are recognised and removed, and
//! the name of the node that wrote them, so a restarted cluster node removes its own leftovers in
//! folders the other nodes share at once (theirs only once old enough).

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

/// Suffix of every temporary file thumbgen creates.
pub const TEMP_SUFFIX: &str = ".thumbgen-tmp";
/// Suffix of a file an upload streams into (the web console), in the folder it is for.
pub(crate) const UPLOAD_SUFFIX: &str = ".upload.part";

static COUNTER: AtomicU64 = AtomicU64::new(0);
/// The writer's tag in temporary names: the node's name in cluster mode.
static WRITER: OnceLock<String> = OnceLock::new();

/// Names this process's temporary files after `node` (once, at start; else they say "local").
pub(crate) fn set_writer(node: &str) {
    let tag: String = node.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_').take(40).collect();
    let _ = WRITER.set(if tag.is_empty() { "node".into() } else { tag });
}

fn writer() -> &'static str {
    WRITER.get().map_or("local", String::as_str)
}

/// A new hidden name in `dir` for a file on its way to becoming `name`, ending in `suffix`
/// ([`TEMP_SUFFIX`] or [`UPLOAD_SUFFIX`]) and tagged with this writer and process.
pub(crate) fn temp_path(dir: &Path, name: &str, suffix: &str) -> PathBuf {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    dir.join(format!(".{name}.{}.{}.{n}{suffix}", writer(), std::process::id()))
}

/// Whether a temporary file name was made by a process with this process's writer tag.
fn written_by_this_node(file_name: &str, suffix: &str) -> bool {
    let Some(stem) = file_name.strip_suffix(suffix) else { return false };
    let mut parts = stem.rsplitn(4, '.');
    let (_counter, _pid, tag) = (parts.next(), parts.next(), parts.next());
    tag == Some(writer())
}

/// Writes `bytes` to `dir/name` atomically and durably.
pub fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
    let tmp = temp_path(dir, name, TEMP_SUFFIX);
    let result = (|| {
        let mut file = fs::OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&tmp, dir.join(name))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Renames `from` to `to` unless `to` exists (then `AlreadyExists`, and nothing moves): a name is
/// never taken over silently, even by a file that arrived a moment ago. Filesystems without
/// `RENAME_NOREPLACE` (NFS, some FUSE) get a hard link and an unlink, which refuse a taken name too.
pub fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = |p: &Path| std::ffi::CString::new(p.as_os_str().as_bytes()).map_err(io::Error::other);
    let (src, dst) = (c(from)?, c(to)?);
    // SAFETY: two valid NUL-terminated paths relative to the working directory.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            libc::AT_FDCWD,
            src.as_ptr(),
            libc::AT_FDCWD,
            dst.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    };
    if rc == 0 {
        return Ok(());
    }
    let e = io::Error::last_os_error();
    if !matches!(e.raw_os_error(), Some(libc::EINVAL | libc::ENOSYS)) {
        return Err(e);
    }
    fs::hard_link(from, to)?;
    fs::remove_file(from)
}

/// Flushes a folder's entries (the renames into it) to disk.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    fs::File::open(dir)?.sync_all()
}

/// Removes temporary files left in `dir` by a process that was killed mid-write: this node's own
/// (its earlier run is over) and any older than `older_than` (zero in a folder only this process
/// writes; in a folder other nodes share, long enough that no live writer still owns them).
/// Called at start, before this process writes anything.
pub fn remove_stale_temps(dir: &Path, older_than: Duration) -> usize {
    remove_stale(dir, TEMP_SUFFIX, older_than)
}

/// [`remove_stale_temps`] for the partial uploads in an input folder.
pub(crate) fn remove_stale_uploads(dir: &Path, older_than: Duration) -> usize {
    remove_stale(dir, UPLOAD_SUFFIX, older_than)
}

fn remove_stale(dir: &Path, suffix: &str, older_than: Duration) -> usize {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .filter(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.ends_with(suffix) && (written_by_this_node(&name, suffix) || older(e, older_than))
        })
        .filter(|e| fs::remove_file(e.path()).is_ok())
        .count()
}

/// Whether a directory entry was last modified more than `age` ago (always, for zero).
pub(crate) fn older(entry: &fs::DirEntry, age: Duration) -> bool {
    age.is_zero() || entry.metadata().and_then(|m| m.modified()).is_ok_and(|t| t.elapsed().unwrap_or_default() > age)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rename_never_takes_a_name_that_exists() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b, c) = (dir.path().join("a"), dir.path().join("b"), dir.path().join("c"));
        fs::write(&a, b"new").unwrap();
        fs::write(&b, b"old").unwrap();
        let err = rename_noreplace(&a, &b).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read(&b).unwrap(), b"old");
        rename_noreplace(&a, &c).unwrap();
        assert_eq!(fs::read(&c).unwrap(), b"new");
        assert!(!a.exists());
    }

    #[test]
    fn writes_whole_files_and_cleans_leftovers() {
        let dir = tempfile::tempdir().unwrap();
        write_atomic(dir.path(), "a.jpg", b"data").unwrap();
        assert_eq!(fs::read(dir.path().join("a.jpg")).unwrap(), b"data");
        fs::write(dir.path().join(format!(".b.jpg.1.0{TEMP_SUFFIX}")), b"half").unwrap();
        assert_eq!(remove_stale_temps(dir.path(), Duration::from_secs(3600)), 0, "too young to be stale");
        assert_eq!(remove_stale_temps(dir.path(), Duration::ZERO), 1);
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("a.jpg")]);
    }

    #[test]
    fn a_restarted_node_removes_its_own_young_leftovers_but_not_another_nodes() {
        let dir = tempfile::tempdir().unwrap();
        let own = format!(".c.png.{}.77.0{TEMP_SUFFIX}", writer());
        let other = format!(".d.png.some-other-node.78.0{TEMP_SUFFIX}");
        fs::write(dir.path().join(&own), b"half").unwrap();
        fs::write(dir.path().join(&other), b"half").unwrap();
        assert_eq!(remove_stale_temps(dir.path(), Duration::from_secs(3600)), 1);
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from(other)], "another node may still be writing its file");
    }

    #[test]
    fn partial_uploads_are_cleared_by_the_same_rule_and_only_they() {
        let dir = tempfile::tempdir().unwrap();
        let own = temp_path(dir.path(), "photo.jpg", UPLOAD_SUFFIX);
        let other = dir.path().join(format!(".e.jpg.some-other-node.79.0{UPLOAD_SUFFIX}"));
        let product = dir.path().join("photo.jpg");
        for path in [&own, &other, &product] {
            fs::write(path, b"x").unwrap();
        }
        assert_eq!(remove_stale_temps(dir.path(), Duration::from_secs(3600)), 0, "not a temporary file");
        assert_eq!(remove_stale_uploads(dir.path(), Duration::from_secs(3600)), 1);
        assert!(!own.exists() && other.exists() && product.exists());
        assert_eq!(remove_stale_uploads(dir.path(), Duration::ZERO), 1, "alone, every leftover is stale");
        assert!(!other.exists() && product.exists());
    }
}
