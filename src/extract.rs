//! `thumbgen cutout PHOTO OUT.png [--mask]`: one photo's full-size cut-out (or its grey mask) with
//! the configured engine, for checking an engine on one's own photos and for scoring masks
//! against ground truth.
//!
//! The photo goes through the daemon's own stages — validation with the configured limits, the
//! photo's own transparency when it has some, else the engine's mask, then the cut-out's edge
//! treatment — and nothing else: no folders are created, no cache or journal is touched. The
//! output is a PNG of the photo's size (RGBA, or 8-bit grey with `--mask`), written atomically.

use crate::app::Engine;
use crate::config::Config;
use crate::cutout::{self, Cutout};
use crate::error::{chain, JobError, Rejection, StartError};
use crate::imaging::encode_png;
use crate::remove;
use crate::validate::{self, Limits};
use image::{ExtendedColorType, GrayImage, RgbaImage};
use std::path::{Path, PathBuf};

/// What to write.
pub(crate) struct Request {
    pub photo: PathBuf,
    pub out: PathBuf,
    pub mask_only: bool,
}

/// Why no file was written.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The configuration or the engine cannot start.
    Start(StartError),
    /// The photo can never give a cut-out (refused by validation, or no product in it).
    Refused(Rejection),
    /// Something that may pass (engine down, disk full, unreadable for now).
    Failed(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self {
            Failure::Start(e) => write!(f, "{e}"),
            Failure::Refused(r) => write!(f, "{} ({}). {}", r.problem, r.reason.label(), r.advice),
            Failure::Failed(why) => f.write_str(why),
        }
    }
}

/// Makes and writes the cut-out; runs on a blocking thread inside the tokio runtime (a remote
/// engine needs it).
pub(crate) fn run(config: &Config, request: &Request) -> Result<(), Failure> {
    let engine = Engine::from_config(config).map_err(Failure::Start)?;
    let limits = Limits::from_config(config);
    let job = |e: JobError| match e {
        JobError::Rejected(r) => Failure::Refused(r),
        JobError::Transient(t) => Failure::Failed(chain(&t)),
        JobError::Vanished => Failure::Failed(format!("{} disappeared while being read", request.photo.display())),
    };
    let input = validate::read_input(&request.photo, &limits).map_err(job)?;
    let photo = validate::decode(&input).map_err(job)?;
    let no_product = || job(remove::no_product());
    let rgba: RgbaImage = if cutout::has_real_transparency(&photo) {
        let rgba = photo.into_rgba8();
        if !rgba.pixels().any(|p| p[3] > cutout::FAINT_ALPHA) {
            return Err(no_product());
        }
        rgba
    } else {
        let rgb = photo.into_rgb8();
        let mask = engine.removal.mask(&rgb).map_err(job)?.ok_or_else(no_product)?;
        Cutout::full_frame(&rgb, &mask.alpha).ok_or_else(no_product)?
    };
    let (w, h) = rgba.dimensions();
    let bytes = if request.mask_only {
        let alpha = GrayImage::from_fn(w, h, |x, y| image::Luma([rgba.get_pixel(x, y)[3]]));
        encode_png(alpha.as_raw(), w, h, ExtendedColorType::L8)
    } else {
        encode_png(rgba.as_raw(), w, h, ExtendedColorType::Rgba8)
    }
    .map_err(|e| Failure::Failed(format!("cannot encode the PNG: {e}")))?;
    write(&request.out, &bytes)
}

/// Writes `bytes` to `out` atomically (a temporary file in the same folder, then a rename).
fn write(out: &Path, bytes: &[u8]) -> Result<(), Failure> {
    let refused = |why: &str| Failure::Failed(format!("cannot write {}: {why}", out.display()));
    let name = out.file_name().and_then(|n| n.to_str()).ok_or_else(|| refused("not a file name"))?;
    let dir = match out.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    crate::write::write_atomic(dir, name, bytes).map_err(|e| refused(&e.to_string()))
}
