//! The Gradio engine against real Gradio servers (4.x, 5.x, 6.x from PyPI, started here), with
//! faults injected by a proxy in front of them or by the apps themselves. Every test checks the
//! thumbnails on disk and counts the removal calls the server received.

mod common;

use common::gradio::{FaultProxy, GradioApp, VERSIONS};
use common::synth::{self, Shape};
use common::{decode, non_white_bbox, wait_until, Sandbox};
use std::time::Duration;

const LONG: Duration = Duration::from_secs(180);

/// Drops one product photo into a fresh sandbox.
fn sandbox_with_product(name: &str) -> Sandbox {
    let sb = Sandbox::new();
    sb.drop_file("produtos", name, &synth::product_jpeg(Shape::Bottle, [30, 80, 170], 21));
    sb
}

/// Runs `thumbgen process` against `url`; returns (success, stdout + stderr).
fn process(sb: &Sandbox, url: &str, env: &[(&str, &str)]) -> (bool, String) {
    let mut all = vec![("GRADIO_API_URL", url), ("LOG_LEVEL", "debug")];
    all.extend_from_slice(env);
    let out = sb.run(&["process"], &all);
    let text = format!("{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

/// The main image exists and holds a product filling 85 % of the canvas.
fn assert_thumbnail(sb: &Sandbox, name: &str, log: &str) {
    let path = sb.output().join(name);
    assert!(path.exists(), "{name} missing; outputs {:?}\n{log}", sb.files("thumbnails-prontas"));
    let img = decode(&path);
    let (x0, y0, x1, y1) = non_white_bbox(&img, 40).expect("a product on the canvas");
    let longer = (x1 - x0 + 1).max(y1 - y0 + 1) as f64;
    assert!((longer / 1200.0 - 0.85).abs() <= 0.02, "{name}: longer side {longer} px\n{log}");
}

fn app_log(sb: &Sandbox) -> String {
    std::fs::read_to_string(sb.path("logs/app.log")).unwrap_or_default()
}

/// Every app shape of the spec, on one gradio version: image → image (PNG), image slider,
/// `gr.Interface` (WEBP, `/predict` or function name) and a BiRefNet-like endpoint with extra
/// inputs and three outputs of which the second is the cut-out.
fn every_shape_on(version: &str) {
    let kinds = ["blocks_png", "slider", "rmbg14", "birefnet"];
    let apps: Vec<GradioApp> = std::thread::scope(|s| {
        let handles: Vec<_> = kinds.iter().map(|k| s.spawn(move || GradioApp::start(version, k, &[]))).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (kind, app) in kinds.iter().zip(&apps) {
        let sb = sandbox_with_product("item.jpg");
        let (ok, log) = process(&sb, &app.url(), &[]);
        assert!(ok, "gradio {version} {kind}: {log}");
        assert_thumbnail(&sb, "item.jpg", &log);
        assert_eq!(app.calls(), 1, "gradio {version} {kind}: one removal call per photo");
        assert!(app_log(&sb).contains("\"engine\":\"gradio\""), "the engine is recorded");
        assert!(sb.files("rejeitados").is_empty());
    }
}

#[test]
fn every_app_shape_on_gradio_4() {
    every_shape_on(VERSIONS[0]);
}

#[test]
fn every_app_shape_on_gradio_5() {
    every_shape_on(VERSIONS[1]);
}

#[test]
fn every_app_shape_on_gradio_6() {
    every_shape_on(VERSIONS[2]);
}

#[test]
fn gradio_login_is_used_and_a_wrong_password_keeps_the_file() {
    let app = GradioApp::start("6", "login", &[]);
    let sb = sandbox_with_product("p.jpg");
    let (ok, log) = process(&sb, &app.url(), &[("GRADIO_USERNAME", "thumbgen"), ("GRADIO_PASSWORD", "s3cret")]);
    assert!(ok, "{log}");
    assert_thumbnail(&sb, "p.jpg", &log);
    assert_eq!(app.calls(), 1);
    assert!(!log.contains("s3cret") && !app_log(&sb).contains("s3cret"), "the password must never be logged");

    let sb = sandbox_with_product("q.jpg");
    let (ok, log) = process(&sb, &app.url(), &[("GRADIO_USERNAME", "thumbgen"), ("GRADIO_PASSWORD", "wrong")]);
    assert!(!ok, "a failed login is a failure left for later: {log}");
    assert!(sb.products().join("q.jpg").exists(), "the photo stays in place");
    assert!(sb.files("rejeitados").is_empty(), "a remote problem never rejects a photo");
    assert_eq!(app.calls(), 1);
}

#[test]
fn upload_limit_and_queue_limit_are_respected() {
    // 60 kB upload limit and a queue of one: larger photos are scaled down before upload, and
    // a full queue (503) is waited out.
    let app = GradioApp::start("6", "limits", &["--max-file-size", "60000", "--delay", "1.5"]);
    let sb = Sandbox::new();
    for i in 0..3 {
        let (photo, _) = synth::product_photo(Shape::Box, [190, 30, 40], 1800, 1350, 30 + i);
        sb.drop_file("produtos", &format!("big{i}.jpg"), &synth::jpeg(&photo));
    }
    let (ok, log) = process(&sb, &app.url(), &[("MAX_CONCURRENT_REQUESTS", "3"), ("WORKERS", "3")]);
    assert!(ok, "{log}");
    for i in 0..3 {
        assert_thumbnail(&sb, &format!("big{i}.jpg"), &log);
    }
    assert_eq!(app.calls(), 3, "{log}");
}

/// Runs one photo through `proxy_plan` in front of a 6.x app; returns the app's call count.
fn through_fault(plan: &str, app_options: &[&str], env: &[(&str, &str)]) -> usize {
    let app = GradioApp::start("6", "blocks_png", app_options);
    let proxy = FaultProxy::start(&app.url(), plan);
    let sb = sandbox_with_product("f.jpg");
    let (ok, log) = process(&sb, &proxy.url(), env);
    assert!(ok, "{plan}: {log}");
    assert_thumbnail(&sb, "f.jpg", &log);
    assert!(sb.files("rejeitados").is_empty());
    app.calls()
}

#[test]
fn a_dropped_result_stream_is_resubmitted() {
    let calls = through_fault("drop_sse:1", &["--delay", "2"], &[]);
    assert!((1..=2).contains(&calls), "one lost job plus one retry at most, got {calls}");
}

#[test]
fn a_stalled_result_stream_times_out_and_is_retried() {
    let calls = through_fault("stall_sse:1", &[], &[("GRADIO_TIMEOUT", "8s")]);
    assert!((1..=2).contains(&calls), "{calls}");
}

#[test]
fn server_errors_are_retried_with_backoff() {
    assert_eq!(through_fault("http5xx:2", &[], &[]), 1, "failed uploads never reached the function");
}

#[test]
fn too_many_requests_waits_for_retry_after() {
    assert_eq!(through_fault("http429:1", &[], &[]), 1);
}

#[test]
fn a_quota_error_is_waited_out() {
    // "Try again in 0:00:03": the engine waits three seconds, then the call succeeds.
    assert_eq!(through_fault("none", &["--quota-first", "1"], &[]), 2);
}

#[test]
fn an_app_exception_is_retried() {
    assert_eq!(through_fault("none", &["--fail-first", "1"], &[]), 2);
}

#[test]
fn an_output_without_alpha_fails_and_falls_back_when_allowed() {
    let app = GradioApp::start("6", "noalpha", &[]);
    let sb = sandbox_with_product("n.jpg");
    let (ok, log) = process(&sb, &app.url(), &[]);
    assert!(!ok, "{log}");
    assert!(log.contains("transparency"), "the reason is given: {log}");
    assert!(sb.products().join("n.jpg").exists() && sb.files("rejeitados").is_empty());
    assert!(sb.files("thumbnails-prontas").is_empty());

    let (ok, log) = process(&sb, &app.url(), &[("GRADIO_FALLBACK_ENABLED", "true")]);
    assert!(ok, "{log}");
    assert_thumbnail(&sb, "n.jpg", &log);
    assert!(app_log(&sb).contains("\"engine\":\"local\""), "the fallback engine is recorded");
}

#[test]
fn an_unreachable_app_keeps_files_until_it_returns() {
    let sb = Sandbox::new();
    let port = common::free_port();
    let url = format!("http://127.0.0.1:{port}");
    let d = sb.start(&[("GRADIO_API_URL", &url)]);
    sb.drop_file("produtos", "wait.jpg", &synth::product_jpeg(Shape::Ball, [40, 140, 60], 22));
    std::thread::sleep(Duration::from_secs(4));
    assert!(sb.products().join("wait.jpg").exists() && sb.files("rejeitados").is_empty());
    assert!(sb.files("thumbnails-prontas").is_empty());
    let (code, body) = d.get("/health");
    assert_eq!(code, 200, "a remote outage degrades, it does not make thumbgen unhealthy: {body}");
    assert!(body.contains("\"degraded\"") && body.contains("unreachable"), "{body}");
    let failures = || d.metric("thumbgen_removals_total{engine=\"gradio\",outcome=\"failure\"}");
    assert!(wait_until(LONG, || failures() >= 1.0), "the failed removal is counted");
    assert!(sb.products().join("wait.jpg").exists() && sb.files("rejeitados").is_empty());

    // The app comes up on that port: the waiting photo is processed, once.
    let app = GradioApp::start_on("6", "blocks_png", &[], port);
    assert!(wait_until(LONG, || sb.output().join("wait.jpg").exists()), "{}", d.log_text());
    assert_eq!(app.calls(), 1);
}

#[test]
fn a_server_killed_mid_job_is_retried_after_it_restarts() {
    let mut app = GradioApp::start("6", "blocks_png", &["--delay", "4"]);
    let sb = Sandbox::new();
    let d = sb.start(&[("GRADIO_API_URL", &app.url())]);
    sb.drop_file("produtos", "k.jpg", &synth::product_jpeg(Shape::Can, [230, 180, 30], 23));
    assert!(wait_until(LONG, || app.calls() == 1), "the job never reached the app");
    app.restart();
    assert!(wait_until(LONG, || sb.output().join("k.jpg").exists()), "{}", d.log_text());
    assert_eq!(app.calls(), 2, "the killed job and its resubmission");
    assert!(sb.files("rejeitados").is_empty());
}

#[test]
fn fallback_to_the_embedded_engine_while_the_remote_is_down() {
    let sb = sandbox_with_product("fb.jpg");
    let dead = format!("http://127.0.0.1:{}", common::free_port());
    let (ok, log) = process(&sb, &dead, &[("GRADIO_FALLBACK_ENABLED", "true"), ("GRADIO_RETRY_ATTEMPTS", "1")]);
    assert!(ok, "{log}");
    assert_thumbnail(&sb, "fb.jpg", &log);
    assert!(app_log(&sb).contains("\"engine\":\"local\""));
}
