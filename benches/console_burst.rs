//! What an open console costs the pipeline: a burst of files renamed into `produtos/` at once,
//! timed until every thumbnail is written, with no page open and with the console open in a real
//! headless Chromium (live status over server-sent events, the catalog refetched whenever it
//! changes), interleaved A B, B A … so a drift of the machine's load falls on both.
//!
//! `scripts/bench-console [--files N] [--rounds R]` (defaults 1000 and 3) builds the release
//! binary and prints a Markdown table: wall time and the daemon's CPU time (user + system, from
//! `/proc/PID/stat`) per mode, medians, and their ratios. The files are 200×150 cut-outs (PNG
//! with transparency), so no removal runs: the burst measures the pipeline's own throughput, the
//! part an open page could slow down. Chromium runs on the same two cores, so the wall ratio also
//! holds the browser's own CPU; the daemon CPU ratio is the console's cost inside thumbgen.

#[path = "../tests/common/mod.rs"]
#[allow(unused_imports)]
mod common;
#[path = "../tests/common/browser.rs"]
#[allow(dead_code)] // the bench takes no screenshots and no downloads
mod browser;

use browser::Browser;
use common::corpus::cutout_png;
use common::synth::{Shape, SHAPES};
use common::Sandbox;
use std::path::Path;
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_secs(1800);

#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    NoPage,
    PageOpen,
}

struct Run {
    wall_s: f64,
    cpu_s: f64,
    /// CPU seconds Chromium's processes used during the burst (0 with no page).
    browser_cpu_s: f64,
    page_requests: usize,
    /// Median milliseconds of API calls on the full catalog afterwards, by request.
    api_ms: Vec<(&'static str, f64)>,
}

/// Requests the page makes, timed on the finished catalog (median of 20 each).
const API: [&str; 6] = [
    "/api/products?page=1&per_page=48",
    "/api/products?page=20&per_page=48",
    "/api/products?q=c0042&per_page=48",
    "/api/products?state=done&per_page=48",
    "/api/backgrounds",
    "/api/status",
];

fn time_api(port: u16) -> Vec<(&'static str, f64)> {
    API.iter()
        .map(|path| {
            let times = (0..20)
                .map(|_| {
                    let t = Instant::now();
                    let (status, _) = common::http_get(port, path).unwrap();
                    assert_eq!(status, 200, "{path}");
                    t.elapsed().as_secs_f64() * 1000.0
                })
                .collect();
            (*path, median(times))
        })
        .collect()
}

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| v.parse().unwrap_or_else(|_| panic!("{name} takes a number")))
        .unwrap_or(default)
}

/// The daemon's CPU seconds so far (user + system).
fn cpu_seconds(pid: i32) -> f64 {
    cpu_seconds_of(pid).expect("the daemon runs")
}

/// A process's CPU seconds so far; `None` once it has exited.
fn cpu_seconds_of(pid: i32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64)
}

/// CPU seconds (user + system) of the running processes named `comm`, all together.
fn cpu_seconds_named(comm: &str) -> f64 {
    let Ok(entries) = std::fs::read_dir("/proc") else { return 0.0 };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()))
        .filter(|pid| std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == comm))
        .filter_map(cpu_seconds_of)
        .sum()
}

/// One burst of the files in `corpus` into a fresh sandbox.
async fn burst(corpus: &Path, files: usize, mode: Mode) -> Run {
    let sb = Sandbox::new();
    let staging = sb.path("staging");
    std::fs::create_dir_all(&staging).unwrap();
    for entry in std::fs::read_dir(corpus).unwrap().flatten() {
        std::fs::hard_link(entry.path(), staging.join(entry.file_name())).unwrap();
    }
    let d = sb.start(&[("LOG_REQUESTS", "true"), ("LOG_LEVEL", "info")]);
    let page = match mode {
        Mode::NoPage => None,
        Mode::PageOpen => {
            let b = Browser::start(1280, 900, false).await;
            b.client.goto(&d.url()).await.unwrap();
            b.wait_for("document.getElementById('st-live').dataset.level === 'ok'", Duration::from_secs(30), "live")
                .await;
            Some(b)
        }
    };
    let cpu0 = cpu_seconds(d.pid());
    let with_page = mode == Mode::PageOpen;
    let browser0 = if with_page { cpu_seconds_named("chromium") } else { 0.0 };
    let t0 = Instant::now();
    for entry in std::fs::read_dir(&staging).unwrap().flatten() {
        std::fs::rename(entry.path(), sb.products().join(entry.file_name())).unwrap();
    }
    loop {
        let written = d.metric("thumbgen_thumbnails_written_total");
        if written as usize >= files {
            break;
        }
        assert!(t0.elapsed() < TIMEOUT, "only {written} of {files} thumbnails after {TIMEOUT:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (wall_s, cpu_s) = (t0.elapsed().as_secs_f64(), cpu_seconds(d.pid()) - cpu0);
    let browser_cpu_s = if with_page { cpu_seconds_named("chromium") - browser0 } else { 0.0 };
    if let Some(b) = page {
        b.close().await;
    }
    // Requests the console served during the burst (read before the API timings add theirs).
    let log = std::fs::read_to_string(sb.path("logs/app.log")).unwrap_or_default();
    let page_requests = log.lines().filter(|l| l.contains("http request") && !l.contains("/metrics")).count();
    let api_ms = if mode == Mode::NoPage { time_api(d.port) } else { Vec::new() };
    assert_eq!(sb.files("thumbnails-prontas").len(), files, "every file became its thumbnail");
    assert!(sb.files("rejeitados").is_empty());
    Run { wall_s, cpu_s, browser_cpu_s, page_requests, api_ms }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    values[values.len() / 2]
}

fn main() {
    let files = arg("--files", 1000);
    let rounds = arg("--rounds", 3);
    let corpus = tempfile::tempdir().unwrap();
    for i in 0..files {
        let shape: Shape = SHAPES[i % SHAPES.len()];
        let colour = [(i * 37 % 256) as u8, (i * 91 % 256) as u8, 120];
        std::fs::write(corpus.path().join(format!("c{i:05}.png")), cutout_png(shape, colour, 200, 150)).unwrap();
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let mut results: Vec<(Mode, Run)> = Vec::new();
    for round in 0..rounds {
        let order = if round % 2 == 0 { [Mode::NoPage, Mode::PageOpen] } else { [Mode::PageOpen, Mode::NoPage] };
        for mode in order {
            let run = runtime.block_on(burst(corpus.path(), files, mode));
            eprintln!(
                "round {} {mode:?}: {:.1} s wall, {:.1} s daemon CPU, {:.1} s browser CPU, {} console requests",
                round + 1,
                run.wall_s,
                run.cpu_s,
                run.browser_cpu_s,
                run.page_requests
            );
            results.push((mode, run));
        }
    }
    let pick = |mode: Mode, f: fn(&Run) -> f64| {
        median(results.iter().filter(|(m, _)| *m == mode).map(|(_, r)| f(r)).collect())
    };
    let (wall_a, wall_b) = (pick(Mode::NoPage, |r| r.wall_s), pick(Mode::PageOpen, |r| r.wall_s));
    let (cpu_a, cpu_b) = (pick(Mode::NoPage, |r| r.cpu_s), pick(Mode::PageOpen, |r| r.cpu_s));
    let requests = pick(Mode::PageOpen, |r| r.page_requests as f64);
    let browser = pick(Mode::PageOpen, |r| r.browser_cpu_s);
    println!("| burst of {files} cut-outs, median of {rounds} | no page | console open | ratio |");
    println!("|---|---|---|---|");
    println!("| wall time to the last thumbnail, s | {wall_a:.1} | {wall_b:.1} | {:.3} |", wall_b / wall_a);
    println!("| daemon CPU time, s | {cpu_a:.1} | {cpu_b:.1} | {:.3} |", cpu_b / cpu_a);
    println!("| Chromium's CPU time on the same cores, s | – | {browser:.1} | – |");
    println!("| console requests served during the burst | 0 | {requests:.0} | – |");
    println!();
    println!("| request on the finished catalog of {files} products | median ms |");
    println!("|---|---|");
    for (i, path) in API.iter().enumerate() {
        let ms = median(results.iter().filter(|(m, _)| *m == Mode::NoPage).map(|(_, r)| r.api_ms[i].1).collect());
        println!("| `{path}` | {ms:.1} |");
    }
    for (mode, run) in &results {
        println!(
            "<!-- {mode:?}: wall {:.2} s, cpu {:.2} s, browser cpu {:.2} s, requests {} -->",
            run.wall_s, run.cpu_s, run.browser_cpu_s, run.page_requests
        );
    }
}
