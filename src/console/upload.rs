//! Uploads: `POST /api/upload?folder=produtos|backgrounds[&replace=true]`, multipart, one field
//! `file` per file (repeatable); 201 `{accepted: [names], folder}`.
//!
//! Each file is streamed into the catalog ([`crate::catalog::Upload`]) and appears under its name
//! only when complete: on disk a hidden `.<name>.<node>.<pid>.<n>.upload.part` (the watcher
//! ignores hidden names) flushed and renamed, so the watcher takes it like any file renamed in; in
//! a bucket one PUT, or a multipart upload completed at the end, and the job is queued at once (no
//! watcher sees a bucket). Its size is counted while it streams: past `MAX_FILE_SIZE` the answer
//! is 413 and nothing is left; an interrupted or stalled upload leaves nothing either (the partial
//! file is deleted or the multipart upload aborted when the request ends, however it ends;
//! leftovers of a killed daemon are removed at start by `App`, or by the bucket's lifecycle rule). Names are sanitised as output stems are (`naming::upload_name`).
//! A name already in the folder is refused with 409 unless `replace=true` asks to replace it:
//! an upload never takes a name silently, and a seller who sends `tenis.jpg` again nearly always
//! means the same product, which a renamed copy (`tenis (2).jpg`) would duplicate in the catalog.
//! Files of one request are taken in order; when one is refused, the ones before it stay
//! (listed in the error's `accepted`). Limits: [`MAX_FILES`] files per request, [`CONCURRENT`]
//! requests at once (more wait), and [`RATE`] files a second on average with bursts of [`BURST`]
//! (beyond: 429 with `Retry-After`).

use super::problem::Problem;
use super::Console;
use crate::catalog::Browse;
use crate::job::{InputKind, Job};
use crate::naming;
use crate::sync::Mutex;
use axum::body::Bytes;
use axum::extract::multipart::{Field, MultipartError, MultipartRejection};
use axum::extract::{Multipart, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, Semaphore};

/// Files per request at most.
pub(super) const MAX_FILES: usize = 100;
/// Upload requests handled at once; more wait their turn.
const CONCURRENT: usize = 4;
/// Files accepted per second on average, and in one burst.
const RATE: f64 = 5.0;
const BURST: f64 = 200.0;
/// An upload that sends nothing for this long is dropped.
const IDLE: Duration = Duration::from_secs(60);
/// Pieces of a file on their way to the catalog's writer at most.
const IN_FLIGHT: usize = 8;

/// How much uploading is allowed.
pub(super) struct Limits {
    turns: Arc<Semaphore>,
    /// Tokens left and when they were counted.
    bucket: Mutex<(f64, Instant)>,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits { turns: Arc::new(Semaphore::new(CONCURRENT)), bucket: Mutex::new((BURST, Instant::now())) }
    }
}

impl Limits {
    /// Takes one file's token, or says how many seconds until one is free.
    fn take(&self) -> Result<(), Problem> {
        let mut bucket = self.bucket.lock();
        let (tokens, at) = *bucket;
        let tokens = (tokens + at.elapsed().as_secs_f64() * RATE).min(BURST);
        if tokens < 1.0 {
            *bucket = (tokens, Instant::now());
            let retry_after = ((1.0 - tokens) / RATE).ceil() as u64;
            return Err(Problem::RateLimited { error: "too many files uploaded".into(), retry_after });
        }
        *bucket = (tokens - 1.0, Instant::now());
        Ok(())
    }
}

#[derive(serde::Deserialize)]
pub(super) struct UploadQuery {
    folder: String,
    #[serde(default)]
    replace: bool,
}

pub(super) async fn upload(
    State(console): State<Arc<Console>>,
    Query(query): Query<UploadQuery>,
    multipart: Result<Multipart, MultipartRejection>,
) -> Response {
    let Some(kind) = InputKind::ALL.into_iter().find(|k| k.label() == query.folder) else {
        return Problem::BadRequest(format!("folder must be produtos or backgrounds, not {}", query.folder))
            .into_response();
    };
    let Ok(multipart) = multipart else {
        return Problem::BadRequest("send multipart/form-data with one field named file per file".into())
            .into_response();
    };
    let Ok(_turn) = console.uploads.turns.clone().acquire_owned().await else {
        return Problem::Unavailable("stopping".into()).into_response();
    };
    let mut accepted = Vec::new();
    let received = tokio::select! {
        result = receive(&console, kind, query.replace, multipart, &mut accepted) => result,
        _ = console.deps.shutdown.stopped() => Err(Problem::Unavailable("the daemon is stopping".into())),
    };
    match received {
        Ok(()) if accepted.is_empty() => {
            Problem::BadRequest("no field named file in the upload".into()).into_response()
        }
        Ok(()) => (StatusCode::CREATED, Json(json!({ "accepted": accepted, "folder": kind.label() }))).into_response(),
        Err(problem) => problem.respond_with(json!({ "accepted": accepted })),
    }
}

/// Takes each `file` field in turn into `kind`'s folder, adding its name to `accepted`.
async fn receive(
    console: &Console,
    kind: InputKind,
    replace: bool,
    mut multipart: Multipart,
    accepted: &mut Vec<String>,
) -> Result<(), Problem> {
    let max = console.settings.limits.max_file_size;
    let mut count = 0;
    while let Some(mut field) = idle(multipart.next_field()).await? {
        if field.name() != Some("file") {
            continue;
        }
        count += 1;
        if count > MAX_FILES {
            return Err(Problem::TooLarge {
                error: format!("more than {MAX_FILES} files in one request"),
                advice: "Send them in several requests.".into(),
            });
        }
        let raw = field.file_name().unwrap_or_default().to_owned();
        let name = naming::upload_name(&raw)
            .ok_or_else(|| Problem::BadRequest(format!("{raw} has a temporary file's name; rename it")))?;
        console.uploads.take()?;
        let (pieces, from_request) = mpsc::channel(IN_FLIGHT);
        let (catalog, owned) = (console.deps.catalog.clone(), name.clone());
        let writer = tokio::task::spawn_blocking(move || write(&*catalog, kind, &owned, replace, from_request));
        let streamed = stream_into(&mut field, &pieces, &name, max).await;
        if streamed.is_ok() {
            let _ = pieces.send(Piece::End).await;
        }
        // Without `End` the writer leaves nothing; its answer is awaited either way, so nothing
        // of a refused file is left once the request is answered.
        drop(pieces);
        let written = writer.await.map_err(|e| Problem::Internal(e.to_string()))?;
        streamed?;
        written.map_err(|e| match e.kind() {
            io::ErrorKind::AlreadyExists => taken(kind, &name),
            _ => Problem::Io(e),
        })?;
        console.arrived(kind, &name);
        accepted.push(name);
    }
    Ok(())
}

/// What reaches the catalog's writer: the file's pieces, then `End` when it is complete.
enum Piece {
    Data(Bytes),
    End,
}

/// Writes one file into the catalog from `pieces` (blocking); committed only on `End`.
fn write(catalog: &dyn Browse, kind: InputKind, name: &str, replace: bool, mut pieces: mpsc::Receiver<Piece>) -> io::Result<()> {
    let mut upload = catalog.upload(kind, name, replace)?;
    while let Some(piece) = pieces.blocking_recv() {
        match piece {
            Piece::Data(bytes) => upload.write(&bytes)?,
            Piece::End => return upload.commit(),
        }
    }
    Err(io::Error::new(io::ErrorKind::Interrupted, "the upload ended before the file did"))
}

/// Sends one field to the catalog's writer, refusing it once it passes `max` bytes. A writer that
/// stopped (a failed write) ends the field; its error is the answer.
async fn stream_into(field: &mut Field<'_>, pieces: &mpsc::Sender<Piece>, name: &str, max: u64) -> Result<(), Problem> {
    let mut size = 0u64;
    while let Some(chunk) = idle(field.chunk()).await? {
        size += chunk.len() as u64;
        if size > max {
            return Err(Problem::TooLarge {
                error: format!("{name} is larger than the {max}-byte limit (MAX_FILE_SIZE)"),
                advice: "Export the photo smaller (e.g. JPEG quality 90, at most 4000 px) or raise MAX_FILE_SIZE."
                    .into(),
            });
        }
        if pieces.send(Piece::Data(chunk)).await.is_err() {
            break;
        }
    }
    Ok(())
}

impl Console {
    /// Queues an input the console put into a catalog no watcher sees (a bucket), as the
    /// watcher would.
    pub(super) fn arrived(&self, kind: InputKind, name: &str) {
        if self.deps.queue_arrivals {
            self.deps.metrics.files_detected.with_label_values(&[kind.label()]).inc();
            self.deps.queue.push(Job::new(kind, name));
        }
        match kind {
            InputKind::Product => self.products.forget(),
            InputKind::Background => self.backgrounds.forget(),
        }
    }
}

fn taken(kind: InputKind, name: &str) -> Problem {
    Problem::Conflict {
        error: format!("{}/ already has a file named {name}", kind.label()),
        advice: "Rename the file, delete the old one, or send it again with replace=true to replace it.".into(),
    }
}

/// Waits for the next piece of the upload, giving up when the client stalls or breaks off.
async fn idle<T>(next: impl Future<Output = Result<T, MultipartError>>) -> Result<T, Problem> {
    match tokio::time::timeout(IDLE, next).await {
        Err(_) => Err(Problem::BadRequest(format!("the upload stalled for {} s", IDLE.as_secs()))),
        Ok(Err(e)) => Err(Problem::BadRequest(format!("the upload broke off: {}", e.body_text()))),
        Ok(Ok(value)) => Ok(value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_limit_allows_a_burst_then_asks_to_wait() {
        let limits = Limits::default();
        for _ in 0..BURST as usize {
            limits.take().unwrap();
        }
        match limits.take() {
            Err(Problem::RateLimited { retry_after, .. }) => assert!(retry_after >= 1),
            other => panic!("{other:?}"),
        }
    }
}
