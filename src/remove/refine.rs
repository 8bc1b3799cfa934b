//! Edge refinement: turns a coarse 320×320 saliency map into a full-resolution alpha that follows
//! the photo's real edges.
//!
//! A fast guided filter (He & Sun, 2015): the local linear model `alpha ≈ a·I + b` is fitted at a
//! working resolution of at most [`WORK_LONG_SIDE`] pixels, then `a` and `b` are interpolated and
//! applied at full resolution. Memory at full size is one grey guide and the output mask, whatever
//! the photo's size; a plain upscale would instead blur every edge by the model's 320-pixel grid.

use crate::imaging::box_mean;
use image::{GrayImage, RgbImage};

/// Long side of the grid the linear model is fitted on.
const WORK_LONG_SIDE: u32 = 800;
/// Regularisation: smaller follows the photo's edges more closely.
const EPSILON: f32 = 1e-3;
/// Alpha below `LOW` becomes fully transparent, above `HIGH` fully opaque: the model's faint
/// haze must not tint a white canvas, and solid product must not be see-through.
const LOW: f32 = 0.06;
/// Slope applied to the model's probabilities around 0.5 before filtering.
const SHARPEN: f32 = 3.0;
const HIGH: f32 = 0.94;

/// Full-resolution alpha for `photo` from a coarse probability map `coarse` (values 0..1,
/// `coarse_w`×`coarse_h`).
pub(crate) fn refine(photo: &RgbImage, coarse: &[f32], coarse_w: u32, coarse_h: u32) -> GrayImage {
    let (w, h) = photo.dimensions();
    let scale = (WORK_LONG_SIDE as f32 / w.max(h) as f32).min(1.0);
    let ww = ((w as f32 * scale).round() as u32).max(1);
    let wh = ((h as f32 * scale).round() as u32).max(1);
    let radius = ((ww.max(wh) as f32 / 160.0).round() as usize).max(2);

    let guide_full = grey(photo);
    let full = guide_full.as_raw();
    let guide = resample(|k| full[k] as f32 / 255.0, w, h, ww, wh);
    // Steepen the model's soft ramps around 0.5 first: its edge then sits where the model is
    // undecided, and the filter pulls it onto the photo's edge within `radius`.
    let p: Vec<f32> = resample(|k| coarse[k], coarse_w, coarse_h, ww, wh)
        .into_iter()
        .map(|v| ((v - 0.5) * SHARPEN + 0.5).clamp(0.0, 1.0))
        .collect();

    let mean_i = box_mean(&guide, ww, wh, radius);
    let mean_p = box_mean(&p, ww, wh, radius);
    let ii: Vec<f32> = guide.iter().map(|v| v * v).collect();
    let ip: Vec<f32> = guide.iter().zip(&p).map(|(a, b)| a * b).collect();
    let mean_ii = box_mean(&ii, ww, wh, radius);
    let mean_ip = box_mean(&ip, ww, wh, radius);
    let mut a = vec![0f32; guide.len()];
    let mut b = vec![0f32; guide.len()];
    for k in 0..guide.len() {
        let var = mean_ii[k] - mean_i[k] * mean_i[k];
        let cov = mean_ip[k] - mean_i[k] * mean_p[k];
        a[k] = cov / (var + EPSILON);
        b[k] = mean_p[k] - a[k] * mean_i[k];
    }
    let mean_a = box_mean(&a, ww, wh, radius);
    let mean_b = box_mean(&b, ww, wh, radius);

    // Apply the interpolated model at full resolution, a row at a time: `a` and `b` are blended
    // vertically once per row, horizontally per pixel from precomputed positions.
    let sampler = Bilinear::new(ww, wh, w, h);
    let cols: Vec<(usize, usize, f32)> = (0..w).map(|x| sampler.col(x)).collect();
    let (mut row_a, mut row_b) = (vec![0f32; ww as usize], vec![0f32; ww as usize]);
    let mut alpha = vec![0u8; full.len()];
    let stretch = 1.0 / (HIGH - LOW);
    for (y, (out, guide_row)) in alpha.chunks_exact_mut(w as usize).zip(full.chunks_exact(w as usize)).enumerate() {
        let (r0, r1, fy) = sampler.row(y as u32);
        for k in 0..ww as usize {
            row_a[k] = mean_a[r0 + k] + (mean_a[r1 + k] - mean_a[r0 + k]) * fy;
            row_b[k] = mean_b[r0 + k] + (mean_b[r1 + k] - mean_b[r0 + k]) * fy;
        }
        for ((o, &g), &(ia, ib, fx)) in out.iter_mut().zip(guide_row).zip(&cols) {
            let a = row_a[ia] + (row_a[ib] - row_a[ia]) * fx;
            let b = row_b[ia] + (row_b[ib] - row_b[ia]) * fx;
            let q = a * (g as f32 / 255.0) + b;
            *o = (((q - LOW) * stretch).clamp(0.0, 1.0) * 255.0).round() as u8;
        }
    }
    GrayImage::from_raw(w, h, alpha).expect("one byte per pixel")
}

fn grey(photo: &RgbImage) -> GrayImage {
    let mut out = GrayImage::new(photo.width(), photo.height());
    for (o, p) in out.pixels_mut().zip(photo.pixels()) {
        let [r, g, b] = p.0;
        o[0] = ((r as u32 * 77 + g as u32 * 150 + b as u32 * 29) >> 8) as u8;
    }
    out
}

/// Bilinear sampling positions from a `sw`×`sh` grid onto `dw`×`dh` pixels (pixel centres aligned).
struct Bilinear {
    sw: u32,
    sh: u32,
    sx: f32,
    sy: f32,
}

impl Bilinear {
    fn new(sw: u32, sh: u32, dw: u32, dh: u32) -> Self {
        Bilinear { sw, sh, sx: sw as f32 / dw as f32, sy: sh as f32 / dh as f32 }
    }

    fn axis(pos: u32, scale: f32, len: u32) -> (usize, usize, f32) {
        let s = ((pos as f32 + 0.5) * scale - 0.5).clamp(0.0, (len - 1) as f32);
        let i0 = s.floor() as usize;
        let i1 = (i0 + 1).min(len as usize - 1);
        (i0, i1, s - i0 as f32)
    }

    /// Offsets of the two source rows and the weight of the lower one.
    fn row(&self, y: u32) -> (usize, usize, f32) {
        let (r0, r1, f) = Self::axis(y, self.sy, self.sh);
        (r0 * self.sw as usize, r1 * self.sw as usize, f)
    }

    fn col(&self, x: u32) -> (usize, usize, f32) {
        Self::axis(x, self.sx, self.sw)
    }
}

/// The `sw`×`sh` grid whose value at index `k` is `src(k)`, resampled to `dw`×`dh`.
fn resample(src: impl Fn(usize) -> f32, sw: u32, sh: u32, dw: u32, dh: u32) -> Vec<f32> {
    if (sw, sh) == (dw, dh) {
        return (0..(sw * sh) as usize).map(src).collect();
    }
    // Downscaling a large guide: average whole blocks first so no detail aliases.
    let sampler = Bilinear::new(sw, sh, dw, dh);
    let mut out = Vec::with_capacity((dw * dh) as usize);
    let block_x = (sw / dw).max(1) as usize;
    let block_y = (sh / dh).max(1) as usize;
    for y in 0..dh {
        for x in 0..dw {
            if block_x > 1 || block_y > 1 {
                let x0 = (x as usize * sw as usize) / dw as usize;
                let y0 = (y as usize * sh as usize) / dh as usize;
                let mut sum = 0.0;
                for yy in y0..(y0 + block_y).min(sh as usize) {
                    let row = yy * sw as usize;
                    sum += (x0..(x0 + block_x).min(sw as usize)).map(|xx| src(row + xx)).sum::<f32>();
                }
                out.push(sum / (block_x * block_y) as f32);
            } else {
                let row = sampler.row(y);
                let (ia, ib, fx) = sampler.col(x);
                let top = src(row.0 + ia) * (1.0 - fx) + src(row.0 + ib) * fx;
                let bottom = src(row.1 + ia) * (1.0 - fx) + src(row.1 + ib) * fx;
                out.push(top * (1.0 - row.2) + bottom * row.2);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refinement_snaps_a_blurry_mask_to_the_photo_edge() {
        // Dark square on a light photo; the coarse mask is a blurred, shifted guess of it.
        let (w, h) = (400u32, 400u32);
        let photo = RgbImage::from_fn(w, h, |x, y| {
            if (100..300).contains(&x) && (100..300).contains(&y) {
                image::Rgb([40, 60, 200])
            } else {
                image::Rgb([235, 235, 235])
            }
        });
        let coarse: Vec<f32> = (0..40 * 40)
            .map(|k| {
                let (x, y) = ((k % 40) as f32 + 0.5, (k / 40) as f32 + 0.5);
                let inside = |v: f32| ((v - 10.0).min(30.0 - v) / 0.5).clamp(-1.0, 1.0);
                ((inside(x).min(inside(y)) + 1.0) / 2.0).clamp(0.0, 1.0)
            })
            .collect();
        let alpha = refine(&photo, &coarse, 40, 40);
        assert_eq!(alpha.get_pixel(200, 200)[0], 255);
        assert_eq!(alpha.get_pixel(20, 20)[0], 0);
        // Within two pixels of the true edge the mask is decided.
        assert!(alpha.get_pixel(103, 200)[0] > 240, "{}", alpha.get_pixel(103, 200)[0]);
        assert!(alpha.get_pixel(96, 200)[0] < 15, "{}", alpha.get_pixel(96, 200)[0]);
    }
}
