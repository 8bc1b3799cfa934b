//! ZIP downloads: `GET /api/thumbnails.zip` (every thumbnail) and `?background=NAME` (one
//! background's set), streamed as they are read — no archive is ever put together on disk or in
//! memory.
//!
//! Entries are STORED: JPEG, PNG and WebP do not compress further, so deflating would only cost
//! CPU. Each file is read whole (a thumbnail is at most a few megabytes) and its CRC-32 computed
//! before its header goes out, so every header carries its real sizes and CRC and no data
//! descriptors are needed — the form every unzip reads, Java's streaming reader included. Archives
//! past 65 535 entries or 4 GiB get the ZIP64 end records (and ZIP64 offsets in the directory).
//! Written here rather than taken from a crate: the whole format needed is these three records.

use super::files::{attachment, is_gone};
use super::problem::Problem;
use super::{blocking, Console};
use crate::clock;
use crate::catalog::{Browse, Folder};
use crate::naming;
use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, StreamExt};
use std::collections::VecDeque;
use std::sync::Arc;

/// Largest file put into an archive (far above any thumbnail; keeps entries under 4 GiB).
const MAX_ENTRY: u64 = 256 * 1024 * 1024;
const UTF8_NAMES: u16 = 1 << 11;
/// Made by: Unix, ZIP 4.5.
const MADE_BY: u16 = (3 << 8) | 45;

#[derive(serde::Deserialize)]
pub(super) struct ZipQuery {
    background: Option<String>,
}

pub(super) async fn download(
    State(console): State<Arc<Console>>,
    Query(query): Query<ZipQuery>,
) -> Result<Response, Problem> {
    let me = console.clone();
    let background = query.background.clone();
    let files = blocking(move || {
        let journal = &me.running()?.journal;
        let mut files = journal.outputs_of(None, background.as_deref());
        if files.is_empty() && background.is_some() {
            return Err(Problem::NotFound(format!("thumbnails on background {}", background.unwrap_or_default())));
        }
        files.sort();
        Ok(files)
    })
    .await?;
    let name = match &query.background {
        Some(b) => format!("thumbnails-{}.zip", naming::output_stem(b)),
        None => "thumbnails.zip".to_owned(),
    };
    let archive = Streamed { catalog: console.deps.catalog.clone(), files: files.into(), writer: Writer::default() };
    let body = stream::unfold(Some(archive), next_chunk).take_until(console.deps.shutdown.stopped());
    let mut response = Body::from_stream(body).into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/zip"));
    if let Ok(value) = HeaderValue::from_str(&attachment(&name)) {
        h.insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}

/// An archive being sent: the files still to read and what has been written.
struct Streamed {
    catalog: Arc<dyn Browse>,
    files: VecDeque<String>,
    writer: Writer,
}

/// The next piece of the archive: one whole entry, or at the end the central directory.
async fn next_chunk(state: Option<Streamed>) -> Option<(std::io::Result<Bytes>, Option<Streamed>)> {
    let mut archive = state?;
    while let Some(file) = archive.files.pop_front() {
        let (catalog, name) = (archive.catalog.clone(), file.clone());
        let (data, stamp) = match blocking(move || Ok(catalog.read_file(Folder::Output, &name, MAX_ENTRY))).await {
            Ok(Ok(read)) => read,
            // A file deleted since it was listed, or one that is no regular file (a link), is left out.
            Ok(Err(e)) if is_gone(&e) => continue,
            // Anything else breaks the download off rather than leave a file out unsaid.
            Ok(Err(e)) => return Some((Err(e), None)),
            Err(e) => return Some((Err(std::io::Error::other(format!("{e:?}"))), None)),
        };
        let chunk = archive.writer.entry(&file, &data, stamp.mtime_ns.div_euclid(1_000_000_000));
        return Some((Ok(Bytes::from(chunk)), Some(archive)));
    }
    Some((Ok(Bytes::from(archive.writer.finish())), None))
}

/// The ZIP records, written one entry at a time.
#[derive(Default)]
struct Writer {
    /// Bytes written so far: where the next local header starts.
    offset: u64,
    central: Vec<u8>,
    entries: u64,
}

impl Writer {
    /// The local header and data of one STORED entry; its directory record is kept for the end.
    fn entry(&mut self, name: &str, data: &[u8], mtime: i64) -> Vec<u8> {
        let crc = crc32fast::hash(data);
        let (time, date) = dos_time(mtime);
        let size = data.len() as u32;
        let name = name.as_bytes();
        let mut out = Vec::with_capacity(30 + name.len() + data.len());
        put32(&mut out, 0x0403_4b50);
        for v in [20, UTF8_NAMES, 0, time, date] {
            put16(&mut out, v);
        }
        for v in [crc, size, size] {
            put32(&mut out, v);
        }
        put16(&mut out, name.len() as u16);
        put16(&mut out, 0);
        out.extend_from_slice(name);
        out.extend_from_slice(data);

        let far = self.offset >= u32::MAX as u64;
        let c = &mut self.central;
        put32(c, 0x0201_4b50);
        for v in [MADE_BY, if far { 45 } else { 20 }, UTF8_NAMES, 0, time, date] {
            put16(c, v);
        }
        for v in [crc, size, size] {
            put32(c, v);
        }
        for v in [name.len() as u16, if far { 12 } else { 0 }, 0, 0, 0] {
            put16(c, v);
        }
        put32(c, 0o100644 << 16);
        put32(c, if far { u32::MAX } else { self.offset as u32 });
        c.extend_from_slice(name);
        if far {
            put16(c, 0x0001);
            put16(c, 8);
            put64(c, self.offset);
        }
        self.offset += out.len() as u64;
        self.entries += 1;
        out
    }

    /// The central directory and end records.
    fn finish(&mut self) -> Vec<u8> {
        let mut out = std::mem::take(&mut self.central);
        let (cd_offset, cd_size) = (self.offset, out.len() as u64);
        let zip64 = self.entries >= u16::MAX as u64 || cd_offset >= u32::MAX as u64 || cd_size >= u32::MAX as u64;
        if zip64 {
            let record = cd_offset + cd_size;
            put32(&mut out, 0x0606_4b50);
            put64(&mut out, 44);
            put16(&mut out, MADE_BY);
            put16(&mut out, 45);
            put32(&mut out, 0);
            put32(&mut out, 0);
            for v in [self.entries, self.entries, cd_size, cd_offset] {
                put64(&mut out, v);
            }
            put32(&mut out, 0x0706_4b50);
            put32(&mut out, 0);
            put64(&mut out, record);
            put32(&mut out, 1);
        }
        put32(&mut out, 0x0605_4b50);
        put16(&mut out, 0);
        put16(&mut out, 0);
        let count = self.entries.min(u16::MAX as u64) as u16;
        put16(&mut out, count);
        put16(&mut out, count);
        put32(&mut out, cd_size.min(u32::MAX as u64) as u32);
        put32(&mut out, cd_offset.min(u32::MAX as u64) as u32);
        put16(&mut out, 0);
        out
    }
}

/// MS-DOS time and date of a moment (local time; 1980 is the earliest a ZIP can say).
fn dos_time(secs: i64) -> (u16, u16) {
    let t = clock::local(secs);
    if t.year < 1980 {
        return (0, (1 << 5) | 1);
    }
    let time = (t.hour << 11) | (t.minute << 5) | (t.second / 2);
    let date = (((t.year - 1980) as u32).min(127) << 9) | (t.month << 5) | t.day;
    (time as u16, date as u16)
}

fn put16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u16_at(b: &[u8], at: usize) -> u16 {
        u16::from_le_bytes([b[at], b[at + 1]])
    }

    fn u32_at(b: &[u8], at: usize) -> u32 {
        u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
    }

    #[test]
    fn entries_carry_their_crc_and_sizes_and_the_directory_finds_them() {
        let mut w = Writer::default();
        let mut zip = w.entry("a.jpg", b"hello", 1_700_000_000);
        zip.extend(w.entry("tênis__b.jpg", b"world!", 1_700_000_000));
        zip.extend(w.finish());
        let end = zip.len() - 22;
        assert_eq!(u32_at(&zip, end), 0x0605_4b50);
        assert_eq!(u16_at(&zip, end + 10), 2);
        let mut at = u32_at(&zip, end + 16) as usize;
        let mut names = Vec::new();
        for _ in 0..2 {
            assert_eq!(u32_at(&zip, at), 0x0201_4b50);
            let (crc, size) = (u32_at(&zip, at + 16), u32_at(&zip, at + 24) as usize);
            let name_len = u16_at(&zip, at + 28) as usize;
            let local = u32_at(&zip, at + 42) as usize;
            let name = String::from_utf8(zip[at + 46..at + 46 + name_len].to_vec()).unwrap();
            let data_at = local + 30 + u16_at(&zip, local + 26) as usize;
            assert_eq!(crc32fast::hash(&zip[data_at..data_at + size]), crc, "{name}");
            assert_eq!(u32_at(&zip, local + 14), crc, "the local header has the CRC: no data descriptor");
            names.push(name);
            at += 46 + name_len;
        }
        assert_eq!(names, ["a.jpg", "tênis__b.jpg"]);
    }

    #[test]
    fn past_four_gigabytes_offsets_and_the_end_go_zip64() {
        let mut w = Writer { offset: u32::MAX as u64 + 10, ..Writer::default() };
        w.entry("far.jpg", b"x", 0);
        let end = w.finish();
        assert_eq!(u32_at(&end, 0), 0x0201_4b50);
        assert_eq!(u32_at(&end, 42), u32::MAX, "the offset moves to the ZIP64 extra field");
        assert_eq!(u16_at(&end, 46 + 7), 0x0001);
        let record = 46 + 7 + 12;
        assert_eq!(u32_at(&end, record), 0x0606_4b50);
        assert_eq!(u32_at(&end, record + 56), 0x0706_4b50);
        assert_eq!(u32_at(&end, end.len() - 22), 0x0605_4b50);
        assert_eq!(u32_at(&end, end.len() - 6), u32::MAX);
        assert_eq!(dos_time(0), (0, 33), "before 1980 becomes 1980-01-01");
    }
}
