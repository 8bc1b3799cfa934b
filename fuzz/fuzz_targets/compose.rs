//! Arbitrary bytes through everything after validation, the way the pipeline does it: decode;
//! the cut-out from the photo's own transparency, or else from a mask (here made of the input's
//! bytes, standing in for an engine); then place, blend onto the preset's backdrop (a colour or
//! transparent) and onto the photo
//! as a cover-cropped background, and encode — for small presets covering every anchor, format,
//! the shadow, margins and the extremes of `fill`, plus one preset chosen by the input's last bytes.
#![no_main]

use image::{DynamicImage, GrayImage};
use libfuzzer_sys::fuzz_target;
use thumbgen::compose::{self, Canvas};
use thumbgen::cutout::{self, Cutout};
use thumbgen::encode::encode;
use thumbgen::preset::{Anchor, Backdrop, OutputFormat, Preset};

fuzz_target!(|data: &[u8]| {
    let Ok(input) = thumbgen_fuzz::check_bytes(data) else { return };
    let Some(photo) = thumbgen_fuzz::decode(&input) else { return };
    let cover = compose::cover(&photo.to_rgb8(), 40, 32);
    let Some(cut) = cut_out(photo, data) else { return };
    let (cw, ch) = cut.image.dimensions();
    assert!(cw > 0 && ch > 0);
    for preset in presets(data) {
        let placed = compose::place(&cut, &preset);
        let canvas = compose::on_backdrop(&placed, &preset);
        let size = match &canvas {
            Canvas::Opaque(rgb) => rgb.dimensions(),
            Canvas::Transparent(rgba) => rgba.dimensions(),
        };
        assert_eq!(size, (preset.width, preset.height));
        encode(&canvas, &preset).expect("a canvas encodes");
        if (preset.width, preset.height) == cover.dimensions() && preset.background != Backdrop::Transparent {
            let mut canvas = cover.clone();
            compose::blend(&mut canvas, &placed);
            encode(&Canvas::Opaque(canvas), &preset).expect("a canvas encodes");
        }
    }
});

/// As `Pipeline::cut_out`: own transparency, else an engine's mask.
fn cut_out(photo: DynamicImage, data: &[u8]) -> Option<Cutout> {
    if cutout::has_real_transparency(&photo) {
        return Cutout::from_transparent(photo.into_rgba8());
    }
    let rgb = photo.into_rgb8();
    let (w, h) = rgb.dimensions();
    let mask =
        GrayImage::from_fn(w, h, |x, y| image::Luma([data[(y as usize * w as usize + x as usize) % data.len()]]));
    Cutout::from_mask(&rgb, &mask)
}

fn presets(data: &[u8]) -> Vec<Preset> {
    let small = |width, height| Preset { width, height, ..Preset::default() };
    let mut presets = vec![
        Preset { quality: 90, ..small(64, 64) },
        Preset { format: OutputFormat::Png, anchor: Anchor::Top, shadow: true, margin: 4, fill: 1.0, ..small(64, 48) },
        Preset { format: OutputFormat::Webp, anchor: Anchor::Bottom, shadow: true, fill: 0.05, ..small(48, 64) },
        Preset { anchor: Anchor::Bottom, fill: 1.0, quality: 1, ..small(40, 32) },
        Preset { format: OutputFormat::Png, background: Backdrop::Transparent, shadow: true, ..small(40, 32) },
    ];
    // One more from the last bytes (decoders ignore what follows the image), kept only when valid.
    if let [.., a, b, c, d, e] = *data {
        let preset = Preset {
            width: 16 + (a % 64) as u32,
            height: 16 + (b % 64) as u32,
            fill: 0.05 + (c as f32 / 255.0) * 0.95,
            margin: (d % 16) as u32,
            anchor: [Anchor::Center, Anchor::Top, Anchor::Bottom][(e % 3) as usize],
            shadow: e & 4 != 0,
            format: [OutputFormat::Jpeg, OutputFormat::Png, OutputFormat::Webp][(e >> 3) as usize % 3],
            quality: 1 + e % 100,
            ..Preset::default()
        };
        if preset.validate("fuzz").is_ok() {
            presets.push(preset);
        }
    }
    presets
}
