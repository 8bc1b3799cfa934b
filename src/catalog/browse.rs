//! Browse: what the web console does with a catalog — list a folder, read a file, take an upload,
//! put a rejected file back, delete one — the same on disk and in a bucket.
//!
//! The contract:
//! - Names are plain file names found in a listing first; a name with a `/` (or `.`/`..`) is
//!   refused, never joined onto a path or key.
//! - An upload appears whole under its name or not at all: on disk a hidden partial file renamed
//!   when complete, in a bucket one PUT (or a multipart upload completed at the end, aborted when
//!   the upload breaks off). Without `replace` a taken name is refused with
//!   [`io::ErrorKind::AlreadyExists`].
//! - A restore never replaces a file already in the input folder ([`io::ErrorKind::AlreadyExists`]);
//!   a file that left meanwhile is [`io::ErrorKind::NotFound`].

use crate::disk::FileStamp;
use crate::error::Transient;
use crate::job::InputKind;
use std::io;
use std::path::PathBuf;

/// A folder of the catalog (a key prefix in a bucket).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Folder {
    Input(InputKind),
    Output,
    Rejected,
}

/// An upload on its way into an input folder; dropped before [`Upload::commit`] it leaves nothing.
pub(crate) trait Upload: Send {
    /// Appends the next piece (blocking).
    fn write(&mut self, piece: &[u8]) -> io::Result<()>;
    /// Makes the file appear under its name (blocking).
    fn commit(self: Box<Self>) -> io::Result<()>;
}

/// The console's view of a catalog. Calls block: run them off the async threads.
pub(crate) trait Browse: Send + Sync {
    /// A cheap stamp that changes whenever `folder`'s entries do (a folder's own modification
    /// time), or `None` where there is none (a bucket): listings are then reused only briefly.
    fn folder_stamp(&self, folder: Folder) -> Option<FileStamp>;
    /// The files in `folder` with names thumbgen reads or writes (no hidden or temporary ones,
    /// no sub-folders), with their stamps; rejection notes included.
    fn files(&self, folder: Folder) -> Result<Vec<(String, FileStamp)>, Transient>;
    /// Reads file `name` of `folder`, at most `limit` bytes ([`io::ErrorKind::FileTooLarge`]
    /// past it), never through a link.
    fn read_file(&self, folder: Folder, name: &str, limit: u64) -> io::Result<(Vec<u8>, FileStamp)>;
    /// The folder a rejection note names as where a file of `kind` came from.
    fn input_location(&self, kind: InputKind) -> PathBuf;
    /// Free space where outputs are written, where that means anything (not in a bucket).
    fn free_bytes(&self) -> Option<u64>;
    /// Starts an upload of `name` into `kind`'s folder.
    fn upload(&self, kind: InputKind, name: &str, replace: bool) -> io::Result<Box<dyn Upload>>;
    /// Moves rejected file `name` back into `kind`'s folder as `original`, and deletes its note.
    fn restore(&self, name: &str, kind: InputKind, original: &str) -> io::Result<()>;
    /// Deletes rejected file `name` and its note (either may be gone already).
    fn delete_rejected(&self, name: &str) -> io::Result<()>;
}

/// Refuses a name that is not one plain file name.
pub(crate) fn plain(name: &str) -> io::Result<&str> {
    if name.is_empty() || name == "." || name == ".." || name.contains('/') || name.contains('\0') {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("{name:?} is not a file name")));
    }
    Ok(name)
}
