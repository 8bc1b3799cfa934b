//! Previews: small JPEGs (at most [`SIDE`] px a side) of thumbnails and backgrounds, kept under
//! `STATE_PATH/previews/` for the web console, so the catalog never sends a browser full-size
//! files.
//!
//! A preview is named by the content key of what it shows (a thumbnail's job key, a background's
//! content hash): a regenerated thumbnail gets a new key, hence a new preview, and an old one is
//! never shown for it. The pipeline makes a thumbnail's preview as it writes the thumbnail (its
//! pixels are in memory), so a page of done products shows every picture at once; the console
//! makes the others (backgrounds, thumbnails written before previews existed) when first asked.

use crate::compose::Canvas;
use crate::imaging::{resize, Filter, Layout};
use crate::preset::{OutputFormat, Preset};
use crate::write::write_atomic;
use image::RgbImage;
use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};

/// Longest side of a preview, in pixels.
pub(crate) const SIDE: u32 = 320;
const QUALITY: u8 = 80;

/// The folder previews are kept in.
#[derive(Clone)]
pub(crate) struct PreviewDir {
    dir: PathBuf,
}

impl PreviewDir {
    /// The previews folder inside the state folder `state`.
    pub(crate) fn under(state: &Path) -> PreviewDir {
        PreviewDir { dir: state.join("previews") }
    }

    /// Where the preview of content `key` is kept; `None` for a key that is not a plain token.
    pub(crate) fn path(&self, key: &str) -> Option<PathBuf> {
        file_name(key).map(|name| self.dir.join(name))
    }

    /// Makes and keeps the preview of content `key` from `image`; returns its bytes.
    pub(crate) fn make(&self, key: &str, image: &RgbImage) -> io::Result<Vec<u8>> {
        let name = file_name(key).ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not a content key"))?;
        let bytes = encode(&shrink(image))?;
        std::fs::create_dir_all(&self.dir)?;
        write_atomic(&self.dir, &name, &bytes)?;
        Ok(bytes)
    }

    /// The preview of a thumbnail about to be written: a transparent one is shown on white.
    pub(crate) fn make_from_canvas(&self, key: &str, canvas: &Canvas) -> io::Result<()> {
        match canvas {
            Canvas::Opaque(rgb) => self.make(key, rgb).map(drop),
            Canvas::Transparent(rgba) => self.make(key, &crate::imaging::flatten_rgba_on_white(rgba)).map(drop),
        }
    }

    /// Deletes kept previews whose key is not in `keep`; returns how many.
    pub(crate) fn prune(&self, keep: &HashSet<String>) -> usize {
        let Ok(entries) = std::fs::read_dir(&self.dir) else { return 0 };
        let kept: HashSet<String> = keep.iter().filter_map(|key| file_name(key)).collect();
        entries
            .flatten()
            .filter(|e| !kept.contains(e.file_name().to_string_lossy().as_ref()))
            .filter(|e| std::fs::remove_file(e.path()).is_ok())
            .count()
    }
}

fn file_name(key: &str) -> Option<String> {
    let plain = !key.is_empty() && key.len() <= 80 && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    plain.then(|| format!("{key}-{SIDE}.jpg"))
}

/// `image` scaled to fit [`SIDE`]×[`SIDE`], keeping its proportions (a smaller one stays as is).
/// A triangle filter, not Lanczos: a preview is a few hundred pixels seen in a grid, and the
/// narrower filter makes one in about a third of the time (three per product on every job).
fn shrink(image: &RgbImage) -> RgbImage {
    let (w, h) = image.dimensions();
    let longest = w.max(h);
    if longest <= SIDE {
        return image.clone();
    }
    let scale = |v: u32| ((v as u64 * SIDE as u64 / longest as u64) as u32).max(1);
    let to = (scale(w), scale(h));
    let pixels = resize(image.as_raw(), w, h, Layout::Rgb, to, Filter::Bilinear, None);
    RgbImage::from_raw(to.0, to.1, pixels).expect("three bytes per pixel")
}

fn encode(image: &RgbImage) -> io::Result<Vec<u8>> {
    let preset = Preset { format: OutputFormat::Jpeg, quality: QUALITY, ..Preset::default() };
    crate::encode::encode(&Canvas::Opaque(image.clone()), &preset).map_err(io::Error::other)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_preview_is_small_kept_by_key_and_pruned_when_its_key_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let previews = PreviewDir::under(dir.path());
        let big = RgbImage::from_pixel(1200, 600, image::Rgb([200, 10, 10]));
        let bytes = previews.make("k1", &big).unwrap();
        let decoded = image::load_from_memory(&bytes).unwrap();
        assert_eq!((decoded.width(), decoded.height()), (SIDE, SIDE / 2));
        assert_eq!(std::fs::read(previews.path("k1").unwrap()).unwrap(), bytes);
        assert!(previews.path("../k1").is_none(), "only plain keys name a file");
        previews.make("k2", &big).unwrap();
        assert_eq!(previews.prune(&HashSet::from(["k2".to_owned()])), 1);
        assert!(previews.path("k2").unwrap().exists() && !previews.path("k1").unwrap().exists());
    }
}
