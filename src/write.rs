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

fn temp_path(dir: &Path, name: &str) -> PathBuf {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    dir.join(format!(".{name}.{}.{}.{n}{TEMP_SUFFIX}", writer(), std::process::id()))
}

/// Whether a temporary file name was made by a process with this process's writer tag.
fn written_by_this_node(file_name: &str) -> bool {
    let Some(stem) = file_name.strip_suffix(TEMP_SUFFIX) else { return false };
    let mut parts = stem.rsplitn(4, '.');
    let (_counter, _pid, tag) = (parts.next(), parts.next(), parts.next());
    tag == Some(writer())
}

/// Writes `bytes` to `dir/name` atomically and durably.
pub fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
    let tmp = temp_path(dir, name);
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

/// Flushes a folder's entries (the renames into it) to disk.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    fs::File::open(dir)?.sync_all()
}

/// Removes temporary files left in `dir` by a process that was killed mid-write: this node's own
/// (its earlier run is over) and any older than `older_than` (zero in a folder only this process
/// writes; in a folder other nodes share, long enough that no live writer still owns them).
/// Called at start, before this process writes anything.
pub fn remove_stale_temps(dir: &Path, older_than: Duration) -> usize {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .filter(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.ends_with(TEMP_SUFFIX) && (written_by_this_node(&name) || older(e, older_than))
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
}
