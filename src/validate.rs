//! Validate: read an input safely and decode it strictly, refusing anything that can never work
//! before a single pixel is allocated.
//!
//! Order matters: the file is opened without following links and without blocking (a FIFO named
//! `x.jpg` must not hang a worker), its size is checked before it is read, its format comes from
//! its magic bytes (never its extension) and its dimensions from its header, so a pixel bomb is
//! refused from a few bytes.

use crate::error::{read_error, symlink_rejection, JobError, RejectReason, Rejection};
use crate::format::{sniff, Sniffed};
use image::{DynamicImage, ImageDecoder, ImageReader, RgbaImage};
use std::io::{Cursor, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

pub use crate::disk::FileStamp;
pub use crate::format::InputFormat;

/// The limits validation enforces, from the configuration.
#[derive(Clone, Debug)]
pub struct Limits {
    pub max_file_size: u64,
    pub max_pixels: u64,
    pub allowed: Vec<InputFormat>,
}

impl Limits {
    #[cfg(feature = "daemon")]
    pub(crate) fn from_config(config: &crate::config::Config) -> Limits {
        let mut allowed: Vec<InputFormat> =
            config.allowed_formats.iter().filter_map(|n| InputFormat::from_name(n)).collect();
        allowed.dedup();
        Limits { max_file_size: config.max_file_size.0, max_pixels: config.max_pixels, allowed }
    }
}

/// An input read into memory and checked up to (not including) decoding.
pub struct InputFile {
    pub bytes: Vec<u8>,
    pub format: InputFormat,
    pub width: u32,
    pub height: u32,
    pub stamp: FileStamp,
}

/// Opens `path` without following a link and without blocking, and returns its metadata after
/// checking that it is a regular, non-empty file within the size limit.
///
/// The entry is looked at (`lstat`) before it is opened, so a link, FIFO, socket or device is
/// refused without ever being opened: opening a FIFO would release a writer blocked on it, opening
/// a socket fails with an error that says nothing about the file, and opening a device can have
/// effects of its own. The checks are repeated on the opened file, which may have been swapped in
/// between (`O_NOFOLLOW` and `O_NONBLOCK` keep that swap harmless).
pub(crate) fn open_regular(path: &Path, limits: &Limits) -> Result<(std::fs::File, FileStamp), JobError> {
    let entry = std::fs::symlink_metadata(path).map_err(|e| read_error(path, e))?;
    check_kind(&entry)?;
    if entry.len() > limits.max_file_size {
        return Err(too_large(entry.len(), limits.max_file_size).into());
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| read_error(path, e))?;
    let meta = file.metadata().map_err(|e| read_error(path, e))?;
    check_kind(&meta)?;
    if meta.len() == 0 {
        return Err(empty().into());
    }
    if meta.len() > limits.max_file_size {
        return Err(too_large(meta.len(), limits.max_file_size).into());
    }
    Ok((file, FileStamp::of(&meta)))
}

/// Only regular files are inputs: a folder is not one (it is ignored), a link or a special file
/// is rejected.
fn check_kind(meta: &std::fs::Metadata) -> Result<(), JobError> {
    let kind = meta.file_type();
    if kind.is_dir() {
        return Err(JobError::Vanished);
    }
    if kind.is_symlink() {
        return Err(symlink_rejection().into());
    }
    if !kind.is_file() {
        return Err(Rejection::new(
            RejectReason::NotRegularFile,
            format!("this is {}, not a regular file; it was not opened", special_kind(&kind)),
            "Put the photo itself into the folder.",
        )
        .into());
    }
    Ok(())
}

fn special_kind(kind: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if kind.is_fifo() {
        "a named pipe (FIFO)"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_block_device() || kind.is_char_device() {
        "a device"
    } else {
        "a special file"
    }
}

/// The rejection of an empty input.
pub(crate) fn empty() -> Rejection {
    Rejection::new(
        RejectReason::Empty,
        "the file is empty (0 bytes)",
        "Copy the photo again; the copy may have failed.",
    )
}

/// The rejection of an input over `MAX_FILE_SIZE`.
pub(crate) fn too_large(len: u64, max: u64) -> Rejection {
    Rejection::new(
        RejectReason::TooLarge,
        format!("the file is {len} bytes, over the {max}-byte limit (MAX_FILE_SIZE)"),
        "Export the photo smaller (e.g. JPEG quality 90, at most 4000 px) or raise MAX_FILE_SIZE.",
    )
}

/// Reads and checks an input: regular file, size, magic bytes, allowed format, header dimensions.
pub fn read_input(path: &Path, limits: &Limits) -> Result<InputFile, JobError> {
    let (file, stamp) = open_regular(path, limits)?;
    let mut bytes = Vec::with_capacity(stamp.len as usize);
    file.take(limits.max_file_size + 1).read_to_end(&mut bytes).map_err(|e| read_error(path, e))?;
    if bytes.len() as u64 > limits.max_file_size {
        return Err(too_large(bytes.len() as u64, limits.max_file_size).into());
    }
    check_bytes(bytes, stamp, limits)
}

/// The in-memory half of [`read_input`]: format and header checks on bytes already read.
pub fn check_bytes(bytes: Vec<u8>, stamp: FileStamp, limits: &Limits) -> Result<InputFile, JobError> {
    let accepted = limits.allowed.iter().map(|f| f.name()).collect::<Vec<_>>().join(", ");
    let format = match sniff(&bytes) {
        Sniffed::Image(format) if limits.allowed.contains(&format) => format,
        Sniffed::Image(format) => {
            return Err(Rejection::new(
                RejectReason::UnsupportedFormat,
                format!("{} images are not accepted here (ALLOWED_FORMATS)", format.name()),
                format!("Convert the photo to one of: {accepted}."),
            )
            .into())
        }
        Sniffed::Other(kind) => {
            return Err(Rejection::new(
                RejectReason::UnsupportedFormat,
                format!("the file is {kind}, not a photo in a supported format (whatever its extension says)"),
                format!("Export the photo as one of: {accepted}."),
            )
            .into())
        }
        Sniffed::Unknown => {
            return Err(Rejection::new(
                RejectReason::UnsupportedFormat,
                "the file's content is not a recognised image format",
                format!("Export the photo as one of: {accepted}."),
            )
            .into())
        }
    };
    let (width, height) = ImageReader::with_format(Cursor::new(&bytes[..]), format.image_format())
        .into_dimensions()
        .map_err(|e| corrupt(format, &e.to_string()))?;
    let pixels = width as u64 * height as u64;
    if pixels == 0 {
        return Err(corrupt(format, "the image has no pixels").into());
    }
    if pixels > limits.max_pixels {
        return Err(Rejection::new(
            RejectReason::TooManyPixels,
            format!(
                "the image claims {width}×{height} = {pixels} pixels, over the {} limit (MAX_PIXELS)",
                limits.max_pixels
            ),
            "Resize the photo (4000×4000 is plenty for a 1200 px thumbnail) or raise MAX_PIXELS.",
        )
        .into());
    }
    Ok(InputFile { bytes, format, width, height, stamp })
}

fn corrupt(format: InputFormat, detail: &str) -> Rejection {
    Rejection::new(
        RejectReason::Corrupt,
        format!("the {} data is damaged or incomplete: {detail}", format.name()),
        "Open the photo in an image editor, export it again and copy the new file in.",
    )
}

/// Decodes strictly (truncated data fails) and turns the image upright from its EXIF orientation.
pub fn decode(input: &InputFile) -> Result<DynamicImage, JobError> {
    if input.format == InputFormat::Jpeg && !jpeg_has_end_marker(&input.bytes) {
        return Err(corrupt(input.format, "the file ends before the image does (truncated)").into());
    }
    let mut reader = ImageReader::with_format(Cursor::new(&input.bytes[..]), input.format.image_format());
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(input.width);
    limits.max_image_height = Some(input.height);
    // RGBA16 of the checked size plus the decoder's own buffers.
    limits.max_alloc = Some(input.width as u64 * input.height as u64 * 8 + (64 << 20));
    reader.limits(limits);
    let mut decoder = reader.into_decoder().map_err(|e| corrupt(input.format, &e.to_string()))?;
    let orientation = decoder.orientation().unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut image = DynamicImage::from_decoder(decoder).map_err(|e| corrupt(input.format, &e.to_string()))?;
    image.apply_orientation(orientation);
    Ok(image)
}

/// An 8-bit RGBA PNG decoded without the rows above and below the ones a caller wanted: what
/// [`decode_rgba_png_trimmed`] gives.
pub struct TrimmedRgba {
    /// The rows from the first one kept to the last one kept, whole.
    pub image: RgbaImage,
    /// How many rows were left out, above and below together.
    pub left_out: u32,
}

/// Decodes a PNG that comes out as 8-bit RGBA (palettes and `tRNS` expanded, as [`decode`] does)
/// a row at a time, keeping only the rows from the first to the last one that `keep` accepts:
/// the others are never stored, and no buffer the size of the whole image is cleared first.
/// `None` when the input is anything else, for [`decode`]: another format, depth or colour
/// type, interlaced, animated, or with an EXIF orientation to apply. Damaged data is rejected
/// as [`decode`] rejects it.
pub fn decode_rgba_png_trimmed(
    input: &InputFile,
    mut keep: impl FnMut(&[u8]) -> bool,
) -> Result<Option<TrimmedRgba>, JobError> {
    if input.format != InputFormat::Png {
        return Ok(None);
    }
    let damaged = |e: png::DecodingError| JobError::from(corrupt(InputFormat::Png, &e.to_string()));
    let room = input.width as usize * input.height as usize * 8 + (64 << 20);
    let mut decoder = png::Decoder::new_with_limits(Cursor::new(&input.bytes[..]), png::Limits { bytes: room });
    decoder.set_transformations(png::Transformations::EXPAND);
    let mut reader = decoder.read_info().map_err(damaged)?;
    let info = reader.info();
    let plain = !info.interlaced && info.exif_metadata.is_none() && info.animation_control.is_none();
    if !plain || reader.output_color_type() != (png::ColorType::Rgba, png::BitDepth::Eight) {
        return Ok(None);
    }
    let (width, height) = (info.width, info.height);
    let line = width as usize * 4;
    // Reserved, not cleared: each row is cleared just before the decoder writes it, in cache.
    let mut pixels: Vec<u8> = Vec::with_capacity(line * height as usize);
    let (mut stored, mut wanted) = (0u32, 0u32);
    loop {
        let start = pixels.len();
        pixels.resize(start + line, 0);
        if reader.read_row(&mut pixels[start..]).map_err(damaged)?.is_none() {
            pixels.truncate(start);
            break;
        }
        let kept = keep(&pixels[start..]);
        if stored == 0 && !kept {
            // Above the first row kept: its place is reused by the next row.
            pixels.truncate(start);
            continue;
        }
        stored += 1;
        if kept {
            wanted = stored;
        }
    }
    pixels.truncate(wanted as usize * line);
    let image = RgbaImage::from_raw(width, wanted, pixels).expect("whole rows of four bytes a pixel");
    Ok(Some(TrimmedRgba { image, left_out: height - wanted }))
}

/// A complete baseline or progressive JPEG ends with EOI (FF D9) after its last scan; decoders
/// happily grey-fill a truncated file, so its absence is how truncation is caught.
fn jpeg_has_end_marker(bytes: &[u8]) -> bool {
    let Some(last_scan) = bytes.windows(2).rposition(|w| w == [0xFF, 0xDA]) else {
        return false;
    };
    bytes[last_scan..].windows(2).any(|w| w == [0xFF, 0xD9])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_and_special_files_are_refused_without_being_opened() {
        let dir = tempfile::tempdir().unwrap();
        let limits = Limits { max_file_size: 1 << 20, max_pixels: 1 << 20, allowed: vec![InputFormat::Jpeg] };
        let reason = |name: &str| match open_regular(&dir.path().join(name), &limits) {
            Err(JobError::Rejected(r)) => Some(r.reason),
            Err(JobError::Vanished) => None,
            other => panic!("{name}: {:?}", other.map(|_| ())),
        };
        let fifo = std::ffi::CString::new(dir.path().join("pipe.jpg").into_os_string().into_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
        let _socket = std::os::unix::net::UnixListener::bind(dir.path().join("socket.jpg")).unwrap();
        std::os::unix::fs::symlink("/etc/hostname", dir.path().join("link.jpg")).unwrap();
        std::fs::create_dir(dir.path().join("folder.jpg")).unwrap();
        assert_eq!(reason("pipe.jpg"), Some(RejectReason::NotRegularFile));
        assert_eq!(reason("socket.jpg"), Some(RejectReason::NotRegularFile));
        assert_eq!(reason("link.jpg"), Some(RejectReason::Symlink));
        assert_eq!(reason("folder.jpg"), None);
    }

    #[test]
    fn truncated_jpeg_lacks_its_end_marker() {
        let mut jpeg = vec![0xFF, 0xD8, 0xFF, 0xDA, 1, 2, 3];
        assert!(!jpeg_has_end_marker(&jpeg));
        jpeg.extend([0xFF, 0xD9]);
        assert!(jpeg_has_end_marker(&jpeg));
    }
}
