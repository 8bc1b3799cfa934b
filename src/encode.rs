//! Encode: a finished canvas into the preset's file format.
//!
//! JPEG uses 4:4:4 sampling: 4:2:0 would smear the product's colour into the white around it and
//! break the marketplace rule that the background is exactly white.

use crate::preset::{OutputFormat, Preset};
use image::RgbImage;

pub fn encode(canvas: &RgbImage, preset: &Preset) -> Result<Vec<u8>, String> {
    let (w, h) = canvas.dimensions();
    let mut out = Vec::with_capacity((w * h / 4) as usize);
    match preset.format {
        OutputFormat::Jpeg => {
            let mut encoder = jpeg_encoder::Encoder::new(&mut out, preset.quality);
            encoder.set_sampling_factor(jpeg_encoder::SamplingFactor::R_4_4_4);
            encoder.set_optimized_huffman_tables(false);
            encoder
                .encode(canvas.as_raw(), w as u16, h as u16, jpeg_encoder::ColorType::Rgb)
                .map_err(|e| format!("JPEG encoding failed: {e}"))?;
        }
        OutputFormat::Png => {
            use image::ImageEncoder;
            image::codecs::png::PngEncoder::new_with_quality(
                &mut out,
                image::codecs::png::CompressionType::Fast,
                image::codecs::png::FilterType::Adaptive,
            )
            .write_image(canvas.as_raw(), w, h, image::ExtendedColorType::Rgb8)
            .map_err(|e| format!("PNG encoding failed: {e}"))?;
        }
        OutputFormat::Webp => {
            // The pure-Rust WebP encoder is lossless; `quality` does not apply.
            use image::ImageEncoder;
            image::codecs::webp::WebPEncoder::new_lossless(&mut out)
                .write_image(canvas.as_raw(), w, h, image::ExtendedColorType::Rgb8)
                .map_err(|e| format!("WebP encoding failed: {e}"))?;
        }
    }
    Ok(out)
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
