//! U²-Netp, the embedded engine's model (salient object detection, Apache-2.0): what goes in and
//! what comes out, whichever runtime runs it.
//!
//! The model ships inside the binary (4.6 MB, with its licence beside it), so a fresh checkout
//! works offline. onnxruntime runs `models/u2netp-split.onnx`, the published `models/u2netp.onnx`
//! with each convolution of two joined feature maps written as two convolutions summed: the same
//! function, but the joined maps (up to 50 MB each) are never built, which halves onnxruntime's
//! working set (`scripts/split-u2netp`). tract runs the published file. It sees the photo at 320×320, normalised the way it was
//! trained (the photo's peak value, then ImageNet mean and deviation), and answers a 320×320
//! saliency map; that map is stretched to 0..1 and refined at the photo's resolution
//! ([`super::refine`]).

use super::refine;
use crate::imaging::{resize, Filter, Layout};
use image::{GrayImage, RgbImage};

/// The model as published (rembg's `u2netp.onnx`): what tract runs (it computes the split model
/// with about a quarter more CPU, not fusing the sums), and the reference the split one is tested
/// against.
#[cfg(any(feature = "tract", test))]
pub(super) static PUBLISHED: &[u8] = include_bytes!("../../models/u2netp.onnx");
/// The model with its joins split, what onnxruntime runs.
#[cfg(feature = "onnxruntime")]
pub(super) static SPLIT: &[u8] = include_bytes!("../../models/u2netp-split.onnx");

/// The model's fixed input side.
pub(super) const SIDE: usize = 320;
/// ImageNet normalisation the model was trained with.
const MEAN: [f32; 3] = [0.485, 0.456, 0.406];
const STD: [f32; 3] = [0.229, 0.224, 0.225];
/// A photo whose most salient pixel scores below this holds no product worth cutting out.
const MIN_PEAK: f32 = 0.25;

/// The model's input for `photo`: 1×3×320×320, channel planes one after the other.
pub(super) fn input(photo: &RgbImage) -> Vec<f32> {
    let (w, h) = photo.dimensions();
    let side = SIDE as u32;
    let small = resize(photo.as_raw(), w, h, Layout::Rgb, (side, side), Filter::Lanczos3, None);
    let peak = small.iter().copied().max().unwrap_or(1).max(1) as f32;
    let plane = SIDE * SIDE;
    let mut input = vec![0f32; 3 * plane];
    for (i, px) in small.chunks_exact(3).enumerate() {
        for c in 0..3 {
            input[c * plane + i] = (px[c] as f32 / peak - MEAN[c]) / STD[c];
        }
    }
    input
}

/// The photo's alpha from the model's saliency map (SIDE×SIDE); `None` when nothing in the photo
/// stands out.
pub(super) fn alpha(photo: &RgbImage, mut saliency: Vec<f32>) -> Option<GrayImage> {
    let (lo, hi) = saliency.iter().fold((f32::MAX, f32::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    if hi < MIN_PEAK || hi - lo < 1e-3 {
        return None;
    }
    for v in &mut saliency {
        *v = (*v - lo) / (hi - lo);
    }
    Some(refine::refine(photo, &saliency, SIDE as u32, SIDE as u32))
}
