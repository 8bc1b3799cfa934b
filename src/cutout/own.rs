//! Inputs that are cut-outs already: an image with real transparency needs no removal, and the
//! pipeline's decode tells such an input from a photo (an RGBA PNG a row at a time).

use super::scan::{first_solid, last_solid};
use super::{crop, Cutout};
use crate::error::JobError;
use crate::validate::{self, InputFile};
use image::DynamicImage;

/// Share of pixels that must be clearly transparent for a photo to count as a ready cut-out;
/// a few stray transparent pixels in an otherwise opaque PNG do not make it one.
const TRANSPARENT_SHARE: f64 = 0.005;

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
    decode_whole(input)
}

/// [`decode`] the plain way, for any input: the whole image, then the transparency check.
fn decode_whole(input: &InputFile) -> Result<Decoded, JobError> {
    let photo = validate::decode(input)?;
    Ok(match has_real_transparency(&photo) {
        true => Decoded::Own(Cutout::from_transparent(photo.into_rgba8())),
        false => Decoded::Photo(photo),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cutout::FAINT_ALPHA;
    use image::{RgbImage, RgbaImage};

    fn png_input(image: &DynamicImage) -> InputFile {
        let mut bytes = Vec::new();
        image.write_to(&mut std::io::Cursor::new(&mut bytes), image::ImageFormat::Png).unwrap();
        let limits =
            validate::Limits { max_file_size: 1 << 30, max_pixels: 1 << 30, allowed: vec![validate::InputFormat::Png] };
        let stamp = validate::FileStamp { len: bytes.len() as u64, mtime_ns: 0, ino: 0 };
        validate::check_bytes(bytes, stamp, &limits).unwrap()
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
            assert_eq!(describe(decode(&input)), describe(decode_whole(&input)), "case {i}");
        }
        // Damaged data is rejected the same way.
        let mut cut = png_input(&cases[0]);
        cut.bytes.truncate(cut.bytes.len() / 2);
        assert_eq!(describe(decode(&cut)), "rejected Corrupt");
        assert_eq!(describe(decode_whole(&cut)), "rejected Corrupt");
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
