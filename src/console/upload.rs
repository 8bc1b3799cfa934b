//! Uploads: `POST /api/upload?folder=produtos|backgrounds[&replace=true]`, multipart, one field
//! `file` per file (repeatable); 201 `{accepted: [names], folder}`.
//!
//! Each file is streamed to a hidden `.<name>.<node>.<pid>.<n>.upload.part` in its folder (the
//! watcher ignores hidden names), flushed, and renamed to its name when complete, so the watcher
//! takes it like any file renamed in. Its size is counted while it streams: past `MAX_FILE_SIZE` the
//! answer is 413 and the partial file is deleted; an interrupted or stalled upload leaves nothing
//! either (the partial file is deleted when the request ends, however it ends, and leftovers of a
//! killed daemon at start, by `App`). Names are sanitised as output stems are (`naming::upload_name`).
//! A name already in the folder is refused with 409 unless `replace=true` asks to replace it:
//! an upload never takes a name silently, and a seller who sends `tenis.jpg` again nearly always
//! means the same product, which a renamed copy (`tenis (2).jpg`) would duplicate in the catalog.
//! Files of one request are taken in order; when one is refused, the ones before it stay
//! (listed in the error's `accepted`). Limits: [`MAX_FILES`] files per request, [`CONCURRENT`]
//! requests at once (more wait), and [`RATE`] files a second on average with bursts of [`BURST`]
//! (beyond: 429 with `Retry-After`).

use super::problem::Problem;
use super::Console;
use crate::job::InputKind;
use crate::naming;
use crate::sync::Mutex;
use crate::write::{rename_noreplace, temp_path, UPLOAD_SUFFIX};
use axum::extract::multipart::{Field, MultipartError, MultipartRejection};
use axum::extract::{Multipart, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio::sync::Semaphore;

/// Files per request at most.
pub(super) const MAX_FILES: usize = 100;
/// Upload requests handled at once; more wait their turn.
const CONCURRENT: usize = 4;
/// Files accepted per second on average, and in one burst.
const RATE: f64 = 5.0;
const BURST: f64 = 200.0;
/// An upload that sends nothing for this long is dropped.
const IDLE: Duration = Duration::from_secs(60);

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
    let dir = console.deps.folders.input_dir(kind).to_owned();
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
        let dest = dir.join(&name);
        if !replace && tokio::fs::symlink_metadata(&dest).await.is_ok() {
            return Err(taken(kind, &name));
        }
        let mut part = Part::create(&dir, &name).await?;
        stream_into(&mut field, &mut part, &name, max).await?;
        part.commit(&dest, replace).await.map_err(|e| match e.kind() {
            io::ErrorKind::AlreadyExists => taken(kind, &name),
            _ => Problem::Io(e),
        })?;
        accepted.push(name);
    }
    Ok(())
}

/// Copies one field into its partial file, refusing it once it passes `max` bytes.
async fn stream_into(field: &mut Field<'_>, part: &mut Part, name: &str, max: u64) -> Result<(), Problem> {
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
        part.file.write_all(&chunk).await?;
    }
    Ok(())
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

/// A file being uploaded, under its partial name; deleted unless committed.
struct Part {
    path: PathBuf,
    file: tokio::fs::File,
    committed: bool,
}

impl Part {
    async fn create(dir: &Path, name: &str) -> io::Result<Part> {
        let path = temp_path(dir, name, UPLOAD_SUFFIX);
        // `create_new` never opens what is already there, a link included.
        let file = tokio::fs::OpenOptions::new().write(true).create_new(true).open(&path).await?;
        Ok(Part { path, file, committed: false })
    }

    /// Flushes the file to disk and gives it its name.
    async fn commit(mut self, dest: &Path, replace: bool) -> io::Result<()> {
        self.file.sync_all().await?;
        if replace {
            tokio::fs::rename(&self.path, dest).await?;
        } else {
            let (from, to) = (self.path.clone(), dest.to_owned());
            tokio::task::spawn_blocking(move || rename_noreplace(&from, &to)).await.map_err(io::Error::other)??;
        }
        self.committed = true;
        Ok(())
    }
}

impl Drop for Part {
    fn drop(&mut self) {
        if !self.committed {
            // File I/O stays off the runtime's threads (a slow network volume must not stall them).
            let path = std::mem::take(&mut self.path);
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => drop(runtime.spawn_blocking(move || std::fs::remove_file(path))),
                Err(_) => drop(std::fs::remove_file(path)),
            }
        }
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

    /// The names in `dir` once no partial upload is left (they are deleted on a blocking thread),
    /// or as they are after two seconds.
    async fn names_once_parts_are_gone(dir: &Path) -> Vec<String> {
        for _ in 0..200 {
            if !crate::testkit::names(dir).iter().any(|n| n.ends_with(UPLOAD_SUFFIX)) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        crate::testkit::names(dir)
    }

    #[tokio::test]
    async fn a_part_left_uncommitted_is_deleted_and_a_committed_one_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let mut part = Part::create(dir.path(), "a.jpg").await.unwrap();
        part.file.write_all(b"half").await.unwrap();
        drop(part);
        assert!(names_once_parts_are_gone(dir.path()).await.is_empty(), "deleted (on a blocking thread)");
        std::fs::write(dir.path().join("a.jpg"), b"old").unwrap();
        let part = Part::create(dir.path(), "a.jpg").await.unwrap();
        let err = part.commit(&dir.path().join("a.jpg"), false).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(names_once_parts_are_gone(dir.path()).await, ["a.jpg"]);
        assert_eq!(std::fs::read(dir.path().join("a.jpg")).unwrap(), b"old");
    }
}
