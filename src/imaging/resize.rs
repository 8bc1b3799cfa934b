//! Resizing through `fast_image_resize` (SIMD convolution), the one way every stage scales pixels.

use fast_image_resize as fr;

/// Pixel layouts the stages resize.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Layout {
    Grey,
    Rgb,
    /// RGBA whose colour is already multiplied by its alpha (resized as four plain channels).
    PremultipliedRgba,
}

#[derive(Clone, Copy, Debug)]
pub(crate) enum Filter {
    /// Sharp: photos, products and backgrounds.
    Lanczos3,
    /// Smooth and cheap (a triangle, widened when shrinking): masks and the console's previews.
    Bilinear,
}

/// Scales `pixels` (`width`×`height`) to exactly `to` (w, h). With `crop` (x, y, w, h in source
/// pixels, fractions allowed), only that rectangle of the source is scaled.
pub(crate) fn resize(
    pixels: &[u8],
    width: u32,
    height: u32,
    layout: Layout,
    to: (u32, u32),
    filter: Filter,
    crop: Option<(f64, f64, f64, f64)>,
) -> Vec<u8> {
    let pixel_type = match layout {
        Layout::Grey => fr::PixelType::U8,
        Layout::Rgb => fr::PixelType::U8x3,
        Layout::PremultipliedRgba => fr::PixelType::U8x4,
    };
    let src = fr::images::ImageRef::new(width, height, pixels, pixel_type).expect("the buffer matches its size");
    let mut dst = fr::images::Image::new(to.0, to.1, pixel_type);
    let algorithm = match filter {
        Filter::Lanczos3 => fr::ResizeAlg::Convolution(fr::FilterType::Lanczos3),
        Filter::Bilinear => fr::ResizeAlg::Convolution(fr::FilterType::Bilinear),
    };
    let mut options = fr::ResizeOptions::new().resize_alg(algorithm).use_alpha(false);
    if let Some((x, y, w, h)) = crop {
        options = options.crop(x, y, w, h);
    }
    fr::Resizer::new().resize(&src, &mut dst, &options).expect("resize between valid images");
    dst.into_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flat_image_stays_flat_at_any_size() {
        let grey = vec![77u8; 40 * 30];
        let out = resize(&grey, 40, 30, Layout::Grey, (7, 9), Filter::Lanczos3, None);
        assert_eq!(out.len(), 63);
        assert!(out.iter().all(|&v| v == 77));
    }
}
