//! Synthetic product photos with exact ground-truth masks: a shaded product on a studio
//! backdrop (gradient, vignette, sensor noise), rendered with 4×4 supersampling so the mask has
//! real anti-aliased edges.

use image::{GrayImage, RgbImage};

/// Product shapes, as "is this point inside" in pixel coordinates.
#[derive(Clone, Copy, Debug)]
pub enum Shape {
    Bottle,
    Box,
    Ball,
    Can,
    Shoe,
}

pub const SHAPES: [Shape; 5] = [Shape::Bottle, Shape::Box, Shape::Ball, Shape::Can, Shape::Shoe];

fn rounded_rect(x: f32, y: f32, x0: f32, y0: f32, x1: f32, y1: f32, r: f32) -> bool {
    let cx = x.clamp(x0 + r, x1 - r);
    let cy = y.clamp(y0 + r, y1 - r);
    x >= x0 && x <= x1 && y >= y0 && y <= y1 && (x - cx).powi(2) + (y - cy).powi(2) <= r * r
}

impl Shape {
    /// Whether (x, y), in a `w`×`h` frame, is on the product.
    fn inside(self, x: f32, y: f32, w: f32, h: f32) -> bool {
        let (u, v) = (x / w, y / h);
        match self {
            Shape::Bottle => {
                rounded_rect(u, v, 0.40, 0.30, 0.60, 0.85, 0.05) || rounded_rect(u, v, 0.47, 0.15, 0.53, 0.32, 0.01)
            }
            Shape::Box => rounded_rect(u, v, 0.28, 0.25, 0.72, 0.80, 0.01),
            Shape::Ball => ((x - 0.5 * w).powi(2) + (y - 0.52 * h).powi(2)).sqrt() <= 0.30 * h,
            Shape::Can => rounded_rect(u, v, 0.36, 0.18, 0.64, 0.84, 0.03),
            Shape::Shoe => {
                rounded_rect(u, v, 0.22, 0.55, 0.80, 0.75, 0.04) || rounded_rect(u, v, 0.22, 0.35, 0.45, 0.70, 0.06)
            }
        }
    }
}

/// A tiny deterministic generator (xorshift) so photos are identical on every run.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_f32(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 40) as f32 / (1u64 << 24) as f32
    }
}

/// Renders a `w`×`h` photo of `shape` in colour `rgb` and its exact alpha mask.
pub fn product_photo(shape: Shape, rgb: [u8; 3], w: u32, h: u32, seed: u64) -> (RgbImage, GrayImage) {
    let mut rng = Rng::new(seed);
    let mut photo = RgbImage::new(w, h);
    let mut mask = GrayImage::new(w, h);
    let (fw, fh) = (w as f32, h as f32);
    for y in 0..h {
        for x in 0..w {
            let mut hits = 0u32;
            for sy in 0..4 {
                for sx in 0..4 {
                    let px = x as f32 + (sx as f32 + 0.5) / 4.0;
                    let py = y as f32 + (sy as f32 + 0.5) / 4.0;
                    hits += u32::from(shape.inside(px, py, fw, fh));
                }
            }
            let coverage = hits as f32 / 16.0;
            // Studio backdrop: light, a vertical sweep and a soft vignette.
            let (u, v) = (x as f32 / fw - 0.5, y as f32 / fh - 0.5);
            let backdrop = 236.0 - 18.0 * v.max(0.0) - 22.0 * (u * u + v * v);
            // Product: cylinder-like shading across its width.
            let shade = 0.75 + 0.35 * (1.0 - (2.0 * u).powi(2)).max(0.0);
            let noise = (rng.next_f32() - 0.5) * 6.0;
            let px = [0, 1, 2].map(|c| {
                let product = rgb[c] as f32 * shade;
                let backdrop = backdrop - [0.0, 1.5, 4.0][c];
                (product * coverage + backdrop * (1.0 - coverage) + noise).clamp(0.0, 255.0) as u8
            });
            photo.put_pixel(x, y, image::Rgb(px));
            mask.put_pixel(x, y, image::Luma([(coverage * 255.0).round() as u8]));
        }
    }
    (photo, mask)
}

/// JPEG bytes of an image, quality 92.
pub fn jpeg(img: &RgbImage) -> Vec<u8> {
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 92).encode_image(img).unwrap();
    out
}

/// A background photo: a colourful diagonal gradient.
pub fn background(w: u32, h: u32) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| image::Rgb([(x * 255 / w) as u8, (y * 255 / h) as u8, 160]))
}

/// A product photo as JPEG bytes (a bottle by default colour).
pub fn product_jpeg(shape: Shape, rgb: [u8; 3], seed: u64) -> Vec<u8> {
    jpeg(&product_photo(shape, rgb, 640, 480, seed).0)
}

/// Intersection over union of two masks thresholded at one half.
pub fn iou(a: &GrayImage, b: &GrayImage) -> f64 {
    let (mut inter, mut union) = (0u64, 0u64);
    for (p, q) in a.pixels().zip(b.pixels()) {
        let (x, y) = (p[0] >= 128, q[0] >= 128);
        inter += u64::from(x && y);
        union += u64::from(x || y);
    }
    if union == 0 {
        1.0
    } else {
        inter as f64 / union as f64
    }
}
