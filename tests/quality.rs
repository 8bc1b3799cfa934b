//! Cut-out quality of the embedded engine on synthetic product photos with exact masks.

mod common;

use common::synth::{iou, product_photo, SHAPES};
use thumbgen::remove::{LocalEngine, RemovalEngine};

/// As the binary does at start: onnxruntime writes no telemetry files (nextest runs each test in
/// its own process, so the environment is set before the engine's threads exist).
fn engine() -> LocalEngine {
    std::env::set_var("ORT_DISABLE_TELEMETRY", "1");
    LocalEngine::available().unwrap()
}

#[test]
fn embedded_engine_cuts_products_with_mean_iou_over_095() {
    let engine = engine();
    let colours = [[30, 80, 170], [190, 30, 40], [40, 140, 60], [230, 180, 30], [60, 60, 60]];
    let mut scores = Vec::new();
    for (i, shape) in SHAPES.iter().enumerate() {
        for (j, colour) in colours.iter().enumerate().filter(|(j, _)| (i + j) % 2 == 0) {
            let (photo, truth) = product_photo(*shape, *colour, 640, 480, (i * 10 + j) as u64);
            let mask = engine.mask(&photo).unwrap().expect("a product is found").alpha;
            assert_eq!(mask.dimensions(), truth.dimensions());
            let score = iou(&mask, &truth);
            println!("{shape:?} {colour:?}: IoU {score:.4}");
            scores.push(score);
        }
    }
    let mean = scores.iter().sum::<f64>() / scores.len() as f64;
    println!("mean IoU over {} photos: {mean:.4}", scores.len());
    assert!(mean >= 0.95, "mean IoU {mean:.4} below 0.95");
}

#[test]
fn a_plain_backdrop_without_product_is_not_cut_out() {
    let engine = engine();
    let empty = image::RgbImage::from_pixel(320, 240, image::Rgb([230, 230, 228]));
    assert!(engine.mask(&empty).unwrap().is_none(), "an empty backdrop must give no product");
}
