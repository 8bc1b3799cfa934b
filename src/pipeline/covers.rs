//! Covers: backgrounds scaled and cropped to a canvas, kept in memory for the next products.

use super::backgrounds::Background;
use super::Pipeline;
use crate::compose;
use crate::error::JobError;
use crate::imaging::flatten_on_white;
use crate::job::InputKind;
use crate::preset::Preset;
use crate::sync::Mutex;
use crate::validate;
use image::RgbImage;
use std::collections::VecDeque;
use std::sync::Arc;

/// How many resized backgrounds are kept in memory (about 4 MB each at 1200²).
const KEPT: usize = 16;

/// A background resized for a canvas: (content hash, width, height).
type CoverKey = (String, u32, u32);

/// The most recently used covers, newest first.
#[derive(Default)]
pub(super) struct Covers(Mutex<VecDeque<(CoverKey, Arc<RgbImage>)>>);

impl Pipeline {
    /// The background scaled and cropped to a preset's canvas, from memory when possible.
    /// `None` when the file no longer has the content it was registered with.
    pub(super) fn cover(&self, background: &Background, preset: &Preset) -> Result<Option<Arc<RgbImage>>, JobError> {
        let key = (background.hash.clone(), preset.width, preset.height);
        if let Some((_, cover)) = self.covers.0.lock().iter().find(|(k, _)| *k == key) {
            return Ok(Some(cover.clone()));
        }
        let (input, hash) = match self.read(InputKind::Background, &background.name) {
            Ok(read) => read,
            Err(JobError::Transient(e)) => return Err(JobError::Transient(e)),
            Err(_) => return Ok(None),
        };
        if hash != background.hash {
            return Ok(None);
        }
        let Ok(image) = validate::decode(&input) else {
            return Ok(None);
        };
        let cover = Arc::new(compose::cover(&flatten_on_white(image), preset.width, preset.height));
        let mut covers = self.covers.0.lock();
        covers.push_front((key, cover.clone()));
        covers.truncate(KEPT);
        Ok(Some(cover))
    }
}
