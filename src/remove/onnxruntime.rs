//! The onnxruntime runtime (feature `onnxruntime`, the default): U²-Netp run by onnxruntime 1.32,
//! the library rembg uses, loaded at run time from `libonnxruntime.so.1.32.0`.
//!
//! The library is not linked: build.rs takes it from the PyPI wheel and puts it beside the
//! binaries; it is looked for beside the running executable, then in `../lib/thumbgen/` (an
//! installed prefix), then where the build left it. One session serves every worker, one
//! inference at a time on all cores (intra-op threads = cores, no spinning between operators), so
//! memory holds one model however many workers run. Memory patterns are off (with them a 4.6 MB
//! model held about 500 MB); the CPU memory arena stays on (without it an inference costs about
//! a quarter more CPU, BENCHMARKS.md). Telemetry is switched off.

use super::local::Model;
use super::u2netp::{ONNX, SIDE};
use crate::error::{Source, StartError};
use crate::sync::Mutex;
use ort::session::builder::GraphOptimizationLevel;
use ort::session::Session;
use ort::value::Tensor;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The library's file name, as build.rs unpacked it.
const LIBRARY: &str = env!("THUMBGEN_ORT_LIBRARY_NAME");
/// Where build.rs left the library: found by `cargo run` and the tests wherever the binary is.
const BUILT_LIBRARY: &str = env!("THUMBGEN_ORT_BUILT_LIBRARY");

/// The process's one onnxruntime environment: the library can be loaded only once.
static ENVIRONMENT: OnceLock<Result<ort::environment::Environment, String>> = OnceLock::new();

pub(super) struct Onnxruntime {
    session: Mutex<Session>,
}

/// Keeps onnxruntime from writing anything outside the process: the Linux library's telemetry
/// client creates `~/.cache/Microsoft/DeveloperTools/.onnxruntime/{deviceid,onnxruntime.db}`
/// when the library loads, even with telemetry events disabled; `ORT_DISABLE_TELEMETRY=1` in the
/// environment stops that (checked: nothing under `$HOME/.cache` or `$XDG_CACHE_HOME` after a
/// cut-out). Call at start, before any thread exists (changing the environment is only sound
/// then); a value the user set is kept.
pub(crate) fn before_threads() {
    if std::env::var_os("ORT_DISABLE_TELEMETRY").is_none() {
        std::env::set_var("ORT_DISABLE_TELEMETRY", "1");
    }
}

/// The onnxruntime library this process would load, or why there is none.
pub(super) fn library() -> Result<PathBuf, StartError> {
    let exe_dir = std::env::current_exe().ok().and_then(|exe| exe.parent().map(Path::to_path_buf));
    let mut places: Vec<PathBuf> = Vec::new();
    if let Some(dir) = exe_dir {
        places.push(dir.join(LIBRARY));
        places.push(dir.join("../lib/thumbgen").join(LIBRARY));
    }
    places.push(PathBuf::from(BUILT_LIBRARY));
    places.iter().find(|p| p.is_file()).cloned().ok_or_else(|| {
        let looked = places.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ");
        StartError::new(format!("the onnxruntime library {LIBRARY} is missing (looked in {looked})")).advice(
            "Put it beside the thumbgen binary (the build leaves it in target/release/; the Docker image and \
             scripts/install.sh ship it), or build the pure-Rust engine with --no-default-features --features tract",
        )
    })
}

impl Onnxruntime {
    /// Loads the library (once per process) and builds a session for the model: about 0.1 s.
    pub(super) fn load(library: &Path) -> Result<Onnxruntime, StartError> {
        let environment = ENVIRONMENT
            .get_or_init(|| {
                ort::init_from(library)
                    .map_err(|e| e.to_string())?
                    .with_name("thumbgen")
                    .with_telemetry(false)
                    .build()
                    .map_err(|e| e.to_string())
            })
            .as_ref()
            .map_err(|e| {
                StartError::new(format!("cannot load onnxruntime from {}", library.display())).because(e.clone())
            })?;
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let session = (|| -> ort::Result<Session> {
            Session::builder(environment)?
                .with_optimization_level(GraphOptimizationLevel::All)?
                .with_intra_threads(cores)?
                .with_inter_threads(1)?
                .with_intra_op_spinning(false)?
                .with_memory_pattern(false)?
                .commit_from_memory(ONNX)
        })()
        .map_err(|e| StartError::new("cannot load the embedded u2netp model in onnxruntime").because(e))?;
        Ok(Onnxruntime { session: Mutex::new(session) })
    }
}

impl Model for Onnxruntime {
    fn saliency(&self, input: Vec<f32>) -> Result<Vec<f32>, Source> {
        let tensor = Tensor::from_array(([1usize, 3, SIDE, SIDE], input.into_boxed_slice()))?;
        let mut session = self.session.lock();
        let outputs = session.run(ort::inputs![tensor])?;
        let (_, values) = outputs[0].try_extract_tensor::<f32>()?;
        Ok(values.to_vec())
    }
}
