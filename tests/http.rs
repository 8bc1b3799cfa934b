//! Health, readiness, metrics and `thumbgen health`, against the running binary.

mod common;

use common::synth::{self, Shape};
use common::{http_get, parse_metrics, wait_until, Sandbox};
use serde_json::Value;
use std::process::{Command, Stdio};
use std::time::Duration;

const LONG: Duration = Duration::from_secs(120);

fn health(d: &common::Daemon) -> (u16, Value) {
    let (status, body) = d.get("/health");
    (status, serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}")))
}

fn sample(families: &Value, family: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    families[family]["samples"].as_array()?.iter().find_map(|s| {
        let matches = s[0] == name && labels.iter().all(|(k, v)| s[1][*k] == *v);
        matches.then(|| s[2].as_f64().unwrap())
    })
}

fn health_cmd(url: &str) -> (i32, String) {
    let mut cmd = Command::new(common::BIN);
    common::clean_env(&mut cmd);
    let out = cmd.args(["health", "--url", url]).output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn health_reports_the_four_checks_and_follows_storage_failures() {
    let sb = Sandbox::new();
    let d = sb.start(&[]);
    let (code, body) = health(&d);
    assert_eq!(code, 200, "{body}");
    assert!(matches!(body["status"].as_str(), Some("healthy" | "degraded")), "{body}");
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    assert!(body["uptime_seconds"].is_u64());
    for check in ["application", "dependencies", "storage", "resources"] {
        let status = body["checks"][check]["status"].as_str().unwrap_or_else(|| panic!("{check} missing: {body}"));
        assert!(["ok", "warning", "error", "critical"].contains(&status));
        assert!(body["checks"][check]["message"].is_string());
    }
    assert_eq!(body["checks"]["storage"]["status"], "ok");
    assert!(body["checks"]["storage"]["output_free_bytes"].as_u64().unwrap() > 0);
    assert_eq!(health_cmd(&d.url()).0, 0);

    // The output folder turns into a file: nothing can be written there.
    std::fs::remove_dir_all(sb.output()).unwrap();
    std::fs::write(sb.output(), b"not a folder").unwrap();
    let (code, body) = health(&d);
    assert_eq!(code, 503, "{body}");
    assert_eq!(body["status"], "unhealthy");
    assert_eq!(body["checks"]["storage"]["status"], "critical");
    let (exit, printed) = health_cmd(&d.url());
    assert_eq!(exit, 1);
    assert!(printed.starts_with("unhealthy") && printed.contains("storage"), "{printed}");

    std::fs::remove_file(sb.output()).unwrap();
    std::fs::create_dir(sb.output()).unwrap();
    let (code, body) = health(&d);
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["checks"]["storage"]["status"], "ok");
    assert_eq!(d.get("/health/live").0, 200);
}

#[test]
fn readiness_answers_503_until_the_engine_and_the_first_scan_are_ready_then_200() {
    let sb = Sandbox::new();
    let port = common::free_port();
    let mut cmd = Command::new(common::BIN);
    common::clean_env(&mut cmd);
    let mut child =
        cmd.arg("run").current_dir(sb.dir.path()).env("PORT", port.to_string()).stderr(Stdio::null()).spawn().unwrap();
    // Every distinct answer, in order. The embedded model loads with the first photo, so the
    // not-ready window (until the first scan) may be too short to be seen: what must hold is
    // that each answer matches its reasons, and that once ready it stays ready.
    let mut seen: Vec<(u16, Value)> = Vec::new();
    let ok = wait_until(LONG, || match http_get(port, "/health/ready") {
        Ok((code, body)) => {
            let body: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
            if seen.last().map(|(c, _)| *c) != Some(code) {
                seen.push((code, body));
            }
            code == 200
        }
        Err(_) => false,
    });
    assert!(ok, "never ready");
    for _ in 0..20 {
        let (code, body) = http_get(port, "/health/ready").unwrap();
        assert_eq!(code, 200, "ready, then not ready again: {body}");
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    let codes: Vec<u16> = seen.iter().map(|(c, _)| *c).collect();
    assert!(codes == [200] || codes == [503, 200], "answers {codes:?}");
    for (code, body) in &seen {
        let reasons = [&body["folders"], &body["engine"], &body["first_scan"]];
        let all = reasons.iter().all(|r| **r == true);
        assert_eq!(*code == 200, all, "a {code} must match its reasons: {body}");
    }
}

#[test]
fn metrics_parse_and_move_with_work() {
    let sb = Sandbox::new();
    let d = sb.start(&[("LOG_REQUESTS", "true")]);
    let families = parse_metrics(&d.get("/metrics").1);
    for family in [
        "thumbgen_files_detected",
        "thumbgen_thumbnails_written",
        "thumbgen_inputs_rejected",
        "thumbgen_removals",
        "thumbgen_removal_duration_seconds",
        "thumbgen_stage_duration_seconds",
        "thumbgen_queue_depth",
        "thumbgen_jobs_in_flight",
        "thumbgen_cutout_cache_hits",
        "thumbgen_build_info",
        "process_resident_memory_bytes",
        "process_cpu_seconds",
    ] {
        assert!(families.get(family).is_some(), "{family} missing from /metrics");
    }
    assert_eq!(families["thumbgen_removal_duration_seconds"]["type"], "histogram");
    assert_eq!(families["thumbgen_stage_duration_seconds"]["type"], "histogram");
    assert_eq!(families["thumbgen_files_detected"]["type"], "counter");
    assert_eq!(
        sample(&families, "thumbgen_build_info", "thumbgen_build_info", &[("version", env!("CARGO_PKG_VERSION"))]),
        Some(1.0)
    );

    sb.drop_file("produtos", "p.jpg", &synth::product_jpeg(Shape::Bottle, [30, 80, 170], 1));
    sb.drop_file("produtos", "x.jpg", b"GIF89a definitely not a jpeg");
    assert!(wait_until(LONG, || sb.output().join("p.jpg").exists() && sb.rejected().join("x.jpg").exists()));
    std::thread::sleep(Duration::from_millis(300));
    let families = parse_metrics(&d.get("/metrics").1);
    let value =
        |family: &str, name: &str, labels: &[(&str, &str)]| sample(&families, family, name, labels).unwrap_or(0.0);
    assert_eq!(value("thumbgen_files_detected", "thumbgen_files_detected_total", &[("folder", "produtos")]), 2.0);
    assert_eq!(value("thumbgen_thumbnails_written", "thumbgen_thumbnails_written_total", &[]), 1.0);
    assert_eq!(
        value("thumbgen_inputs_rejected", "thumbgen_inputs_rejected_total", &[("reason", "unsupported_format")]),
        1.0
    );
    assert_eq!(
        value("thumbgen_removals", "thumbgen_removals_total", &[("engine", "local"), ("outcome", "success")]),
        1.0
    );
    assert_eq!(
        value("thumbgen_removal_duration_seconds", "thumbgen_removal_duration_seconds_count", &[("engine", "local")]),
        1.0
    );
    for stage in ["validate", "remove", "compose", "encode", "write"] {
        let count =
            value("thumbgen_stage_duration_seconds", "thumbgen_stage_duration_seconds_count", &[("stage", stage)]);
        assert!(count >= 1.0, "stage {stage} was never timed");
    }
    assert!(d.log_text().contains("http request"), "LOG_REQUESTS=true logs each request");
}

#[test]
fn switched_off_endpoints_are_404_and_health_falls_back_to_liveness() {
    let sb = Sandbox::new();
    let d = sb.start(&[("METRICS_ENABLED", "false"), ("HEALTH_CHECK_ENABLED", "false")]);
    assert_eq!(d.get("/metrics").0, 404);
    assert_eq!(d.get("/health").0, 404);
    assert_eq!(d.get("/health/live").0, 200);
    assert_eq!(d.get("/health/ready").0, 200);
    assert_eq!(d.get("/nowhere").0, 404);
    let (exit, printed) = health_cmd(&d.url());
    assert_eq!(exit, 0, "{printed}");
}

#[test]
fn an_unreachable_daemon_is_unhealthy_and_a_taken_port_fails_the_start() {
    let port = common::free_port();
    let (exit, printed) = health_cmd(&format!("http://127.0.0.1:{port}"));
    assert_eq!(exit, 1);
    assert!(printed.starts_with("unreachable"), "{printed}");

    let sb = Sandbox::new();
    let d = sb.start(&[]);
    let mut cmd = Command::new(common::BIN);
    common::clean_env(&mut cmd);
    let out = cmd.arg("run").current_dir(sb.dir.path()).env("PORT", d.port.to_string()).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot listen") && err.contains("PORT"), "{err}");
}

#[test]
fn the_daemon_is_ready_before_the_model_loads_and_loads_it_with_the_first_photo() {
    let sb = Sandbox::new();
    let d = sb.start(&[]);
    assert_eq!(d.get("/health/ready").0, 200, "ready: the engine is found, the model waits for a photo");
    let (_, body) = health(&d);
    let engine = &body["checks"]["dependencies"];
    assert_eq!(engine["status"], "ok", "{body}");
    assert_eq!(engine["model_loaded"], false, "{body}");
    assert!(engine["message"].as_str().unwrap().contains("loads with the first photo"), "{body}");

    sb.drop_file("produtos", "p.jpg", &synth::product_jpeg(Shape::Box, [190, 30, 40], 2));
    assert!(wait_until(LONG, || sb.output().join("p.jpg").exists()));
    let (_, body) = health(&d);
    assert_eq!(body["checks"]["dependencies"]["model_loaded"], true, "{body}");
    assert!(d.log_text().contains("embedded u2netp model loaded"), "{}", d.log_text());
}
