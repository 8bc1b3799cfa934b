//! What the fuzz targets share: the limits they validate with, the way bytes reach thumbgen's
//! real entry points, and the checks on the errors that come back.
//!
//! The limits are small (4 megapixels) so that a pixel bomb is a rejection, and anything that
//! still allocates hundreds of megabytes is a finding (`-rss_limit_mb`, `-malloc_limit_mb`).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use thumbgen::cutout::{self, Cutout, Decoded};
use thumbgen::error::{JobError, RejectReason};
use thumbgen::validate::{self, FileStamp, InputFile, InputFormat, Limits};

/// Width × height limit (`MAX_PIXELS`) of the fuzz targets.
pub const MAX_PIXELS: u64 = 4_000_000;
/// `MAX_FILE_SIZE` of the fuzz targets; libFuzzer's `-max_len` keeps inputs well below it.
pub const MAX_FILE_SIZE: u64 = 1 << 20;

pub fn limits() -> Limits {
    Limits {
        max_file_size: MAX_FILE_SIZE,
        max_pixels: MAX_PIXELS,
        allowed: vec![InputFormat::Jpeg, InputFormat::Png, InputFormat::Webp],
    }
}

/// Feeds `data` through [`validate::read_input`], the daemon's own entry point, via a scratch file
/// of this process (on tmpfs when there is one); the file is removed when the fuzzer exits.
pub fn read_input(data: &[u8]) -> Result<InputFile, JobError> {
    let path = scratch();
    std::fs::write(path, data).expect("the scratch file is writable");
    let result = validate::read_input(path, &limits());
    if let Err(e) = &result {
        expect_rejection(
            e,
            &[
                RejectReason::Empty,
                RejectReason::TooLarge,
                RejectReason::UnsupportedFormat,
                RejectReason::TooManyPixels,
                RejectReason::Corrupt,
            ],
        );
    }
    result
}

/// The in-memory half of [`read_input`] ([`validate::check_bytes`]): no file, more executions.
pub fn check_bytes(data: &[u8]) -> Result<InputFile, JobError> {
    let stamp = FileStamp { len: data.len() as u64, mtime_ns: 0, ino: 0 };
    let result = validate::check_bytes(data.to_vec(), stamp, &limits());
    if let Err(e) = &result {
        expect_rejection(e, &[RejectReason::UnsupportedFormat, RejectReason::TooManyPixels, RejectReason::Corrupt]);
    }
    result
}

/// Checks what [`read_input`] or [`check_bytes`] accepted, then decodes it with
/// [`validate::decode`]. A decoded image must have the checked dimensions (turned by the EXIF
/// orientation at most): the header check is what keeps pixel bombs out.
pub fn decode(input: &InputFile) -> Option<image::DynamicImage> {
    assert!(input.width > 0 && input.height > 0);
    assert!(input.width as u64 * input.height as u64 <= MAX_PIXELS);
    match validate::decode(input) {
        Ok(image) => {
            let dims = (image.width(), image.height());
            assert!(
                dims == (input.width, input.height) || dims == (input.height, input.width),
                "decoded {dims:?}, header said {}×{}",
                input.width,
                input.height
            );
            Some(image)
        }
        Err(e) => {
            expect_rejection(&e, &[RejectReason::Corrupt]);
            None
        }
    }
}

/// [`cutout::decode`], the pipeline's decode (an RGBA PNG a row at a time, without its clear
/// rows), must agree with the plain way on the same bytes: `whole` from [`decode`], then the
/// transparency check. The same cut-out, or the same photo, or both rejecting the data.
pub fn agree_with_the_whole_image(input: &InputFile, whole: Option<&image::DynamicImage>) {
    match (cutout::decode(input), whole) {
        (Ok(Decoded::Own(cut)), Some(image)) => {
            assert!(cutout::has_real_transparency(image), "a cut-out from an image without transparency");
            let expected = Cutout::from_transparent(image.to_rgba8());
            assert!(cut.map(|c| c.image) == expected.map(|c| c.image), "a different cut-out");
        }
        (Ok(Decoded::Photo(photo)), Some(image)) => {
            assert!(!cutout::has_real_transparency(image), "a photo from an image with transparency");
            assert!(photo == *image, "a different photo");
        }
        (Err(e), None) => expect_rejection(&e, &[RejectReason::Corrupt]),
        (Ok(_), None) => panic!("decoded what the whole-image decode rejected"),
        (Err(e), Some(_)) => panic!("rejected what the whole-image decode took: {e:?}"),
    }
}

/// Bad bytes are the user's problem, never a passing failure: a transient error would retry
/// the same hopeless file forever.
fn expect_rejection(error: &JobError, reasons: &[RejectReason]) {
    match error {
        JobError::Rejected(r) if reasons.contains(&r.reason) => {}
        other => panic!("expected a rejection for one of {reasons:?}, got {other:?}"),
    }
}

fn scratch() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let shm = Path::new("/dev/shm");
        let dir = if shm.is_dir() { shm.to_path_buf() } else { std::env::temp_dir() };
        let path = dir.join(format!("thumbgen-fuzz-{}.bin", std::process::id()));
        extern "C" fn remove_scratch() {
            if let Some(path) = PATH.get() {
                let _ = std::fs::remove_file(path);
            }
        }
        // libFuzzer ends with exit(): after -max_total_time, -runs, or a finding.
        unsafe { libc::atexit(remove_scratch) };
        path
    })
}
