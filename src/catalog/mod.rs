//! Catalog: where inputs come from and where outputs and rejections go — the folders under
//! `BASE_PATH` (the default) or key prefixes in an S3-compatible bucket (`STORAGE_URL`, design
//! §9). The pipeline sees only [`Catalog`], so every promise it keeps on disk it keeps in a
//! bucket: outputs appear whole, a rejected input is kept with its note, a file replaced meanwhile
//! is never lost.
//!
//! - [`browse`]: what the web console does with a catalog (list, read, upload, restore, delete).
//! - [`local`]: the folders, with the safe opens, atomic renames and `fsync`s of a hot folder.
//! - [`bucket`]: the S3 client (requests counted and timed, health from their outcomes), its
//!   settings, and the catalog and cut-out cache that live in the bucket ([`bucket::BucketCatalog`],
//!   [`bucket::BucketCutouts`]).
//!
//! A file's [`FileStamp`] is its version: size, modification time and inode on disk; size,
//! `LastModified` and a hash of the ETag in a bucket (a change token, not a content hash: the
//! content hash is computed from the bytes, as on disk).

pub(crate) mod bucket;
mod browse;
mod local;

pub(crate) use browse::{Browse, Folder};
pub(crate) use local::LocalCatalog;

use crate::disk::FileStamp;
use crate::error::{JobError, Rejection, Transient};
use crate::job::InputKind;
use crate::validate::{InputFile, Limits};
use std::io;

/// Why an input could not be moved aside.
#[derive(Debug)]
pub(crate) enum RejectFailure {
    /// It left its folder before it could be moved.
    Gone,
    /// It was replaced while being moved: the new version stays and is looked at again.
    Changed,
    Failed(io::Error),
}

/// The inputs, outputs and rejections of one catalog. Calls block (a bucket's run on the tokio
/// runtime the catalog was opened in): call them from blocking threads, as the pipeline does.
pub(crate) trait Catalog: Send + Sync {
    /// Where the catalog is, for logs and messages: a folder or `s3://bucket/prefix`.
    fn location(&self) -> String;
    /// The inputs of `kind` right now, sorted by name, with their stamps.
    fn inputs(&self, kind: InputKind) -> Result<Vec<(String, FileStamp)>, Transient>;
    /// The stamp of an input, checked before reading: gone, not a regular file, empty and over
    /// `MAX_FILE_SIZE` are known from it.
    fn look(&self, kind: InputKind, name: &str, limits: &Limits) -> Result<FileStamp, JobError>;
    /// Reads an input and checks it up to decoding (format, header, limits).
    fn read(&self, kind: InputKind, name: &str, limits: &Limits) -> Result<InputFile, JobError>;
    /// Whether an input of `kind` named `name` is there.
    fn holds(&self, kind: InputKind, name: &str) -> bool;
    /// Whether an input that looks incomplete may still be growing (never, in a bucket: objects
    /// appear whole).
    fn still_being_written(&self, kind: InputKind, name: &str) -> bool;
    /// Which of `files` (the outputs of one product, sharing its stem) exist, in their order: one
    /// listing in a bucket.
    fn outputs_exist(&self, files: &[&str]) -> Result<Vec<bool>, Transient>;
    /// The job key stored with an existing output, where the catalog keeps one (a bucket does, as
    /// object metadata, so a node with no local state knows what made it).
    fn output_key(&self, file: &str) -> Result<Option<String>, Transient>;
    /// Writes an output whole (or not at all), storing `key` with it where the catalog can.
    fn write_output(&self, file: &str, bytes: Vec<u8>, key: &str) -> io::Result<()>;
    /// Makes the outputs written so far durable as a set (a folder's entries synced).
    fn outputs_written(&self);
    /// Deletes an output; true when it is gone (or never was there).
    fn remove_output(&self, file: &str) -> bool;
    /// Moves an input aside into the rejected folder, never over an earlier rejection, with
    /// `<name>.error.txt` beside it; returns where it went.
    fn reject(&self, kind: InputKind, name: &str, rejection: &Rejection) -> Result<String, RejectFailure>;
}
