//! Remove: separate the product from its photo's background.
//!
//! Engines implement [`RemovalEngine`]; the pipeline only sees a mask. A photo that already carries
//! real transparency (a PNG or WebP cut-out) is its own cut-out and never reaches an engine.

mod gradio;
#[cfg(feature = "embedded")]
mod local;
pub mod refine;

pub use gradio::{base_url, GradioEngine};
#[cfg(feature = "embedded")]
pub use local::LocalEngine;

use crate::error::{JobError, RejectReason, Rejection};
use image::{GrayImage, RgbImage};

/// A background-removal engine.
pub trait RemovalEngine: Send + Sync {
    /// Name recorded in logs and in the `engine` label of the metrics.
    fn name(&self) -> &'static str;
    /// The product's alpha at the photo's resolution; `None` when the photo holds no product.
    fn mask(&self, photo: &RgbImage) -> Result<Option<Mask>, JobError>;
}

/// An alpha mask and the engine that actually made it (a remote engine may fall back to the
/// embedded one).
pub struct Mask {
    pub alpha: GrayImage,
    pub engine: &'static str,
}

/// How a cut-out was obtained.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// The photo's own alpha channel.
    OwnTransparency,
    /// The named engine ran.
    Engine(&'static str),
}

impl Source {
    pub fn label(self) -> &'static str {
        match self {
            Source::OwnTransparency => "none",
            Source::Engine(name) => name,
        }
    }
}

/// The rejection for a photo in which no product can be found.
pub fn no_product() -> JobError {
    JobError::Rejected(Rejection::new(
        RejectReason::NoProduct,
        "no product could be found in the photo (nothing stands out from the background, or the image is fully transparent)",
        "Photograph the product filling a good part of the frame against a plain background, then copy the new photo in.",
    ))
}
