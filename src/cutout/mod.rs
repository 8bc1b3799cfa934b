//! Cut-outs: the product alone, as straight-alpha RGBA cropped to its alpha bounding box.
//!
//! Cropping here, once, means the cache stores only product pixels and every later compose starts
//! from the product's real extent.
//!
//! Layout: this file holds the cut-out and how it is made from a photo and a mask; `own` the
//! inputs that are cut-outs already (transparency, and the pipeline's decode); `scan` the
//! bounding-box scan both use.

mod own;
mod scan;

pub use own::{decode, has_real_transparency, Decoded};

use crate::imaging::box_mean;
use image::{GrayImage, RgbImage, RgbaImage};
use scan::bounding_box;

/// Alpha at or below this is "faint": a soft haze or shadow that must not grow the bounding box.
pub(crate) const FAINT_ALPHA: u8 = 16;

pub struct Cutout {
    pub image: RgbaImage,
}

impl Cutout {
    /// Joins a photo and its alpha mask (same size) and crops to the product; `None` when the mask
    /// holds no product at all. Edge pixels get their background's colour taken out (see
    /// [`decontaminate`]), so the product shows no halo of its old backdrop on a new one.
    pub fn from_mask(photo: &RgbImage, mask: &GrayImage) -> Option<Cutout> {
        debug_assert_eq!(photo.dimensions(), mask.dimensions());
        let (x, y, w, h) = bounding_box::<1, 0>(mask.as_raw(), mask.width(), mask.height())?;
        // Work on the box plus a margin of backdrop, which the colour estimate needs.
        let radius = edge_radius(photo);
        let (mx, my) = (x.saturating_sub(radius), y.saturating_sub(radius));
        let mw = (x + w + radius).min(photo.width()) - mx;
        let mh = (y + h + radius).min(photo.height()) - my;
        let region = join(photo, mask, (mx, my, mw, mh), radius);
        Some(Cutout { image: crop(&region, x - mx, y - my, w, h) })
    }

    /// The whole photo with `mask` as its alpha and its edges treated as in
    /// [`Cutout::from_mask`], uncropped (what `thumbgen cutout` writes); `None` when the mask holds
    /// no product.
    pub fn full_frame(photo: &RgbImage, mask: &GrayImage) -> Option<RgbaImage> {
        bounding_box::<1, 0>(mask.as_raw(), mask.width(), mask.height())?;
        Some(join(photo, mask, (0, 0, photo.width(), photo.height()), edge_radius(photo)))
    }

    /// Uses an image that already has transparency as the cut-out; `None` when it is fully transparent.
    pub fn from_transparent(image: RgbaImage) -> Option<Cutout> {
        let (x, y, w, h) = bounding_box::<4, 3>(image.as_raw(), image.width(), image.height())?;
        Some(Cutout { image: crop(&image, x, y, w, h) })
    }
}

/// How far around an edge pixel its product and backdrop colours are estimated.
fn edge_radius(photo: &RgbImage) -> u32 {
    (photo.width().max(photo.height()) / 200).max(4)
}

/// The rectangle `(x, y, w, h)` of the photo with the mask as alpha, edges decontaminated.
fn join(photo: &RgbImage, mask: &GrayImage, (x, y, w, h): (u32, u32, u32, u32), radius: u32) -> RgbaImage {
    let mut region = RgbaImage::new(w, h);
    for (ox, oy, pixel) in region.enumerate_pixels_mut() {
        let [r, g, b] = photo.get_pixel(x + ox, y + oy).0;
        *pixel = image::Rgba([r, g, b, mask.get_pixel(x + ox, y + oy)[0]]);
    }
    decontaminate(&mut region, radius as usize);
    region
}

/// A copy of a rectangle of an image, row by row (`imageops::crop_imm` copies pixel by pixel).
fn crop(image: &RgbaImage, x: u32, y: u32, w: u32, h: u32) -> RgbaImage {
    let stride = image.width() as usize * 4;
    let (from, len) = (x as usize * 4, w as usize * 4);
    let mut pixels = Vec::with_capacity(len * h as usize);
    for row in image.as_raw().chunks_exact(stride).skip(y as usize).take(h as usize) {
        pixels.extend_from_slice(&row[from..from + len]);
    }
    RgbaImage::from_raw(w, h, pixels).expect("the rectangle lies inside the image")
}

/// Estimates the product's own colour where the mask is partly transparent.
///
/// An edge pixel of the photo mixes product and backdrop: `I = a·F + (1 − a)·B`. The backdrop
/// colour `B` is the local average of the photo weighted by transparency, the product colour a
/// first guess `F̂` weighted by opacity; then `F = F̂ + a·(I − a·F̂ − (1 − a)·B)`, the one-step blur
/// fusion of Forte & Pitié (2021). Opaque and fully transparent pixels are left as they are.
///
/// The weighted averages are taken over cells of about a quarter of `radius` on a side and
/// interpolated between cell centres: they are smooth over a window of `2·radius + 1` anyway, and
/// a 12 MP photo's edge then costs a few milliseconds instead of a dozen full-size filter passes.
fn decontaminate(region: &mut RgbaImage, radius: usize) {
    let (w, h) = (region.width() as usize, region.height() as usize);
    if !region.pixels().any(|p| p[3] > 0 && p[3] < 255) {
        return;
    }
    let cell = (radius / 4).max(1);
    let (cw, ch) = (w.div_ceil(cell), h.div_ceil(cell));
    // Per cell: Σa, Σ(1 − a), then Σc·a and Σc·(1 − a) for each colour channel c.
    let mut sums = vec![vec![0f32; cw * ch]; 8];
    for (y, row) in region.as_raw().chunks_exact(w * 4).enumerate() {
        let cell_row = (y / cell) * cw;
        for (x, p) in row.chunks_exact(4).enumerate() {
            let k = cell_row + x / cell;
            let a = p[3] as f32 / 255.0;
            sums[0][k] += a;
            sums[1][k] += 1.0 - a;
            for c in 0..3 {
                let v = p[c] as f32 / 255.0;
                sums[2 + c][k] += v * a;
                sums[5 + c][k] += v * (1.0 - a);
            }
        }
    }
    let reach = radius.div_ceil(cell);
    let means: Vec<Vec<f32>> = sums.iter().map(|plane| box_mean(plane, cw as u32, ch as u32, reach)).collect();
    let floor = 1e-4 * (cell * cell) as f32;
    // Per cell and channel: the product's first guess F̂ and the backdrop B.
    let estimate =
        |c: usize, k: usize| (means[2 + c][k] / means[0][k].max(floor), means[5 + c][k] / means[1][k].max(floor));
    let axis = |pos: usize, cells: usize| {
        let s = ((pos as f32 + 0.5) / cell as f32 - 0.5).clamp(0.0, (cells - 1) as f32);
        let i0 = s.floor() as usize;
        (i0, (i0 + 1).min(cells - 1), s - i0 as f32)
    };
    for (y, row) in region.chunks_exact_mut(w * 4).enumerate() {
        let (y0, y1, fy) = axis(y, ch);
        for (x, pixel) in row.chunks_exact_mut(4).enumerate() {
            let a = pixel[3] as f32 / 255.0;
            if pixel[3] == 0 || pixel[3] == 255 {
                continue;
            }
            let (x0, x1, fx) = axis(x, cw);
            let corners = [
                (y0 * cw + x0, (1.0 - fx) * (1.0 - fy)),
                (y0 * cw + x1, fx * (1.0 - fy)),
                (y1 * cw + x0, (1.0 - fx) * fy),
                (y1 * cw + x1, fx * fy),
            ];
            for (c, channel) in pixel[..3].iter_mut().enumerate() {
                let (mut f_hat, mut b) = (0.0, 0.0);
                for &(k, weight) in &corners {
                    let (f, bg) = estimate(c, k);
                    f_hat += f * weight;
                    b += bg * weight;
                }
                let i = *channel as f32 / 255.0;
                let f = f_hat + a * (i - a * f_hat - (1.0 - a) * b);
                *channel = (f.clamp(0.0, 1.0) * 255.0).round() as u8;
            }
        }
    }
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
    fn edge_pixels_lose_the_backdrop_colour() {
        // A red product on a white backdrop; the edge column is half covered, so the photo shows pink.
        let (w, h) = (40u32, 40u32);
        let photo = RgbImage::from_fn(w, h, |x, _| match x {
            0..20 => image::Rgb([255, 255, 255]),
            20 => image::Rgb([228, 128, 128]),
            _ => image::Rgb([200, 0, 0]),
        });
        let mask = GrayImage::from_fn(w, h, |x, _| {
            image::Luma([match x {
                0..20 => 0,
                20 => 128,
                _ => 255,
            }])
        });
        let cut = Cutout::from_mask(&photo, &mask).unwrap();
        let edge = cut.image.get_pixel(0, 20);
        assert_eq!(edge[3], 128);
        assert!(edge[1] < 40 && edge[0] > 170, "the edge keeps the product's red, not the backdrop's white: {edge:?}");
    }

    #[test]
    fn an_empty_mask_has_no_product() {
        let photo = RgbImage::new(4, 4);
        assert!(Cutout::from_mask(&photo, &GrayImage::new(4, 4)).is_none());
        assert!(Cutout::from_transparent(RgbaImage::new(4, 4)).is_none());
    }
}
