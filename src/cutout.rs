//! Cut-outs: the product alone, as straight-alpha RGBA cropped to its alpha bounding box.
//!
//! Cropping here, once, means the cache stores only product pixels and every later compose starts
//! from the product's real extent.

use crate::error::JobError;
use crate::imaging::box_mean;
use crate::validate::{self, InputFile};
use image::{DynamicImage, GrayImage, RgbImage, RgbaImage};

/// Alpha at or below this is "faint": a soft haze or shadow that must not grow the bounding box.
pub(crate) const FAINT_ALPHA: u8 = 16;

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
    let needed = clear_needed(image.width(), image.height());
    match image {
        // The common case (8-bit RGBA PNG or WebP) is read in place, no 48 MB copy of a 12 MP photo.
        DynamicImage::ImageRgba8(rgba) => clear_reaches(rgba.as_raw(), needed),
        other => clear_reaches(other.to_rgba8().as_raw(), needed),
    }
}

/// How many clearly transparent pixels make a `width`×`height` image a cut-out.
fn clear_needed(width: u32, height: u32) -> usize {
    (TRANSPARENT_SHARE * width as f64 * height as f64).ceil() as usize
}

/// Whether RGBA `pixels` hold at least `needed` clearly transparent ones, read only until they
/// are seen: a cut-out's first rows often are.
fn clear_reaches(pixels: &[u8], needed: usize) -> bool {
    let mut seen = 0;
    needed == 0
        || pixels.chunks(1 << 16).any(|part| {
            seen += part.chunks_exact(4).filter(|p| p[3] < 128).count();
            seen >= needed
        })
}

/// An input as the pipeline uses it: its own cut-out, or a photo for the removal engine.
pub enum Decoded {
    /// The input has real transparency: the product cropped from it, `None` when it holds none.
    Own(Option<Cutout>),
    Photo(DynamicImage),
}

/// Decodes an input and tells whether it is a cut-out already ([`has_real_transparency`]).
///
/// An 8-bit RGBA PNG (what cut-outs usually are) is decoded without storing the rows above and
/// below the product, which hold nothing solid: they are clear pixels all, so they count toward
/// the transparency without being kept, and the product's columns are found as each row is
/// decoded (no second pass over the image for its bounding box). The cut-out is the same as from
/// the whole image; a photo is always whole.
pub fn decode(input: &InputFile) -> Result<Decoded, JobError> {
    // The product's columns are found while each row is in cache: its first and last solid pixel.
    let (mut left, mut right) = (usize::MAX, 0);
    let holds_product = |row: &[u8]| match first_solid::<4, 3>(row) {
        Some(first) => {
            let last = first + last_solid::<4, 3>(&row[first * 4..]).expect("the first solid pixel is in it");
            (left, right) = (left.min(first), right.max(last));
            true
        }
        None => false,
    };
    if let Some(trimmed) = validate::decode_rgba_png_trimmed(input, holds_product)? {
        let needed = clear_needed(input.width, input.height);
        let clear_left_out = trimmed.left_out as usize * input.width as usize;
        let rows = trimmed.image.height();
        if clear_left_out >= needed || clear_reaches(trimmed.image.as_raw(), needed - clear_left_out) {
            let product = (rows > 0).then(|| (left as u32, 0, (right - left + 1) as u32, rows));
            return Ok(Decoded::Own(product.map(|(x, y, w, h)| Cutout { image: crop(&trimmed.image, x, y, w, h) })));
        }
        if trimmed.left_out == 0 {
            return Ok(Decoded::Photo(DynamicImage::ImageRgba8(trimmed.image)));
        }
        // A few clear rows, too few for a cut-out: the engine gets the photo whole, decoded again.
    }
    let photo = validate::decode(input)?;
    Ok(match has_real_transparency(&photo) {
        true => Decoded::Own(Cutout::from_transparent(photo.into_rgba8())),
        false => Decoded::Photo(photo),
    })
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

/// The box `(x, y, w, h)` of pixels whose alpha is above [`FAINT_ALPHA`] in row-major pixels of
/// `width`×`height`, `STRIDE` bytes each with the alpha at byte `ALPHA`.
///
/// Rows are read in memory order: first the top and bottom edges, then each row inside only
/// as far as the left and right edges found so far. The pixels are tested a block at a time
/// without branching (which the compiler vectorises), and only the block that holds an edge
/// pixel by pixel: a 12 MP photo costs about a millisecond.
fn bounding_box<const STRIDE: usize, const ALPHA: usize>(
    pixels: &[u8],
    width: u32,
    height: u32,
) -> Option<(u32, u32, u32, u32)> {
    let (w, h) = (width as usize, height as usize);
    let row = |y: usize| &pixels[y * w * STRIDE..(y + 1) * w * STRIDE];
    let row_has = |y: usize| first_solid::<STRIDE, ALPHA>(row(y)).is_some();
    let top = (0..h).find(|&y| row_has(y))?;
    let bottom = (top..h).rev().find(|&y| row_has(y))?;
    let (mut left, mut right) = (w, 0);
    for y in top..=bottom {
        let line = row(y);
        if let Some(x) = first_solid::<STRIDE, ALPHA>(&line[..left * STRIDE]) {
            left = x;
        }
        let from = right.max(left) + 1;
        if from < w {
            if let Some(x) = last_solid::<STRIDE, ALPHA>(&line[from * STRIDE..]) {
                right = from + x;
            }
        }
        right = right.max(left);
    }
    Some((left as u32, top as u32, (right - left + 1) as u32, (bottom - top + 1) as u32))
}

/// Pixels tested together by [`first_solid`] and [`last_solid`].
const BLOCK: usize = 32;

/// Whether any pixel of `pixels` is solid, all of them tested (no early exit to branch on).
fn any_solid<const STRIDE: usize, const ALPHA: usize>(pixels: &[u8]) -> bool {
    pixels.chunks_exact(STRIDE).fold(false, |any, p| any | (p[ALPHA] > FAINT_ALPHA))
}

/// The index of the first solid pixel of `line`.
fn first_solid<const STRIDE: usize, const ALPHA: usize>(line: &[u8]) -> Option<usize> {
    let blocks = line.chunks_exact(BLOCK * STRIDE);
    let tail = blocks.remainder();
    let start = match blocks.enumerate().find(|(_, b)| any_solid::<STRIDE, ALPHA>(b)) {
        Some((b, _)) => b * BLOCK,
        None if tail.is_empty() => return None,
        None => line.len() / STRIDE - tail.len() / STRIDE,
    };
    line[start * STRIDE..].chunks_exact(STRIDE).position(|p| p[ALPHA] > FAINT_ALPHA).map(|x| start + x)
}

/// The index of the last solid pixel of `line`.
fn last_solid<const STRIDE: usize, const ALPHA: usize>(line: &[u8]) -> Option<usize> {
    let blocks = line.rchunks_exact(BLOCK * STRIDE);
    let head = blocks.remainder();
    let end = match blocks.enumerate().find(|(_, b)| any_solid::<STRIDE, ALPHA>(b)) {
        Some((b, _)) => line.len() / STRIDE - b * BLOCK,
        None if head.is_empty() => return None,
        None => head.len() / STRIDE,
    };
    line[..end * STRIDE].chunks_exact(STRIDE).rposition(|p| p[ALPHA] > FAINT_ALPHA)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png_input(image: &DynamicImage) -> InputFile {
        let mut bytes = Vec::new();
        image.write_to(&mut std::io::Cursor::new(&mut bytes), image::ImageFormat::Png).unwrap();
        let limits =
            validate::Limits { max_file_size: 1 << 30, max_pixels: 1 << 30, allowed: vec![validate::InputFormat::Png] };
        let stamp = validate::FileStamp { len: bytes.len() as u64, mtime_ns: 0, ino: 0 };
        validate::check_bytes(bytes, stamp, &limits).unwrap()
    }

    /// What [`decode`] gives, told the plain way: the whole image, then the transparency check.
    fn decoded_the_plain_way(input: &InputFile) -> Result<Decoded, JobError> {
        let photo = validate::decode(input)?;
        Ok(match has_real_transparency(&photo) {
            true => Decoded::Own(Cutout::from_transparent(photo.into_rgba8())),
            false => Decoded::Photo(photo),
        })
    }

    fn describe(decoded: Result<Decoded, JobError>) -> String {
        match decoded {
            Ok(Decoded::Own(Some(cut))) => format!("own {:?} {:x?}", cut.image.dimensions(), cut.image.as_raw()),
            Ok(Decoded::Own(None)) => "own, empty".into(),
            Ok(Decoded::Photo(photo)) => {
                format!("photo {:?} {}x{} {:x?}", photo.color(), photo.width(), photo.height(), photo.as_bytes())
            }
            Err(JobError::Rejected(r)) => format!("rejected {:?}", r.reason),
            Err(_) => "other error".into(),
        }
    }

    #[test]
    fn a_png_decoded_without_its_clear_rows_gives_what_the_whole_image_gives() {
        let mut seed = 5u32;
        let mut next = move |n: u32| {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            (seed >> 16) % n
        };
        let mut cases: Vec<DynamicImage> = Vec::new();
        for _ in 0..300 {
            let (w, h) = (1 + next(70), 1 + next(70));
            // Clear bands above and below (faint haze in them at times), a product in between.
            let (top, bottom) = (next(h + 1), next(h + 1));
            let haze = [0, FAINT_ALPHA, 0, 9][next(4) as usize];
            let busy = next(3);
            let mut noise = next(1 << 15);
            cases.push(DynamicImage::ImageRgba8(RgbaImage::from_fn(w, h, |x, y| {
                noise = noise.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                let n = (noise >> 16) as u8;
                let band = y < top || y + bottom >= h;
                let a = match (band, busy) {
                    (true, _) => haze.min(n),
                    (false, 0) => 255,
                    (false, 1) => {
                        if x % 5 == 0 {
                            n
                        } else {
                            255
                        }
                    }
                    _ => n,
                };
                image::Rgba([n, (x * 3) as u8, (y * 5) as u8, a])
            })));
        }
        // One clear row in 300: too few for a cut-out, so the photo must come back whole.
        let mut photo = RgbaImage::from_pixel(300, 300, image::Rgba([10, 20, 30, 255]));
        (0..300).for_each(|x| photo.put_pixel(x, 0, image::Rgba([1, 2, 3, 0])));
        cases.push(DynamicImage::ImageRgba8(photo));
        // Layouts the row decoder leaves to the plain one.
        cases.push(DynamicImage::ImageRgb8(RgbImage::from_pixel(9, 7, image::Rgb([1, 2, 3]))));
        cases.push(DynamicImage::ImageRgba16(image::ImageBuffer::from_fn(9, 7, |x, _| {
            image::Rgba([7, 7, 7, x as u16 * 8000])
        })));
        for (i, case) in cases.iter().enumerate() {
            let input = png_input(case);
            assert_eq!(describe(decode(&input)), describe(decoded_the_plain_way(&input)), "case {i}");
        }
        // Damaged data is rejected the same way.
        let mut cut = png_input(&cases[0]);
        cut.bytes.truncate(cut.bytes.len() / 2);
        assert_eq!(describe(decode(&cut)), "rejected Corrupt");
        assert_eq!(describe(decoded_the_plain_way(&cut)), "rejected Corrupt");
    }

    #[test]
    fn the_row_scan_finds_the_same_box_as_checking_every_pixel() {
        let mut seed = 7u32;
        for _ in 0..2000 {
            let mut next = || {
                seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                seed >> 16
            };
            // Widths past two blocks, so edges fall in whole blocks, in the tail and in the head.
            let (w, h) = (1 + next() % 90, 1 + next() % 24);
            let blobs = next() % 4;
            let mut mask = GrayImage::new(w, h);
            for _ in 0..blobs {
                let (x, y, v) = (next() % w, next() % h, (next() % 256) as u8);
                mask.put_pixel(x, y, image::Luma([v]));
            }
            let solid: Vec<(u32, u32)> =
                mask.enumerate_pixels().filter(|(_, _, p)| p[0] > FAINT_ALPHA).map(|(x, y, _)| (x, y)).collect();
            let expected = (!solid.is_empty()).then(|| {
                let (x0, x1) = (solid.iter().map(|p| p.0).min().unwrap(), solid.iter().map(|p| p.0).max().unwrap());
                let (y0, y1) = (solid.iter().map(|p| p.1).min().unwrap(), solid.iter().map(|p| p.1).max().unwrap());
                (x0, y0, x1 - x0 + 1, y1 - y0 + 1)
            });
            assert_eq!(bounding_box::<1, 0>(mask.as_raw(), w, h), expected, "{w}x{h} {solid:?}");
            // The same as the alpha of an RGBA image, its colour bytes holding noise.
            let rgba: Vec<u8> = mask.as_raw().iter().flat_map(|&a| [200, (next() % 256) as u8, 255, a]).collect();
            assert_eq!(bounding_box::<4, 3>(&rgba, w, h), expected, "RGBA {w}x{h} {solid:?}");
        }
    }

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

    #[test]
    fn transparency_needs_a_real_share_of_clear_pixels() {
        let mut img = RgbaImage::from_pixel(100, 100, image::Rgba([1, 2, 3, 255]));
        img.put_pixel(0, 0, image::Rgba([0, 0, 0, 0]));
        assert!(!has_real_transparency(&DynamicImage::ImageRgba8(img.clone())));
        for x in 0..100 {
            img.put_pixel(x, 0, image::Rgba([0, 0, 0, 0]));
        }
        assert!(has_real_transparency(&DynamicImage::ImageRgba8(img.clone())));
        // 0.5 % of 10 000 pixels is exactly 50: 49 clear pixels are not enough, 50 are, wherever they are.
        let mut edge = RgbaImage::from_pixel(100, 100, image::Rgba([1, 2, 3, 255]));
        for i in 0..49 {
            edge.put_pixel(99 - i, 99, image::Rgba([9, 9, 9, 127]));
        }
        assert!(!has_real_transparency(&DynamicImage::ImageRgba8(edge.clone())));
        edge.put_pixel(0, 50, image::Rgba([9, 9, 9, 0]));
        assert!(has_real_transparency(&DynamicImage::ImageRgba8(edge.clone())));
        // Other layouts are counted the same way.
        assert!(has_real_transparency(&DynamicImage::ImageRgba16(image::ImageBuffer::from_fn(100, 100, |x, y| {
            let a = if edge.get_pixel(x, y)[3] < 128 { 0 } else { u16::MAX };
            image::Rgba([0, 0, 0, a])
        }))));
        assert!(!has_real_transparency(&DynamicImage::ImageRgb8(RgbImage::new(2, 2))));
    }
}
