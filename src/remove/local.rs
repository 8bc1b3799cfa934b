//! The embedded engine: U²-Netp (salient object detection, Apache-2.0) run in-process by tract.
//!
//! The model ships inside the binary (`models/u2netp.onnx`, 4.6 MB, with its licence beside it),
//! so a fresh checkout works offline. The plan is optimised once at start-up and shared by every
//! worker; each call runs its own state.

use super::{refine, Mask, RemovalEngine};
use crate::error::JobError;
use fast_image_resize as fr;
use image::RgbImage;
use std::sync::Arc;
use tract_onnx::prelude::*;

static U2NETP_ONNX: &[u8] = include_bytes!("../../models/u2netp.onnx");

/// The model's fixed input side.
const SIDE: u32 = 320;
/// ImageNet normalisation the model was trained with.
const MEAN: [f32; 3] = [0.485, 0.456, 0.406];
const STD: [f32; 3] = [0.229, 0.224, 0.225];
/// A photo whose most salient pixel scores below this holds no product worth cutting out.
const MIN_PEAK: f32 = 0.25;

pub struct LocalEngine {
    plan: Arc<TypedRunnableModel>,
}

impl LocalEngine {
    /// Parses and optimises the embedded model (about a third of a second).
    pub fn load() -> Result<LocalEngine, String> {
        // Matrix products of one inference spread over every core: a single photo (the usual
        // hot-folder drop) is cut out in about half the time; with several photos at once the
        // workers share the same pool.
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        if cores > 1 {
            tract_linalg::multithread::set_default_executor(tract_linalg::multithread::Executor::multithread(cores));
        }
        let plan = tract_onnx::onnx()
            .model_for_read(&mut &U2NETP_ONNX[..])
            .and_then(|m| m.with_input_fact(0, f32::fact([1, 3, SIDE as usize, SIDE as usize]).into()))
            .and_then(|m| m.into_optimized())
            .and_then(|m| m.into_runnable())
            .map_err(|e| format!("cannot load the embedded u2netp model: {e}"))?;
        Ok(LocalEngine { plan })
    }

    /// The model's probability map (SIDE×SIDE, 0..1) for a photo.
    fn saliency(&self, photo: &RgbImage) -> Result<Vec<f32>, String> {
        let small = resize_rgb(photo, SIDE, SIDE)?;
        let peak = small.iter().copied().max().unwrap_or(1).max(1) as f32;
        let plane = (SIDE * SIDE) as usize;
        let mut input = vec![0f32; 3 * plane];
        for (i, px) in small.chunks_exact(3).enumerate() {
            for c in 0..3 {
                input[c * plane + i] = (px[c] as f32 / peak - MEAN[c]) / STD[c];
            }
        }
        let tensor = Tensor::from_shape(&[1, 3, SIDE as usize, SIDE as usize], &input)
            .map_err(|e| format!("cannot build the model input: {e}"))?;
        let outputs = self.plan.run(tvec!(tensor.into())).map_err(|e| format!("u2netp inference failed: {e}"))?;
        let view = outputs[0].to_plain_array_view::<f32>().map_err(|e| format!("unexpected u2netp output: {e}"))?;
        Ok(view.iter().copied().collect())
    }
}

impl RemovalEngine for LocalEngine {
    fn name(&self) -> &'static str {
        "local"
    }

    fn mask(&self, photo: &RgbImage) -> Result<Option<Mask>, JobError> {
        // A failure of the embedded model is a bug or resource problem, never the photo's fault:
        // keep the file and retry rather than reject it.
        let mut prob = self.saliency(photo).map_err(JobError::Transient)?;
        let (lo, hi) = prob.iter().fold((f32::MAX, f32::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
        if hi < MIN_PEAK || hi - lo < 1e-3 {
            return Ok(None);
        }
        for v in &mut prob {
            *v = (*v - lo) / (hi - lo);
        }
        Ok(Some(Mask { alpha: refine::refine(photo, &prob, SIDE, SIDE), engine: "local" }))
    }
}

/// Lanczos3 resize of an RGB image to exactly `w`×`h`, as the model was trained.
fn resize_rgb(photo: &RgbImage, w: u32, h: u32) -> Result<Vec<u8>, String> {
    let src = fr::images::ImageRef::new(photo.width(), photo.height(), photo.as_raw(), fr::PixelType::U8x3)
        .map_err(|e| e.to_string())?;
    let mut dst = fr::images::Image::new(w, h, fr::PixelType::U8x3);
    fr::Resizer::new()
        .resize(
            &src,
            &mut dst,
            &fr::ResizeOptions::new().resize_alg(fr::ResizeAlg::Convolution(fr::FilterType::Lanczos3)),
        )
        .map_err(|e| e.to_string())?;
    Ok(dst.into_vec())
}
