//! What the filesystem says about files and folders without reading them: the stamp that
//! identifies a file version, whether a file is still being written, free space and whether a
//! folder lives on a network mount; and [`read_regular`], the one safe way to read a small file
//! someone else may have put there.
//!
//! One rule decides "still being written" for the whole daemon ([`still_being_written`]): a file
//! modified within [`SETTLE`], or one that a process has open for writing right now.

use serde::{Deserialize, Serialize};
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;
use std::time::{Duration, SystemTime};

/// A file modified more recently than this may still be being written: a scan leaves it alone
/// until it holds still, and an incomplete-looking file this fresh is looked at again, not rejected.
pub(crate) const SETTLE: Duration = Duration::from_secs(2);

/// Identity of a file version without reading it: size, modification time and inode. When these
/// match, the content hash recorded for them is reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FileStamp {
    pub len: u64,
    pub mtime_ns: i64,
    pub ino: u64,
}

impl FileStamp {
    pub(crate) fn of(meta: &std::fs::Metadata) -> FileStamp {
        FileStamp { len: meta.len(), mtime_ns: meta.mtime() * 1_000_000_000 + meta.mtime_nsec(), ino: meta.ino() }
    }

    /// The stamp of the entry at `path` (a link is not followed).
    pub(crate) fn look(path: &Path) -> Option<FileStamp> {
        std::fs::symlink_metadata(path).ok().map(|m| FileStamp::of(&m))
    }

    /// Time since the file was last modified (zero for a time in the future).
    pub(crate) fn age(&self, now: SystemTime) -> Duration {
        let now_ns = now.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as i128);
        Duration::from_nanos((now_ns - self.mtime_ns as i128).clamp(0, u64::MAX as i128) as u64)
    }
}

/// True when the file at `path` may still be growing: modified within [`SETTLE`], or open for
/// writing by a process this one can see (a writer that started before the daemon and stalls).
pub(crate) fn still_being_written(path: &Path) -> bool {
    match std::fs::symlink_metadata(path) {
        Ok(meta) => FileStamp::of(&meta).age(SystemTime::now()) < SETTLE || open_for_writing(&meta),
        Err(_) => false,
    }
}

/// Whether a process this one may inspect holds the file open for writing, found the way
/// `fuser` does: each process's open descriptors in `/proc`, matched by device and inode, with the
/// access mode from `fdinfo`. Processes of other users (or other containers) are not visible;
/// for their files the time rule alone applies.
fn open_for_writing(meta: &std::fs::Metadata) -> bool {
    let (dev, ino) = (meta.dev(), meta.ino());
    let Ok(procs) = std::fs::read_dir("/proc") else { return false };
    for proc in procs.flatten() {
        let pid = proc.file_name();
        if !pid.as_bytes().iter().all(u8::is_ascii_digit) {
            continue;
        }
        let Ok(fds) = std::fs::read_dir(proc.path().join("fd")) else { continue };
        for fd in fds.flatten() {
            let same = std::fs::metadata(fd.path()).is_ok_and(|m| m.dev() == dev && m.ino() == ino);
            if same && fd_writes(&proc.path().join("fdinfo").join(fd.file_name())) {
                return true;
            }
        }
    }
    false
}

/// True when an `fdinfo` entry's flags say the descriptor was opened for writing.
fn fd_writes(fdinfo: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(fdinfo) else { return false };
    text.lines()
        .find_map(|line| line.strip_prefix("flags:"))
        .and_then(|flags| u32::from_str_radix(flags.trim(), 8).ok())
        .is_some_and(|flags| flags & libc::O_ACCMODE as u32 != libc::O_RDONLY as u32)
}

/// What `statfs` says of the filesystem holding `dir`.
fn statfs(dir: &Path) -> Option<libc::statfs> {
    let c_path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut stat: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: a valid NUL-terminated path and a zeroed struct the kernel fills in.
    (unsafe { libc::statfs(c_path.as_ptr(), &mut stat) } == 0).then_some(stat)
}

/// Bytes available to unprivileged writers on the filesystem holding `dir`.
pub(crate) fn free_bytes(dir: &Path) -> Option<u64> {
    // Block counts are in fragments (`f_frsize`), as `statvfs` reports them.
    statfs(dir).map(|s| {
        let block = if s.f_frsize > 0 { s.f_frsize } else { s.f_bsize };
        s.f_bavail.saturating_mul(block as u64)
    })
}

/// Reads a regular file of at most `limit` bytes, never through a link and never blocking on a
/// FIFO.
pub(crate) fn read_regular(path: &Path, limit: u64) -> io::Result<(Vec<u8>, std::fs::Metadata)> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "not a regular file"));
    }
    if meta.len() > limit {
        return Err(io::Error::new(io::ErrorKind::FileTooLarge, "larger than allowed"));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(io::Error::new(io::ErrorKind::FileTooLarge, "grew larger than allowed"));
    }
    Ok((bytes, meta))
}

/// NFS, SMB/CIFS, FUSE (Docker Desktop shares) and 9p mounts deliver no file events for changes
/// made by other machines.
pub(crate) fn is_network_mount(dir: &Path) -> bool {
    const NFS: i64 = 0x6969;
    const SMB: i64 = 0x517B;
    const SMB2: i64 = 0xFE53_4D42;
    const CIFS: i64 = 0xFF53_4D42;
    const FUSE: i64 = 0x6573_5546;
    const NINEP: i64 = 0x0102_1997;
    statfs(dir).is_some_and(|s| matches!(s.f_type, NFS | SMB | SMB2 | CIFS | FUSE | NINEP))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn backdate(path: &Path, by: Duration) {
        let file = std::fs::File::options().write(true).open(path).unwrap();
        file.set_modified(SystemTime::now() - by).unwrap();
    }

    #[test]
    fn a_file_open_for_writing_is_still_being_written_however_old() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("upload.jpg");
        let mut writer = std::fs::File::create(&path).unwrap();
        writer.write_all(b"half a photo").unwrap();
        backdate(&path, Duration::from_secs(60));
        assert!(still_being_written(&path), "the writer still holds it");
        drop(writer);
        assert!(!still_being_written(&path), "closed and old: complete");
    }

    #[test]
    fn a_fresh_file_is_still_being_written_until_it_settles() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.jpg");
        std::fs::write(&path, b"x").unwrap();
        assert!(still_being_written(&path));
        backdate(&path, SETTLE * 2);
        assert!(!still_being_written(&path));
        let stamp = FileStamp::look(&path).unwrap();
        assert!(stamp.age(SystemTime::now()) >= SETTLE);
    }

    #[test]
    fn free_space_of_a_real_folder_is_known() {
        assert!(free_bytes(Path::new("/")).is_some());
        assert!(free_bytes(Path::new("/no/such/folder")).is_none());
    }
}
