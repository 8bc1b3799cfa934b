//! Previews the console serves: kept in [`PreviewDir`] (see [`crate::preview`]). A thumbnail's
//! preview is made by the pipeline as it writes the thumbnail; what has none yet (a background,
//! a thumbnail written while the console was off) is made here when first asked for, one at a
//! time, so a first look at a large catalog cannot take the CPU from the pipeline.

use super::blocking;
use super::problem::Problem;
use crate::disk::read_regular;
use crate::preview::PreviewDir;
use image::RgbImage;
use std::collections::HashSet;
use std::sync::Arc;
use tokio::sync::Semaphore;

/// Largest preview file read back (a 320 px JPEG is a few tens of kilobytes).
const MAX_PREVIEW: u64 = 4 * 1024 * 1024;

pub(super) struct Previews {
    dir: PreviewDir,
    gate: Arc<Semaphore>,
}

impl Previews {
    pub(super) fn new(dir: PreviewDir) -> Previews {
        Previews { dir, gate: Arc::new(Semaphore::new(1)) }
    }

    /// The preview of content `key`, made from the image `source` gives when it is not kept yet.
    pub(super) async fn get(
        &self,
        key: &str,
        source: impl FnOnce() -> Result<RgbImage, Problem> + Send + 'static,
    ) -> Result<Vec<u8>, Problem> {
        let path = self.dir.path(key).ok_or_else(|| Problem::NotFound(format!("preview {key}")))?;
        let kept = path.clone();
        if let Ok(bytes) = blocking(move || Ok(read_regular(&kept, MAX_PREVIEW)?.0)).await {
            return Ok(bytes);
        }
        let _turn = self.gate.clone().acquire_owned().await.map_err(|e| Problem::Internal(e.to_string()))?;
        let (dir, key) = (self.dir.clone(), key.to_owned());
        blocking(move || {
            // Made by the request that had the turn before this one?
            if let Ok((bytes, _)) = read_regular(&path, MAX_PREVIEW) {
                return Ok(bytes);
            }
            Ok(dir.make(&key, &source()?)?)
        })
        .await
    }

    /// Deletes kept previews whose key is not in `keep`; returns how many.
    pub(super) fn prune(&self, keep: &HashSet<String>) -> usize {
        self.dir.prune(keep)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_missing_preview_is_made_once_and_then_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let previews = Previews::new(PreviewDir::under(dir.path()));
        let big = || Ok(RgbImage::from_pixel(1200, 600, image::Rgb([200, 10, 10])));
        let bytes = previews.get("k1", big).await.unwrap();
        let again = previews.get("k1", || Err(Problem::Internal("must not be made again".into()))).await.unwrap();
        assert_eq!(again, bytes);
        assert!(matches!(previews.get("../k1", big).await, Err(Problem::NotFound(_))));
    }
}
