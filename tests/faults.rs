//! Faults in the environment: a full output disk, a watched folder deleted and recreated under
//! the daemon, a logs folder that cannot be written.
//!
//! The disk and read-only cases mount a tmpfs, which needs root (or CAP_SYS_ADMIN); where mounting
//! is refused the test says so loudly on stderr and passes without checking anything. To run them
//! elsewhere: as root, or in a container started with `--cap-add SYS_ADMIN`; without any
//! privilege, a small loop-mounted image prepared by an administrator (`mkfs.ext4 -F img 3M`,
//! `mount -o loop img DIR` with `DIR` owned by the tester) gives the same full disk.

mod common;

use common::corpus;
use common::system::Tmpfs;
use common::{decode, wait_until, Sandbox};
use std::time::{Duration, Instant};

const LONG: Duration = Duration::from_secs(120);

fn cutout(i: usize) -> Vec<u8> {
    corpus::cutout_png(common::synth::SHAPES[i % 5], [40 + 30 * i as u8, 80, 170], 240, 180)
}

fn skipped(what: &str) {
    eprintln!(
        "\n*** SKIPPED: {what}: cannot mount a tmpfs here (needs root or CAP_SYS_ADMIN); see tests/faults.rs ***\n"
    );
}

/// Names in the output folder that are not finished thumbnails and stay there: partial files, or
/// temporary files left behind (a retry in progress may hold one for an instant, so only names
/// seen in two listings a moment apart count).
fn leftovers(sb: &Sandbox, finished: &[String]) -> Vec<String> {
    let list = || -> Vec<String> {
        sb.files("thumbnails-prontas").into_iter().filter(|n| n != "filler.bin" && !finished.contains(n)).collect()
    };
    let first = list();
    std::thread::sleep(Duration::from_millis(300));
    list().into_iter().filter(|n| first.contains(n)).collect()
}

/// The output filesystem (a 3 MiB tmpfs) is full: thumbnails cannot be written, which is a passing
/// failure — nothing is rejected, nothing partial is left, `/health` reports storage critical —
/// and once space is freed the waiting files are retried and complete, without a restart.
#[test]
fn a_full_output_disk_holds_thumbnails_back_until_space_returns() {
    let sb = Sandbox::new();
    std::fs::create_dir_all(sb.output()).unwrap();
    let Some(disk) = Tmpfs::mount(&sb.output(), "size=3m") else {
        return skipped("a full output disk");
    };
    let filled = disk.fill("filler.bin");
    assert!(filled > 2 << 20, "filled only {filled} bytes");
    let mut d = sb.start(&[]);

    let (status, health) = d.health();
    assert_eq!(status, 503, "a full disk makes the daemon unhealthy: {health}");
    let storage = &health["checks"]["storage"];
    assert_eq!(storage["status"], "critical", "{health}");
    assert!(storage["output_free_bytes"].as_u64().unwrap() < 64 * 1024, "{health}");
    assert!(storage["message"].as_str().unwrap().contains("free"), "{health}");

    let names: Vec<String> = (0..3).map(|i| format!("p{i}.jpg")).collect();
    for i in 0..3 {
        sb.drop_file("produtos", &format!("p{i}.png"), &cutout(i));
    }
    // Five failures each: the next retry of each file is 13 s or more away.
    let failed = wait_until(LONG, || d.metric("thumbgen_transient_failures_total") >= 15.0);
    assert!(failed, "the writes did not fail:\n{}", d.log_text());
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(leftovers(&sb, &[]), Vec::<String>::new(), "partial or temporary files on the full disk");
    assert!(sb.files("rejeitados").is_empty(), "a full disk is not the file's fault: {:?}", sb.files("rejeitados"));
    assert_eq!(sb.files("produtos").len(), 3, "the inputs stay for the retry");
    assert!(d.log_text().contains("No space left on device"), "the log says why:\n{}", d.log_text());
    assert_eq!(d.metric("thumbgen_thumbnails_written_total"), 0.0);

    let freed = Instant::now();
    std::fs::remove_file(sb.output().join("filler.bin")).unwrap();
    // Soon after space returns, not after the backoff the failures had grown to.
    let done = wait_until(Duration::from_secs(5), || names.iter().all(|n| sb.output().join(n).exists()));
    assert!(done, "outputs missing 5 s after space came back: {:?}\n{}", sb.files("thumbnails-prontas"), d.log_text());
    eprintln!("outputs written {:?} after space came back", freed.elapsed());
    for name in &names {
        assert_eq!(decode(&sb.output().join(name)).dimensions(), (1200, 1200), "{name}");
    }
    assert_eq!(leftovers(&sb, &names), Vec::<String>::new());
    assert!(sb.files("rejeitados").is_empty());
    assert!(d.alive(), "the daemon kept running");
    let (_, health) = d.health();
    assert!(health["checks"]["storage"]["output_free_bytes"].as_u64().unwrap() > 1 << 20, "{health}");
    drop(d);
    drop(disk);
}

/// `produtos/` and `backgrounds/` deleted while the daemon runs — replaced at once by the user
/// (the new folder typically gets the old inode number back), or left for the daemon to
/// recreate: files dropped into the new folders are still taken.
#[test]
fn a_watched_folder_deleted_and_recreated_keeps_being_watched() {
    let sb = Sandbox::new();
    let d = sb.start(&[]);
    let appears = |name: &str| {
        let path = sb.output().join(name);
        assert!(
            wait_until(Duration::from_secs(30), || path.exists()),
            "{name} missing: {:?}\n{}",
            sb.files("thumbnails-prontas"),
            d.log_text()
        );
    };
    sb.drop_file("produtos", "before.png", &cutout(0));
    appears("before.jpg");

    // Replaced at once.
    std::fs::remove_dir_all(sb.products()).unwrap();
    std::fs::create_dir(sb.products()).unwrap();
    sb.drop_file("produtos", "after.png", &cutout(1));
    appears("after.jpg");

    // Deleted and left alone: the daemon recreates it.
    std::fs::remove_dir_all(sb.products()).unwrap();
    assert!(wait_until(Duration::from_secs(10), || sb.products().is_dir()), "produtos/ was not recreated");
    sb.drop_file("produtos", "again.png", &cutout(2));
    appears("again.jpg");

    // The same for backgrounds: a new background reaches the product still in the catalog.
    std::fs::remove_dir_all(sb.backgrounds()).unwrap();
    std::fs::create_dir(sb.backgrounds()).unwrap();
    let bg =
        corpus::encode(&image::DynamicImage::ImageRgb8(common::synth::background(400, 300)), image::ImageFormat::Jpeg);
    sb.drop_file("backgrounds", "wall.jpg", &bg);
    appears("again__wall.jpg");
    assert!(sb.files("rejeitados").is_empty());
    assert_eq!(d.get("/health").0, 200);
}

/// Starts the daemon with an unwritable log folder and checks that it says so on the console,
/// keeps running and makes thumbnails, logging them on the console.
fn console_logging_only(sb: &Sandbox, log_path: &str) {
    let mut d = sb.start(&[("LOG_PATH", log_path)]);
    sb.drop_file("produtos", "p.png", &cutout(3));
    let out = sb.output().join("p.jpg");
    assert!(wait_until(LONG, || out.exists()), "{}", d.log_text());
    let console = d.log_text();
    assert!(
        console.contains("cannot write") && console.contains("logging to the console only"),
        "the console says the file log is off:\n{console}"
    );
    assert!(wait_until(Duration::from_secs(10), || d.log_text().contains("thumbnails written")), "{}", d.log_text());
    let (status, health) = d.health();
    assert_eq!(status, 200, "{health}");
    assert!(d.alive());
}

/// `LOG_PATH` under a regular file: the folder can never be made.
#[test]
fn logs_under_a_regular_file_fall_back_to_the_console() {
    let sb = Sandbox::new();
    std::fs::write(sb.path("not-a-folder"), b"a file where a folder should be").unwrap();
    console_logging_only(&sb, "not-a-folder/logs");
    assert!(std::fs::read(sb.path("not-a-folder")).unwrap().starts_with(b"a file"));
}

/// `logs/` on a read-only mount.
#[test]
fn a_read_only_logs_folder_falls_back_to_the_console() {
    let sb = Sandbox::new();
    std::fs::create_dir_all(sb.path("logs")).unwrap();
    let Some(_mount) = Tmpfs::mount(&sb.path("logs"), "ro,size=1m") else {
        return skipped("a read-only logs folder");
    };
    console_logging_only(&sb, "logs");
    assert!(sb.files("logs").is_empty());
}

/// `logs/` fills up while the daemon runs (a 1 MiB tmpfs): the console says so once, thumbnails
/// keep coming, `app.log` holds only whole JSON lines, and file logging resumes once there is
/// space again.
#[test]
fn a_logs_disk_that_fills_up_switches_to_the_console_until_space_returns() {
    let sb = Sandbox::new();
    std::fs::create_dir_all(sb.path("logs")).unwrap();
    let Some(disk) = Tmpfs::mount(&sb.path("logs"), "size=1m") else {
        return skipped("a full logs folder");
    };
    // Each HTTP request logs a line: an easy way to make log lines.
    let mut d = sb.start(&[("LOG_REQUESTS", "true")]);
    let started =
        wait_until(Duration::from_secs(10), || sb.app_log().iter().any(|r| r["message"] == "thumbgen started"));
    assert!(started, "app.log is written at first");
    disk.fill("filler.bin");
    // The last page of app.log may still take a few lines; then writes fail.
    let said = wait_until(Duration::from_secs(20), || {
        d.get("/health/live");
        let console = d.log_text();
        console.contains("cannot write") && console.contains("app.log") && console.contains("console only")
    });
    assert!(said, "the console is not told that app.log cannot be written:\n{}", d.log_text());

    sb.drop_file("produtos", "during.png", &cutout(0));
    assert!(wait_until(LONG, || sb.output().join("during.jpg").exists()), "{}", d.log_text());
    assert!(
        wait_until(Duration::from_secs(10), || d.log_text().contains("input=during.png")),
        "the console still gets the log:\n{}",
        d.log_text()
    );
    let lines = sb.app_log().len(); // panics on a line cut short
    assert!(lines > 0);

    std::fs::remove_file(sb.path("logs/filler.bin")).unwrap();
    sb.drop_file("produtos", "after.png", &cutout(1));
    assert!(wait_until(LONG, || sb.output().join("after.jpg").exists()), "{}", d.log_text());
    let resumed = wait_until(Duration::from_secs(10), || {
        sb.app_log().iter().any(|r| r["message"] == "thumbnails written" && r["input"] == "after.png")
    });
    assert!(resumed, "app.log was not written again:\n{}", d.log_text());
    assert!(d.log_text().contains("file logging resumed"), "{}", d.log_text());
    assert_eq!(d.log_text().matches("cannot write").count(), 1, "said once, not per line:\n{}", d.log_text());
    assert_eq!(d.get("/health").0, 200);
    assert!(d.alive());
}
