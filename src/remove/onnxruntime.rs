//! The onnxruntime runtime (feature `onnxruntime`, the default): U²-Netp run by onnxruntime 1.32,
//! the library rembg uses, loaded at run time from `libonnxruntime.so.1.32.0`.
//!
//! The library is not linked: build.rs takes it from the PyPI wheel and puts it beside the
//! binaries; it is looked for beside the running executable, then in `../lib/thumbgen/` (an
//! installed prefix), then where the build left it. One session serves every worker, one
//! inference at a time on all cores (intra-op threads = cores, no spinning between operators), so
//! memory holds one model however many workers run. Memory patterns are off (with them a 4.6 MB
//! model held about 500 MB). The session works in [`super::blocks`], which keeps freed blocks for
//! the next inference as onnxruntime's arena would (without reuse an inference costs about a
//! quarter more CPU) but holds only what the model needs at once. Telemetry is switched off.

use super::local::Model;
use super::u2netp::{SIDE, SPLIT};
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
    /// Dropped after the session (fields drop in order): then its memory goes back to the heap.
    _memory: Release,
}

/// Hands onnxruntime's kept blocks back when dropped.
struct Release;

impl Drop for Release {
    fn drop(&mut self) {
        super::blocks::release();
    }
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
        let session = session(environment(library)?, SPLIT)
            .map_err(|e| StartError::new("cannot load the embedded u2netp model in onnxruntime").because(e))?;
        Ok(Onnxruntime { session: Mutex::new(session), _memory: Release })
    }
}

/// The process's environment, made on first use with the library at `library` and
/// [`super::blocks`] as its memory.
fn environment(library: &Path) -> Result<&'static ort::environment::Environment, StartError> {
    ENVIRONMENT
        .get_or_init(|| {
            ort::init_from(library)
                .map_err(|e| e.to_string())?
                .with_name("thumbgen")
                .with_telemetry(false)
                .build()
                .and_then(|environment| super::blocks::register(&environment).map(|()| environment))
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| StartError::new(format!("cannot load onnxruntime from {}", library.display())).because(e.clone()))
}

/// A session for `model` with the settings above.
fn session(environment: &ort::environment::Environment, model: &[u8]) -> ort::Result<Session> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    Session::builder(environment)?
        .with_optimization_level(GraphOptimizationLevel::All)?
        .with_intra_threads(cores)?
        .with_inter_threads(1)?
        .with_intra_op_spinning(false)?
        .with_memory_pattern(false)?
        .with_env_allocators()?
        .commit_from_memory(model)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remove::u2netp::PUBLISHED;

    /// A photo-like input: smooth shading, a bright object with hard edges, and a little noise.
    fn inputs() -> Vec<Vec<f32>> {
        let mut seed = 0x2545_f491_u32;
        let mut noise = move || {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            seed as f32 / u32::MAX as f32 - 0.5
        };
        let scene: Vec<f32> = (0..3 * SIDE * SIDE)
            .map(|k| {
                let (c, y, x) = (k / (SIDE * SIDE), k / SIDE % SIDE, k % SIDE);
                let inside = (90..230).contains(&x) && (60..270).contains(&y);
                let shade = if inside { 1.8 - 0.4 * c as f32 } else { -1.2 + y as f32 / SIDE as f32 };
                shade + 0.1 * noise()
            })
            .collect();
        let pure_noise = (0..3 * SIDE * SIDE).map(|_| 4.0 * noise()).collect();
        vec![scene, pure_noise]
    }

    #[test]
    fn the_split_model_answers_what_the_published_model_answers() {
        crate::remove::before_threads();
        let environment = environment(&library().unwrap()).unwrap();
        let model = |bytes| Onnxruntime { session: Mutex::new(session(environment, bytes).unwrap()), _memory: Release };
        let (published, split) = (model(PUBLISHED), model(SPLIT));
        assert!(PUBLISHED != SPLIT, "two different files");
        for input in inputs() {
            let (a, b) = (published.saliency(input.clone()).unwrap(), split.saliency(input).unwrap());
            assert_eq!(a.len(), SIDE * SIDE);
            let worst = a.iter().zip(&b).map(|(p, q)| (p - q).abs()).fold(0f32, f32::max);
            assert!(worst < 1e-4, "saliency differs by up to {worst}");
            let spread = a.iter().fold(f32::MIN, |m, &v| m.max(v)) - a.iter().fold(f32::MAX, |m, &v| m.min(v));
            assert!(spread > 0.01, "the input gives the model something to see ({spread})");
        }
    }
}
