//! The console's view of a bucket ([`Browse`]): folders listed, files read with a size limit,
//! rejected files put back by a server-side copy (never over an input already there: the name is
//! looked at first) and deleted with their notes. Uploads are in [`super::upload`].

use super::catalog::{OUTPUT, REJECTED};
use super::upload::BucketUpload;
use super::{BucketCatalog, StoreError};
use crate::catalog::browse::{plain, Browse, Folder, Upload};
use crate::disk::FileStamp;
use crate::error::{Cause, Transient};
use crate::job::InputKind;
use crate::reject::NOTE_SUFFIX;
use std::io;
use std::path::PathBuf;

fn folder_name(folder: Folder) -> &'static str {
    match folder {
        Folder::Input(kind) => kind.label(),
        Folder::Output => OUTPUT,
        Folder::Rejected => REJECTED,
    }
}

impl Browse for BucketCatalog {
    fn folder_stamp(&self, _folder: Folder) -> Option<FileStamp> {
        None
    }

    fn files(&self, folder: Folder) -> Result<Vec<(String, FileStamp)>, Transient> {
        let name = folder_name(folder);
        let listed = self.wait(self.bucket.list(name, None)).map_err(|e| {
            Transient::new(Cause::Storage, format!("cannot list {}", self.bucket.key(name, ""))).because(e)
        })?;
        Ok(listed
            .into_iter()
            .filter(|l| super::is_input(&l.name))
            .map(|l| {
                let stamp = super::stamp(l.size, l.modified, l.etag.as_deref());
                (l.name, stamp)
            })
            .collect())
    }

    fn read_file(&self, folder: Folder, name: &str, limit: u64) -> io::Result<(Vec<u8>, FileStamp)> {
        let key = self.bucket.key(folder_name(folder), plain(name)?);
        let (bytes, head) = self.wait(self.bucket.get(&key, limit))?;
        let bytes = bytes.ok_or_else(|| io::Error::new(io::ErrorKind::FileTooLarge, format!("{key} is too large")))?;
        Ok((bytes, super::stamp(head.size, head.modified, head.etag.as_deref())))
    }

    fn input_location(&self, kind: InputKind) -> PathBuf {
        PathBuf::from(self.bucket.key_url(kind.label()))
    }

    fn free_bytes(&self) -> Option<u64> {
        None
    }

    fn upload(&self, kind: InputKind, name: &str, replace: bool) -> io::Result<Box<dyn Upload>> {
        let key = self.bucket.key(kind.label(), plain(name)?);
        if !replace {
            self.refuse_taken(&key)?;
        }
        Ok(Box::new(BucketUpload::new(self.bucket.clone(), self.runtime.clone(), key, replace)))
    }

    fn restore(&self, name: &str, kind: InputKind, original: &str) -> io::Result<()> {
        let from = self.bucket.key(REJECTED, plain(name)?);
        let to = self.bucket.key(kind.label(), plain(original)?);
        self.refuse_taken(&to)?;
        self.wait(self.bucket.copy(&from, &to))?;
        // It is back: a copy left in `rejeitados/` is only clutter, never a reason to fail.
        if let Err(e) = self.delete_rejected(name) {
            tracing::warn!("{to} is back, but its rejected copy stays in {REJECTED}/: {e}");
        }
        Ok(())
    }

    fn delete_rejected(&self, name: &str) -> io::Result<()> {
        for key in [self.bucket.key(REJECTED, plain(name)?), self.bucket.key(REJECTED, &format!("{name}{NOTE_SUFFIX}"))] {
            match self.wait(self.bucket.delete(&key, None)) {
                Ok(()) | Err(StoreError::NotFound) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
}

impl BucketCatalog {
    /// `AlreadyExists` when `key` holds an object (a store that fails says so too).
    fn refuse_taken(&self, key: &str) -> io::Result<()> {
        match self.wait(self.bucket.head(key)) {
            Err(StoreError::NotFound) => Ok(()),
            Ok(_) => Err(io::Error::new(io::ErrorKind::AlreadyExists, format!("{key} is taken"))),
            Err(e) => Err(e.into()),
        }
    }
}
