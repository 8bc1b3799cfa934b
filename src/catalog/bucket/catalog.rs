//! The catalog in a bucket: the folders of design §1 as key prefixes with the same names.
//!
//! - Inputs are the keys directly in `produtos/` and `backgrounds/` (no further `/`; folder
//!   markers and hidden or temporary names are not inputs). An object is complete once it is
//!   listed, so nothing waits to settle.
//! - An input over `MAX_FILE_SIZE` is rejected from its HEAD, never downloaded.
//! - Outputs are single PUTs (an object appears whole) carrying the job key that made them
//!   (`x-amz-meta-thumbgen-job`): a node with no local state knows they are done.
//! - A rejection writes the note, copies the input to `rejeitados/` and deletes the original only
//!   while it is the version that was judged (`If-Match` on its ETag); when it was replaced
//!   meanwhile, the copy and note are taken back and the new version is looked at again. A move
//!   cut short after its copy finds that copy (same ETag) and does not copy twice.

use super::{Bucket, Head, StoreError};
use crate::catalog::{Catalog, RejectFailure};
use crate::disk::FileStamp;
use crate::error::{Cause, JobError, Rejection, Transient};
use crate::job::InputKind;
use crate::naming;
use crate::reject::{self, NOTE_SUFFIX};
use crate::sync::Mutex;
use crate::validate::{self, InputFile, Limits};
use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::sync::Arc;

pub(crate) const OUTPUT: &str = "thumbnails-prontas";
pub(crate) const REJECTED: &str = "rejeitados";

pub(crate) struct BucketCatalog {
    pub(super) bucket: Arc<Bucket>,
    pub(super) runtime: tokio::runtime::Handle,
    /// The ETag each input had when it was last looked at or read: a rejection deletes only that
    /// version.
    judged: Mutex<HashMap<(InputKind, String), String>>,
}

impl BucketCatalog {
    /// Must be called inside the tokio runtime, whose handle runs every request.
    pub(crate) fn new(bucket: Arc<Bucket>) -> BucketCatalog {
        BucketCatalog { bucket, runtime: tokio::runtime::Handle::current(), judged: Mutex::default() }
    }

    pub(super) fn wait<T>(&self, request: impl Future<Output = T>) -> T {
        self.runtime.block_on(request)
    }

    fn input_key(&self, kind: InputKind, name: &str) -> String {
        self.bucket.key(kind.label(), name)
    }

    fn judge(&self, kind: InputKind, name: &str, head: &Head) {
        if let Some(etag) = &head.etag {
            self.judged.lock().insert((kind, name.to_owned()), etag.clone());
        }
    }

    /// The first name in `rejeitados/` no earlier rejection holds — or the one that holds this
    /// very version already (same ETag: a move cut short between its copy and its delete, by a
    /// kill or a store that failed), so a rejection done twice leaves one copy; true then.
    async fn rejected_name(&self, name: &str, etag: &str) -> Result<(String, bool), StoreError> {
        for candidate in reject::names_for(name) {
            match self.bucket.head(&self.bucket.key(REJECTED, &candidate)).await {
                Err(StoreError::NotFound) => return Ok((candidate, false)),
                Ok(head) if !etag.is_empty() && head.etag.as_deref() == Some(etag) => return Ok((candidate, true)),
                Ok(_) => continue,
                Err(e) => return Err(e),
            }
        }
        unreachable!("names_for never ends")
    }

    async fn move_aside(&self, kind: InputKind, name: &str, rejection: &Rejection) -> Result<String, RejectFailure> {
        let source = self.input_key(kind, name);
        let judged = self.judged.lock().remove(&(kind, name.to_owned()));
        let etag = match judged {
            Some(etag) => etag,
            None => match self.bucket.head(&source).await {
                Ok(head) => head.etag.unwrap_or_default(),
                Err(StoreError::NotFound) => return Err(RejectFailure::Gone),
                Err(e) => return Err(RejectFailure::Failed(e.into())),
            },
        };
        let (dest, copied) = self.rejected_name(name, &etag).await.map_err(|e| RejectFailure::Failed(e.into()))?;
        let (dest_key, note_key) = (self.bucket.key(REJECTED, &dest), self.bucket.key(REJECTED, &format!("{dest}{NOTE_SUFFIX}")));
        let note = reject::note(&format!("s3://{}/{source}", self.bucket.settings.bucket), rejection);
        self.bucket.put(&note_key, note.into_bytes(), None, false).await.map_err(|e| RejectFailure::Failed(e.into()))?;
        let undo = || async {
            let _ = self.bucket.delete(&dest_key, None).await;
            let _ = self.bucket.delete(&note_key, None).await;
        };
        let copy = async {
            match copied {
                true => Ok(()),
                false => self.bucket.copy(&source, &dest_key).await,
            }
        };
        match copy.await {
            Ok(()) => {}
            Err(StoreError::NotFound) => {
                undo().await;
                return Err(RejectFailure::Gone);
            }
            Err(e) => {
                undo().await;
                return Err(RejectFailure::Failed(e.into()));
            }
        }
        let condition = (!etag.is_empty()).then_some(etag.as_str());
        match self.bucket.delete(&source, condition).await {
            Ok(()) | Err(StoreError::NotFound) => Ok(format!("s3://{}/{dest_key}", self.bucket.settings.bucket)),
            Err(StoreError::Precondition) => {
                undo().await;
                Err(RejectFailure::Changed)
            }
            Err(e) => {
                undo().await;
                Err(RejectFailure::Failed(e.into()))
            }
        }
    }
}

/// A version's stamp: size, `LastModified` and a hash of the ETag in place of the inode. The time
/// is cut to whole seconds, its precision in a HEAD's `Last-Modified` (a listing gives
/// milliseconds), so a listing and a HEAD of one version agree.
pub(crate) fn stamp(size: u64, modified: chrono::DateTime<chrono::Utc>, etag: Option<&str>) -> FileStamp {
    let tag = blake3::hash(etag.unwrap_or_default().as_bytes());
    let ino = u64::from_le_bytes(tag.as_bytes()[..8].try_into().expect("8 bytes"));
    FileStamp { len: size, mtime_ns: modified.timestamp().saturating_mul(1_000_000_000), ino }
}

/// Whether a name in an input folder is an input: directly in it, a name thumbgen may read.
pub(crate) fn is_input(name: &str) -> bool {
    !name.contains('/') && naming::is_input_name(name) && object_store::path::Path::parse(name).is_ok()
}

/// The longest prefix every name shares (cut back to a character boundary).
fn common_prefix<'a>(names: &[&'a str]) -> &'a str {
    let Some(first) = names.first() else { return "" };
    let mut len = first.len();
    for name in &names[1..] {
        len = first.bytes().zip(name.bytes()).take(len).take_while(|(a, b)| a == b).count();
    }
    while !first.is_char_boundary(len) {
        len -= 1;
    }
    &first[..len]
}

fn unreachable_store(what: String, e: StoreError) -> Transient {
    Transient::new(Cause::Read, what).because(e)
}

impl Catalog for BucketCatalog {
    fn location(&self) -> String {
        self.bucket.url()
    }

    fn inputs(&self, kind: InputKind) -> Result<Vec<(String, FileStamp)>, Transient> {
        crate::catalog::Browse::files(self, crate::catalog::Folder::Input(kind))
    }

    fn look(&self, kind: InputKind, name: &str, limits: &Limits) -> Result<FileStamp, JobError> {
        let key = self.input_key(kind, name);
        let head = match self.wait(self.bucket.head(&key)) {
            Ok(head) => head,
            Err(StoreError::NotFound) => return Err(JobError::Vanished),
            Err(e) => return Err(unreachable_store(format!("cannot look at {key}"), e).into()),
        };
        self.judge(kind, name, &head);
        if head.size == 0 {
            return Err(validate::empty().into());
        }
        if head.size > limits.max_file_size {
            return Err(validate::too_large(head.size, limits.max_file_size).into());
        }
        Ok(stamp(head.size, head.modified, head.etag.as_deref()))
    }

    fn read(&self, kind: InputKind, name: &str, limits: &Limits) -> Result<InputFile, JobError> {
        let key = self.input_key(kind, name);
        let (bytes, head) = match self.wait(self.bucket.get(&key, limits.max_file_size)) {
            Ok(got) => got,
            Err(StoreError::NotFound) => return Err(JobError::Vanished),
            Err(e) => return Err(unreachable_store(format!("cannot read {key}"), e).into()),
        };
        self.judge(kind, name, &head);
        let Some(bytes) = bytes else {
            return Err(validate::too_large(head.size, limits.max_file_size).into());
        };
        if bytes.is_empty() {
            return Err(validate::empty().into());
        }
        validate::check_bytes(bytes, stamp(head.size, head.modified, head.etag.as_deref()), limits)
    }

    fn holds(&self, kind: InputKind, name: &str) -> bool {
        // Only a clear "not there" counts as gone: a store that fails keeps the name held.
        !matches!(self.wait(self.bucket.head(&self.input_key(kind, name))), Err(StoreError::NotFound))
    }

    fn still_being_written(&self, _kind: InputKind, _name: &str) -> bool {
        false
    }

    fn outputs_exist(&self, files: &[&str]) -> Result<Vec<bool>, Transient> {
        let common = common_prefix(files);
        let listed = self
            .wait(self.bucket.list_starting(OUTPUT, common, None))
            .map_err(|e| Transient::new(Cause::Storage, format!("cannot list {}", self.bucket.key(OUTPUT, common))).because(e))?;
        let present: std::collections::HashSet<&str> = listed.iter().map(|l| l.name.as_str()).collect();
        Ok(files.iter().map(|f| present.contains(f)).collect())
    }

    fn output_key(&self, file: &str) -> Result<Option<String>, Transient> {
        let key = self.bucket.key(OUTPUT, file);
        match self.wait(self.bucket.head(&key)) {
            Ok(head) => Ok(head.job),
            Err(StoreError::NotFound) => Ok(None),
            Err(e) => Err(Transient::new(Cause::Storage, format!("cannot look at {key}")).because(e)),
        }
    }

    fn write_output(&self, file: &str, bytes: Vec<u8>, key: &str) -> io::Result<()> {
        let object = self.bucket.key(OUTPUT, file);
        self.wait(self.bucket.put(&object, bytes, Some(key), false)).map_err(io::Error::from)
    }

    fn outputs_written(&self) {}

    fn remove_output(&self, file: &str) -> bool {
        matches!(self.wait(self.bucket.delete(&self.bucket.key(OUTPUT, file), None)), Ok(()) | Err(StoreError::NotFound))
    }

    fn reject(&self, kind: InputKind, name: &str, rejection: &Rejection) -> Result<String, RejectFailure> {
        self.wait(self.move_aside(kind, name, rejection))
    }
}

#[cfg(test)]
mod tests {
    use super::common_prefix;

    #[test]
    fn the_outputs_of_a_product_are_listed_by_their_common_prefix() {
        assert_eq!(common_prefix(&["foto.jpg", "foto__wood.jpg", "foto__wood__web.webp"]), "foto");
        assert_eq!(common_prefix(&["café.jpg", "cafè.jpg"]), "caf");
        assert_eq!(common_prefix(&["one.jpg"]), "one.jpg");
        assert_eq!(common_prefix(&[]), "");
    }
}
