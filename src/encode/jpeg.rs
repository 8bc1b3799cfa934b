//! JPEG: an RGB canvas at the preset's quality, every component at full resolution (4:4:4).
//!
//! Two encoders make the same file format from the same pixels: libjpeg-turbo, the system's C
//! library, when the build found it (`thumbgen_libjpeg`, see build.rs), and the pure-Rust
//! `jpeg-encoder` otherwise. Both use the standard quantisation tables scaled to the quality and
//! the standard Huffman tables, so their files differ only by rounding in the colour transform
//! and the DCT; both keep exact white. libjpeg-turbo's SIMD code is 3.3 times faster (4.4 ms
//! against 14.4 ms per 1200² output, BENCHMARKS.md), which matters here: with the pure-Rust
//! encoder, encoding was the largest part of a thumbnail's CPU after the removal.

use crate::error::Source;

/// The encoder this build uses.
pub(crate) const ENCODER: Encoder = if cfg!(thumbgen_libjpeg) { Encoder::Libjpeg } else { Encoder::Rust };

/// A JPEG encoder; see the module documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Encoder {
    /// libjpeg-turbo through `libjpeg.c`.
    Libjpeg,
    /// `jpeg-encoder`, built everywhere.
    Rust,
}

impl Encoder {
    /// `pixels`: `height` rows of `width` RGB triples. The error is the encoder's own, or says
    /// that `pixels` is not such a canvas (the C encoder reads exactly that many bytes).
    pub(crate) fn encode(self, pixels: &[u8], width: u32, height: u32, quality: u8) -> Result<Vec<u8>, Source> {
        if pixels.len() as u64 != u64::from(width) * u64::from(height) * 3 {
            return Err(format!("{} bytes are not an RGB canvas of {width}x{height}", pixels.len()).into());
        }
        match self {
            #[cfg(thumbgen_libjpeg)]
            Encoder::Libjpeg => libjpeg::encode(pixels, width, height, quality),
            #[cfg(not(thumbgen_libjpeg))]
            Encoder::Libjpeg => Err("this thumbgen was built without libjpeg-turbo".into()),
            Encoder::Rust => {
                let side =
                    |n: u32| u16::try_from(n).map_err(|_| format!("a JPEG side is at most 65535 pixels, not {n}"));
                let mut out = Vec::with_capacity(pixels.len() / 4);
                let mut encoder = jpeg_encoder::Encoder::new(&mut out, quality);
                encoder.set_sampling_factor(jpeg_encoder::SamplingFactor::R_4_4_4);
                encoder.set_optimized_huffman_tables(false);
                encoder.encode(pixels, side(width)?, side(height)?, jpeg_encoder::ColorType::Rgb)?;
                Ok(out)
            }
        }
    }

    /// How the start-up log names it.
    pub(crate) fn describe(self) -> String {
        match self {
            #[cfg(thumbgen_libjpeg)]
            Encoder::Libjpeg => libjpeg::describe(),
            #[cfg(not(thumbgen_libjpeg))]
            Encoder::Libjpeg => "libjpeg-turbo (not built)".into(),
            Encoder::Rust => "jpeg-encoder (pure Rust)".into(),
        }
    }
}

#[cfg(thumbgen_libjpeg)]
mod libjpeg {
    use crate::error::Source;
    use std::ffi::{c_char, c_int, c_long, c_uchar, c_uint, CStr};

    // Defined in libjpeg.c.
    extern "C" {
        fn thumbgen_jpeg_encode_rgb(
            pixels: *const c_uchar,
            width: c_uint,
            height: c_uint,
            stride: usize,
            quality: c_int,
            out: *mut *mut c_uchar,
            out_size: *mut usize,
            message: *mut c_char,
            message_size: usize,
        ) -> c_int;
        fn thumbgen_jpeg_free(buffer: *mut c_uchar);
        fn thumbgen_jpeg_version() -> c_long;
    }

    pub(super) fn encode(pixels: &[u8], width: u32, height: u32, quality: u8) -> Result<Vec<u8>, Source> {
        // libjpeg's own limit (JPEG_MAX_DIMENSION) is checked by the library too; this keeps the
        // size arithmetic in libjpeg.c far from overflow.
        if width == 0 || height == 0 || width > 65_500 || height > 65_500 {
            return Err(format!("a JPEG of {width}x{height} pixels cannot be made").into());
        }
        let mut out: *mut c_uchar = std::ptr::null_mut();
        let mut size = 0usize;
        let mut message = [0 as c_char; 200];
        // SAFETY: `pixels` holds `height` rows of `width * 3` bytes (checked by the caller), read
        // only during the call; `out`, `size` and `message` are valid for writes, and `message`'s
        // length is passed with it.
        let status = unsafe {
            thumbgen_jpeg_encode_rgb(
                pixels.as_ptr(),
                width,
                height,
                width as usize * 3,
                c_int::from(quality.clamp(1, 100)),
                &mut out,
                &mut size,
                message.as_mut_ptr(),
                message.len(),
            )
        };
        if status != 0 || out.is_null() {
            // SAFETY: libjpeg.c NUL-terminates the message within its length on failure.
            let text = unsafe { CStr::from_ptr(message.as_ptr()) }.to_string_lossy().into_owned();
            return Err(format!("libjpeg-turbo: {text}").into());
        }
        // SAFETY: on success `out` points to `size` initialised bytes that libjpeg.c allocated and
        // nothing else frees; it is copied, then released exactly once.
        let bytes = unsafe { std::slice::from_raw_parts(out, size) }.to_vec();
        unsafe { thumbgen_jpeg_free(out) };
        Ok(bytes)
    }

    pub(super) fn describe() -> String {
        // SAFETY: returns a constant.
        let v = unsafe { thumbgen_jpeg_version() };
        format!("libjpeg-turbo {}.{}.{}", v / 1_000_000, v / 1_000 % 1_000, v % 1_000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A canvas like a thumbnail: exact white around a coloured, textured product.
    fn canvas(width: u32, height: u32) -> Vec<u8> {
        let mut pixels = Vec::with_capacity(width as usize * height as usize * 3);
        for y in 0..height {
            for x in 0..width {
                let inside = (width / 4..3 * width / 4).contains(&x) && (height / 5..4 * height / 5).contains(&y);
                let px = if inside {
                    [(x * 7 % 200) as u8 + 30, (y * 5 % 180) as u8 + 20, ((x ^ y) % 160) as u8 + 40]
                } else {
                    [255, 255, 255]
                };
                pixels.extend_from_slice(&px);
            }
        }
        pixels
    }

    fn decode(bytes: &[u8]) -> image::RgbImage {
        image::load_from_memory_with_format(bytes, image::ImageFormat::Jpeg).expect("a valid JPEG").to_rgb8()
    }

    #[test]
    fn the_built_encoder_keeps_white_exact_and_the_product_close() {
        let (w, h) = (240, 180);
        let pixels = canvas(w, h);
        let back = decode(&ENCODER.encode(&pixels, w, h, 90).unwrap());
        assert_eq!(back.dimensions(), (w, h));
        for (x, y) in [(0, 0), (w - 1, h - 1), (10, h / 2), (w / 2, 5)] {
            assert_eq!(back.get_pixel(x, y).0, [255, 255, 255], "white at {x},{y} with {}", ENCODER.describe());
        }
        let error: f64 =
            back.as_raw().iter().zip(&pixels).map(|(&a, &b)| (f64::from(a) - f64::from(b)).abs()).sum::<f64>()
                / pixels.len() as f64;
        assert!(error < 4.0, "mean error {error:.2} at Q90 with {}", ENCODER.describe());
    }

    #[test]
    fn an_image_too_large_for_a_jpeg_or_pixels_of_the_wrong_size_are_errors_not_crashes() {
        let pixels = vec![255; 70_000 * 3];
        assert!(ENCODER.encode(&pixels, 70_000, 1, 90).is_err());
        assert!(Encoder::Rust.encode(&pixels, 70_000, 1, 90).is_err());
        for encoder in [ENCODER, Encoder::Rust] {
            assert!(encoder.encode(&pixels[..299], 10, 10, 90).is_err(), "{encoder:?}: one byte short");
        }
    }

    /// A machine with libjpeg-turbo's header builds the fast encoder: a build that fell back
    /// without saying so would pass every other test here.
    #[test]
    fn a_machine_with_libjpeg_turbos_header_builds_the_libjpeg_encoder() {
        let header = ["/usr/include/jpeglib.h", "/usr/include/x86_64-linux-gnu/jpeglib.h"];
        if header.iter().any(|h| std::path::Path::new(h).exists()) && std::env::var_os("THUMBGEN_LIBJPEG").is_none() {
            assert_eq!(
                ENCODER,
                Encoder::Libjpeg,
                "jpeglib.h is here, but the build fell back to {}",
                ENCODER.describe()
            );
        }
    }

    /// Where the build has libjpeg-turbo, its files match the pure-Rust encoder's: the same
    /// pixels within rounding, and no larger at the same quality but for the headers' few bytes
    /// (measured: 8458/8459, 11148/11145 and 26223/26225 bytes at Q75/90/100).
    #[cfg(thumbgen_libjpeg)]
    #[test]
    fn libjpeg_turbo_and_the_rust_encoder_make_the_same_picture_at_no_larger_size() {
        assert_eq!(ENCODER, Encoder::Libjpeg, "a build with libjpeg-turbo uses it");
        assert!(ENCODER.describe().starts_with("libjpeg-turbo 2."), "{}", ENCODER.describe());
        let (w, h) = (320, 240);
        let pixels = canvas(w, h);
        for quality in [75, 90, 100] {
            let turbo = Encoder::Libjpeg.encode(&pixels, w, h, quality).unwrap();
            let rust = Encoder::Rust.encode(&pixels, w, h, quality).unwrap();
            let (a, b) = (decode(&turbo), decode(&rust));
            let worst = a.as_raw().iter().zip(b.as_raw()).map(|(&x, &y)| x.abs_diff(y)).max().unwrap();
            assert!(worst <= 6, "Q{quality}: the two encoders' pixels differ by up to {worst}");
            assert!(
                turbo.len() <= rust.len() + 64,
                "Q{quality}: libjpeg-turbo {} bytes, jpeg-encoder {} bytes",
                turbo.len(),
                rust.len()
            );
        }
    }
}
