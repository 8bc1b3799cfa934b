//! Imaging: pixel helpers shared by the stages — resizing, box filtering, PNG encoding and laying
//! transparent images on white. No stage logic lives here.

mod filter;
mod png;
mod resize;

pub(crate) use filter::box_mean;
pub(crate) use png::encode_png;
pub(crate) use resize::{resize, Filter, Layout};

use image::{DynamicImage, RgbImage};

/// An image with transparency laid on white, the marketplace colour; opaque images pass as they are.
pub(crate) fn flatten_on_white(image: DynamicImage) -> RgbImage {
    if !image.color().has_alpha() {
        return image.into_rgb8();
    }
    flatten_rgba_on_white(&image.into_rgba8())
}

/// [`flatten_on_white`] for an RGBA image, read in place.
pub(crate) fn flatten_rgba_on_white(rgba: &image::RgbaImage) -> RgbImage {
    let mut out = Vec::with_capacity(rgba.width() as usize * rgba.height() as usize * 3);
    for p in rgba.as_raw().chunks_exact(4) {
        let a = p[3] as u32;
        out.extend(p[..3].iter().map(|&c| ((c as u32 * a + 255 * (255 - a) + 127) / 255) as u8));
    }
    RgbImage::from_raw(rgba.width(), rgba.height(), out).expect("three bytes per pixel")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transparent_pixels_become_white_and_opaque_ones_keep_their_colour() {
        let mut rgba = image::RgbaImage::new(2, 1);
        rgba.put_pixel(0, 0, image::Rgba([10, 20, 30, 255]));
        rgba.put_pixel(1, 0, image::Rgba([10, 20, 30, 0]));
        let flat = flatten_on_white(DynamicImage::ImageRgba8(rgba));
        assert_eq!(flat.get_pixel(0, 0).0, [10, 20, 30]);
        assert_eq!(flat.get_pixel(1, 0).0, [255, 255, 255]);
    }
}
