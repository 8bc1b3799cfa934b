//! PNG encoding tuned for speed: fast compression with adaptive filters, for thumbnails and for
//! the cut-out cache alike.

use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::{ExtendedColorType, ImageEncoder, ImageResult};

pub(crate) fn encode_png(pixels: &[u8], width: u32, height: u32, color: ExtendedColorType) -> ImageResult<Vec<u8>> {
    let mut out = Vec::with_capacity(pixels.len() / 2);
    PngEncoder::new_with_quality(&mut out, CompressionType::Fast, FilterType::Adaptive)
        .write_image(pixels, width, height, color)?;
    Ok(out)
}
