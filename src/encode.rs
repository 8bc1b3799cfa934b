//! Encode: a finished canvas into the preset's file format.
//!
//! JPEG uses 4:4:4 sampling: 4:2:0 would smear the product's colour into the white around it and
//! break the marketplace rule that the background is exactly white.

use crate::error::Source;
use crate::imaging::encode_png;
use crate::preset::{OutputFormat, Preset};
use image::codecs::webp::WebPEncoder;
use image::{ExtendedColorType, ImageEncoder, RgbImage};

/// The canvas in the preset's format; the error is the encoder's own.
pub fn encode(canvas: &RgbImage, preset: &Preset) -> Result<Vec<u8>, Source> {
    let (w, h) = canvas.dimensions();
    match preset.format {
        OutputFormat::Jpeg => {
            let mut out = Vec::with_capacity((w * h / 4) as usize);
            let mut encoder = jpeg_encoder::Encoder::new(&mut out, preset.quality);
            encoder.set_sampling_factor(jpeg_encoder::SamplingFactor::R_4_4_4);
            encoder.set_optimized_huffman_tables(false);
            encoder.encode(canvas.as_raw(), w as u16, h as u16, jpeg_encoder::ColorType::Rgb)?;
            Ok(out)
        }
        OutputFormat::Png => Ok(encode_png(canvas.as_raw(), w, h, ExtendedColorType::Rgb8)?),
        OutputFormat::Webp => {
            // The pure-Rust WebP encoder is lossless; `quality` does not apply.
            let mut out = Vec::new();
            WebPEncoder::new_lossless(&mut out).write_image(canvas.as_raw(), w, h, ExtendedColorType::Rgb8)?;
            Ok(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_format_round_trips() {
        let canvas = RgbImage::from_pixel(64, 48, image::Rgb([255, 255, 255]));
        for format in [OutputFormat::Jpeg, OutputFormat::Png, OutputFormat::Webp] {
            let bytes = encode(&canvas, &Preset { format, ..Preset::default() }).unwrap();
            let back = image::load_from_memory(&bytes).unwrap().to_rgb8();
            assert_eq!(back.dimensions(), (64, 48));
            assert!(back.pixels().all(|p| p.0 == [255, 255, 255]), "{format:?}");
        }
    }
}
