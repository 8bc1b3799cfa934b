//! A corpus of inputs generated on the fly: good-but-unusual images (CMYK, 16-bit, palette with
//! tRNS, EXIF-rotated, progressive…) and malformed or hostile files (truncated, wrong magic, pixel
//! bombs, animated GIF…). Everything is deterministic and built in memory; where the `image` crate
//! cannot write a format (palette PNG, GIF, CMYK, EXIF) the bytes are assembled by hand or with
//! `jpeg-encoder`, a dependency of the crate.

use super::synth::{self, Shape};
use image::{DynamicImage, ImageFormat, RgbImage, RgbaImage};
use std::io::Cursor;

/// Encodes an image with the `image` crate.
pub fn encode(img: &DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Vec::new();
    img.write_to(&mut Cursor::new(&mut out), format).unwrap();
    out
}

/// A ready cut-out: the product of [`synth::product_photo`] in `rgb` on full transparency, as RGBA.
pub fn cutout_rgba(shape: Shape, rgb: [u8; 3], w: u32, h: u32) -> RgbaImage {
    let (_, mask) = synth::product_photo(shape, rgb, w, h, 1);
    RgbaImage::from_fn(w, h, |x, y| {
        let a = mask.get_pixel(x, y)[0];
        image::Rgba([rgb[0], rgb[1], rgb[2], a])
    })
}

/// A ready cut-out as PNG bytes (used as is by thumbgen: no removal).
pub fn cutout_png(shape: Shape, rgb: [u8; 3], w: u32, h: u32) -> Vec<u8> {
    encode(&DynamicImage::ImageRgba8(cutout_rgba(shape, rgb, w, h)), ImageFormat::Png)
}

/// The same cut-out with 16 bits per channel.
pub fn cutout_png16(shape: Shape, rgb: [u8; 3], w: u32, h: u32) -> Vec<u8> {
    let rgba = DynamicImage::ImageRgba8(cutout_rgba(shape, rgb, w, h)).to_rgba16();
    encode(&DynamicImage::ImageRgba16(rgba), ImageFormat::Png)
}

/// A grey-with-alpha cut-out (PNG colour type 4).
pub fn cutout_png_grey_alpha(shape: Shape, w: u32, h: u32) -> Vec<u8> {
    let rgba = cutout_rgba(shape, [90, 90, 90], w, h);
    encode(&DynamicImage::ImageRgba8(rgba).to_luma_alpha8().into(), ImageFormat::Png)
}

/// A lossless WebP cut-out.
pub fn cutout_webp(shape: Shape, rgb: [u8; 3], w: u32, h: u32) -> Vec<u8> {
    encode(&DynamicImage::ImageRgba8(cutout_rgba(shape, rgb, w, h)), ImageFormat::WebP)
}

/// A PNG where every pixel is fully transparent.
pub fn transparent_png(w: u32, h: u32) -> Vec<u8> {
    encode(&DynamicImage::ImageRgba8(RgbaImage::new(w, h)), ImageFormat::Png)
}

/// A backdrop with no product on it: the studio sweep of the synthetic photos, nothing else.
pub fn empty_backdrop(w: u32, h: u32) -> RgbImage {
    let mut rng = synth::Rng::new(99);
    RgbImage::from_fn(w, h, |x, y| {
        let (u, v) = (x as f32 / w as f32 - 0.5, y as f32 / h as f32 - 0.5);
        let base = 236.0 - 18.0 * v.max(0.0) - 22.0 * (u * u + v * v) + (rng.next_f32() - 0.5) * 6.0;
        image::Rgb([base as u8, (base - 1.5) as u8, (base - 4.0) as u8])
    })
}

/// A PNG of noise (incompressible): `side`² × 3 bytes, give or take.
pub fn noise_png(side: u32) -> Vec<u8> {
    let mut rng = synth::Rng::new(7);
    let img = RgbImage::from_fn(side, side, |_, _| image::Rgb([0, 1, 2].map(|_| (rng.next_f32() * 255.0) as u8)));
    encode(&DynamicImage::ImageRgb8(img), ImageFormat::Png)
}

fn jpeg_with(img: &RgbImage, setup: impl FnOnce(&mut jpeg_encoder::Encoder<&mut Vec<u8>>)) -> Vec<u8> {
    let mut out = Vec::new();
    let mut encoder = jpeg_encoder::Encoder::new(&mut out, 90);
    setup(&mut encoder);
    encoder.encode(img.as_raw(), img.width() as u16, img.height() as u16, jpeg_encoder::ColorType::Rgb).unwrap();
    out
}

/// A progressive JPEG.
pub fn progressive_jpeg(img: &RgbImage) -> Vec<u8> {
    let bytes = jpeg_with(img, |e| e.set_progressive(true));
    // SOF2 marks a progressive frame.
    assert!(bytes.windows(2).any(|w| w == [0xFF, 0xC2]), "the encoder made no progressive frame");
    bytes
}

/// A JPEG whose pixels are stored as they come, with EXIF `orientation` (1–8) telling viewers how
/// to turn them.
pub fn exif_jpeg(stored: &RgbImage, orientation: u16) -> Vec<u8> {
    jpeg_with(stored, |e| e.add_exif_metadata(&exif_orientation(orientation)).unwrap())
}

/// A TIFF structure (big-endian) holding one IFD entry: Orientation.
pub fn exif_orientation(orientation: u16) -> Vec<u8> {
    let mut tiff = b"MM\0\x2a\0\0\0\x08".to_vec();
    tiff.extend(1u16.to_be_bytes()); // one entry
    tiff.extend(0x0112u16.to_be_bytes()); // Orientation
    tiff.extend(3u16.to_be_bytes()); // SHORT
    tiff.extend(1u32.to_be_bytes()); // count
    tiff.extend(orientation.to_be_bytes());
    tiff.extend([0, 0]); // value padding
    tiff.extend(0u32.to_be_bytes()); // no next IFD
    tiff
}

/// A greyscale (one component) JPEG.
pub fn grey_jpeg(img: &RgbImage) -> Vec<u8> {
    let grey = DynamicImage::ImageRgb8(img.clone()).to_luma8();
    let mut out = Vec::new();
    jpeg_encoder::Encoder::new(&mut out, 90)
        .encode(grey.as_raw(), grey.width() as u16, grey.height() as u16, jpeg_encoder::ColorType::Luma)
        .unwrap();
    out
}

/// A four-component CMYK JPEG (Adobe APP14, inverted as Photoshop writes it).
pub fn cmyk_jpeg(img: &RgbImage) -> Vec<u8> {
    let mut cmyk = Vec::with_capacity(img.as_raw().len() / 3 * 4);
    for p in img.pixels() {
        let [r, g, b] = p.0.map(|c| c as f32 / 255.0);
        let k = 1.0 - r.max(g).max(b);
        let ink = |c: f32| if k >= 1.0 { 0.0 } else { (1.0 - c - k) / (1.0 - k) };
        cmyk.extend([ink(r), ink(g), ink(b), k].map(|v| (v * 255.0).round() as u8));
    }
    let mut out = Vec::new();
    jpeg_encoder::Encoder::new(&mut out, 92)
        .encode(&cmyk, img.width() as u16, img.height() as u16, jpeg_encoder::ColorType::Cmyk)
        .unwrap();
    out
}

/// A real JPEG whose frame header is patched to claim `w`×`h`: a pixel bomb that decoders would
/// allocate gigabytes for.
pub fn jpeg_bomb(w: u16, h: u16) -> Vec<u8> {
    let mut bytes = synth::jpeg(&RgbImage::from_pixel(16, 16, image::Rgb([200, 10, 10])));
    let sof = bytes.windows(2).position(|m| m == [0xFF, 0xC0]).expect("a baseline frame header");
    // FF C0, length (2), precision (1), height (2), width (2).
    bytes[sof + 5..sof + 7].copy_from_slice(&h.to_be_bytes());
    bytes[sof + 7..sof + 9].copy_from_slice(&w.to_be_bytes());
    bytes
}

/// A PNG whose IHDR claims `w`×`h` (valid CRCs), followed by a tiny IDAT: a pixel bomb.
pub fn png_bomb(w: u32, h: u32) -> Vec<u8> {
    let mut ihdr = Vec::new();
    ihdr.extend(w.to_be_bytes());
    ihdr.extend(h.to_be_bytes());
    ihdr.extend([8, 2, 0, 0, 0]); // 8-bit RGB
    let mut png = PNG_SIGNATURE.to_vec();
    png_chunk(&mut png, b"IHDR", &ihdr);
    png_chunk(&mut png, b"IDAT", &zlib_stored(&[0u8; 64]));
    png_chunk(&mut png, b"IEND", &[]);
    png
}

/// A palette PNG (colour type 3) with a tRNS chunk: index 0 fully transparent around a product
/// drawn with indices 1 (opaque) and 2 (half transparent edge).
pub fn palette_trns_png(shape: Shape, w: u32, h: u32) -> Vec<u8> {
    let (_, mask) = synth::product_photo(shape, [0, 0, 0], w, h, 1);
    let mut raw = Vec::with_capacity(((w + 1) * h) as usize);
    for y in 0..h {
        raw.push(0); // filter: none
        for x in 0..w {
            raw.push(match mask.get_pixel(x, y)[0] {
                0..=63 => 0,
                64..=191 => 2,
                _ => 1,
            });
        }
    }
    let mut ihdr = Vec::new();
    ihdr.extend(w.to_be_bytes());
    ihdr.extend(h.to_be_bytes());
    ihdr.extend([8, 3, 0, 0, 0]);
    let mut png = PNG_SIGNATURE.to_vec();
    png_chunk(&mut png, b"IHDR", &ihdr);
    png_chunk(&mut png, b"PLTE", &[255, 255, 255, 20, 120, 200, 20, 120, 200]);
    png_chunk(&mut png, b"tRNS", &[0, 255, 128]);
    png_chunk(&mut png, b"IDAT", &zlib_stored(&raw));
    png_chunk(&mut png, b"IEND", &[]);
    png
}

/// An RGBA PNG with an `eXIf` chunk carrying `orientation`.
pub fn exif_png(stored: &RgbaImage, orientation: u16) -> Vec<u8> {
    let png = encode(&DynamicImage::ImageRgba8(stored.clone()), ImageFormat::Png);
    // Insert eXIf right after IHDR (8-byte signature + 25-byte IHDR chunk).
    let mut out = png[..33].to_vec();
    png_chunk(&mut out, b"eXIf", &exif_orientation(orientation));
    out.extend_from_slice(&png[33..]);
    out
}

/// An animated GIF: two 2×2 frames, looping forever.
pub fn animated_gif() -> Vec<u8> {
    let mut gif = b"GIF89a".to_vec();
    gif.extend([2, 0, 2, 0, 0x80, 0, 0]); // 2×2, global colour table of 2 entries
    gif.extend([0, 0, 0, 255, 255, 255]);
    gif.extend([0x21, 0xFF, 0x0B]);
    gif.extend(b"NETSCAPE2.0");
    gif.extend([3, 1, 0, 0, 0]); // loop forever
    for index in [0u16, 1] {
        gif.extend([0x21, 0xF9, 4, 0, 10, 0, 0, 0]); // 100 ms per frame
        gif.extend([0x2C, 0, 0, 0, 0, 2, 0, 2, 0, 0]);
        // LZW, minimum code size 2 (3-bit codes): clear, pixel, clear, pixel… end.
        let codes = [4, index, 4, index, 4, index, 4, index, 5];
        let (mut bits, mut nbits, mut data) = (0u32, 0, Vec::new());
        for code in codes {
            bits |= (code as u32) << nbits;
            nbits += 3;
            while nbits >= 8 {
                data.push(bits as u8);
                bits >>= 8;
                nbits -= 8;
            }
        }
        if nbits > 0 {
            data.push(bits as u8);
        }
        gif.push(2);
        gif.push(data.len() as u8);
        gif.extend(data);
        gif.push(0);
    }
    gif.push(0x3B);
    gif
}

pub const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

/// Appends one PNG chunk (length, type, data, CRC).
pub fn png_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend((data.len() as u32).to_be_bytes());
    let start = out.len();
    out.extend(kind);
    out.extend(data);
    let crc = crc32(&out[start..]);
    out.extend(crc.to_be_bytes());
}

/// zlib stream of stored (uncompressed) deflate blocks.
pub fn zlib_stored(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x78, 0x01];
    let blocks: Vec<&[u8]> = if data.is_empty() { vec![&[][..]] } else { data.chunks(65_535).collect() };
    for (i, block) in blocks.iter().enumerate() {
        out.push(u8::from(i + 1 == blocks.len()));
        let len = block.len() as u16;
        out.extend(len.to_le_bytes());
        out.extend((!len).to_le_bytes());
        out.extend(*block);
    }
    let (mut a, mut b) = (1u32, 0u32);
    for &byte in data {
        a = (a + byte as u32) % 65_521;
        b = (b + a) % 65_521;
    }
    out.extend(((b << 16) | a).to_be_bytes());
    out
}

pub fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in bytes {
        crc ^= byte as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

/// A minimal one-page PDF.
pub const PDF: &[u8] = b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n";
/// An SVG drawing.
pub const SVG: &[u8] =
    b"<?xml version=\"1.0\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"100\" height=\"100\"><circle cx=\"50\" cy=\"50\" r=\"40\"/></svg>\n";
/// An HTML error page, as a failed download saves it.
pub const HTML: &[u8] =
    b"<!DOCTYPE html>\n<html><head><title>404 Not Found</title></head><body>Not Found</body></html>\n";
/// Plain text.
pub const TEXT: &[u8] = b"product: blue bottle\nprice: 10.00\n";
