//! Crash test (issue 7): during a burst of products, the daemon is killed with SIGKILL at random
//! moments and restarted each time; then every product must have exactly its outputs, whole, with
//! no temporary file left, and no photo sent for removal more often than the kills allow.
//!
//! The removal engine is a real Gradio app (gradio 6, `blocks_png`, started with `--mark`), so its
//! calls are counted outside the daemon and survive the kills. Each product photo has its own flat
//! colour at its centre; the app records that colour with every call, which tells which product a
//! call was for.
//!
//! A kill "hits product p in flight" when the daemon it killed had sent p for removal (the app
//! recorded the call during that life) and, right after the kill, p's cut-out was not in the cache
//! (`.thumbgen/cutouts/<hash>.png`) and p did not have all the outputs of its first pass (white
//! canvas and the backgrounds present from the start). The daemon caches a cut-out as soon as the
//! removal returns and makes outputs only after that, so this is exactly the window in which a kill
//! can waste a removal: call started, result not yet saved. (Should the cache layout change, the
//! count degrades to "call made, first pass unfinished", still conservative.) The bound is
//! `removals(p) <= 1 + kills that hit p in flight`. Jobs the killed daemon had already submitted
//! still run in the app after the kill; before the next start the test waits until the app's queue
//! is empty and no call has arrived for 300 ms, so those calls belong to the life that made them.
//!
//! `THUMBGEN_CRASH_SEED=<n>` replays a run (the seed is printed).

mod common;

use common::catalog::{
    background_bytes, expected_outputs, outputs_of, product_jpeg, product_name, removals, temporaries, Rng,
};
use common::gradio::GradioApp;
use common::{decode, wait_until, Daemon, Sandbox};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const DEFAULT_SEED: u64 = 0x7_2025_C4A5;
/// Products dropped during the run.
const PRODUCTS: usize = 320;
/// At least this many SIGKILLs (more if products are still being dropped).
const KILLS: usize = 24;
/// Side of the (square) output preset: small, so composing is cheap.
const SIDE: u32 = 200;
/// Backgrounds present from the start, and the one added while products are being dropped.
const BACKGROUNDS: [&str; 3] = ["studio.jpg", "madeira.png", "praia.jpg"];
const LATE_BACKGROUND: &str = "neon.jpg";

/// Waits until, for 300 ms, the app's queue has been empty at every look and no new call has
/// arrived: jobs the killed daemon had already submitted still run (their client is gone), and
/// their calls belong to the life that submitted them. Returns how many calls arrived meanwhile.
fn wait_calls_quiet(app: &GradioApp) -> usize {
    let start = app.calls();
    let mut last = start;
    let mut quiet_since = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(25));
        let now = app.calls();
        if now != last || app.queue_size() != Some(0) {
            last = now;
            quiet_since = Instant::now();
        } else if quiet_since.elapsed() >= Duration::from_millis(300) {
            break;
        }
    }
    last - start
}

fn output_set(sb: &Sandbox) -> BTreeSet<String> {
    sb.files("thumbnails-prontas").into_iter().collect()
}

fn metric(d: &Daemon, series: &str) -> f64 {
    d.metric(series)
}

struct Kill {
    /// Milliseconds the daemon lived.
    life_ms: u64,
    /// Whether it was answering ready just before the kill.
    was_ready: bool,
    /// Products hit in flight: a removal call made during this life (seen by the app), and
    /// neither its cut-out cached nor all the outputs of its first pass written at the kill.
    in_flight: Vec<usize>,
    /// Products with a call seen and their first pass unfinished (cut-out cached or not).
    unfinished: usize,
    /// Calls that reached the app after the kill.
    late_calls: usize,
}

#[test]
fn kill_9_during_a_burst_loses_nothing_and_repeats_little() {
    let seed = std::env::var("THUMBGEN_CRASH_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(DEFAULT_SEED);
    eprintln!("crash test seed: {seed} (set THUMBGEN_CRASH_SEED={seed} to replay)");
    let began = Instant::now();
    let mut rng = Rng(seed);

    let app = GradioApp::start("6", "blocks_png", &["--mark"]);
    let sb = Sandbox::new();
    std::fs::create_dir_all(sb.path("config")).unwrap();
    std::fs::write(
        sb.path("config/thumbgen.toml"),
        format!("[preset]\nwidth = {SIDE}\nheight = {SIDE}\nformat = \"jpeg\"\nquality = 85\n"),
    )
    .unwrap();
    for (i, b) in BACKGROUNDS.iter().enumerate() {
        sb.drop_file("backgrounds", b, &background_bytes(b, i));
    }
    let url = app.url();
    let env =
        [("GRADIO_API_URL", url.as_str()), ("LOG_LEVEL", "info"), ("WORKERS", "2"), ("MAX_CONCURRENT_REQUESTS", "2")];
    let photos: Vec<Vec<u8>> = (0..PRODUCTS).map(|i| product_jpeg(i, &mut rng)).collect();
    let cutout_names: Vec<String> =
        photos.iter().map(|bytes| format!("{}.png", thumbgen::content_hash(bytes))).collect();
    let first_pass: Vec<Vec<String>> = (0..PRODUCTS).map(|i| outputs_of(&product_name(i), &BACKGROUNDS)).collect();
    eprintln!("gradio app up and {PRODUCTS} photos made in {:.1} s", began.elapsed().as_secs_f64());

    // Products arrive in bursts (and a fourth background halfway) while the daemon is killed.
    let dropping = Arc::new(AtomicBool::new(true));
    let dropper = {
        let dropping = dropping.clone();
        let base = sb.dir.path().to_owned();
        let mut rng = Rng(seed ^ 0xD0D0);
        std::thread::spawn(move || {
            let drop_in = |rel: &str, name: &str, bytes: &[u8]| {
                let dir = base.join(rel);
                let tmp = dir.join(format!(".{name}.part"));
                std::fs::write(&tmp, bytes).unwrap();
                std::fs::rename(&tmp, dir.join(name)).unwrap();
            };
            let mut next = 0;
            let mut late_background = false;
            while next < PRODUCTS {
                std::thread::sleep(Duration::from_millis(rng.range(150, 700)));
                let end = (next + rng.range(15, 45) as usize).min(PRODUCTS);
                for (i, photo) in photos.iter().enumerate().take(end).skip(next) {
                    drop_in("produtos", &product_name(i), photo);
                }
                next = end;
                if !late_background && next >= PRODUCTS / 2 {
                    drop_in("backgrounds", LATE_BACKGROUND, &background_bytes(LATE_BACKGROUND, 3));
                    late_background = true;
                }
            }
            dropping.store(false, Ordering::SeqCst);
        })
    };

    let mut kills: Vec<Kill> = Vec::new();
    let mut calls_before = vec![0; PRODUCTS];
    while kills.len() < KILLS || dropping.load(Ordering::SeqCst) {
        let d = sb.spawn(&env);
        let born = Instant::now();
        // One life in four is short: killed while starting (journal compaction, first scan) or on
        // its first jobs.
        let life = Duration::from_millis(if rng.range(0, 4) == 0 { rng.range(20, 150) } else { rng.range(150, 750) });
        std::thread::sleep(life);
        let was_ready = d.is_ready();
        d.kill();
        let life_ms = born.elapsed().as_millis() as u64;
        let outputs = output_set(&sb);
        let cached: BTreeSet<String> = sb.files(".thumbgen/cutouts").into_iter().collect();
        let late_calls = wait_calls_quiet(&app);
        let calls = removals(&app, PRODUCTS);
        let unfinished: Vec<usize> =
            (0..PRODUCTS).filter(|&p| calls[p] > 0 && !first_pass[p].iter().all(|o| outputs.contains(o))).collect();
        let in_flight = unfinished
            .iter()
            .copied()
            .filter(|&p| calls[p] > calls_before[p] && !cached.contains(&cutout_names[p]))
            .collect();
        kills.push(Kill { life_ms, was_ready, in_flight, unfinished: unfinished.len(), late_calls });
        calls_before = calls;
    }
    dropper.join().unwrap();
    let killed_at = began.elapsed();
    let outputs_at_last_kill = output_set(&sb).len();

    // The last instance must finish everything by itself.
    let all_backgrounds: Vec<&str> = BACKGROUNDS.iter().copied().chain([LATE_BACKGROUND]).collect();
    let expected = expected_outputs(PRODUCTS, &all_backgrounds);
    let d = sb.spawn(&env);
    d.wait_ready();
    let finished = wait_until(Duration::from_secs(180), || expected.is_subset(&output_set(&sb)));
    let now = output_set(&sb);
    let missing: Vec<&String> = expected.difference(&now).take(20).collect();
    assert!(finished, "outputs still missing after the last restart (first 20): {missing:?}\n{}", d.log_text());
    let idle = wait_until(Duration::from_secs(60), || {
        d.is_ready() && metric(&d, "thumbgen_queue_depth") == 0.0 && metric(&d, "thumbgen_jobs_in_flight") == 0.0
    });
    assert!(idle, "the last instance never became idle\n{}", d.log_text());
    let finished_at = began.elapsed();
    assert!(d.stop().success(), "the last instance must stop cleanly on SIGTERM");

    // A clean restart loads the journal and redoes nothing.
    let calls_before = app.calls();
    let d = sb.start(&env);
    let settled = wait_until(Duration::from_secs(60), || {
        metric(&d, "thumbgen_files_detected_total{folder=\"produtos\"}") >= PRODUCTS as f64
            && metric(&d, "thumbgen_queue_depth") == 0.0
            && metric(&d, "thumbgen_jobs_in_flight") == 0.0
    });
    assert!(settled, "the restarted daemon did not look at every product\n{}", d.log_text());
    assert_eq!(metric(&d, "thumbgen_thumbnails_written_total"), 0.0, "a restart after completion rewrote outputs");
    assert_eq!(app.calls(), calls_before, "a restart after completion sent photos for removal again");
    assert!(d.stop().success());

    // Exactly the expected outputs, each whole and of the preset's size.
    let outputs = output_set(&sb);
    let extra: Vec<&String> = outputs.difference(&expected).collect();
    assert!(extra.is_empty(), "unexpected files in the output folder (duplicates or temporaries): {extra:?}");
    assert_eq!(outputs, expected);
    for name in &outputs {
        let path = sb.output().join(name);
        let bytes = std::fs::read(&path).unwrap();
        assert!(bytes.starts_with(&[0xFF, 0xD8]) && bytes.ends_with(&[0xFF, 0xD9]), "{name} is not a whole JPEG");
        assert_eq!(decode(&path).dimensions(), (SIDE, SIDE), "{name} has the wrong size");
    }

    // No temporary file anywhere, nothing rejected, every input still in place.
    let temps = temporaries(sb.dir.path());
    assert!(temps.is_empty(), "temporary files left: {temps:?}");
    assert!(sb.files("rejeitados").is_empty(), "rejected: {:?}", sb.files("rejeitados"));
    assert_eq!(sb.files("produtos").len(), PRODUCTS);

    // The journal is whole JSON lines and records exactly the outputs; one cut-out per photo.
    let journal = std::fs::read_to_string(sb.path(".thumbgen/journal.jsonl")).unwrap();
    let mut recorded = BTreeSet::new();
    for line in journal.lines() {
        let value: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("journal line is not JSON ({e}): {line}"));
        if value["k"] == "output" {
            recorded.insert(value["file"].as_str().unwrap().to_owned());
        }
    }
    assert_eq!(recorded, expected, "the journal must record exactly the outputs on disk");
    let cutouts: BTreeSet<String> = sb.files(".thumbgen/cutouts").into_iter().collect();
    assert_eq!(cutouts, cutout_names.iter().cloned().collect(), "one cached cut-out per photo, nothing else");
    for name in &cutouts {
        let path = sb.path(".thumbgen/cutouts").join(name);
        image::open(&path).unwrap_or_else(|e| panic!("cut-out {name} does not decode: {e}"));
    }
    let log = std::fs::read_to_string(sb.path("logs/app.log")).unwrap_or_default();
    let panics: Vec<&str> = log.lines().filter(|l| l.contains("internal error")).take(5).collect();
    assert!(panics.is_empty(), "jobs panicked: {panics:#?}");

    // Removals: at least one per product, at most one more per kill that hit it in flight.
    let calls = removals(&app, PRODUCTS);
    let mut hits = vec![0usize; PRODUCTS];
    for kill in &kills {
        for &p in &kill.in_flight {
            hits[p] += 1;
        }
    }
    let over: BTreeMap<String, (usize, usize)> = (0..PRODUCTS)
        .filter(|&p| calls[p] == 0 || calls[p] > 1 + hits[p])
        .map(|p| (product_name(p), (calls[p], 1 + hits[p])))
        .collect();

    let total: usize = calls.iter().sum();
    let repeated = calls.iter().filter(|&&c| c > 1).count();
    eprintln!(
        "crash test: {} kills ({} while ready, lives {}..{} ms), {} outputs at the last kill, \
         {PRODUCTS} products, {total} removals ({repeated} products more than once, max {} per product), \
         {} in-flight hits (max {} per kill; {} counting every unfinished product), \
         {} calls landed after a kill; \
         killing done at {:.1} s, finished at {:.1} s, total {:.1} s",
        kills.len(),
        kills.iter().filter(|k| k.was_ready).count(),
        kills.iter().map(|k| k.life_ms).min().unwrap(),
        kills.iter().map(|k| k.life_ms).max().unwrap(),
        outputs_at_last_kill,
        calls.iter().max().unwrap(),
        hits.iter().sum::<usize>(),
        kills.iter().map(|k| k.in_flight.len()).max().unwrap(),
        kills.iter().map(|k| k.unfinished).sum::<usize>(),
        kills.iter().map(|k| k.late_calls).sum::<usize>(),
        killed_at.as_secs_f64(),
        finished_at.as_secs_f64(),
        began.elapsed().as_secs_f64(),
    );
    assert!(over.is_empty(), "products with no removal or more removals than 1 + in-flight kills: {over:?}");
    assert!(kills.len() >= 20);
    eprintln!("crash test: checks done at {:.1} s", began.elapsed().as_secs_f64());
}
