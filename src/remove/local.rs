//! The embedded engine: U²-Netp ([`super::u2netp`]) on an in-process runtime, loaded when a photo
//! first needs it and released when the daemon has been idle a while.
//!
//! Two runtimes can run the model: onnxruntime (feature `onnxruntime`, the default; its library
//! sits beside the binary) and tract (feature `tract`, pure Rust). A build with both uses
//! onnxruntime and falls back to tract when the onnxruntime library cannot be found. Choosing
//! ([`LocalEngine::new`]) only checks that the runtime is there, so a daemon that never sees a
//! photo (cut-outs only, or a catalog already done) never pays for the model's memory; the first
//! photo loads it (about 0.1–0.4 s).

use super::{u2netp, EngineKind, Mask, RemovalEngine};
use crate::dependency::{Condition, Dependency, Report};
use crate::error::{Cause, JobError, Source, StartError, Transient};
use crate::sync::Mutex;
use image::RgbImage;
use std::path::PathBuf;
use std::sync::Arc;

/// A loaded model: the saliency map (SIDE×SIDE) for an input (1×3×SIDE×SIDE).
pub(super) trait Model: Send + Sync {
    fn saliency(&self, input: Vec<f32>) -> Result<Vec<f32>, Source>;
}

/// The runtimes this build can run the model on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Runtime {
    #[cfg(feature = "onnxruntime")]
    Onnxruntime,
    #[cfg(feature = "tract")]
    Tract,
}

impl Runtime {
    pub fn label(self) -> &'static str {
        match self {
            #[cfg(feature = "onnxruntime")]
            Runtime::Onnxruntime => "onnxruntime",
            #[cfg(feature = "tract")]
            Runtime::Tract => "tract",
        }
    }
}

/// What loading needs: the library file for onnxruntime, nothing for tract.
enum Found {
    #[cfg(feature = "onnxruntime")]
    Onnxruntime(PathBuf),
    #[cfg(feature = "tract")]
    Tract,
}

pub struct LocalEngine {
    found: Found,
    /// The model when loaded; locked only for a moment, so a health report never waits.
    loaded: Mutex<Option<Arc<dyn Model>>>,
    /// Held while the model loads, so workers that arrive together load it once.
    loading: Mutex<()>,
}

impl LocalEngine {
    /// The engine on this build's preferred runtime that is present, not loaded yet.
    pub fn available() -> Result<LocalEngine, StartError> {
        #[cfg(all(feature = "onnxruntime", feature = "tract"))]
        {
            LocalEngine::new(Runtime::Onnxruntime).or_else(|missing| {
                tracing::warn!("{missing}; using the tract runtime instead");
                LocalEngine::new(Runtime::Tract)
            })
        }
        #[cfg(all(feature = "onnxruntime", not(feature = "tract")))]
        {
            LocalEngine::new(Runtime::Onnxruntime)
        }
        #[cfg(not(feature = "onnxruntime"))]
        {
            LocalEngine::new(Runtime::Tract)
        }
    }

    /// The engine on `runtime`, not loaded yet; an error when the runtime is missing.
    pub fn new(runtime: Runtime) -> Result<LocalEngine, StartError> {
        let found = match runtime {
            #[cfg(feature = "onnxruntime")]
            Runtime::Onnxruntime => Found::Onnxruntime(super::onnxruntime::library()?),
            #[cfg(feature = "tract")]
            Runtime::Tract => Found::Tract,
        };
        Ok(LocalEngine { found, loaded: Mutex::new(None), loading: Mutex::new(()) })
    }

    pub fn runtime(&self) -> Runtime {
        match self.found {
            #[cfg(feature = "onnxruntime")]
            Found::Onnxruntime(_) => Runtime::Onnxruntime,
            #[cfg(feature = "tract")]
            Found::Tract => Runtime::Tract,
        }
    }

    /// Loads the model now rather than with the first photo.
    pub fn load(&self) -> Result<(), StartError> {
        self.model().map(|_| ())
    }

    /// Drops the model (a photo in progress keeps its own reference until it ends).
    pub(crate) fn release(&self) {
        self.loaded.lock().take();
    }

    /// The loaded model, loading it first when needed (once, for workers that arrive together).
    fn model(&self) -> Result<Arc<dyn Model>, StartError> {
        if let Some(model) = self.loaded.lock().clone() {
            return Ok(model);
        }
        let _loading = self.loading.lock();
        if let Some(model) = self.loaded.lock().clone() {
            return Ok(model); // loaded by the worker that had the lock before
        }
        let model: Arc<dyn Model> = match &self.found {
            #[cfg(feature = "onnxruntime")]
            Found::Onnxruntime(library) => Arc::new(super::onnxruntime::Onnxruntime::load(library)?),
            #[cfg(feature = "tract")]
            Found::Tract => Arc::new(super::tract::Tract::load()?),
        };
        tracing::info!(runtime = self.runtime().label(), "embedded u2netp model loaded");
        *self.loaded.lock() = Some(model.clone());
        Ok(model)
    }
}

impl RemovalEngine for LocalEngine {
    fn kind(&self) -> EngineKind {
        EngineKind::Local
    }

    fn mask(&self, photo: &RgbImage) -> Result<Option<Mask>, JobError> {
        // A failure of the embedded model is a bug or resource problem, never the photo's fault:
        // keep the file and retry rather than reject it.
        let failed = |what: &str| Transient::new(Cause::Engine, format!("the embedded u2netp model {what}"));
        let model = self.model().map_err(|e| failed("cannot be loaded").because(e))?;
        let saliency = model.saliency(u2netp::input(photo)).map_err(|e| failed("failed").because(e))?;
        Ok(u2netp::alpha(photo, saliency).map(|alpha| Mask { alpha, engine: EngineKind::Local }))
    }

    fn release_idle(&self) {
        self.release();
    }
}

/// Ready whether loaded or not: the runtime was found at start, and the model loads with the
/// first photo that needs it.
impl Dependency for LocalEngine {
    fn report(&self) -> Report {
        let runtime = self.runtime().label();
        let loaded = self.loaded.lock().is_some();
        let state = if loaded { "loaded" } else { "loads with the first photo" };
        Report {
            name: "engine",
            condition: Condition::Ok,
            message: format!("embedded removal engine (u2netp on {runtime}): {state}"),
            details: serde_json::json!({ "engine": "local", "runtime": runtime, "model_loaded": loaded }),
            ready: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A red box on a light studio backdrop.
    fn product_photo() -> RgbImage {
        RgbImage::from_fn(400, 300, |x, y| {
            if (120..280).contains(&x) && (80..240).contains(&y) {
                image::Rgb([190, 30, 40])
            } else {
                image::Rgb([232, 232, 228])
            }
        })
    }

    #[test]
    fn the_model_loads_with_the_first_photo_and_is_released_when_asked() {
        crate::remove::before_threads(); // no telemetry files from the test process either
        let engine = LocalEngine::available().unwrap();
        let loaded = |engine: &LocalEngine| engine.report().details["model_loaded"].as_bool().unwrap();
        assert!(!loaded(&engine), "choosing the engine does not load the model");
        assert!(engine.report().message.contains("loads with the first photo"));
        let mask = engine.mask(&product_photo()).unwrap().expect("a product").alpha;
        assert_eq!(mask.get_pixel(200, 160)[0], 255);
        assert_eq!(mask.get_pixel(10, 10)[0], 0);
        assert!(loaded(&engine));
        engine.release_idle();
        assert!(!loaded(&engine), "released while idle");
        let again = engine.mask(&product_photo()).unwrap().expect("a product after reloading").alpha;
        assert_eq!(again, mask, "the reloaded model answers the same");
    }

    #[cfg(all(feature = "onnxruntime", feature = "tract"))]
    #[test]
    fn a_health_report_never_waits_for_the_model_to_load() {
        let engine = LocalEngine::available().unwrap();
        let _loading = engine.loading.lock(); // a worker loading the model right now
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::scope(|s| {
            s.spawn(|| tx.send(engine.report().ready).unwrap());
            let answered = rx.recv_timeout(std::time::Duration::from_secs(2));
            assert_eq!(answered, Ok(true), "the report answered at once");
        });
    }

    #[test]
    fn tract_and_onnxruntime_make_the_same_mask() {
        crate::remove::before_threads();
        let photo = product_photo();
        let ort = LocalEngine::new(Runtime::Onnxruntime).unwrap();
        let tract = LocalEngine::new(Runtime::Tract).unwrap();
        let a = ort.mask(&photo).unwrap().expect("onnxruntime finds the product").alpha;
        let b = tract.mask(&photo).unwrap().expect("tract finds the product").alpha;
        let worst = a.pixels().zip(b.pixels()).map(|(p, q)| p[0].abs_diff(q[0])).max().unwrap();
        assert!(worst <= 2, "masks differ by up to {worst} levels");
    }

    #[cfg(feature = "tract")]
    #[test]
    fn the_tract_runtime_cuts_out_a_product() {
        let engine = LocalEngine::new(Runtime::Tract).unwrap();
        assert_eq!(engine.runtime(), Runtime::Tract);
        let mask = engine.mask(&product_photo()).unwrap().expect("a product").alpha;
        assert_eq!(mask.get_pixel(200, 160)[0], 255);
        assert_eq!(mask.get_pixel(10, 10)[0], 0);
    }
}
