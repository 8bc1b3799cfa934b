//! The plan of a job, in process with a fake engine: what is made, what comes from the cache and
//! what is never done twice.

use super::*;
use crate::testkit::{backdate, background, names, photo, Base, FakeEngine};
use std::sync::Arc;

fn product(name: &str) -> Job {
    Job::new(InputKind::Product, name)
}

fn bg(name: &str) -> Job {
    Job::new(InputKind::Background, name)
}

fn written(outcome: Outcome) -> Vec<String> {
    match outcome {
        Outcome::Product { mut written, .. } => {
            written.sort();
            written
        }
        other => panic!("not a product outcome: {other:?}"),
    }
}

#[test]
fn a_new_product_gets_its_white_image_and_one_per_background() {
    let base = Base::new();
    let engine = Arc::new(FakeEngine::default());
    let pipeline = base.pipeline(engine.clone());
    base.put("backgrounds", "praia.png", &background([20, 90, 200]));
    base.put("produtos", "tênis azul.png", &photo([200, 30, 30]));
    assert!(matches!(pipeline.run(&bg("praia.png")).unwrap(), Outcome::Background { fan_out: Some(_) }));
    assert_eq!(written(pipeline.run(&product("tênis azul.png")).unwrap()), ["tênis-azul.jpg", "tênis-azul__praia.jpg"]);
    assert_eq!(engine.calls(), 1);
    let white = image::open(base.folders.output.join("tênis-azul.jpg")).unwrap().to_rgb8();
    assert_eq!(white.dimensions(), (120, 120));
    assert_eq!(white.get_pixel(2, 2).0, [255, 255, 255], "the marketplace canvas is pure white");
}

#[test]
fn a_transparent_preset_makes_the_product_alone_and_nothing_on_backgrounds() {
    let base = Base::with(|config| {
        config.extra_presets.push(crate::preset::Preset {
            name: "alone".into(),
            width: 100,
            height: 100,
            format: crate::preset::OutputFormat::Png,
            background: crate::preset::Backdrop::Transparent,
            ..crate::preset::Preset::default()
        });
    });
    let pipeline = base.pipeline(Arc::new(FakeEngine::default()));
    base.put("backgrounds", "praia.png", &background([20, 90, 200]));
    base.put("produtos", "p.png", &photo([200, 30, 30]));
    pipeline.run(&bg("praia.png")).unwrap();
    assert_eq!(written(pipeline.run(&product("p.png")).unwrap()), ["p.jpg", "p__alone.png", "p__praia.jpg"]);
    let alone = image::open(base.folders.output.join("p__alone.png")).unwrap();
    assert!(alone.color().has_alpha());
    let alone = alone.to_rgba8();
    assert_eq!(alone.dimensions(), (100, 100));
    assert_eq!(alone.get_pixel(1, 1)[3], 0, "no canvas around the product");
    assert_eq!(alone.get_pixel(50, 50).0, [200, 30, 30, 255], "the product itself, opaque");
}

#[test]
fn a_product_with_several_outputs_gets_every_one_recorded_once() {
    let base = Base::new();
    let pipeline = base.pipeline(Arc::new(FakeEngine::default()));
    for (name, colour) in [("a.png", [20, 90, 200]), ("b.png", [90, 20, 20]), ("c.png", [20, 200, 20])] {
        base.put("backgrounds", name, &background(colour));
        pipeline.run(&bg(name)).unwrap();
    }
    base.put("produtos", "p.png", &photo([200, 30, 30]));
    assert_eq!(written(pipeline.run(&product("p.png")).unwrap()), ["p.jpg", "p__a.jpg", "p__b.jpg", "p__c.jpg"]);
    assert_eq!(base.outputs(), ["p.jpg", "p__a.jpg", "p__b.jpg", "p__c.jpg"], "no temporary file left");
    let c = image::open(base.folders.output.join("p__c.jpg")).unwrap().to_rgb8();
    let corner = c.get_pixel(2, 2).0;
    assert!(corner[1] > 150 && corner[0] < 60, "each output on its own background: {corner:?}");
    assert!(written(pipeline.run(&product("p.png")).unwrap()).is_empty(), "all four were recorded");
}

#[test]
fn each_thumbnail_gets_its_console_preview_as_it_is_written() {
    let base = Base::new();
    let pipeline = base.pipeline(Arc::new(FakeEngine::default()));
    base.put("backgrounds", "b.png", &background([20, 90, 200]));
    pipeline.run(&bg("b.png")).unwrap();
    base.put("produtos", "p.png", &photo([200, 30, 30]));
    let outputs = written(pipeline.run(&product("p.png")).unwrap());
    let previews = crate::preview::PreviewDir::under(&base.folders.state);
    for file in outputs {
        let key = pipeline.journal.output(&file).expect("recorded").key;
        let preview = previews.path(&key).expect("a plain key");
        let image = image::open(&preview).unwrap_or_else(|e| panic!("preview of {file}: {e}"));
        assert!(image.width() <= crate::preview::SIDE && image.height() <= crate::preview::SIDE);
    }
}

#[test]
fn compose_encode_and_write_are_each_timed_once_per_output() {
    let base = Base::new();
    let pipeline = base.pipeline(Arc::new(FakeEngine::default()));
    for (name, colour) in [("a.png", [20, 90, 200]), ("b.png", [90, 20, 20])] {
        base.put("backgrounds", name, &background(colour));
        pipeline.run(&bg(name)).unwrap();
    }
    let counts = || {
        ["validate", "remove", "compose", "encode", "write"]
            .map(|stage| pipeline.metrics.stage_duration.with_label_values(&[stage]).get_sample_count())
    };
    let before = counts();
    base.put("produtos", "p.png", &photo([200, 30, 30]));
    assert_eq!(written(pipeline.run(&product("p.png")).unwrap()).len(), 3);
    let after = counts();
    let observed: Vec<u64> = after.iter().zip(before).map(|(a, b)| a - b).collect();
    assert_eq!(observed, [1, 1, 3, 3, 3], "validate and remove once per input; the rest once per output");
}

#[test]
fn a_photo_seen_before_comes_from_the_cache_without_a_second_removal() {
    let base = Base::new();
    let engine = Arc::new(FakeEngine::default());
    let pipeline = base.pipeline(engine.clone());
    base.put("produtos", "a.png", &photo([10, 150, 40]));
    base.put("produtos", "copy-of-a.png", &photo([10, 150, 40]));
    assert_eq!(written(pipeline.run(&product("a.png")).unwrap()), ["a.jpg"]);
    assert_eq!(written(pipeline.run(&product("copy-of-a.png")).unwrap()), ["copy-of-a.jpg"]);
    assert_eq!(engine.calls(), 1, "same content, one removal");
    assert!(written(pipeline.run(&product("a.png")).unwrap()).is_empty(), "done work is not redone");
    let restarted = base.pipeline(engine.clone());
    assert!(written(restarted.run(&product("a.png")).unwrap()).is_empty(), "nor after a restart");
    assert_eq!(engine.calls(), 1);
}

#[test]
fn a_new_background_adds_only_its_outputs_from_the_cached_cutouts() {
    let base = Base::new();
    let engine = Arc::new(FakeEngine::default());
    let pipeline = base.pipeline(engine.clone());
    base.put("produtos", "p.png", &photo([200, 30, 30]));
    base.put("produtos", "q.png", &photo([30, 30, 200]));
    pipeline.run(&product("p.png")).unwrap();
    pipeline.run(&product("q.png")).unwrap();
    base.put("backgrounds", "wood.png", &background([120, 80, 40]));
    let Outcome::Background { fan_out: Some(hash) } = pipeline.run(&bg("wood.png")).unwrap() else {
        panic!("a new background asks for its products to be queued again")
    };
    let requeued = pipeline.products().unwrap();
    assert_eq!(requeued, [product("p.png"), product("q.png")]);
    for job in &requeued {
        let stem = job.name.trim_end_matches(".png");
        assert_eq!(written(pipeline.run(job).unwrap()), [format!("{stem}__wood.jpg")]);
    }
    assert_eq!(engine.calls(), 2, "no photo was sent for removal again");
    // Until the fan-out is marked done, every run of the background asks for it again.
    assert!(matches!(pipeline.run(&bg("wood.png")).unwrap(), Outcome::Background { fan_out: Some(h) } if h == hash));
    pipeline.fanned_out("wood.png", &hash).unwrap();
    assert!(matches!(pipeline.run(&bg("wood.png")).unwrap(), Outcome::Background { fan_out: None }));
}

#[test]
fn a_replaced_product_is_cut_out_again_and_its_outputs_rewritten() {
    let base = Base::new();
    let engine = Arc::new(FakeEngine::default());
    let pipeline = base.pipeline(engine.clone());
    base.put("produtos", "p.png", &photo([200, 30, 30]));
    pipeline.run(&product("p.png")).unwrap();
    let before = std::fs::read(base.folders.output.join("p.jpg")).unwrap();
    base.put("produtos", "p.png", &photo([30, 200, 30]));
    assert_eq!(written(pipeline.run(&product("p.png")).unwrap()), ["p.jpg"]);
    assert_eq!(engine.calls(), 2);
    assert_ne!(std::fs::read(base.folders.output.join("p.jpg")).unwrap(), before);
}

#[test]
fn a_replaced_background_regenerates_its_outputs_and_a_touched_one_does_not() {
    let base = Base::new();
    let pipeline = base.pipeline(Arc::new(FakeEngine::default()));
    base.put("backgrounds", "b.png", &background([10, 10, 10]));
    base.put("produtos", "p.png", &photo([200, 30, 30]));
    let Outcome::Background { fan_out: Some(hash) } = pipeline.run(&bg("b.png")).unwrap() else {
        panic!("a new background asks for its products to be queued again")
    };
    pipeline.fanned_out("b.png", &hash).unwrap();
    pipeline.run(&product("p.png")).unwrap();
    backdate(&base.folders.backgrounds.join("b.png"));
    assert!(matches!(pipeline.run(&bg("b.png")).unwrap(), Outcome::Background { fan_out: None }));
    base.put("backgrounds", "b.png", &background([250, 250, 10]));
    assert!(matches!(pipeline.run(&bg("b.png")).unwrap(), Outcome::Background { fan_out: Some(h) } if h != hash));
    assert_eq!(written(pipeline.run(&product("p.png")).unwrap()), ["p__b.jpg"]);
}

#[test]
fn two_inputs_that_would_share_a_name_never_overwrite_each_other() {
    let base = Base::new();
    let pipeline = base.pipeline(Arc::new(FakeEngine::default()));
    base.put("produtos", "item.png", &photo([200, 30, 30]));
    base.put("produtos", "item.webp", &photo([30, 200, 30]));
    assert_eq!(written(pipeline.run(&product("item.png")).unwrap()), ["item.jpg"]);
    assert_eq!(written(pipeline.run(&product("item.webp")).unwrap()), ["item-webp.jpg"]);
    // Once the first holder leaves, its name is free for the next input that wants it.
    std::fs::remove_file(base.folders.products.join("item.png")).unwrap();
    assert!(matches!(pipeline.run(&product("item.png")).unwrap(), Outcome::Gone));
    base.put("produtos", "item.jpeg", &photo([30, 30, 200]));
    assert_eq!(written(pipeline.run(&product("item.jpeg")).unwrap()), ["item.jpg"]);
}

#[test]
fn a_third_input_with_both_its_names_taken_is_rejected_as_a_name_collision() {
    let base = Base::new();
    let pipeline = base.pipeline(Arc::new(FakeEngine::default()));
    // `x.png` holds `x`, `x-png.png` holds `x-png`; `x .png` sanitises to `x`, then `x-png`.
    for (name, colour) in [("x.png", [200, 30, 30]), ("x-png.png", [30, 200, 30]), ("x .png", [30, 30, 200])] {
        base.put("produtos", name, &photo(colour));
    }
    pipeline.run(&product("x.png")).unwrap();
    pipeline.run(&product("x-png.png")).unwrap();
    assert!(matches!(pipeline.run(&product("x .png")).unwrap(), Outcome::Rejected));
    let note = std::fs::read_to_string(base.folders.rejected.join("x .png.error.txt")).unwrap();
    assert!(note.contains("name_collision"), "{note}");
    assert_eq!(base.outputs(), ["x-png.jpg", "x.jpg"]);
}

#[test]
fn a_deleted_product_loses_its_outputs_only_with_delete_orphans() {
    for delete_orphans in [false, true] {
        let base = Base::with(|c| c.delete_orphans.0 = delete_orphans);
        let pipeline = base.pipeline(Arc::new(FakeEngine::default()));
        base.put("backgrounds", "b.png", &background([10, 10, 10]));
        base.put("produtos", "p.png", &photo([200, 30, 30]));
        pipeline.run(&bg("b.png")).unwrap();
        pipeline.run(&product("p.png")).unwrap();
        std::fs::remove_file(base.folders.products.join("p.png")).unwrap();
        assert!(matches!(pipeline.run(&product("p.png")).unwrap(), Outcome::Gone));
        let expected: Vec<String> = if delete_orphans { vec![] } else { vec!["p.jpg".into(), "p__b.jpg".into()] };
        assert_eq!(base.outputs(), expected, "DELETE_ORPHANS={delete_orphans}");
    }
}

#[test]
fn inputs_deleted_while_stopped_are_forgotten_at_start_and_their_orphans_removed() {
    let base = Base::with(|c| c.delete_orphans.0 = true);
    let engine = Arc::new(FakeEngine::default());
    let pipeline = base.pipeline(engine.clone());
    base.put("backgrounds", "b.png", &background([10, 10, 10]));
    base.put("produtos", "p.png", &photo([200, 30, 30]));
    base.put("produtos", "q.png", &photo([30, 200, 30]));
    pipeline.run(&bg("b.png")).unwrap();
    pipeline.run(&product("p.png")).unwrap();
    pipeline.run(&product("q.png")).unwrap();
    drop(pipeline);
    std::fs::remove_file(base.folders.backgrounds.join("b.png")).unwrap();
    std::fs::remove_file(base.folders.products.join("p.png")).unwrap();
    let restarted = base.pipeline(engine);
    restarted.reconcile();
    assert_eq!(base.outputs(), ["q.jpg"]);
    assert!(restarted.registered_backgrounds().is_empty());
}

#[test]
fn a_file_that_is_not_a_photo_is_rejected_with_its_reason() {
    let base = Base::new();
    let pipeline = base.pipeline(Arc::new(FakeEngine::default()));
    base.put("produtos", "notes.jpg", b"shopping list: milk, eggs");
    assert!(matches!(pipeline.run(&product("notes.jpg")).unwrap(), Outcome::Rejected));
    assert_eq!(names(&base.folders.rejected), ["notes.jpg", "notes.jpg.error.txt"]);
    let note = std::fs::read_to_string(base.folders.rejected.join("notes.jpg.error.txt")).unwrap();
    assert!(note.contains("unsupported_format") && note.contains("text"), "{note}");
    assert!(base.outputs().is_empty());
}

#[test]
fn a_photo_with_no_product_is_rejected_and_a_truncated_one_being_written_waits() {
    let base = Base::new();
    let pipeline = base.pipeline(Arc::new(FakeEngine::default()));
    base.put("produtos", "empty-backdrop.png", &background([230, 230, 230]));
    assert!(matches!(pipeline.run(&product("empty-backdrop.png")).unwrap(), Outcome::Rejected));
    let whole = photo([200, 30, 30]);
    let path = base.folders.products.join("upload.png");
    std::fs::write(&path, &whole[..whole.len() / 2]).unwrap(); // fresh: still being written
    match pipeline.run(&product("upload.png")) {
        Err(JobError::Transient(t)) => assert_eq!(t.cause(), crate::error::Cause::StillBeingWritten),
        other => panic!("expected a retry, got {other:?}"),
    }
    assert!(path.exists(), "the upload stays in place");
    backdate(&path);
    assert!(
        matches!(pipeline.run(&product("upload.png")).unwrap(), Outcome::Rejected),
        "a settled truncated file is corrupt"
    );
}

#[test]
fn an_engine_outage_is_a_retry_and_the_photo_stays() {
    let base = Base::new();
    let engine = Arc::new(FakeEngine { fail_first: 1, ..FakeEngine::default() });
    let pipeline = base.pipeline(engine.clone());
    base.put("produtos", "p.png", &photo([200, 30, 30]));
    assert!(matches!(pipeline.run(&product("p.png")), Err(JobError::Transient(_))));
    assert!(base.folders.products.join("p.png").exists() && base.outputs().is_empty());
    assert_eq!(written(pipeline.run(&product("p.png")).unwrap()), ["p.jpg"]);
}
