//! The daemon end to end: the real binary on temporary folders.

mod common;

use common::synth::{self, Shape};
use common::{decode, non_white_bbox, wait_until, Sandbox};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::time::Duration;

const LONG: Duration = Duration::from_secs(120);

fn removals(d: &common::Daemon) -> f64 {
    d.metric("thumbgen_removals_total{engine=\"local\",outcome=\"success\"}")
}

#[test]
fn a_product_becomes_a_white_main_image_and_one_per_background() {
    let sb = Sandbox::new();
    sb.drop_file("backgrounds", "studio wall.jpg", &synth::jpeg(&synth::background(1600, 900)));
    let d = sb.start(&[]);
    sb.drop_file("produtos", "garrafa azul.jpg", &synth::product_jpeg(Shape::Bottle, [30, 80, 170], 1));

    let main = sb.output().join("garrafa-azul.jpg");
    let on_bg = sb.output().join("garrafa-azul__studio-wall.jpg");
    assert!(
        wait_until(LONG, || main.exists() && on_bg.exists()),
        "outputs missing: {:?}\n{}",
        sb.files("thumbnails-prontas"),
        d.log_text()
    );

    let white = decode(&main);
    assert_eq!(white.dimensions(), (1200, 1200));
    // Fill: the product's longer side is 85 % of the canvas (± 1 %), centred (± 2 px).
    let (x0, y0, x1, y1) = non_white_bbox(&white, 40).expect("a product on the canvas");
    let (w, h) = (x1 - x0 + 1, y1 - y0 + 1);
    let longer = w.max(h) as f64;
    assert!((longer / 1200.0 - 0.85).abs() <= 0.01, "longer side {longer} px");
    let (cx, cy) = ((x0 + x1) as f64 / 2.0, (y0 + y1) as f64 / 2.0);
    assert!((cx - 599.5).abs() <= 2.0 && (cy - 599.5).abs() <= 2.0, "centre ({cx}, {cy})");
    // Every pixel away from the product is exactly white in the encoded JPEG.
    let (bx0, by0, bx1, by1) = non_white_bbox(&white, 0).unwrap();
    for (x, y, p) in white.enumerate_pixels() {
        let outside = x + 16 < bx0 || x > bx1 + 16 || y + 16 < by0 || y > by1 + 16;
        if outside {
            assert_eq!(p.0, [255, 255, 255], "pixel ({x}, {y})");
        }
    }
    assert!(bx0 >= x0.saturating_sub(16) && bx1 <= x1 + 16, "faint haze spreads beyond the product");

    let composed = decode(&on_bg);
    assert_eq!(composed.dimensions(), (1200, 1200));
    // The 16:9 background is cover-cropped to its centre square: its left edge starts 350 px in.
    let corner = composed.get_pixel(0, 600).0;
    assert!((50..=64).contains(&corner[0]) && (150..=170).contains(&corner[2]), "left edge shows {corner:?}");
    assert_eq!(removals(&d), 1.0);
    assert!(d.log_text().contains("thumbnails written"));
}

#[test]
fn a_new_background_reuses_cut_outs_and_a_replaced_product_regenerates() {
    let sb = Sandbox::new();
    let d = sb.start(&[]);
    sb.drop_file("produtos", "a.jpg", &synth::product_jpeg(Shape::Box, [190, 30, 40], 2));
    sb.drop_file("produtos", "b.png", &{
        let mut out = Vec::new();
        let (photo, _) = synth::product_photo(Shape::Ball, [40, 140, 60], 640, 480, 3);
        photo.write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png).unwrap();
        out
    });
    assert!(
        wait_until(LONG, || sb.files("thumbnails-prontas") == ["a.jpg", "b.jpg"]),
        "{:?}",
        sb.files("thumbnails-prontas")
    );
    assert_eq!(removals(&d), 2.0);

    sb.drop_file("backgrounds", "bg.jpg", &synth::jpeg(&synth::background(800, 800)));
    assert!(
        wait_until(LONG, || sb.files("thumbnails-prontas") == ["a.jpg", "a__bg.jpg", "b.jpg", "b__bg.jpg"]),
        "{:?}",
        sb.files("thumbnails-prontas")
    );
    assert_eq!(removals(&d), 2.0, "a new background must not send photos for removal again");
    assert!(d.metric("thumbgen_cutout_cache_hits_total") >= 2.0);

    let before = std::fs::read(sb.output().join("a.jpg")).unwrap();
    let untouched = std::fs::metadata(sb.output().join("b.jpg")).unwrap().ino();
    sb.drop_file("produtos", "a.jpg", &synth::product_jpeg(Shape::Ball, [30, 80, 170], 4));
    assert!(wait_until(LONG, || std::fs::read(sb.output().join("a.jpg")).unwrap() != before));
    assert!(wait_until(LONG, || removals(&d) == 3.0));
    assert_eq!(std::fs::metadata(sb.output().join("b.jpg")).unwrap().ino(), untouched, "b.jpg must not be rewritten");
}

#[test]
fn a_slowly_written_file_is_read_only_when_complete_and_a_part_file_once() {
    let sb = Sandbox::new();
    let d = sb.start(&[]);
    let bytes = synth::product_jpeg(Shape::Can, [190, 30, 40], 5);
    let path = sb.products().join("slow.jpg");
    let mut file = std::fs::File::create(&path).unwrap();
    for chunk in bytes.chunks(bytes.len() / 6 + 1) {
        file.write_all(chunk).unwrap();
        file.flush().unwrap();
        std::thread::sleep(Duration::from_millis(700));
        assert!(sb.files("rejeitados").is_empty(), "a file still being written was rejected");
        assert!(!sb.output().join("slow.jpg").exists());
    }
    drop(file);
    assert!(wait_until(LONG, || sb.output().join("slow.jpg").exists()), "{}", d.log_text());

    let part = sb.products().join("renamed.jpg.part");
    std::fs::write(&part, synth::product_jpeg(Shape::Bottle, [40, 140, 60], 6)).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    std::fs::rename(&part, sb.products().join("renamed.jpg")).unwrap();
    assert!(wait_until(LONG, || sb.output().join("renamed.jpg").exists()));
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(removals(&d), 2.0, "each photo is sent for removal exactly once");
    assert!(sb.files("rejeitados").is_empty());
    assert_eq!(sb.files("thumbnails-prontas"), ["renamed.jpg", "slow.jpg"]);
}

#[test]
fn a_restart_after_completion_rewrites_nothing() {
    let sb = Sandbox::new();
    sb.drop_file("backgrounds", "bg.jpg", &synth::jpeg(&synth::background(640, 480)));
    sb.drop_file("produtos", "p.jpg", &synth::product_jpeg(Shape::Shoe, [60, 60, 60], 7));
    let d = sb.start(&[]);
    assert!(wait_until(LONG, || sb.files("thumbnails-prontas") == ["p.jpg", "p__bg.jpg"]));
    let stamps = |sb: &Sandbox| -> Vec<(u64, i64, i64)> {
        sb.files("thumbnails-prontas")
            .iter()
            .map(|f| {
                let m = std::fs::metadata(sb.output().join(f)).unwrap();
                (m.ino(), m.mtime(), m.mtime_nsec())
            })
            .collect()
    };
    let before = stamps(&sb);
    assert!(d.stop().success(), "SIGTERM must end the daemon with status 0");

    let d = sb.start(&[]);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(stamps(&sb), before, "outputs were rewritten after a restart");
    assert_eq!(removals(&d), 0.0);
    assert_eq!(d.metric("thumbgen_thumbnails_written_total"), 0.0);
}

#[test]
fn bad_inputs_are_rejected_with_a_reason_and_good_ones_still_complete() {
    let sb = Sandbox::new();
    let d = sb.start(&[("MAX_FILE_SIZE", "200000")]);
    let good = synth::product_jpeg(Shape::Bottle, [30, 80, 170], 8);
    sb.drop_file("produtos", "notes.jpg", b"this is not a photo at all\n");
    sb.drop_file("produtos", "cut.jpg", &good[..good.len() / 2]);
    sb.drop_file("produtos", "big.jpg", &vec![0xFF; 300_000]);
    sb.drop_file("produtos", "empty.png", b"");
    sb.drop_file("produtos", "good.jpg", &good);

    assert!(wait_until(LONG, || sb.output().join("good.jpg").exists()), "{}", d.log_text());
    let notes = ["notes.jpg", "cut.jpg", "big.jpg", "empty.png"].map(|n| sb.rejected().join(format!("{n}.error.txt")));
    assert!(wait_until(LONG, || notes.iter().all(|n| n.exists())), "{:?}", sb.files("rejeitados"));
    let reason = |name: &str| std::fs::read_to_string(sb.rejected().join(format!("{name}.error.txt"))).unwrap();
    assert!(reason("notes.jpg").contains("text"), "{}", reason("notes.jpg"));
    assert!(reason("cut.jpg").contains("truncated") || reason("cut.jpg").contains("damaged"));
    assert!(reason("big.jpg").contains("MAX_FILE_SIZE"));
    assert!(reason("empty.png").contains("empty"));
    for name in ["notes.jpg", "cut.jpg", "big.jpg", "empty.png"] {
        assert!(reason(name).contains("What to do:"), "{name}");
        assert!(!sb.products().join(name).exists());
    }
    assert_eq!(d.metric("thumbgen_inputs_rejected_total{reason=\"unsupported_format\"}"), 1.0);
    assert_eq!(d.metric("thumbgen_inputs_rejected_total{reason=\"too_large\"}"), 1.0);
    let (status, body) = d.get("/health");
    assert_eq!(status, 200, "{body}");
}

#[test]
fn process_runs_one_pass_and_reports() {
    let sb = Sandbox::new();
    sb.drop_file("backgrounds", "bg.jpg", &synth::jpeg(&synth::background(640, 480)));
    sb.drop_file("produtos", "p.jpg", &synth::product_jpeg(Shape::Box, [230, 180, 30], 9));
    sb.drop_file("produtos", "bad.jpg", b"<html>not an image</html>");
    let out = sb.run(&["process"], &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("2 thumbnails written") && stdout.contains("1 rejected"), "{stdout}");
    assert_eq!(sb.files("thumbnails-prontas"), ["p.jpg", "p__bg.jpg"]);

    let again = sb.run(&["process"], &[]);
    assert!(String::from_utf8_lossy(&again.stdout).contains("0 thumbnails written"));
}

#[test]
fn colliding_names_never_overwrite_each_other() {
    let sb = Sandbox::new();
    let d = sb.start(&[]);
    sb.drop_file("produtos", "item.jpg", &synth::product_jpeg(Shape::Box, [190, 30, 40], 10));
    assert!(wait_until(LONG, || sb.output().join("item.jpg").exists()));
    let mut png = Vec::new();
    synth::product_photo(Shape::Ball, [30, 80, 170], 640, 480, 11)
        .0
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    let first = std::fs::read(sb.output().join("item.jpg")).unwrap();
    sb.drop_file("produtos", "item.png", &png);
    assert!(
        wait_until(LONG, || sb.output().join("item-png.jpg").exists()),
        "{:?}\n{}",
        sb.files("thumbnails-prontas"),
        d.log_text()
    );
    assert_eq!(std::fs::read(sb.output().join("item.jpg")).unwrap(), first);
}

#[test]
fn config_prints_masked_settings_and_names_bad_keys() {
    let sb = Sandbox::new();
    let out = sb.run(&["config"], &[("HF_TOKEN", "hf_secret123"), ("MAX_FILE_SIZE", "5MiB")]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(!text.contains("hf_secret123") && text.contains("hf_token = \"***\""), "{text}");
    assert!(text.contains("max_file_size = \"5MiB\""));

    let bad = sb.run(&["config"], &[("WATCH_MODE", "sometimes")]);
    let err = String::from_utf8_lossy(&bad.stderr);
    assert_eq!(bad.status.code(), Some(2));
    assert!(err.contains("WATCH_MODE") && err.contains("poll"), "{err}");

    std::fs::create_dir_all(sb.path("config")).unwrap();
    std::fs::write(sb.path("config/thumbgen.toml"), "workers = 3\n[preset]\nquality = 80\n").unwrap();
    let toml = sb.run(&["config"], &[("WORKERS", "4")]);
    let text = String::from_utf8_lossy(&toml.stdout);
    assert!(text.contains("workers = 4"), "environment overrides the file: {text}");
    assert!(text.contains("quality = 80"), "{text}");
}

#[test]
fn systemd_is_told_ready_watchdog_and_stopping() {
    let sb = Sandbox::new();
    let socket_path = sb.path("notify.sock");
    let socket = std::os::unix::net::UnixDatagram::bind(&socket_path).unwrap();
    socket.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let path = socket_path.to_str().unwrap();
    let d = sb.start(&[("NOTIFY_SOCKET", path), ("WATCHDOG_USEC", "1000000")]);
    let mut heard = Vec::new();
    let mut buf = [0u8; 512];
    let mut listen_until = |want: &str, heard: &mut Vec<String>| {
        while !heard.iter().any(|m: &String| m.contains(want)) {
            let n = socket.recv(&mut buf).unwrap_or_else(|e| panic!("waiting for {want}: {e}; heard {heard:?}"));
            heard.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
    };
    listen_until("READY=1", &mut heard);
    listen_until("WATCHDOG=1", &mut heard);
    assert!(d.stop().success());
    listen_until("STOPPING=1", &mut heard);
    let ready = heard.iter().position(|m| m.contains("READY=1")).unwrap();
    let stopping = heard.iter().position(|m| m.contains("STOPPING=1")).unwrap();
    assert!(ready < stopping, "{heard:?}");
}

#[test]
fn the_shipped_config_file_is_valid_and_holds_the_defaults() {
    let sb = Sandbox::new();
    let shipped = concat!(env!("CARGO_MANIFEST_DIR"), "/config/thumbgen.toml");
    let with_file = sb.run(&["--config", shipped, "config"], &[]);
    assert!(with_file.status.success(), "{}", String::from_utf8_lossy(&with_file.stderr));
    let defaults = sb.run(&["config"], &[]);
    assert_eq!(
        String::from_utf8_lossy(&with_file.stdout),
        String::from_utf8_lossy(&defaults.stdout),
        "config/thumbgen.toml must document the built-in defaults"
    );
}

#[test]
fn polling_mode_takes_files_once_they_hold_still_and_ignores_temporary_names() {
    let sb = Sandbox::new();
    let d = sb.start(&[("WATCH_MODE", "poll"), ("POLL_INTERVAL", "300ms")]);
    std::fs::write(sb.products().join(".hidden.jpg"), synth::product_jpeg(Shape::Box, [190, 30, 40], 12)).unwrap();
    std::fs::write(sb.products().join("upload.jpg.part"), b"half a photo").unwrap();
    std::fs::create_dir(sb.products().join("folder.jpg")).unwrap();
    sb.drop_file("produtos", "polled.jpg", &synth::product_jpeg(Shape::Ball, [30, 80, 170], 13));
    assert!(wait_until(LONG, || sb.output().join("polled.jpg").exists()), "{}", d.log_text());
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(sb.files("thumbnails-prontas"), ["polled.jpg"]);
    assert!(sb.files("rejeitados").is_empty(), "hidden, temporary names and folders are not inputs");
    let (_, health) = d.get("/health");
    assert!(health.contains("\"watch_mode\":\"poll\""), "{health}");
}

#[test]
fn deleting_an_input_keeps_its_outputs_unless_asked() {
    for delete in [false, true] {
        let sb = Sandbox::new();
        let flag = if delete { "true" } else { "false" };
        let d = sb.start(&[("DELETE_ORPHANS", flag)]);
        sb.drop_file("backgrounds", "bg.jpg", &synth::jpeg(&synth::background(640, 480)));
        sb.drop_file("produtos", "gone.jpg", &synth::product_jpeg(Shape::Can, [40, 140, 60], 14));
        assert!(wait_until(LONG, || sb.files("thumbnails-prontas") == ["gone.jpg", "gone__bg.jpg"]));
        std::fs::remove_file(sb.products().join("gone.jpg")).unwrap();
        if delete {
            assert!(wait_until(LONG, || sb.files("thumbnails-prontas").is_empty()), "{}", d.log_text());
        } else {
            std::thread::sleep(Duration::from_secs(2));
            assert_eq!(sb.files("thumbnails-prontas"), ["gone.jpg", "gone__bg.jpg"]);
        }
    }
}

#[test]
fn sighup_reads_the_env_file_again_and_its_settings_override_the_environment() {
    let sb = Sandbox::new();
    let env_file = sb.path("thumbgen.env");
    // The harness exports LOG_LEVEL=debug; the file says warn and wins: the debug line of the
    // rescan a reload asks for is not written.
    std::fs::write(&env_file, "LOG_LEVEL=warn\nQUEUE_CAPACITY=100\n").unwrap();
    let d = sb.spawn_with(&["--env-file", env_file.to_str().unwrap()], &[]);
    d.wait_ready();
    unsafe { libc::kill(d.pid(), libc::SIGHUP) };
    std::thread::sleep(Duration::from_secs(2));
    assert!(!d.log_text().contains("full rescan"), "debug is below the file's level\n{}", d.log_text());

    // An edit of the file, then a reload (what `systemctl reload thumbgen` does): seen at once.
    std::fs::write(&env_file, "LOG_LEVEL=debug\nQUEUE_CAPACITY=200\n").unwrap();
    unsafe { libc::kill(d.pid(), libc::SIGHUP) };
    assert!(
        wait_until(LONG, || d.log_text().contains("these changes take effect after a restart")),
        "the edit was seen\n{}",
        d.log_text()
    );
    assert!(d.log_text().contains("keys=queue_capacity"), "the changed setting is named\n{}", d.log_text());
    assert!(wait_until(LONG, || d.log_text().contains("full rescan")), "the new level is live\n{}", d.log_text());
}

#[test]
fn the_daemon_under_test_inherits_none_of_the_developers_settings() {
    let sb = Sandbox::new();
    let (cmd, ..) = sb.daemon_command(std::path::Path::new(common::BIN), &[]);
    let set: std::collections::BTreeMap<String, Option<String>> = cmd
        .get_envs()
        .map(|(k, v)| (k.to_string_lossy().into_owned(), v.map(|v| v.to_string_lossy().into_owned())))
        .collect();
    let harness = ["PORT", "LOG_LEVEL", "RESCAN_INTERVAL"];
    for key in thumbgen::ENV_KEYS.iter().chain(common::PROCESS_KEYS) {
        match set.get(*key) {
            Some(None) => {}
            Some(Some(_)) if harness.contains(key) => {}
            other => panic!("{key} would be inherited from the test's environment: {other:?}"),
        }
    }
}

#[test]
fn sighup_reloads_the_configuration() {
    let sb = Sandbox::new();
    std::fs::create_dir_all(sb.path("config")).unwrap();
    std::fs::write(sb.path("config/thumbgen.toml"), "queue_capacity = 100\n").unwrap();
    let d = sb.start(&[]);
    std::fs::write(sb.path("config/thumbgen.toml"), "queue_capacity = 200\n").unwrap();
    unsafe { libc::kill(d.pid(), libc::SIGHUP) };
    assert!(wait_until(LONG, || d.log_text().contains("configuration reloaded")), "{}", d.log_text());
    assert!(d.log_text().contains("queue_capacity"), "the changed key is named");

    std::fs::write(sb.path("config/thumbgen.toml"), "queue_capacity = \"lots\"\n").unwrap();
    unsafe { libc::kill(d.pid(), libc::SIGHUP) };
    assert!(wait_until(LONG, || d.log_text().contains("reload failed")), "{}", d.log_text());
    assert_eq!(d.get("/health/live").0, 200, "a bad reload keeps the daemon running");
}

#[test]
fn a_burst_larger_than_the_queue_is_processed_without_starving() {
    // 10× the queue's capacity at once: the overflow rescan must bring in the dropped files, not
    // the finished ones again (which once slowed such a burst to well under one file a second).
    let sb = Sandbox::new();
    let d = sb.start(&[("QUEUE_CAPACITY", "8"), ("RESCAN_INTERVAL", "3600")]);
    let png = common::corpus::cutout_png(Shape::Box, [200, 40, 40], 96, 72);
    for i in 0..80 {
        sb.drop_file("produtos", &format!("item-{i:02}.png"), &png);
    }
    let all_done = || (0..80).all(|i| sb.output().join(format!("item-{i:02}.jpg")).exists());
    assert!(
        wait_until(Duration::from_secs(40), all_done),
        "{} of 80 done\n{}",
        sb.files("thumbnails-prontas").len(),
        d.log_text()
    );
    assert!(sb.files("rejeitados").is_empty());
}
