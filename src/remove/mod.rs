//! Remove: separate the product from its photo's background.
//!
//! Engines implement [`RemovalEngine`]; the pipeline only sees a mask. A photo that already carries
//! real transparency (a PNG or WebP cut-out) is its own cut-out and never reaches an engine.
//! Engines that depend on something outside the process also implement
//! [`crate::dependency::Dependency`], which is all the health check knows of them.

mod gradio;
#[cfg(feature = "embedded")]
mod local;
#[cfg(feature = "onnxruntime")]
mod blocks;
#[cfg(feature = "onnxruntime")]
mod onnxruntime;
#[cfg(feature = "embedded")]
mod refine;
#[cfg(feature = "tract")]
mod tract;
#[cfg(feature = "embedded")]
mod u2netp;

pub(crate) use gradio::GradioEngine;
#[cfg(feature = "onnxruntime")]
pub(crate) use onnxruntime::before_threads;

/// Nothing to prepare for a build without onnxruntime.
#[cfg(not(feature = "onnxruntime"))]
pub(crate) fn before_threads() {}
#[cfg(feature = "embedded")]
pub use local::{LocalEngine, Runtime};

use crate::error::{JobError, RejectReason, Rejection};
use image::{GrayImage, RgbImage};

/// The engines, by the name logs, metrics and health use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EngineKind {
    /// The embedded U²-Netp model.
    Local,
    /// A remote Gradio app.
    Gradio,
}

impl EngineKind {
    /// The `engine` label of the metrics.
    pub fn label(self) -> &'static str {
        match self {
            EngineKind::Local => "local",
            EngineKind::Gradio => "gradio",
        }
    }
}

/// A background-removal engine.
pub trait RemovalEngine: Send + Sync {
    /// The engine that is asked first (a remote engine may hand a photo to its stand-in).
    fn kind(&self) -> EngineKind;
    /// The product's alpha at the photo's resolution; `None` when the photo holds no product.
    fn mask(&self, photo: &RgbImage) -> Result<Option<Mask>, JobError>;
    /// The daemon has nothing to do for a while: give back what can be loaded again (a model).
    fn release_idle(&self) {}
}

/// An alpha mask and the engine that actually made it.
pub struct Mask {
    pub alpha: GrayImage,
    pub engine: EngineKind,
}

/// How a cut-out was obtained.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Source {
    /// The photo's own alpha channel.
    OwnTransparency,
    /// The engine ran.
    Engine(EngineKind),
}

impl Source {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Source::OwnTransparency => "none",
            Source::Engine(kind) => kind.label(),
        }
    }
}

/// The rejection for a photo in which no product can be found.
pub(crate) fn no_product() -> JobError {
    JobError::Rejected(Rejection::new(
        RejectReason::NoProduct,
        "no product could be found in the photo (nothing stands out from the background, or the image is fully transparent)",
        "Photograph the product filling a good part of the frame against a plain background, then copy the new photo in.",
    ))
}
