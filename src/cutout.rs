//! Cut-outs: the product alone, as straight-alpha RGBA cropped to its alpha bounding box.
//!
//! Cropping here, once, means the cache stores only product pixels and every later compose starts
//! from the product's real extent.

use image::{DynamicImage, GrayImage, RgbImage, RgbaImage};

/// Alpha at or below this is "faint": a soft haze or shadow that must not grow the bounding box.
pub const FAINT_ALPHA: u8 = 16;

/// Share of pixels that must be clearly transparent for a photo to count as a ready cut-out;
/// a few stray transparent pixels in an otherwise opaque PNG do not make it one.
const TRANSPARENT_SHARE: f64 = 0.005;

pub struct Cutout {
    pub image: RgbaImage,
}

/// True when the image carries real transparency, so it is already a cut-out and needs no removal.
pub fn has_real_transparency(image: &DynamicImage) -> bool {
    if !image.color().has_alpha() {
        return false;
    }
    let rgba = image.to_rgba8();
    let transparent = rgba.pixels().filter(|p| p[3] < 128).count();
    transparent as f64 >= TRANSPARENT_SHARE * (rgba.width() as f64 * rgba.height() as f64)
}

impl Cutout {
    /// Joins a photo and its alpha mask (same size) and crops to the product; `None` when the mask
    /// holds no product at all.
    pub fn from_mask(photo: &RgbImage, mask: &GrayImage) -> Option<Cutout> {
        debug_assert_eq!(photo.dimensions(), mask.dimensions());
        let (x, y, w, h) = bounding_box(mask.width(), mask.height(), |px, py| mask.get_pixel(px, py)[0])?;
        let mut out = RgbaImage::new(w, h);
        for (ox, oy, pixel) in out.enumerate_pixels_mut() {
            let [r, g, b] = photo.get_pixel(x + ox, y + oy).0;
            let a = mask.get_pixel(x + ox, y + oy)[0];
            *pixel = image::Rgba([r, g, b, a]);
        }
        Some(Cutout { image: out })
    }

    /// Uses an image that already has transparency as the cut-out; `None` when it is fully transparent.
    pub fn from_transparent(image: RgbaImage) -> Option<Cutout> {
        let (x, y, w, h) = bounding_box(image.width(), image.height(), |px, py| image.get_pixel(px, py)[3])?;
        let cropped = image::imageops::crop_imm(&image, x, y, w, h).to_image();
        Some(Cutout { image: cropped })
    }
}

/// Bounding box `(x, y, w, h)` of the pixels whose alpha is above [`FAINT_ALPHA`].
fn bounding_box(width: u32, height: u32, alpha: impl Fn(u32, u32) -> u8) -> Option<(u32, u32, u32, u32)> {
    let row_has = |y: u32| (0..width).any(|x| alpha(x, y) > FAINT_ALPHA);
    let top = (0..height).find(|&y| row_has(y))?;
    let bottom = (top..height).rev().find(|&y| row_has(y))?;
    // Only the rows inside the box can move the left and right edges.
    let col_has = |x: u32| (top..=bottom).any(|y| alpha(x, y) > FAINT_ALPHA);
    let left = (0..width).find(|&x| col_has(x))?;
    let right = (left..width).rev().find(|&x| col_has(x))?;
    Some((left, top, right - left + 1, bottom - top + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crops_to_the_solid_part_ignoring_faint_alpha() {
        let mut mask = GrayImage::new(20, 10);
        for y in 2..5 {
            for x in 3..9 {
                mask.put_pixel(x, y, image::Luma([255]));
            }
        }
        mask.put_pixel(19, 9, image::Luma([FAINT_ALPHA])); // haze in a corner
        let photo = RgbImage::from_pixel(20, 10, image::Rgb([10, 20, 30]));
        let cut = Cutout::from_mask(&photo, &mask).unwrap();
        assert_eq!(cut.image.dimensions(), (6, 3));
        assert_eq!(cut.image.get_pixel(0, 0).0, [10, 20, 30, 255]);
    }

    #[test]
    fn an_empty_mask_has_no_product() {
        let photo = RgbImage::new(4, 4);
        assert!(Cutout::from_mask(&photo, &GrayImage::new(4, 4)).is_none());
        assert!(Cutout::from_transparent(RgbaImage::new(4, 4)).is_none());
    }

    #[test]
    fn transparency_needs_a_real_share_of_clear_pixels() {
        let mut img = RgbaImage::from_pixel(100, 100, image::Rgba([1, 2, 3, 255]));
        img.put_pixel(0, 0, image::Rgba([0, 0, 0, 0]));
        assert!(!has_real_transparency(&DynamicImage::ImageRgba8(img.clone())));
        for x in 0..100 {
            img.put_pixel(x, 0, image::Rgba([0, 0, 0, 0]));
        }
        assert!(has_real_transparency(&DynamicImage::ImageRgba8(img)));
        assert!(!has_real_transparency(&DynamicImage::ImageRgb8(RgbImage::new(2, 2))));
    }
}
