//! Files: thumbnails, their previews, product photos and background previews under `/files/`.
//!
//! Each is found by its exact name — a thumbnail in the journal's records, a photo or background
//! in the listing of its folder — and opened without following links; anything else is 404.
//! A thumbnail's URL carries its content key (`?v=`): with the current key the answer may be
//! cached for good, since a regenerated thumbnail gets a new key and so a new URL.

use super::problem::Problem;
use super::{blocking, segment, Console};
use crate::catalog::Folder;
use crate::format::{sniff, Sniffed};
use crate::job::InputKind;
use crate::validate;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use std::io;
use std::sync::Arc;

/// Largest thumbnail served (a 1200 px PNG is a few megabytes).
const MAX_OUTPUT: u64 = 256 * 1024 * 1024;

#[derive(serde::Deserialize)]
pub(super) struct FileQuery {
    /// The content key the page knows; the current one makes the answer cacheable for good.
    v: Option<String>,
    /// `?download=1`: as an attachment under its own name.
    download: Option<String>,
}

/// `GET /files/thumbnails/{file}`: a finished thumbnail, full size.
pub(super) async fn thumbnail(
    State(console): State<Arc<Console>>,
    Path(file): Path<String>,
    Query(query): Query<FileQuery>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let key = console.thumbnail_key(&file)?;
    let (me, shown) = (console.clone(), file.clone());
    let bytes = blocking(move || me.read_thumbnail(&shown)).await?;
    let kind = content_type(&bytes).unwrap_or("application/octet-stream");
    let download = query.download.is_some().then_some(file.as_str());
    Ok(answer(bytes, kind, &key, query.v.as_deref() == Some(key.as_str()), &headers, download))
}

/// `GET /files/previews/{file}`: a thumbnail's preview.
pub(super) async fn preview(
    State(console): State<Arc<Console>>,
    Path(file): Path<String>,
    Query(query): Query<FileQuery>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let key = console.thumbnail_key(&file)?;
    let me = console.clone();
    let bytes = console
        .previews
        .get(&key, move || {
            let bytes = me.read_thumbnail(&file)?;
            let image = image::load_from_memory(&bytes).map_err(|e| Problem::Internal(e.to_string()))?;
            // A transparent cut-out (preset `background = "transparent"`) is previewed on white.
            Ok(crate::imaging::flatten_on_white(image))
        })
        .await?;
    Ok(answer(bytes, "image/jpeg", &key, query.v.as_deref() == Some(key.as_str()), &headers, None))
}

/// `GET /files/originals/{name}`: a product photo as it is in `produtos/` (only when its first
/// bytes say it is an image, so nothing else is ever served from the catalog folder).
pub(super) async fn original(
    State(console): State<Arc<Console>>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let limit = console.settings.limits.max_file_size;
    let me = console.clone();
    let (bytes, etag) = blocking(move || {
        let entry = me.products.snapshot().find(&name).cloned().ok_or_else(|| Problem::NotFound(name.clone()))?;
        let folder = Folder::Input(InputKind::Product);
        let (bytes, _) = me.deps.catalog.read_file(folder, &entry.name, limit).map_err(|e| gone(e, &name))?;
        Ok((bytes, format!("{}-{}", entry.stamp.mtime_ns, entry.stamp.len)))
    })
    .await?;
    let kind = content_type(&bytes).ok_or_else(|| Problem::NotFound("an image in this file".into()))?;
    Ok(answer(bytes, kind, &etag, false, &headers, None))
}

/// `GET /files/backgrounds/{name}`: the preview of a background the pipeline has taken.
pub(super) async fn background(
    State(console): State<Arc<Console>>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let me = console.clone();
    let lookup = name.clone();
    let (entry, hash) = blocking(move || {
        let journal = &me.running()?.journal;
        let entry =
            me.backgrounds.snapshot().find(&lookup).cloned().ok_or_else(|| Problem::NotFound(lookup.clone()))?;
        let hash = journal
            .known_hash(InputKind::Background, &entry.name, &entry.stamp)
            .ok_or_else(|| Problem::NotFound(format!("{lookup} (not taken yet)")))?;
        Ok((entry, hash))
    })
    .await?;
    let limits = console.settings.limits.clone();
    let key = format!("bg-{hash}");
    let me = console.clone();
    let bytes = console
        .previews
        .get(&key, move || {
            let folder = Folder::Input(InputKind::Background);
            let (bytes, _) = me.deps.catalog.read_file(folder, &entry.name, limits.max_file_size).map_err(|e| gone(e, &name))?;
            let unusable = |_| Problem::NotFound(format!("a usable image in background {name}"));
            let input = validate::check_bytes(bytes, entry.stamp, &limits).map_err(unusable)?;
            let image = validate::decode(&input).map_err(unusable)?;
            Ok(crate::imaging::flatten_on_white(image))
        })
        .await?;
    Ok(answer(bytes, "image/jpeg", &key, false, &headers, None))
}

impl Console {
    /// The content key of thumbnail `file`, when the journal knows it: only then is it read.
    fn thumbnail_key(&self, file: &str) -> Result<String, Problem> {
        let record = self.running()?.journal.output(file);
        record.map(|r| r.key).ok_or_else(|| Problem::NotFound(format!("thumbnail {file}")))
    }

    /// Reads thumbnail `file` (blocking).
    fn read_thumbnail(&self, file: &str) -> Result<Vec<u8>, Problem> {
        let read = self.deps.catalog.read_file(Folder::Output, file, MAX_OUTPUT);
        read.map(|(bytes, _)| bytes).map_err(|e| gone(e, file))
    }
}

/// A missing or unreadable file is simply not found (it may have just been deleted).
fn gone(e: io::Error, name: &str) -> Problem {
    if is_gone(&e) {
        Problem::NotFound(name.to_owned())
    } else {
        Problem::Io(e)
    }
}

/// Whether a read failed because the file is not there to serve: gone, no regular file (a
/// link, refused), or larger than anything served.
pub(super) fn is_gone(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::NotFound | io::ErrorKind::InvalidInput | io::ErrorKind::FileTooLarge)
        || e.raw_os_error() == Some(libc::ELOOP)
}

/// The media type of an image by its first bytes.
fn content_type(bytes: &[u8]) -> Option<&'static str> {
    match sniff(bytes) {
        Sniffed::Image(validate::InputFormat::Jpeg) => Some("image/jpeg"),
        Sniffed::Image(validate::InputFormat::Png) => Some("image/png"),
        Sniffed::Image(validate::InputFormat::Webp) => Some("image/webp"),
        _ => None,
    }
}

/// A file answer with its validator: 304 when the browser has this version already.
fn answer(
    bytes: Vec<u8>,
    kind: &'static str,
    etag: &str,
    immutable: bool,
    request: &HeaderMap,
    download: Option<&str>,
) -> Response {
    let etag = format!("\"{etag}\"");
    let fresh = request.get(header::IF_NONE_MATCH).is_some_and(|v| v.as_bytes() == etag.as_bytes());
    let mut response = if fresh { StatusCode::NOT_MODIFIED.into_response() } else { bytes.into_response() };
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    let cache = if immutable { "private, max-age=31536000, immutable" } else { "private, no-cache" };
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    if let Ok(etag) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, etag);
    }
    if let Some(value) = download.and_then(|name| HeaderValue::from_str(&attachment(name)).ok()) {
        h.insert(header::CONTENT_DISPOSITION, value);
    }
    response
}

/// `Content-Disposition` for a download saved as `name`.
pub(super) fn attachment(name: &str) -> String {
    format!("attachment; filename*=UTF-8''{}", segment(name))
}
