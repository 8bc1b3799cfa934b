//! An upload into a bucket: pieces gathered in memory up to [`PART`]; a file of at most that is
//! one PUT (`If-None-Match: *` unless it may replace: a name taken meanwhile is refused), a
//! larger one becomes a multipart upload of parts of exactly [`PART`] (the last one shorter),
//! completed at the end and aborted when the upload breaks off. A node killed mid-upload leaves an incomplete multipart
//! upload, which no listing shows and the bucket's lifecycle rule removes (README, "Object
//! storage"). A multipart upload that may not replace checks the name before it starts only.

use super::objects::{classify, content_type, parse};
use super::{Bucket, StoreError};
use crate::catalog::browse::Upload;
use object_store::{Attribute, Attributes, MultipartUpload, ObjectStore, PutMultipartOptions, PutPayload};
use std::io;
use std::sync::Arc;
use std::time::Instant;

/// Size of each part of a multipart upload (S3 wants at least 5 MiB but for the last).
const PART: usize = 8 * 1024 * 1024;

pub(super) struct BucketUpload {
    bucket: Arc<Bucket>,
    runtime: tokio::runtime::Handle,
    key: String,
    replace: bool,
    pending: Vec<u8>,
    multipart: Option<Box<dyn MultipartUpload>>,
}

impl BucketUpload {
    pub(super) fn new(bucket: Arc<Bucket>, runtime: tokio::runtime::Handle, key: String, replace: bool) -> Self {
        BucketUpload { bucket, runtime, key, replace, pending: Vec::new(), multipart: None }
    }

    /// Sends `part` as the next part, starting the multipart upload first if need be.
    fn send_part(&mut self, part: Vec<u8>) -> Result<(), StoreError> {
        let bucket = self.bucket.clone();
        if self.multipart.is_none() {
            let started = Instant::now();
            let result = self.runtime.block_on(async {
                let path = parse(&self.key)?;
                let mut attributes = Attributes::new();
                attributes.insert(Attribute::ContentType, content_type(&self.key).into());
                let options = PutMultipartOptions { attributes, ..PutMultipartOptions::default() };
                bucket.store.put_multipart_opts(&path, options).await.map_err(|e| classify("CreateMultipartUpload", &self.key, e))
            });
            bucket.count("create_multipart", started, &result);
            self.multipart = Some(result?);
        }
        let payload = PutPayload::from(part);
        let upload = self.multipart.as_mut().expect("started above");
        let started = Instant::now();
        let result = self.runtime.block_on(upload.put_part(payload)).map_err(|e| classify("UploadPart", &self.key, e));
        bucket.count("upload_part", started, &result);
        result
    }
}

impl Upload for BucketUpload {
    fn write(&mut self, piece: &[u8]) -> io::Result<()> {
        self.pending.extend_from_slice(piece);
        while self.pending.len() > PART {
            let rest = self.pending.split_off(PART);
            let part = std::mem::replace(&mut self.pending, rest);
            self.send_part(part)?;
        }
        Ok(())
    }

    fn commit(mut self: Box<Self>) -> io::Result<()> {
        if self.multipart.is_none() {
            let bytes = std::mem::take(&mut self.pending);
            return match self.runtime.block_on(self.bucket.put(&self.key, bytes, None, !self.replace)) {
                Err(StoreError::Precondition) => {
                    Err(io::Error::new(io::ErrorKind::AlreadyExists, format!("{} is taken", self.key)))
                }
                other => Ok(other?),
            };
        }
        if !self.pending.is_empty() {
            let last = std::mem::take(&mut self.pending);
            self.send_part(last)?;
        }
        let mut upload = self.multipart.take().expect("checked above");
        let started = Instant::now();
        let result = self.runtime.block_on(upload.complete()).map_err(|e| classify("CompleteMultipartUpload", &self.key, e));
        self.bucket.count("complete_multipart", started, &result);
        if result.is_err() {
            self.multipart = Some(upload);
        }
        result.map(|_| ()).map_err(io::Error::from)
    }
}

impl Drop for BucketUpload {
    fn drop(&mut self) {
        if let Some(mut upload) = self.multipart.take() {
            let started = Instant::now();
            let result = self.runtime.block_on(upload.abort()).map_err(|e| classify("AbortMultipartUpload", &self.key, e));
            self.bucket.count("abort_multipart", started, &result);
            if let Err(e) = result {
                tracing::warn!("an upload broken off left an incomplete multipart upload ({e}); the bucket's lifecycle rule removes it");
            }
        }
    }
}
