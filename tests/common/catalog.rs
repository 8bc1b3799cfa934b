//! A catalog of product photos whose removals can be counted outside the daemon: each product
//! has its own flat colour at its centre, which the Gradio test app records (`--mark`) with every
//! call. Shared by the crash test and the cluster tests.

use super::gradio::GradioApp;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Distance between two palette levels: far above JPEG's error on a flat patch.
const LEVEL_STEP: u32 = 28;
const LEVELS: u32 = 7;
/// At most this many products have distinct colours.
pub const MAX_PRODUCTS: usize = (LEVELS * LEVELS * LEVELS) as usize;
/// Product photo size.
const PHOTO: (u32, u32) = (160, 120);

/// splitmix64: small, seedable, good enough for timings and shapes.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo)
    }
}

/// The flat colour of product `i`: a point of a 7×7×7 grid with 28 levels between points.
pub fn palette(i: usize) -> [u8; 3] {
    let i = i as u32;
    [i % LEVELS, (i / LEVELS) % LEVELS, i / (LEVELS * LEVELS)].map(|l| (l * LEVEL_STEP) as u8)
}

/// The product (of the first `products`) whose colour is nearest to `mark`, with the distance.
pub fn product_of(mark: [f64; 3], products: usize) -> (usize, f64) {
    (0..products)
        .map(|i| {
            let c = palette(i);
            let d = (0..3).map(|k| (mark[k] - c[k] as f64).powi(2)).sum::<f64>().sqrt();
            (i, d)
        })
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .unwrap()
}

pub fn product_name(i: usize) -> String {
    format!("produto-{i:03}.jpg")
}

pub fn stem(name: &str) -> &str {
    name.rsplit_once('.').map_or(name, |(s, _)| s)
}

/// A studio shot: light backdrop with a gentle sweep and noise, and a flat-coloured product
/// (box, ball or tag, of varying size) covering the centre.
pub fn product_jpeg(i: usize, rng: &mut Rng) -> Vec<u8> {
    let (w, h) = PHOTO;
    let colour = palette(i);
    let shape = rng.range(0, 3);
    let (rx, ry) = (rng.range(30, 62) as f32, rng.range(25, 48) as f32);
    let (cx, cy) = (w as f32 / 2.0, h as f32 / 2.0);
    let seed = rng.next();
    let mut noise = Rng(seed);
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        let (dx, dy) = ((x as f32 + 0.5 - cx) / rx, (y as f32 + 0.5 - cy) / ry);
        let inside = match shape {
            0 => dx.abs() <= 1.0 && dy.abs() <= 1.0,
            1 => dx * dx + dy * dy <= 1.0,
            _ => dx.abs() + dy.abs() <= 1.2 && dy.abs() <= 0.9,
        };
        if inside {
            image::Rgb(colour)
        } else {
            let sweep = 238.0 - 14.0 * (y as f32 / h as f32);
            let n = (noise.next() % 7) as f32 - 3.0;
            let v = (sweep + n) as u8;
            image::Rgb([v, v, v.saturating_sub(3)])
        }
    });
    super::synth::jpeg(&img)
}

/// A small background: a two-colour gradient, different for each name.
pub fn background_bytes(name: &str, index: usize) -> Vec<u8> {
    let (a, b) = [([200, 40, 40], [40, 40, 200]), ([120, 80, 30], [220, 180, 120]), ([20, 160, 200], [240, 220, 150])]
        [index % 3];
    let img = image::RgbImage::from_fn(96, 72, |x, y| {
        let t = (x + y) as f32 / (96 + 72) as f32;
        let bump = (index as u32 * 37 % 40) as f32;
        image::Rgb([0, 1, 2].map(|c| (a[c] as f32 * (1.0 - t) + b[c] as f32 * t + bump).min(255.0) as u8))
    });
    if name.ends_with(".png") {
        let mut out = std::io::Cursor::new(Vec::new());
        img.write_to(&mut out, image::ImageFormat::Png).unwrap();
        out.into_inner()
    } else {
        super::synth::jpeg(&img)
    }
}

/// The outputs of product `name` on white and on each background.
pub fn outputs_of(name: &str, backgrounds: &[&str]) -> Vec<String> {
    let p = stem(name);
    std::iter::once(format!("{p}.jpg")).chain(backgrounds.iter().map(|b| format!("{p}__{}.jpg", stem(b)))).collect()
}

/// Every output of the first `products` products on white and on `backgrounds`.
pub fn expected_outputs(products: usize, backgrounds: &[&str]) -> BTreeSet<String> {
    (0..products).flat_map(|i| outputs_of(&product_name(i), backgrounds)).collect()
}

/// Removal calls the app received, per product (of the first `products`).
pub fn removals(app: &GradioApp, products: usize) -> Vec<usize> {
    let mut counts = vec![0; products];
    for line in app.call_lines() {
        let mark = line
            .split_whitespace()
            .find_map(|f| f.strip_prefix("mark="))
            .unwrap_or_else(|| panic!("call without a mark: {line}"));
        let rgb: Vec<f64> = mark.split(',').map(|v| v.parse().unwrap()).collect();
        assert_eq!(rgb.len(), 3, "bad mark in {line}");
        let (product, distance) = product_of([rgb[0], rgb[1], rgb[2]], products);
        assert!(
            distance <= 10.0,
            "call for an unknown photo (mark {mark}, nearest {product} at {distance:.1}): {line}"
        );
        counts[product] += 1;
    }
    counts
}

/// Every file under `dir`, recursively, relative to it.
pub fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(path);
            } else {
                out.push(path.strip_prefix(dir).unwrap().to_owned());
            }
        }
    }
    out
}

/// Temporary files (of thumbgen or of uploads) anywhere under `dir`.
pub fn temporaries(dir: &Path) -> Vec<PathBuf> {
    walk(dir)
        .into_iter()
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.ends_with(".thumbgen-tmp") || name.ends_with(".part") || name.ends_with(".tmp")
        })
        .collect()
}
