//! The embedded engine: U²-Netp (salient object detection, Apache-2.0) run in-process by tract.
//!
//! The model ships inside the binary (`models/u2netp.onnx`, 4.6 MB, with its licence beside it),
//! so a fresh checkout works offline. The plan is optimised once at start-up and shared by every
//! worker; each call runs its own state.

use super::{refine, EngineKind, Mask, RemovalEngine};
use crate::error::{Cause, JobError, StartError, Transient};
use crate::imaging::{resize, Filter, Layout};
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
    pub fn load() -> Result<LocalEngine, StartError> {
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
            .map_err(|e| StartError::new("cannot load the embedded u2netp model").because(e.to_string()))?;
        Ok(LocalEngine { plan })
    }

    /// The model's probability map (SIDE×SIDE, 0..1) for a photo.
    fn saliency(&self, photo: &RgbImage) -> TractResult<Vec<f32>> {
        let (w, h) = photo.dimensions();
        let small = resize(photo.as_raw(), w, h, Layout::Rgb, (SIDE, SIDE), Filter::Lanczos3, None);
        let peak = small.iter().copied().max().unwrap_or(1).max(1) as f32;
        let plane = (SIDE * SIDE) as usize;
        let mut input = vec![0f32; 3 * plane];
        for (i, px) in small.chunks_exact(3).enumerate() {
            for c in 0..3 {
                input[c * plane + i] = (px[c] as f32 / peak - MEAN[c]) / STD[c];
            }
        }
        let tensor = Tensor::from_shape(&[1, 3, SIDE as usize, SIDE as usize], &input)?;
        let outputs = self.plan.run(tvec!(tensor.into()))?;
        let view = outputs[0].to_plain_array_view::<f32>()?;
        Ok(view.iter().copied().collect())
    }
}

impl RemovalEngine for LocalEngine {
    fn kind(&self) -> EngineKind {
        EngineKind::Local
    }

    fn mask(&self, photo: &RgbImage) -> Result<Option<Mask>, JobError> {
        // A failure of the embedded model is a bug or resource problem, never the photo's fault:
        // keep the file and retry rather than reject it.
        let mut prob = self
            .saliency(photo)
            .map_err(|e| Transient::new(Cause::Engine, "the embedded u2netp model failed").because(format!("{e:#}")))?;
        let (lo, hi) = prob.iter().fold((f32::MAX, f32::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
        if hi < MIN_PEAK || hi - lo < 1e-3 {
            return Ok(None);
        }
        for v in &mut prob {
            *v = (*v - lo) / (hi - lo);
        }
        Ok(Some(Mask { alpha: refine::refine(photo, &prob, SIDE, SIDE), engine: EngineKind::Local }))
    }
}
