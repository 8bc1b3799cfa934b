//! The pure-Rust runtime (feature `tract`): U²-Netp run by tract. Nothing to fetch or ship
//! beside the binary, at about 3× onnxruntime's CPU per photo (BENCHMARKS.md); the plan is
//! optimised once when loaded and shared by every worker, each call running its own state.

use super::local::Model;
use super::u2netp::{PUBLISHED, SIDE};
use crate::error::{Source, StartError};
use std::sync::Arc;
use tract_onnx::prelude::*;

pub(super) struct Tract {
    plan: Arc<TypedRunnableModel>,
}

impl Tract {
    /// Parses and optimises the embedded model (about a third of a second).
    pub(super) fn load() -> Result<Tract, StartError> {
        // Matrix products of one inference spread over every core: a single photo (the usual
        // hot-folder drop) is cut out in about half the time; with several photos at once the
        // workers share the same pool.
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        if cores > 1 {
            tract_linalg::multithread::set_default_executor(tract_linalg::multithread::Executor::multithread(cores));
        }
        let plan = tract_onnx::onnx()
            .model_for_read(&mut &PUBLISHED[..])
            .and_then(|m| m.with_input_fact(0, f32::fact([1, 3, SIDE, SIDE]).into()))
            .and_then(|m| m.into_optimized())
            .and_then(|m| m.into_runnable())
            .map_err(|e| StartError::new("cannot load the embedded u2netp model in tract").because(e.to_string()))?;
        Ok(Tract { plan })
    }
}

impl Model for Tract {
    fn saliency(&self, input: Vec<f32>) -> Result<Vec<f32>, Source> {
        let tensor = Tensor::from_shape(&[1, 3, SIDE, SIDE], &input)?;
        let outputs = self.plan.run(tvec!(tensor.into()))?;
        let view = outputs[0].to_plain_array_view::<f32>()?;
        Ok(view.iter().copied().collect())
    }
}
