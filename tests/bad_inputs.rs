//! Bad inputs: a corpus of malformed, hostile and merely unusual files, generated here and dropped
//! together with good ones into the running daemon.
//!
//! The contract (README, "Folders" and "Rejections"): a valid image, however unusual (CMYK,
//! 16-bit, grey, palette with tRNS, EXIF-rotated, progressive, odd names), becomes thumbnails; a
//! file that can never succeed is moved to `rejeitados/` with `<name>.error.txt` and counted in
//! `thumbgen_inputs_rejected_total{reason}`; folders, hidden and temporary names are ignored; and
//! whatever arrives, the daemon stays up and healthy and good files still complete.
//!
//! "Unreadable" needs a daemon that file permissions apply to: the tests run as root, for whom
//! `chmod 000` stops nothing, so the corpus test runs the daemon as `nobody` (uid 65534, as it
//! runs in production under its own user) and the unreadable file is a root-owned file of mode
//! 000.

mod common;

use common::corpus;
use common::synth::{self, Shape};
use common::system::mkfifo;
use common::{decode, non_white_bbox, wait_until, Sandbox};
use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

const LONG: Duration = Duration::from_secs(120);

/// What must become of one dropped file.
#[derive(Clone, Debug)]
enum Expect {
    /// Thumbnails: `thumbnails-prontas/<stem>.jpg`.
    Thumbnail(String),
    /// Moved to `rejeitados/` with a note giving the reason and saying `phrase`.
    Rejected { reason: &'static str, phrase: &'static str },
    /// Left where it is: never read, moved or answered.
    Ignored,
}

struct Case {
    folder: &'static str,
    name: String,
    expect: Expect,
}

fn thumbnail(folder: &'static str, name: &str, stem: &str) -> Case {
    Case { folder, name: name.into(), expect: Expect::Thumbnail(stem.into()) }
}

fn rejected(folder: &'static str, name: &str, reason: &'static str, phrase: &'static str) -> Case {
    Case { folder, name: name.into(), expect: Expect::Rejected { reason, phrase } }
}

/// Writes a file aside and renames it in (the careful uploader); the temporary name is short, so
/// names up to the 255-byte limit work.
fn put(sb: &Sandbox, folder: &str, name: &str, bytes: &[u8]) {
    let dir = sb.path(folder);
    let tmp = dir.join(format!(".put-{}.part", bytes.len()));
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(&tmp, dir.join(name)).unwrap();
}

fn exists(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok()
}

/// The product of a thumbnail: its non-white bounding box.
fn product_box(img: &image::RgbImage) -> (u32, u32, u32, u32) {
    non_white_bbox(img, 40).expect("a product on the canvas")
}

/// A bottle standing upright: much taller than wide, its narrow neck at the top.
fn assert_upright_bottle(img: &image::RgbImage, what: &str) {
    let (x0, y0, x1, y1) = product_box(img);
    let (w, h) = (x1 - x0 + 1, y1 - y0 + 1);
    assert!(h > 2 * w, "{what}: the bottle lies on its side ({w}×{h}): EXIF orientation not applied");
    let width_at = |frac: f32| {
        let y = y0 + ((h as f32) * frac) as u32;
        (x0..=x1).filter(|&x| img.get_pixel(x, y).0.iter().any(|&c| c < 215)).count()
    };
    let (neck, body) = (width_at(0.08), width_at(0.7));
    assert!(neck * 2 < body, "{what}: the neck ({neck} px) is not at the top (body {body} px): upside down");
}

fn colour_at_centre(img: &image::RgbImage) -> [u8; 3] {
    let (x0, y0, x1, y1) = product_box(img);
    img.get_pixel((x0 + x1) / 2, (y0 + y1) / 2).0
}

fn close(actual: [u8; 3], expected: [u8; 3], tol: i32) -> bool {
    actual.iter().zip(expected).all(|(&a, e)| (a as i32 - e as i32).abs() <= tol)
}

/// Sets a file's access and modification times far in the past, so that a read of it (which
/// updates the access time under `relatime`) shows.
fn age_file(path: &Path) -> SystemTime {
    let old = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
    let file = std::fs::File::options().write(true).open(path).unwrap();
    file.set_times(std::fs::FileTimes::new().set_accessed(old).set_modified(old)).unwrap();
    old
}

fn accessed(path: &Path) -> i64 {
    std::fs::metadata(path).unwrap().atime()
}

#[test]
fn a_corpus_of_bad_inputs_is_rejected_or_ignored_while_good_files_complete() {
    let sb = Sandbox::new();
    for folder in ["produtos", "backgrounds", "outside"] {
        std::fs::create_dir_all(sb.path(folder)).unwrap();
    }
    // Photos (no transparency) go through the embedded engine: few and small. Everything else
    // good is a ready cut-out (PNG/WebP with transparency), used as is.
    let (bottle, _) = synth::product_photo(Shape::Bottle, [190, 30, 40], 240, 320, 31);
    let (can, _) = synth::product_photo(Shape::Can, [30, 80, 170], 320, 240, 32);
    let (ball, _) = synth::product_photo(Shape::Ball, [40, 140, 60], 320, 240, 33);
    let cut = |shape, rgb| corpus::cutout_png(shape, rgb, 200, 160);
    let upright_cutout = corpus::cutout_rgba(Shape::Bottle, [120, 60, 20], 150, 200);
    let good_jpeg = synth::jpeg(&can);
    let good_png = cut(Shape::Box, [200, 120, 20]);
    let long_good = format!("{}.png", "a".repeat(246));
    let long_bad = format!("{}.jpg", "x".repeat(246));
    let mut tiny = image::RgbaImage::new(3, 3);
    tiny.put_pixel(1, 1, image::Rgba([10, 10, 10, 255]));

    let mut files: Vec<(Case, Vec<u8>)> = vec![
        // Good, if unusual: thumbnails.
        (thumbnail("produtos", "cutout.png", "cutout"), good_png.clone()),
        (thumbnail("produtos", "cmyk.jpg", "cmyk"), corpus::cmyk_jpeg(&bottle)),
        (thumbnail("produtos", "progressive.jpg", "progressive"), corpus::progressive_jpeg(&can)),
        // Stored lying down, EXIF 6 (turn 90° clockwise to view).
        (
            thumbnail("produtos", "exif-rotated.jpg", "exif-rotated"),
            corpus::exif_jpeg(&image::imageops::rotate270(&bottle), 6),
        ),
        (thumbnail("produtos", "grey.jpg", "grey"), corpus::grey_jpeg(&ball)),
        (
            thumbnail("produtos", "deep-16bit.png", "deep-16bit"),
            corpus::cutout_png16(Shape::Ball, [30, 80, 170], 200, 160),
        ),
        (thumbnail("produtos", "grey-alpha.png", "grey-alpha"), corpus::cutout_png_grey_alpha(Shape::Can, 200, 160)),
        (thumbnail("produtos", "palette-trns.png", "palette-trns"), corpus::palette_trns_png(Shape::Can, 200, 160)),
        // Stored turned 90° clockwise, EXIF 8 (turn 90° counter-clockwise to view).
        (
            thumbnail("produtos", "exif-rotated-cutout.png", "exif-rotated-cutout"),
            corpus::exif_png(&image::imageops::rotate90(&upright_cutout), 8),
        ),
        (thumbnail("produtos", "lossless.webp", "lossless"), corpus::cutout_webp(Shape::Shoe, [60, 60, 60], 200, 160)),
        (thumbnail("produtos", "com espaços.png", "com-espaços"), cut(Shape::Ball, [20, 20, 200])),
        (thumbnail("produtos", "tênis azul 日本 ✓.png", "tênis-azul-日本"), cut(Shape::Shoe, [20, 20, 200])),
        (
            thumbnail("produtos", "aspas \"duplas\" e 'simples'.png", "aspas-duplas-e-simples"),
            cut(Shape::Can, [9, 9, 9]),
        ),
        (thumbnail("produtos", "linha\nnova.png", "linha-nova"), cut(Shape::Box, [9, 9, 9])),
        (thumbnail("produtos", "-leading-dash.png", "leading-dash"), cut(Shape::Bottle, [9, 9, 9])),
        (thumbnail("produtos", &long_good, &"a".repeat(96)), cut(Shape::Ball, [9, 9, 9])),
        (
            thumbnail("produtos", "tiny-dot.png", "tiny-dot"),
            corpus::encode(&image::DynamicImage::ImageRgba8(tiny), image::ImageFormat::Png),
        ),
        (thumbnail("produtos", "really-a-png.jpg", "really-a-png"), cut(Shape::Can, [200, 20, 20])),
        (thumbnail("produtos", "UPPER.PNG", "UPPER"), cut(Shape::Box, [20, 200, 20])),
        (thumbnail("produtos", "no-extension", "no-extension"), cut(Shape::Ball, [200, 20, 200])),
        // Hopeless: rejected with a reason.
        (rejected("produtos", "empty.jpg", "empty", "empty (0 bytes)"), Vec::new()),
        (rejected("produtos", "truncated.jpg", "corrupt", "truncated"), good_jpeg[..good_jpeg.len() / 2].to_vec()),
        (
            rejected("produtos", "truncated.png", "corrupt", "damaged or incomplete"),
            good_png[..good_png.len() / 2].to_vec(),
        ),
        (rejected("produtos", "notes.jpg", "unsupported_format", "the file is text"), corpus::TEXT.to_vec()),
        (rejected("produtos", "page.jpg", "unsupported_format", "the file is HTML"), corpus::HTML.to_vec()),
        (rejected("produtos", "drawing.jpg", "unsupported_format", "the file is SVG"), corpus::SVG.to_vec()),
        (rejected("produtos", "document.jpg", "unsupported_format", "the file is PDF"), corpus::PDF.to_vec()),
        (rejected("produtos", "animated.gif", "unsupported_format", "the file is GIF"), corpus::animated_gif()),
        (rejected("produtos", "bitmap.jpg", "unsupported_format", "the file is BMP"), {
            let mut bmp = b"BM".to_vec();
            bmp.extend([0u8; 52]);
            bmp
        }),
        (rejected("produtos", "iphone.jpg", "unsupported_format", "HEIC"), {
            let mut heic = vec![0, 0, 0, 24];
            heic.extend(b"ftypheic\0\0\0\0mif1heic");
            heic
        }),
        (
            rejected("produtos", "random.jpg", "unsupported_format", "not a recognised image format"),
            (0..4096u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect(),
        ),
        (rejected("produtos", "bomb.png", "too_many_pixels", "60000×60000"), corpus::png_bomb(60_000, 60_000)),
        (rejected("produtos", "bomb.jpg", "too_many_pixels", "60000×60000"), corpus::jpeg_bomb(60_000, 60_000)),
        (rejected("produtos", "zero-size.png", "corrupt", "damaged"), corpus::png_bomb(0, 0)),
        (rejected("produtos", "transparent.png", "no_product", "no product"), corpus::transparent_png(64, 64)),
        (
            rejected("produtos", "backdrop-only.jpg", "no_product", "no product"),
            synth::jpeg(&corpus::empty_backdrop(320, 240)),
        ),
        (
            rejected("produtos", "one-pixel.jpg", "no_product", "no product"),
            synth::jpeg(&image::RgbImage::from_pixel(1, 1, image::Rgb([200, 30, 30]))),
        ),
        (rejected("produtos", "huge.png", "too_large", "MAX_FILE_SIZE"), corpus::noise_png(300)),
        (rejected("produtos", &long_bad, "unsupported_format", "the file is text"), corpus::TEXT.to_vec()),
        (rejected("backgrounds", "broken-bg.jpg", "corrupt", "truncated"), good_jpeg[..good_jpeg.len() / 3].to_vec()),
        (rejected("backgrounds", "notes-bg.png", "unsupported_format", "the file is text"), corpus::TEXT.to_vec()),
        // Never inputs.
        (Case { folder: "produtos", name: ".hidden.png".into(), expect: Expect::Ignored }, good_png.clone()),
        (Case { folder: "produtos", name: "upload.png.part".into(), expect: Expect::Ignored }, good_png.clone()),
    ];
    assert!(corpus::noise_png(300).len() > 200_000, "huge.png must exceed MAX_FILE_SIZE");
    // Made in place rather than written: special files, links, a folder, an unreadable file.
    let specials = [
        rejected("produtos", "pipe.jpg", "not_regular_file", "named pipe"),
        rejected("produtos", "socket.jpg", "not_regular_file", "socket"),
        rejected("produtos", "link-outside.jpg", "symlink", "symbolic link"),
        rejected("produtos", "dangling.jpg", "symlink", "symbolic link"),
        rejected("produtos", "locked.png", "unreadable", "not allowed to read"),
        Case { folder: "produtos", name: "folder.jpg".into(), expect: Expect::Ignored },
    ];
    let kinds = files.len() + specials.len();
    assert!(kinds >= 30, "{kinds} kinds");

    // A photo outside the folder that a link points at: it must never be read. With `relatime`
    // a read of a file whose access time is not after its modification time updates it.
    let secret = sb.path("outside/secret.jpg");
    std::fs::write(&secret, &good_jpeg).unwrap();
    let secret_atime = age_file(&secret);
    let control = sb.path("outside/control.jpg");
    std::fs::write(&control, b"control").unwrap();
    age_file(&control);
    std::fs::read(&control).unwrap();
    let atime_shows_reads = accessed(&control) != accessed(&secret);

    let d = sb.start_unprivileged(&[("MAX_FILE_SIZE", "200000")]);
    let started = Instant::now();
    mkfifo(&sb.path("produtos/pipe.jpg"));
    let _socket = std::os::unix::net::UnixListener::bind(sb.path("produtos/socket.jpg")).unwrap();
    std::os::unix::fs::symlink(&secret, sb.path("produtos/link-outside.jpg")).unwrap();
    std::os::unix::fs::symlink("/nonexistent/photo.jpg", sb.path("produtos/dangling.jpg")).unwrap();
    std::fs::create_dir(sb.path("produtos/folder.jpg")).unwrap();
    std::fs::write(sb.path("produtos/folder.jpg/inside.png"), &good_png).unwrap();
    {
        let locked = sb.path("produtos/.locked.part");
        std::fs::write(&locked, &good_png).unwrap();
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).unwrap();
        std::fs::rename(&locked, sb.path("produtos/locked.png")).unwrap();
    }
    for (case, bytes) in &files {
        put(&sb, case.folder, &case.name, bytes);
    }
    files.extend(specials.into_iter().map(|c| (c, Vec::new())));
    let cases: Vec<&Case> = files.iter().map(|(c, _)| c).collect();

    let outputs: BTreeSet<String> = cases
        .iter()
        .filter_map(|c| match &c.expect {
            Expect::Thumbnail(stem) => Some(format!("{stem}.jpg")),
            _ => None,
        })
        .collect();
    let note_of = |c: &Case| -> Option<std::path::PathBuf> {
        let prefix = &c.name[..c.name.len().min(100)];
        sb.files("rejeitados")
            .into_iter()
            .find(|n| n.starts_with(prefix) && n.ends_with(".error.txt"))
            .map(|n| sb.rejected().join(n))
    };
    let settled = || {
        outputs.iter().all(|o| sb.output().join(o).exists())
            && cases.iter().all(|c| !matches!(c.expect, Expect::Rejected { .. }) || note_of(c).is_some())
    };
    assert!(
        wait_until(LONG, settled),
        "after {:?}: outputs {:?}\nrejected {:?}\nstill in produtos {:?}\n{}",
        started.elapsed(),
        sb.files("thumbnails-prontas"),
        sb.files("rejeitados"),
        sb.files("produtos"),
        d.log_text()
    );
    eprintln!("corpus of {kinds} kinds settled in {:?}", started.elapsed());
    std::thread::sleep(Duration::from_secs(1)); // anything extra (a second output, a late rejection) shows now

    // Exactly the expected thumbnails, whole, at the preset's size.
    let made: BTreeSet<String> = sb.files("thumbnails-prontas").into_iter().collect();
    assert_eq!(made, outputs, "outputs");
    for name in &outputs {
        let img = decode(&sb.output().join(name));
        assert_eq!(img.dimensions(), (1200, 1200), "{name}");
        let (x0, y0, x1, y1) = product_box(&img);
        let longer = (x1 - x0 + 1).max(y1 - y0 + 1);
        assert!((980..=1060).contains(&longer), "{name}: product's longer side is {longer} px, not 85 % of 1200");
    }
    let thumb = |stem: &str| decode(&sb.output().join(format!("{stem}.jpg")));
    assert_upright_bottle(&thumb("exif-rotated"), "exif-rotated.jpg");
    assert_upright_bottle(&thumb("exif-rotated-cutout"), "exif-rotated-cutout.png");
    let cmyk = colour_at_centre(&thumb("cmyk"));
    assert!(cmyk[0] > 150 && cmyk[1] < 90 && cmyk[2] < 90, "the CMYK bottle is red, not {cmyk:?}");
    let palette = colour_at_centre(&thumb("palette-trns"));
    assert!(close(palette, [20, 120, 200], 24), "palette colour {palette:?}");
    let deep = colour_at_centre(&thumb("deep-16bit"));
    assert!(close(deep, [30, 80, 170], 24), "16-bit colour {deep:?}");
    let grey = colour_at_centre(&thumb("grey"));
    assert!(grey.iter().max().unwrap() - grey.iter().min().unwrap() <= 6, "grey stays grey: {grey:?}");

    // Every hopeless file moved aside with a note that says why and what to do.
    let mut by_reason: BTreeMap<&str, usize> = BTreeMap::new();
    for case in &cases {
        let source = sb.path(case.folder).join(&case.name);
        match &case.expect {
            Expect::Rejected { reason, phrase } => {
                *by_reason.entry(reason).or_default() += 1;
                let note_path = note_of(case).unwrap();
                let note = std::fs::read_to_string(&note_path).unwrap();
                assert!(note.contains(&format!("Reason code: {reason}")), "{:?}: {note}", case.name);
                assert!(note.contains(phrase), "{:?} should say {phrase:?}: {note}", case.name);
                assert!(note.contains("What to do:"), "{:?}: {note}", case.name);
                assert!(note.contains(&case.name), "{:?}: the note names the file: {note}", case.name);
                assert!(!exists(&source), "{:?} is still in {}", case.name, case.folder);
                let moved = note_path.to_str().unwrap().strip_suffix(".error.txt").unwrap().to_owned();
                assert!(exists(Path::new(&moved)), "{moved} missing beside its note");
            }
            Expect::Thumbnail(_) => assert!(exists(&source), "{:?}: the catalog keeps its files", case.name),
            Expect::Ignored => {
                assert!(exists(&source), "{:?} was touched", case.name);
                assert!(note_of(case).is_none(), "{:?} was answered", case.name);
            }
        }
    }
    assert_eq!(by_reason.values().sum::<usize>() * 2, sb.files("rejeitados").len(), "{:?}", sb.files("rejeitados"));
    let kind = |name: &str| std::fs::symlink_metadata(sb.rejected().join(name)).unwrap().file_type();
    assert!(kind("pipe.jpg").is_fifo() && kind("socket.jpg").is_socket(), "special files are moved as they are");
    assert!(kind("link-outside.jpg").is_symlink() && kind("dangling.jpg").is_symlink());
    assert_eq!(std::fs::read_link(sb.rejected().join("link-outside.jpg")).unwrap(), secret);
    if atime_shows_reads {
        let atime = std::fs::metadata(&secret).unwrap().accessed().unwrap();
        assert_eq!(atime, secret_atime, "the file a link points at was read");
    } else {
        eprintln!("this filesystem does not record reads (noatime): not checking that the link's target was unread");
    }
    assert_eq!(std::fs::read(&secret).unwrap(), good_jpeg, "the link's target is untouched");
    assert!(sb.path("produtos/folder.jpg/inside.png").exists(), "sub-folders are not inputs");

    // Counted, logged once each, and the daemon is fine.
    for (reason, count) in &by_reason {
        let series = format!("thumbgen_inputs_rejected_total{{reason=\"{reason}\"}}");
        assert_eq!(d.metric(&series), *count as f64, "{series}");
    }
    assert_eq!(d.metric("thumbgen_thumbnails_written_total"), outputs.len() as f64);
    // Four photos and two without a product each went through the engine exactly once.
    assert_eq!(d.metric("thumbgen_removals_total{engine=\"local\",outcome=\"success\"}"), 6.0);
    let logged: BTreeMap<String, String> = sb
        .app_log()
        .iter()
        .filter(|r| r["message"] == "input rejected")
        .map(|r| (r["input"].as_str().unwrap().to_owned(), r["reason"].as_str().unwrap().to_owned()))
        .collect();
    let expected: BTreeMap<String, String> = cases
        .iter()
        .filter_map(|c| match c.expect {
            Expect::Rejected { reason, .. } => Some((c.name.clone(), reason.to_owned())),
            _ => None,
        })
        .collect();
    assert_eq!(logged, expected, "one `input rejected` log line per rejection, with its reason");
    let rejections = sb.app_log().iter().filter(|r| r["message"] == "input rejected").count();
    assert_eq!(rejections, expected.len(), "each rejection is logged once");
    let (status, health) = d.health();
    assert_eq!(status, 200, "{health}");
    assert_eq!(health["checks"]["application"]["status"], "ok", "{health}");
    let mut d = d;
    assert!(d.alive());
    assert_eq!(d.get("/health/live").0, 200);
}

/// A FIFO named `x.jpg` is rejected without being opened, and the single worker goes straight on to
/// the good files dropped behind it. A writer blocked opening the pipe shows whether the daemon
/// opened it: opening it for reading, even without blocking, would release the writer.
#[test]
fn a_fifo_is_never_opened_and_never_holds_up_a_worker() {
    use std::sync::mpsc;
    let sb = Sandbox::new();
    let d = sb.start(&[("WORKERS", "1")]);
    std::fs::create_dir_all(sb.path("staging")).unwrap();
    let staged = sb.path("staging/x.jpg");
    mkfifo(&staged);
    let (tx, rx) = mpsc::channel();
    let path = staged.clone();
    std::thread::spawn(move || {
        // SAFETY: no arguments.
        tx.send(Err(unsafe { libc::gettid() })).unwrap();
        let opened = std::fs::OpenOptions::new().write(true).open(&path);
        let _ = tx.send(Ok(opened.is_ok()));
    });
    let Ok(Err(tid)) = rx.recv() else { panic!("the writer thread did not start") };
    // Its state turns to S(leeping) once it waits in open(2) for a reader.
    let blocked = wait_until(Duration::from_secs(10), || {
        std::fs::read_to_string(format!("/proc/self/task/{tid}/stat"))
            .is_ok_and(|s| s.rsplit_once(") ").is_some_and(|(_, rest)| rest.starts_with('S')))
    });
    assert!(blocked, "the writer never blocked on the FIFO");
    std::fs::rename(&staged, sb.products().join("x.jpg")).unwrap();
    let started = Instant::now();
    let good: Vec<String> = (0..3).map(|i| format!("good-{i}")).collect();
    for (i, stem) in good.iter().enumerate() {
        sb.drop_file(
            "produtos",
            &format!("{stem}.png"),
            &corpus::cutout_png(synth::SHAPES[i], [200, 40, 40], 240, 180),
        );
    }
    let done = || good.iter().all(|s| sb.output().join(format!("{s}.jpg")).exists());
    assert!(wait_until(Duration::from_secs(30), done), "good files stuck behind a FIFO:\n{}", d.log_text());
    eprintln!("good files behind a FIFO done in {:?}", started.elapsed());
    let note = sb.rejected().join("x.jpg.error.txt");
    assert!(wait_until(Duration::from_secs(10), || note.exists()), "{:?}", sb.files("rejeitados"));
    let text = std::fs::read_to_string(&note).unwrap();
    assert!(text.contains("named pipe") && text.contains("not_regular_file"), "{text}");
    let moved = sb.rejected().join("x.jpg");
    assert!(std::fs::symlink_metadata(&moved).unwrap().file_type().is_fifo());
    assert!(rx.try_recv().is_err(), "the daemon opened the FIFO: the writer waiting on it was released");
    // Opening it here releases the writer: the check above could fail.
    let _reader = {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(&moved).unwrap()
    };
    assert_eq!(rx.recv_timeout(Duration::from_secs(10)), Ok(Ok(true)));
    assert_eq!(d.metric("thumbgen_inputs_rejected_total{reason=\"not_regular_file\"}"), 1.0);
    assert_eq!(d.get("/health").0, 200);
}

/// An upload that writes half a photo, stalls for 30 s with the file open and then finishes is
/// taken once, whole: never rejected as truncated, even by the rescans that run meanwhile
/// (`RESCAN_INTERVAL=2s` here), which see a file that has not changed for many seconds.
#[test]
fn a_file_written_over_30_seconds_is_taken_once_complete() {
    use std::io::Write;
    let sb = Sandbox::new();
    let d = sb.start(&[("RESCAN_INTERVAL", "2s")]);
    let bytes = corpus::cutout_png(Shape::Can, [40, 140, 60], 400, 300);
    let path = sb.products().join("slow.png");
    let mut file = std::fs::File::create(&path).unwrap();
    file.write_all(&bytes[..bytes.len() / 2]).unwrap();
    file.flush().unwrap();
    let stall = Instant::now();
    let writer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(30));
        file.write_all(&bytes[bytes.len() / 2..]).unwrap();
        // Closed when dropped here.
    });
    while stall.elapsed() < Duration::from_secs(29) {
        assert!(sb.files("rejeitados").is_empty(), "a file still being written was rejected:\n{}", d.log_text());
        assert!(sb.files("thumbnails-prontas").is_empty(), "a half-written file was made into thumbnails");
        std::thread::sleep(Duration::from_millis(500));
    }
    writer.join().unwrap();
    let out = sb.output().join("slow.jpg");
    assert!(wait_until(Duration::from_secs(30), || out.exists()), "{}", d.log_text());
    std::thread::sleep(Duration::from_secs(3));
    assert!(sb.files("rejeitados").is_empty());
    assert_eq!(sb.files("thumbnails-prontas"), ["slow.jpg"]);
    let (x0, _, x1, _) = product_box(&decode(&out));
    assert!(x1 > x0, "a product is on the thumbnail");
    assert_eq!(d.metric("thumbgen_thumbnails_written_total"), 1.0, "written once");
    let rescans = d.log_text().matches("full rescan").count();
    assert!(rescans >= 5, "only {rescans} rescans ran during the stall: the test proves nothing");
}

/// A file already half-written when the daemon starts, whose writer then stalls for longer than
/// any settling rule, is recognised as still being written (its writer holds it open) and taken
/// once complete — not rejected as truncated by the first scan.
#[test]
fn a_file_mid_write_when_the_daemon_starts_is_taken_once_complete() {
    use std::io::Write;
    let sb = Sandbox::new();
    std::fs::create_dir_all(sb.products()).unwrap();
    let bytes = corpus::cutout_png(Shape::Ball, [190, 30, 40], 400, 300);
    let path = sb.products().join("early.png");
    let mut file = std::fs::File::create(&path).unwrap();
    file.write_all(&bytes[..bytes.len() / 2]).unwrap();
    file.flush().unwrap();
    std::thread::sleep(Duration::from_secs(3)); // older than every settling rule
    let d = sb.start(&[("RESCAN_INTERVAL", "2s")]);
    let stall = Instant::now();
    while stall.elapsed() < Duration::from_secs(8) {
        assert!(sb.files("rejeitados").is_empty(), "a file still being written was rejected:\n{}", d.log_text());
        assert!(sb.files("thumbnails-prontas").is_empty(), "a half-written file was made into thumbnails");
        std::thread::sleep(Duration::from_millis(300));
    }
    assert!(
        d.log_text().contains("still being written"),
        "the scan took it and the writer was seen:\n{}",
        d.log_text()
    );
    file.write_all(&bytes[bytes.len() / 2..]).unwrap();
    drop(file);
    let out = sb.output().join("early.jpg");
    assert!(wait_until(Duration::from_secs(30), || out.exists()), "{}", d.log_text());
    assert!(sb.files("rejeitados").is_empty());
    assert_eq!(d.metric("thumbgen_thumbnails_written_total"), 1.0, "written once");
}

/// A file deleted after its event was queued, before a worker reached it, is dropped quietly:
/// no rejection, no retry, no output, and the work ahead of it completes.
#[test]
fn a_file_deleted_between_its_event_and_its_turn_is_forgotten_quietly() {
    let sb = Sandbox::new();
    let d = sb.start(&[("WORKERS", "1")]);
    // A photo for the engine keeps the only worker busy for a moment.
    let (photo, _) = synth::product_photo(Shape::Box, [190, 30, 40], 800, 600, 21);
    sb.drop_file("produtos", "busy.jpg", &synth::jpeg(&photo));
    assert!(wait_until(LONG, || d.metric("thumbgen_jobs_in_flight") == 1.0), "{}", d.log_text());
    sb.drop_file("produtos", "doomed.png", &corpus::cutout_png(Shape::Ball, [30, 80, 170], 200, 160));
    let queued = wait_until(Duration::from_secs(10), || {
        d.metric("thumbgen_files_detected_total{folder=\"produtos\"}") == 2.0 && d.metric("thumbgen_queue_depth") == 1.0
    });
    assert!(queued, "doomed.png was not queued behind busy.jpg:\n{}", d.log_text());
    assert!(!sb.output().join("busy.jpg").exists(), "busy.jpg finished too soon: nothing was waiting");
    std::fs::remove_file(sb.products().join("doomed.png")).unwrap();

    assert!(wait_until(LONG, || sb.output().join("busy.jpg").exists()), "{}", d.log_text());
    assert!(wait_until(Duration::from_secs(10), || d.metric("thumbgen_queue_depth") == 0.0
        && d.metric("thumbgen_jobs_in_flight") == 0.0));
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(sb.files("thumbnails-prontas"), ["busy.jpg"]);
    assert!(sb.files("rejeitados").is_empty(), "{:?}", sb.files("rejeitados"));
    assert_eq!(d.metric("thumbgen_transient_failures_total"), 0.0, "a vanished file is not retried");
    assert!(!d.log_text().contains("doomed.png must be rejected"));
    assert!(!d.log_text().contains("input rejected"));
    assert_eq!(d.get("/health").0, 200);
}
