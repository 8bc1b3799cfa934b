//! Write: outputs appear whole or not at all.
//!
//! Each file is written under a hidden temporary name in its final folder, flushed to disk and
//! renamed over the final name, so a reader (or a crash) never sees half a thumbnail. Temporary
//! names carry a fixed suffix so leftovers from a killed process are recognised and removed.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Suffix of every temporary file thumbgen creates.
pub const TEMP_SUFFIX: &str = ".thumbgen-tmp";

static COUNTER: AtomicU64 = AtomicU64::new(0);

fn temp_path(dir: &Path, name: &str) -> PathBuf {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    dir.join(format!(".{name}.{}.{n}{TEMP_SUFFIX}", std::process::id()))
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

/// Removes temporary files left in `dir` by a process that was killed mid-write.
pub fn remove_stale_temps(dir: &Path) -> usize {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(TEMP_SUFFIX))
        .filter(|e| fs::remove_file(e.path()).is_ok())
        .count()
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
        assert_eq!(remove_stale_temps(dir.path()), 1);
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("a.jpg")]);
    }
}
