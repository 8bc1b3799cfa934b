//! `thumbgen cutout PHOTO OUT.png [--mask]`: the real binary with the embedded engine on
//! synthetic photos with exact masks.

mod common;

use common::corpus::{cutout_png, empty_backdrop, transparent_png};
use common::synth::{iou, jpeg, product_photo, Shape};
use common::Sandbox;

fn run_cutout(sandbox: &Sandbox, photo: &str, out: &str, mask: bool) -> std::process::Output {
    let mut args = vec!["cutout", photo, out];
    if mask {
        args.push("--mask");
    }
    sandbox.run(&args, &[])
}

#[test]
fn a_photo_becomes_a_full_size_rgba_cut_out_and_nothing_else_is_written() {
    let sandbox = Sandbox::new();
    let (photo, truth) = product_photo(Shape::Bottle, [190, 30, 40], 640, 480, 3);
    std::fs::write(sandbox.path("bottle.jpg"), jpeg(&photo)).unwrap();
    let out = run_cutout(&sandbox, "bottle.jpg", "bottle-cut.png", false);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let cut = image::open(sandbox.path("bottle-cut.png")).unwrap();
    assert!(cut.color().has_alpha());
    let cut = cut.to_rgba8();
    assert_eq!(cut.dimensions(), (640, 480), "full size, not cropped");
    let alpha = image::GrayImage::from_fn(640, 480, |x, y| image::Luma([cut.get_pixel(x, y)[3]]));
    assert!(iou(&alpha, &truth) > 0.95, "IoU {}", iou(&alpha, &truth));
    // Opaque product pixels keep the photo's colour.
    let centre = cut.get_pixel(320, 240);
    assert_eq!(centre[3], 255);
    // A one-photo command leaves no folders, cache or journal behind.
    assert_eq!(sandbox.files(""), ["bottle-cut.png", "bottle.jpg"]);
}

#[test]
fn the_mask_flag_writes_the_grey_alpha_the_cut_out_would_have() {
    let sandbox = Sandbox::new();
    let (photo, _) = product_photo(Shape::Box, [30, 80, 170], 480, 360, 5);
    std::fs::write(sandbox.path("box.jpg"), jpeg(&photo)).unwrap();
    assert!(run_cutout(&sandbox, "box.jpg", "mask.png", true).status.success());
    assert!(run_cutout(&sandbox, "box.jpg", "cut.png", false).status.success());
    let mask = image::open(sandbox.path("mask.png")).unwrap();
    assert_eq!(mask.color(), image::ColorType::L8);
    let cut = image::open(sandbox.path("cut.png")).unwrap().to_rgba8();
    let same = mask.to_luma8().enumerate_pixels().all(|(x, y, p)| p[0] == cut.get_pixel(x, y)[3]);
    assert!(same, "the mask is the cut-out's alpha");
}

#[test]
fn a_photo_without_product_exits_1_with_the_reason() {
    let sandbox = Sandbox::new();
    std::fs::write(sandbox.path("empty.jpg"), jpeg(&empty_backdrop(320, 240))).unwrap();
    let out = run_cutout(&sandbox, "empty.jpg", "out.png", false);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no product"), "{stderr}");
    assert!(!sandbox.path("out.png").exists());
}

#[test]
fn a_refused_file_exits_1_with_the_reason_and_writes_nothing() {
    let sandbox = Sandbox::new();
    std::fs::write(sandbox.path("notes.jpg"), b"<html>not a photo</html>").unwrap();
    let out = run_cutout(&sandbox, "notes.jpg", "out.png", false);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("unsupported_format"), "{stderr}");
    assert!(!sandbox.path("out.png").exists());

    let missing = run_cutout(&sandbox, "absent.jpg", "out.png", false);
    assert_eq!(missing.status.code(), Some(1), "{}", String::from_utf8_lossy(&missing.stderr));
}

#[test]
fn a_png_with_its_own_transparency_is_its_own_cut_out() {
    let sandbox = Sandbox::new();
    std::fs::write(sandbox.path("own.png"), cutout_png(Shape::Ball, [40, 140, 60], 300, 200)).unwrap();
    assert!(run_cutout(&sandbox, "own.png", "out.png", true).status.success());
    let original = image::open(sandbox.path("own.png")).unwrap().to_rgba8();
    let mask = image::open(sandbox.path("out.png")).unwrap().to_luma8();
    assert!(original.enumerate_pixels().all(|(x, y, p)| p[3] == mask.get_pixel(x, y)[0]));

    std::fs::write(sandbox.path("clear.png"), transparent_png(64, 64)).unwrap();
    assert_eq!(run_cutout(&sandbox, "clear.png", "clear-out.png", false).status.code(), Some(1));
}

#[test]
fn an_output_that_cannot_be_written_exits_1_with_the_reason() {
    let sandbox = Sandbox::new();
    let (photo, _) = product_photo(Shape::Ball, [230, 180, 30], 320, 240, 9);
    std::fs::write(sandbox.path("p.jpg"), jpeg(&photo)).unwrap();
    let out = run_cutout(&sandbox, "p.jpg", "no-such-folder/out.png", false);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot write"), "{}", String::from_utf8_lossy(&out.stderr));
}
