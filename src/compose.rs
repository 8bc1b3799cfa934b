//! Compose: place the cut-out on a canvas — plain colour, a background photo, or nothing (a
//! transparent preset).
//!
//! The cut-out is resized once per preset in premultiplied alpha (no dark fringes from
//! transparent pixels' colour bleeding in) and then blended onto each canvas with the
//! premultiplied "over" operator. A fully transparent pixel adds exactly nothing, so the white
//! canvas stays exactly 255 wherever there is no product.

use crate::cutout::Cutout;
use crate::imaging::{box_mean, resize, Filter, Layout};
use crate::preset::{Anchor, Backdrop, Preset};
use fast_image_resize as fr;
use image::{RgbImage, RgbaImage};

/// The product resized for one preset, premultiplied, with its place on the canvas.
pub struct Placed {
    /// Width and height in pixels.
    size: (u32, u32),
    /// A byte per channel, so that blending is one straight loop: the premultiplied colour
    /// (three bytes a pixel) and what each pixel leaves of the canvas below (`255 − alpha`,
    /// repeated for the three channels).
    colour: Vec<u8>,
    keep: Vec<u8>,
    x: u32,
    y: u32,
    shadow: Option<Shadow>,
}

/// A soft drop shadow: blurred alpha, already offset to canvas coordinates.
struct Shadow {
    alpha: Vec<u8>,
    x: i64,
    y: i64,
    w: u32,
    h: u32,
}

/// Shadow look: opacity, blur radius and drop as fractions of the canvas.
const SHADOW_OPACITY: f32 = 0.35;
const SHADOW_BLUR: f32 = 0.012;
const SHADOW_DROP: f32 = 0.015;

/// Scales the cut-out so its longer side takes `fill` of the canvas (within the margin) and
/// positions it by the preset's anchor.
pub fn place(cutout: &Cutout, preset: &Preset) -> Placed {
    let (cw, ch) = cutout.image.dimensions();
    let box_w = (preset.width as f32 * preset.fill).min((preset.width - 2 * preset.margin) as f32);
    let box_h = (preset.height as f32 * preset.fill).min((preset.height - 2 * preset.margin) as f32);
    let scale = (box_w / cw as f32).min(box_h / ch as f32);
    let w = ((cw as f32 * scale).round() as u32).clamp(1, preset.width);
    let h = ((ch as f32 * scale).round() as u32).clamp(1, preset.height);

    let straight = fr::images::ImageRef::new(cw, ch, cutout.image.as_raw(), fr::PixelType::U8x4)
        .expect("buffer matches its dimensions");
    let mut src = fr::images::Image::new(cw, ch, fr::PixelType::U8x4);
    fr::MulDiv::default().multiply_alpha(&straight, &mut src).expect("U8x4 supports alpha");
    let scaled = resize(src.buffer(), cw, ch, Layout::PremultipliedRgba, (w, h), Filter::Lanczos3, None);
    let premultiplied = RgbaImage::from_raw(w, h, scaled).expect("buffer matches");

    let x = (preset.width - w) / 2;
    // Top and bottom anchors keep the same gap to their edge that `fill` leaves when centred.
    let edge_gap = preset.margin.max((preset.height - box_h as u32) / 2);
    let y = match preset.anchor {
        Anchor::Center => (preset.height - h) / 2,
        Anchor::Top => edge_gap,
        Anchor::Bottom => preset.height - edge_gap - h,
    };
    let shadow = preset.shadow.then(|| make_shadow(&premultiplied, x, y, preset));
    Placed::new(&premultiplied, x, y, shadow)
}

fn make_shadow(product: &RgbaImage, x: u32, y: u32, preset: &Preset) -> Shadow {
    let side = preset.width.min(preset.height) as f32;
    let radius = ((side * SHADOW_BLUR) as usize).max(1);
    let pad = radius as u32 * 3;
    let (w, h) = (product.width() + 2 * pad, product.height() + 2 * pad);
    let mut alpha = vec![0f32; (w * h) as usize];
    for (px, py, p) in product.enumerate_pixels() {
        alpha[((py + pad) * w + px + pad) as usize] = p[3] as f32;
    }
    // Three box passes approximate a Gaussian.
    for _ in 0..3 {
        alpha = box_mean(&alpha, w, h, radius);
    }
    let drop = (side * SHADOW_DROP) as i64;
    Shadow {
        alpha: alpha.iter().map(|v| (v * SHADOW_OPACITY).round().clamp(0.0, 255.0) as u8).collect(),
        x: x as i64 - pad as i64,
        y: y as i64 - pad as i64 + drop,
        w,
        h,
    }
}

/// A finished canvas: opaque, or with straight alpha for a transparent preset.
pub enum Canvas {
    Opaque(RgbImage),
    Transparent(RgbaImage),
}

/// The product (and its shadow) on the preset's own backdrop: its colour, or nothing.
pub fn on_backdrop(placed: &Placed, preset: &Preset) -> Canvas {
    match preset.background {
        Backdrop::Colour(colour) => {
            let mut canvas = RgbImage::from_pixel(preset.width, preset.height, image::Rgb(colour.0));
            blend(&mut canvas, placed);
            Canvas::Opaque(canvas)
        }
        Backdrop::Transparent => Canvas::Transparent(alone(placed, preset)),
    }
}

/// The product alone on a transparent canvas, in straight alpha: the shadow is black with its
/// own alpha, the product laid over it with the premultiplied "over" operator.
fn alone(placed: &Placed, preset: &Preset) -> RgbaImage {
    let mut canvas = RgbaImage::new(preset.width, preset.height);
    if let Some(shadow) = &placed.shadow {
        shadow.each(&canvas.dimensions(), |x, y, a| canvas.get_pixel_mut(x, y)[3] = a);
    }
    placed.each(|x, y, s| {
        let a = s[3] as u32;
        let d = canvas.get_pixel_mut(x, y);
        // The canvas holds only black shadow so far: its premultiplied colour is 0.
        let alpha = a + (d[3] as u32 * (255 - a) + 127) / 255;
        for c in 0..3 {
            d[c] = ((s[c] as u32 * 255 + alpha / 2) / alpha).min(255) as u8;
        }
        d[3] = alpha.min(255) as u8;
    });
    canvas
}

/// The background scaled to cover the whole canvas, centre-cropped to its aspect ratio.
pub fn cover(background: &RgbImage, width: u32, height: u32) -> RgbImage {
    let (bw, bh) = (background.width() as f64, background.height() as f64);
    let scale = (width as f64 / bw).max(height as f64 / bh);
    let (crop_w, crop_h) = (width as f64 / scale, height as f64 / scale);
    let crop = ((bw - crop_w) / 2.0, (bh - crop_h) / 2.0, crop_w, crop_h);
    let (w, h) = background.dimensions();
    let pixels = resize(background.as_raw(), w, h, Layout::Rgb, (width, height), Filter::Lanczos3, Some(crop));
    RgbImage::from_raw(width, height, pixels).expect("buffer matches")
}

impl Placed {
    /// The product at canvas position (`x`, `y`): its colour is clamped to its alpha (Lanczos
    /// overshoot may leave it above, and "over" must never exceed 255) and split for [`Placed::over`].
    fn new(premultiplied: &RgbaImage, x: u32, y: u32, shadow: Option<Shadow>) -> Placed {
        let channels = premultiplied.width() as usize * premultiplied.height() as usize * 3;
        let (mut colour, mut keep) = (vec![0; channels], vec![0; channels]);
        let split = colour.chunks_exact_mut(3).zip(keep.chunks_exact_mut(3));
        for (p, (c, k)) in premultiplied.chunks_exact(4).zip(split) {
            let a = p[3];
            for i in 0..3 {
                c[i] = p[i].min(a);
                k[i] = 255 - a;
            }
        }
        Placed { size: premultiplied.dimensions(), colour, keep, x, y, shadow }
    }

    /// Lays the product over an opaque canvas with the premultiplied "over" operator, a row at a
    /// time in one straight loop over bytes (which the compiler vectorises): a transparent pixel
    /// (colour 0, keeps 255) leaves the canvas exactly as it was.
    fn over(&self, canvas: &mut RgbImage) {
        let (row, canvas_row) = (self.size.0 as usize * 3, canvas.width() as usize * 3);
        let rows = self.colour.chunks_exact(row).zip(self.keep.chunks_exact(row));
        let canvas_rows = canvas.chunks_exact_mut(canvas_row).skip(self.y as usize);
        for ((colour, keep), dst) in rows.zip(canvas_rows) {
            let dst = &mut dst[self.x as usize * 3..][..row];
            for ((d, &c), &k) in dst.iter_mut().zip(colour).zip(keep) {
                *d = (c as u16 + div255(*d as u16 * k as u16)).min(255) as u8;
            }
        }
    }

    /// Calls `draw(x, y, pixel)` with the canvas position of every product pixel that is not
    /// fully transparent (premultiplied RGBA).
    fn each(&self, mut draw: impl FnMut(u32, u32, &image::Rgba<u8>)) {
        let pixels = self.colour.chunks_exact(3).zip(self.keep.chunks_exact(3));
        for (i, (c, k)) in (0u32..).zip(pixels) {
            if k[0] != 255 {
                let (px, py) = (i % self.size.0, i / self.size.0);
                draw(self.x + px, self.y + py, &image::Rgba([c[0], c[1], c[2], 255 - k[0]]));
            }
        }
    }
}

impl Shadow {
    /// Calls `draw(x, y, alpha)` for every shadow pixel with some alpha inside a canvas of
    /// `size` (w, h).
    fn each(&self, size: &(u32, u32), mut draw: impl FnMut(u32, u32, u8)) {
        for sy in 0..self.h as i64 {
            for sx in 0..self.w as i64 {
                let (cx, cy) = (self.x + sx, self.y + sy);
                if cx < 0 || cy < 0 || cx >= size.0 as i64 || cy >= size.1 as i64 {
                    continue;
                }
                let a = self.alpha[(sy * self.w as i64 + sx) as usize];
                if a > 0 {
                    draw(cx as u32, cy as u32, a);
                }
            }
        }
    }
}

/// Draws the shadow (if any) and then the product onto `canvas`.
pub fn blend(canvas: &mut RgbImage, placed: &Placed) {
    if let Some(shadow) = &placed.shadow {
        shadow.each(&canvas.dimensions(), |x, y, a| {
            let p = canvas.get_pixel_mut(x, y);
            for c in 0..3 {
                p[c] = ((p[c] as u32 * (255 - a as u32) + 127) / 255) as u8;
            }
        });
    }
    placed.over(canvas);
}

/// `v / 255` rounded to nearest, exact for every `v` up to 255·255 (a product of two bytes),
/// without a division and in 16 bits: what lets the blend loop vectorise.
fn div255(v: u16) -> u16 {
    let t = v + 128;
    (t + (t >> 8)) >> 8
}

#[cfg(test)]
mod tests {
    use super::*;

    fn red_square(side: u32) -> Cutout {
        Cutout { image: RgbaImage::from_pixel(side, side / 2, image::Rgba([200, 0, 0, 255])) }
    }

    #[test]
    fn product_fills_85_percent_and_is_centred() {
        let preset = Preset::default();
        let placed = place(&red_square(400), &preset);
        assert_eq!(placed.size, (1020, 510));
        assert_eq!((placed.x, placed.y), (90, 345));
    }

    #[test]
    fn white_stays_exactly_white_around_the_product() {
        let preset = Preset::default();
        let mut cut = red_square(300);
        for x in 0..300 {
            cut.image.put_pixel(x, 0, image::Rgba([0, 0, 0, 0])); // transparent row with black colour
        }
        let canvas = opaque(on_backdrop(&place(&cut, &preset), &preset));
        assert_eq!(canvas.get_pixel(10, 10).0, [255, 255, 255]);
        assert_eq!(canvas.get_pixel(600, 600).0, [200, 0, 0]);
        let edge_row = canvas.get_pixel(600, 343).0;
        assert!(edge_row[1] > 100, "transparent black must not darken the edge: {edge_row:?}");
    }

    #[test]
    fn bottom_anchor_rests_on_the_margin() {
        let preset = Preset { anchor: Anchor::Bottom, ..Preset::default() };
        let placed = place(&red_square(400), &preset);
        assert_eq!(placed.y + 510, 1200 - 90);
    }

    #[test]
    fn cover_fills_the_canvas_from_a_wide_background() {
        let bg =
            RgbImage::from_fn(400, 100, |x, _| if x < 200 { image::Rgb([0, 0, 255]) } else { image::Rgb([0, 255, 0]) });
        let out = cover(&bg, 100, 100);
        assert_eq!(out.dimensions(), (100, 100));
        assert_eq!(out.get_pixel(5, 50).0, [0, 0, 255]);
        assert_eq!(out.get_pixel(95, 50).0, [0, 255, 0]);
    }

    #[test]
    fn shadow_darkens_below_the_product() {
        let preset = Preset { shadow: true, ..Preset::default() };
        let placed = place(&red_square(400), &preset);
        let canvas = opaque(on_backdrop(&placed, &preset));
        let below = canvas.get_pixel(600, placed.y + 510 + 5);
        assert!(below[0] < 250, "{below:?}");
        assert_eq!(canvas.get_pixel(5, 5).0, [255, 255, 255]);
    }

    #[test]
    fn the_division_by_255_without_dividing_rounds_like_dividing() {
        for v in 0..=255 * 255u16 {
            assert_eq!(div255(v) as u32, (v as u32 + 127) / 255, "{v}");
        }
    }

    #[test]
    fn blending_gives_the_exact_over_operator_at_every_pixel_and_nothing_outside() {
        let mut seed = 11u32;
        let mut next = || {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            (seed >> 16) as u8
        };
        let product = RgbaImage::from_fn(37, 23, |_, _| {
            let a = next();
            // Premultiplied: no colour above its alpha.
            image::Rgba([next().min(a), next().min(a), next().min(a), a])
        });
        let canvas = RgbImage::from_fn(64, 40, |_, _| image::Rgb([next(), next(), next()]));
        let placed = Placed::new(&product, 9, 13, None);
        let mut blended = canvas.clone();
        blend(&mut blended, &placed);
        for (x, y, d) in canvas.enumerate_pixels() {
            let inside = (9..9 + 37).contains(&x) && (13..13 + 23).contains(&y);
            let expected = match inside {
                false => d.0,
                true => {
                    let s = product.get_pixel(x - 9, y - 13);
                    let keep = 255 - s[3] as u32;
                    [0, 1, 2].map(|c| (s[c] as u32 + (d[c] as u32 * keep + 127) / 255) as u8)
                }
            };
            assert_eq!(blended.get_pixel(x, y).0, expected, "at {x},{y}");
        }
    }

    fn opaque(canvas: Canvas) -> RgbImage {
        match canvas {
            Canvas::Opaque(rgb) => rgb,
            Canvas::Transparent(_) => panic!("a colour backdrop makes an opaque canvas"),
        }
    }

    #[test]
    fn a_transparent_backdrop_keeps_only_the_product_and_its_shadow() {
        let preset = Preset { background: Backdrop::Transparent, shadow: true, ..Preset::default() };
        let placed = place(&red_square(400), &preset);
        let Canvas::Transparent(canvas) = on_backdrop(&placed, &preset) else { panic!("transparent") };
        assert_eq!(canvas.dimensions(), (1200, 1200));
        assert_eq!(canvas.get_pixel(5, 5)[3], 0, "nothing where there is no product");
        assert_eq!(canvas.get_pixel(600, 600).0, [200, 0, 0, 255], "the product keeps its straight colour");
        let below = canvas.get_pixel(600, placed.y + 510 + 5);
        assert!(below[3] > 0 && below[0] == 0, "the shadow is translucent black: {below:?}");
    }
}
