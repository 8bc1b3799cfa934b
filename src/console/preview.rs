//! Previews: small JPEGs (at most 320 px a side) of thumbnails and backgrounds, so the catalog
//! never sends a browser the full-size files.
//!
//! A preview is made the first time it is asked for and kept under `STATE_PATH/previews/`, named
//! by the content key of what it shows (a thumbnail's job key, a background's content hash): a
//! regenerated thumbnail gets a new key, hence a new preview, and an old one is never shown for
//! it. Previews are made one at a time, so a first look at a large catalog cannot take the CPU
//! from the pipeline; previews whose key no longer exists are deleted at start.

use super::blocking;
use super::files::read_regular;
use super::problem::Problem;
use crate::compose::Canvas;
use crate::imaging::{resize, Filter, Layout};
use crate::preset::{OutputFormat, Preset};
use crate::write::write_atomic;
use image::RgbImage;
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::Semaphore;

/// Longest side of a preview, in pixels.
pub(super) const SIDE: u32 = 320;
const QUALITY: u8 = 80;
/// Largest preview file read back (a 320 px JPEG is a few tens of kilobytes).
const MAX_PREVIEW: u64 = 4 * 1024 * 1024;

pub(super) struct Previews {
    dir: PathBuf,
    gate: Arc<Semaphore>,
}

impl Previews {
    pub(super) fn new(dir: PathBuf) -> Previews {
        Previews { dir, gate: Arc::new(Semaphore::new(1)) }
    }

    /// The preview of content `key`, made from the image `source` gives when it is not kept yet.
    pub(super) async fn get(
        &self,
        key: &str,
        source: impl FnOnce() -> Result<RgbImage, Problem> + Send + 'static,
    ) -> Result<Vec<u8>, Problem> {
        let name = file_name(key).ok_or_else(|| Problem::NotFound(format!("preview {key}")))?;
        let path = self.dir.join(&name);
        let kept = path.clone();
        if let Ok(bytes) = blocking(move || Ok(read_regular(&kept, MAX_PREVIEW)?.0)).await {
            return Ok(bytes);
        }
        let _turn = self.gate.clone().acquire_owned().await.map_err(|e| Problem::Internal(e.to_string()))?;
        let dir = self.dir.clone();
        blocking(move || {
            // Made by the request that had the turn before this one?
            if let Ok((bytes, _)) = read_regular(&path, MAX_PREVIEW) {
                return Ok(bytes);
            }
            let bytes = encode(shrink(source()?))?;
            std::fs::create_dir_all(&dir)?;
            write_atomic(&dir, &name, &bytes)?;
            Ok(bytes)
        })
        .await
    }

    /// Deletes kept previews whose key is not in `keep`; returns how many.
    pub(super) fn prune(&self, keep: &HashSet<String>) -> usize {
        let Ok(entries) = std::fs::read_dir(&self.dir) else { return 0 };
        let kept: HashSet<String> = keep.iter().filter_map(|key| file_name(key)).collect();
        entries
            .flatten()
            .filter(|e| !kept.contains(e.file_name().to_string_lossy().as_ref()))
            .filter(|e| std::fs::remove_file(e.path()).is_ok())
            .count()
    }
}

/// The file a preview of `key` is kept in; `None` for a key that is not a plain token.
fn file_name(key: &str) -> Option<String> {
    let plain = !key.is_empty() && key.len() <= 80 && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    plain.then(|| format!("{key}-{SIDE}.jpg"))
}

/// `image` scaled to fit [`SIDE`]×[`SIDE`], keeping its proportions (a smaller one stays as is).
fn shrink(image: RgbImage) -> RgbImage {
    let (w, h) = image.dimensions();
    let longest = w.max(h);
    if longest <= SIDE {
        return image;
    }
    let scale = |v: u32| ((v as u64 * SIDE as u64 / longest as u64) as u32).max(1);
    let to = (scale(w), scale(h));
    let pixels = resize(image.as_raw(), w, h, Layout::Rgb, to, Filter::Lanczos3, None);
    RgbImage::from_raw(to.0, to.1, pixels).expect("three bytes per pixel")
}

fn encode(image: RgbImage) -> Result<Vec<u8>, Problem> {
    let preset = Preset { format: OutputFormat::Jpeg, quality: QUALITY, ..Preset::default() };
    crate::encode::encode(&Canvas::Opaque(image), &preset)
        .map_err(|e| Problem::Internal(format!("cannot encode a preview: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_preview_is_small_made_once_and_pruned_when_its_key_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let previews = Previews::new(dir.path().join("previews"));
        let big = || Ok(RgbImage::from_pixel(1200, 600, image::Rgb([200, 10, 10])));
        let bytes = previews.get("k1", big).await.unwrap();
        let decoded = image::load_from_memory(&bytes).unwrap();
        assert_eq!((decoded.width(), decoded.height()), (SIDE, SIDE / 2));
        let again = previews.get("k1", || Err(Problem::Internal("must not be made again".into()))).await.unwrap();
        assert_eq!(again, bytes);
        assert!(matches!(previews.get("../k1", big).await, Err(Problem::NotFound(_))));
        previews.get("k2", big).await.unwrap();
        assert_eq!(previews.prune(&HashSet::from(["k2".to_owned()])), 1);
        assert!(previews.get("k2", || Err(Problem::Internal("kept".into()))).await.is_ok());
    }
}
