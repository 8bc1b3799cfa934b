//! Encode: a finished canvas into the preset's file format.
//!
//! JPEG uses 4:4:4 sampling: 4:2:0 would smear the product's colour into the white around it and
//! break the marketplace rule that the background is exactly white. Which JPEG encoder does it:
//! [`jpeg`].

pub(crate) mod jpeg;

use crate::compose::Canvas;
use crate::error::Source;
use crate::imaging::encode_png;
use crate::preset::{OutputFormat, Preset};
use image::codecs::webp::WebPEncoder;
use image::{ExtendedColorType, ImageEncoder};

/// The canvas in the preset's format; the error is the encoder's own. A transparent canvas
/// keeps its alpha in PNG and WebP; JPEG has none (configuration refuses that preset).
pub fn encode(canvas: &Canvas, preset: &Preset) -> Result<Vec<u8>, Source> {
    let (pixels, (w, h), colour) = match canvas {
        Canvas::Opaque(rgb) => (rgb.as_raw(), rgb.dimensions(), ExtendedColorType::Rgb8),
        Canvas::Transparent(rgba) => (rgba.as_raw(), rgba.dimensions(), ExtendedColorType::Rgba8),
    };
    match (preset.format, canvas) {
        (OutputFormat::Jpeg, Canvas::Opaque(_)) => jpeg::ENCODER.encode(pixels, w, h, preset.quality),
        (OutputFormat::Jpeg, Canvas::Transparent(_)) => Err("a JPEG cannot hold transparency; use png or webp".into()),
        (OutputFormat::Png, _) => Ok(encode_png(pixels, w, h, colour)?),
        (OutputFormat::Webp, _) => {
            // The pure-Rust WebP encoder is lossless; `quality` does not apply.
            let mut out = Vec::new();
            WebPEncoder::new_lossless(&mut out).write_image(pixels, w, h, colour)?;
            Ok(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use image::{RgbImage, RgbaImage};

    #[test]
    fn every_format_round_trips() {
        let canvas = Canvas::Opaque(RgbImage::from_pixel(64, 48, image::Rgb([255, 255, 255])));
        for format in [OutputFormat::Jpeg, OutputFormat::Png, OutputFormat::Webp] {
            let bytes = encode(&canvas, &Preset { format, ..Preset::default() }).unwrap();
            let back = image::load_from_memory(&bytes).unwrap().to_rgb8();
            assert_eq!(back.dimensions(), (64, 48));
            assert!(back.pixels().all(|p| p.0 == [255, 255, 255]), "{format:?}");
        }
    }

    #[test]
    fn png_and_webp_keep_a_transparent_canvas_exactly() {
        let canvas = Canvas::Transparent(RgbaImage::from_fn(64, 48, |x, _| image::Rgba([200, 10, 10, (x * 4) as u8])));
        let Canvas::Transparent(expected) = &canvas else { unreachable!() };
        for format in [OutputFormat::Png, OutputFormat::Webp] {
            let bytes = encode(&canvas, &Preset { format, ..Preset::default() }).unwrap();
            let back = image::load_from_memory(&bytes).unwrap();
            assert!(back.color().has_alpha(), "{format:?}");
            assert_eq!(back.to_rgba8().get_pixel(40, 3), expected.get_pixel(40, 3), "{format:?}");
        }
        assert!(encode(&canvas, &Preset::default()).is_err(), "JPEG refuses transparency");
    }
}
