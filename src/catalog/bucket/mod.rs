//! The catalog in an S3-compatible bucket (`STORAGE_URL=s3://BUCKET[/PREFIX]`): the client every
//! part shares. Each request is counted and timed (`thumbgen_storage_requests_total{op,outcome}`,
//! `thumbgen_storage_request_duration_seconds{op}`), retried by the client with backoff, and its
//! outcome feeds the store's health (`storage` under `dependencies`; `/health/ready` answers 503
//! while the store fails).
//!
//! Objects are named by their exact keys (never re-encoded), listed by [`list`] (which survives
//! keys no path type could hold), and read, written, copied and deleted through `object_store`;
//! a conditional delete (`If-Match`) is a presigned request, as `object_store` has none.
//!
//! One concept per file: [`client`] (the `object_store` client from the settings), [`list`]
//! (ListObjectsV2 pages), [`catalog`] (the [`crate::catalog::Catalog`] over a bucket), [`browse`]
//! and [`upload`] (what the web console does with it), [`cutouts`] (the cut-out cache under
//! `.thumbgen/`), [`health`] (what the requests' outcomes say).

mod browse;
mod catalog;
mod client;
mod cutouts;
mod health;
mod list;
mod objects;
mod presigned;
mod upload;

pub(crate) use catalog::{is_input, stamp, BucketCatalog, REJECTED};
pub(crate) use cutouts::BucketCutouts;
pub(crate) use list::Listed;

use crate::config::S3Settings;
use crate::error::StartError;
use crate::metrics::StorageMetrics;
use chrono::{DateTime, Utc};
use health::Seen;
use objects::{classify, content_type, head_of, parse};
use presigned::{send_presigned, unanswered};
use object_store::aws::AmazonS3;
use object_store::path::Path as Key;
use object_store::signer::{HeaderValue, Method, Signer, SignedUrlOptions};
use object_store::{Attribute, Attributes, GetOptions, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The metadata key under which an output carries the job key that made it.
const JOB_KEY: &str = "thumbgen-job";
/// How long a presigned request (listing, conditional delete) stays valid.
const PRESIGN_FOR: Duration = Duration::from_secs(120);

/// What a HEAD or GET says of an object.
#[derive(Clone, Debug)]
pub(crate) struct Head {
    pub size: u64,
    pub modified: DateTime<Utc>,
    pub etag: Option<String>,
    /// The job key stored with an output.
    pub job: Option<String>,
}

/// A request that failed: what it was, and whether the store said "not there" or "changed".
#[derive(Debug)]
pub(crate) enum StoreError {
    NotFound,
    /// A condition (`If-Match`, `If-None-Match`) did not hold.
    Precondition,
    /// The store answered it is overloaded or failing (429, 5xx), retries included.
    Unavailable { what: String, source: crate::error::Source },
    Failed { what: String, source: crate::error::Source },
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self {
            StoreError::NotFound => f.write_str("no such object"),
            StoreError::Precondition => f.write_str("the object changed meanwhile (a condition did not hold)"),
            StoreError::Unavailable { what, source } | StoreError::Failed { what, source } => {
                write!(f, "{what}: {source}")
            }
        }
    }
}

impl std::error::Error for StoreError {}

impl StoreError {
    /// Whether `e` is a request the store did not answer well (down, overloaded, failing): one
    /// that may succeed later, unlike a missing object or a failed condition.
    pub(crate) fn is_unanswered(e: &std::io::Error) -> bool {
        let inner = e.get_ref().and_then(|inner| inner.downcast_ref::<StoreError>());
        matches!(inner, Some(StoreError::Unavailable { .. } | StoreError::Failed { .. }))
    }
}

impl From<StoreError> for std::io::Error {
    fn from(e: StoreError) -> std::io::Error {
        match e {
            StoreError::NotFound => std::io::Error::new(std::io::ErrorKind::NotFound, e),
            other => std::io::Error::other(other),
        }
    }
}

/// One bucket (and prefix) and the client that reaches it.
pub(crate) struct Bucket {
    pub(super) store: AmazonS3,
    http: reqwest::Client,
    settings: S3Settings,
    metrics: StorageMetrics,
    seen: Seen,
}

impl Bucket {
    /// Connects (lazily: nothing is sent until [`Bucket::probe`]).
    pub(crate) fn open(settings: S3Settings, metrics: StorageMetrics) -> Result<Arc<Bucket>, StartError> {
        let store = client::client(&settings)?;
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| StartError::new("cannot set up the HTTP client for the bucket").because(e))?;
        Ok(Arc::new(Bucket { store, http, settings, metrics, seen: Seen::default() }))
    }

    /// `s3://bucket/prefix`, for logs.
    pub(crate) fn url(&self) -> String {
        self.settings.url()
    }

    /// The storage series, which the lister also observes.
    pub(crate) fn metrics(&self) -> &StorageMetrics {
        &self.metrics
    }

    /// The bucket's name.
    pub(crate) fn name(&self) -> &str {
        &self.settings.bucket
    }

    /// `s3://bucket/prefix/folder`, for messages.
    pub(crate) fn key_url(&self, folder: &str) -> String {
        format!("s3://{}/{}{folder}", self.settings.bucket, self.settings.prefix)
    }

    /// The key of `name` in catalog folder `folder` (`produtos`, `.thumbgen/cutouts`, …).
    pub(crate) fn key(&self, folder: &str, name: &str) -> String {
        format!("{}{folder}/{name}", self.settings.prefix)
    }

    /// Lists the folder's keys after `start_after` (a name in it), every page.
    pub(crate) async fn list(&self, folder: &str, start_after: Option<&str>) -> Result<Vec<Listed>, StoreError> {
        self.list_starting(folder, "", start_after).await
    }

    /// Lists the folder's names that start with `starting` (after `start_after`), every page.
    pub(crate) async fn list_starting(
        &self,
        folder: &str,
        starting: &str,
        start_after: Option<&str>,
    ) -> Result<Vec<Listed>, StoreError> {
        let folder_prefix = format!("{}{folder}/", self.settings.prefix);
        let after = start_after.map(|name| format!("{folder_prefix}{name}"));
        let started = Instant::now();
        let result = list::all_pages(self, &folder_prefix, starting, after.as_deref()).await;
        self.count("list", started, &result);
        result
    }

    pub(crate) async fn head(&self, key: &str) -> Result<Head, StoreError> {
        let started = Instant::now();
        let result = async {
            let path = parse(key)?;
            let got = self.store.get_opts(&path, GetOptions { head: true, ..GetOptions::default() }).await;
            let got = got.map_err(|e| classify("HEAD", key, e))?;
            Ok(head_of(&got.meta, &got.attributes))
        }
        .await;
        self.count("head", started, &result);
        result
    }

    /// The object's bytes, unless it is larger than `max` bytes (then only its head, unread).
    pub(crate) async fn get(&self, key: &str, max: u64) -> Result<(Option<Vec<u8>>, Head), StoreError> {
        use futures_util::StreamExt;
        let started = Instant::now();
        let result = async {
            let path = parse(key)?;
            let got = self.store.get_opts(&path, GetOptions::default()).await.map_err(|e| classify("GET", key, e))?;
            let head = head_of(&got.meta, &got.attributes);
            if head.size > max {
                return Ok((None, head));
            }
            let mut bytes = Vec::with_capacity(head.size as usize);
            let mut stream = got.into_stream();
            while let Some(chunk) = stream.next().await {
                bytes.extend_from_slice(&chunk.map_err(|e| classify("GET", key, e))?);
                if bytes.len() as u64 > max {
                    return Ok((None, Head { size: bytes.len() as u64, ..head }));
                }
            }
            Ok((Some(bytes), head))
        }
        .await;
        self.count("get", started, &result);
        result
    }

    /// Writes an object whole; `create_only` refuses to replace one (`If-None-Match: *`).
    pub(crate) async fn put(
        &self,
        key: &str,
        bytes: Vec<u8>,
        job: Option<&str>,
        create_only: bool,
    ) -> Result<(), StoreError> {
        let started = Instant::now();
        let result = async {
            let path = parse(key)?;
            let mut attributes = Attributes::new();
            attributes.insert(Attribute::ContentType, content_type(key).into());
            if let Some(job) = job {
                attributes.insert(Attribute::Metadata(JOB_KEY.into()), job.to_owned().into());
            }
            let mode = if create_only { PutMode::Create } else { PutMode::Overwrite };
            let options = PutOptions { mode, attributes, ..PutOptions::default() };
            self.store.put_opts(&path, PutPayload::from(bytes), options).await.map_err(|e| classify("PUT", key, e))?;
            Ok(())
        }
        .await;
        self.count("put", started, &result);
        result
    }

    pub(crate) async fn copy(&self, from: &str, to: &str) -> Result<(), StoreError> {
        let started = Instant::now();
        let result = async {
            let (source, dest) = (parse(from)?, parse(to)?);
            self.store.copy(&source, &dest).await.map_err(|e| classify("COPY", from, e))
        }
        .await;
        self.count("copy", started, &result);
        result
    }

    /// Deletes an object; with `etag`, only while it is still that version (`If-Match`).
    pub(crate) async fn delete(&self, key: &str, etag: Option<&str>) -> Result<(), StoreError> {
        let started = Instant::now();
        let result = async {
            let path = parse(key)?;
            match etag {
                None => self.store.delete(&path).await.map_err(|e| classify("DELETE", key, e)),
                Some(etag) => self.delete_if_match(&path, key, etag).await,
            }
        }
        .await;
        self.count("delete", started, &result);
        result
    }

    async fn delete_if_match(&self, path: &Key, key: &str, etag: &str) -> Result<(), StoreError> {
        let failed = |source: crate::error::Source| StoreError::Failed { what: format!("DELETE {key}"), source };
        let value = HeaderValue::from_str(etag).map_err(|e| failed(e.into()))?;
        let options = SignedUrlOptions::new().with_signed_header(reqwest::header::IF_MATCH, value.clone());
        let url = self
            .store
            .signed_url_opts(Method::DELETE, path, PRESIGN_FOR, &options)
            .await
            .map_err(|e| failed(e.into()))?;
        let request = || self.http.delete(url.as_str()).header(reqwest::header::IF_MATCH, value.clone());
        let response = send_presigned(request).await.map_err(|e| failed(e.into()))?;
        match response.status().as_u16() {
            200..=299 => Ok(()),
            404 => Err(StoreError::NotFound),
            412 => Err(StoreError::Precondition),
            status => {
                let body = response.text().await.unwrap_or_default();
                let source = format!("status {status}: {}", body.chars().take(300).collect::<String>()).into();
                Err(unanswered(status, format!("DELETE {key}"), source))
            }
        }
    }

    /// A presigned GET of the bucket itself with `query` (what [`list`] sends).
    async fn signed_bucket_url(&self, query: Vec<(String, String)>) -> Result<String, StoreError> {
        let options = SignedUrlOptions::new().with_query(query);
        let url = self.store.signed_url_opts(Method::GET, &Key::default(), PRESIGN_FOR, &options).await;
        url.map(|u| u.to_string())
            .map_err(|e| StoreError::Failed { what: "cannot sign the listing request".into(), source: e.into() })
    }

    /// Checks at start that the bucket answers with these credentials: the error names the bucket,
    /// the endpoint and what to check.
    /// A store that answers it is overloaded (429, 5xx) is there: the start goes on, and work
    /// waits until it answers.
    pub(crate) async fn probe(&self) -> Result<(), StartError> {
        match self.list_page_for_probe().await {
            Ok(()) => Ok(()),
            Err(e @ StoreError::Unavailable { .. }) => {
                tracing::warn!("{} is overloaded or failing at start ({e}); starting, work waits for it", self.url());
                Ok(())
            }
            Err(e) => Err(StartError::new(format!(
                "cannot list {} at {}",
                self.url(),
                self.settings.endpoint_label()
            ))
            .because(e)
            .advice(
                "Check STORAGE_URL (s3://BUCKET[/PREFIX]: does the bucket exist?), AWS_ENDPOINT_URL (the store's \
                 address, for a store other than AWS) and the credentials (AWS_ACCESS_KEY_ID and \
                 AWS_SECRET_ACCESS_KEY, or the role the node runs with)",
            )),
        }
    }

    async fn list_page_for_probe(&self) -> Result<(), StoreError> {
        let started = Instant::now();
        let result = list::first_page(self, &self.settings.prefix).await;
        self.count("list", started, &result);
        result
    }

    pub(super) fn count<T>(&self, op: &str, started: Instant, result: &Result<T, StoreError>) {
        let outcome = match result {
            Ok(_) => "ok",
            Err(StoreError::NotFound) => "not_found",
            Err(StoreError::Precondition) => "precondition_failed",
            Err(StoreError::Unavailable { .. } | StoreError::Failed { .. }) => "error",
        };
        self.metrics.requests.with_label_values(&[op, outcome]).inc();
        self.metrics.duration.with_label_values(&[op]).observe(started.elapsed().as_secs_f64());
        match result {
            Err(e @ (StoreError::Unavailable { .. } | StoreError::Failed { .. })) => self.seen.failed(e.to_string()),
            _ => self.seen.answered(),
        }
    }
}
