//! The web console on a catalog in a bucket (design §8, §9), against a real store: SeaweedFS
//! started by the test (see `common::s3`). The console lists, previews, serves and zips what is in
//! the bucket; uploads go into it (one PUT, or in parts when large, aborted when refused or cut
//! off, left to the lifecycle rule when the daemon is killed) and are queued at once; rejected
//! files are retried (never over a file in the way) and deleted there.

mod common;

use common::s3::S3Server;
use common::synth::{self, Shape};
use common::{wait_until, Sandbox};
use std::time::Duration;

const LONG: Duration = Duration::from_secs(120);

fn background() -> Vec<u8> {
    synth::jpeg(&synth::background(800, 600))
}

#[test]
fn the_web_console_on_a_bucket_shows_serves_and_zips_its_catalog_takes_uploads_into_it_and_retries_and_deletes_rejections(
) {
    use common::web::{multipart, partial_upload, request, Reply};
    let s3 = S3Server::start();
    let settings = s3.env("shop");
    let mut env: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    env.push(("MAX_FILE_SIZE", "20MB"));
    let base = Sandbox::new();
    let d = base.start(&env);
    let call = |method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]| -> Reply {
        request(d.port, method, path, headers, body).unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    };
    let upload = |query: &str, files: &[(&str, &[u8])]| {
        let (kind, body) = multipart(files);
        call("POST", &format!("/api/upload?{query}"), &[("Content-Type", kind.as_str())], &body)
    };
    let products = || call("GET", "/api/products?per_page=200", &[], b"").json()["items"].as_array().unwrap().clone();
    let state_of = |name: &str| products().iter().find(|p| p["name"] == name).map(|p| p["state"].clone());

    // Uploads go into the bucket and are queued at once.
    let photo = synth::product_jpeg(Shape::Bottle, [200, 40, 40], 21);
    let accepted = upload("folder=backgrounds", &[("praia.jpg", &background())]);
    assert_eq!(accepted.status, 201, "{}", accepted.text());
    let accepted = upload("folder=produtos", &[("garrafa.jpg", &photo), ("broken.jpg", b"not a photo at all")]);
    assert_eq!(accepted.json()["accepted"], serde_json::json!(["garrafa.jpg", "broken.jpg"]), "{}", accepted.text());
    assert!(s3.get("shop/produtos/garrafa.jpg").is_some_and(|b| b == photo), "the upload is in the bucket, whole");
    let settled = || {
        let items = products();
        let done = |p: &serde_json::Value| p["state"] == "done" && p["outputs"].as_array().unwrap().len() == 2;
        items.len() == 2 && items.iter().any(done) && items.iter().any(|p| p["state"] == "rejected")
    };
    assert!(wait_until(LONG, settled), "{:#?}\n{}", products(), d.log_text());
    let local = base.files("");
    assert!(local.iter().all(|f| ["logs", ".thumbgen", "daemon-"].iter().any(|p| f.starts_with(p))), "{local:?}");

    // Everything the page shows is served from the bucket.
    let garrafa = products().into_iter().find(|p| p["name"] == "garrafa.jpg").unwrap();
    assert_eq!(call("GET", garrafa["original"].as_str().unwrap(), &[], b"").body, photo);
    let main = call("GET", garrafa["outputs"][0]["url"].as_str().unwrap(), &[], b"");
    assert_eq!(Some(main.body), s3.get("shop/thumbnails-prontas/garrafa.jpg"), "the thumbnail, as stored");
    let preview = call("GET", garrafa["outputs"][1]["preview"].as_str().unwrap(), &[], b"");
    assert_eq!((preview.status, preview.header("content-type")), (200, Some("image/jpeg")));
    let backgrounds = call("GET", "/api/backgrounds", &[], b"").json();
    assert_eq!(backgrounds["items"][0]["outputs"], 1, "{backgrounds:#}");
    let bg_preview = call("GET", backgrounds["items"][0]["preview"].as_str().unwrap(), &[], b"");
    assert_eq!(bg_preview.header("content-type"), Some("image/jpeg"));
    let zip = call("GET", "/api/thumbnails.zip", &[], b"");
    let listed = String::from_utf8_lossy(&zip.body).into_owned();
    assert!(zip.status == 200 && listed.contains("garrafa__praia.jpg") && zip.body.len() > 2000, "{}", zip.status);
    let status = call("GET", "/api/status", &[], b"").json();
    assert!(status["disk_free_bytes"].is_null() && status["today"].as_u64() >= Some(2), "{status:#}");
    assert_eq!(call("GET", "/files/originals/..%2Fthumbnails-prontas%2Fgarrafa.jpg", &[], b"").status, 404);

    // A taken name is refused unless replacing is asked for; a replacement is processed again.
    let second = synth::product_jpeg(Shape::Box, [40, 40, 200], 22);
    assert_eq!(upload("folder=produtos", &[("garrafa.jpg", &second)]).status, 409);
    assert_eq!(s3.get("shop/produtos/garrafa.jpg"), Some(photo.clone()), "not overwritten");
    let first_output = s3.get("shop/thumbnails-prontas/garrafa.jpg");
    assert_eq!(upload("folder=produtos&replace=true", &[("garrafa.jpg", &second)]).status, 201);
    let redone = wait_until(LONG, || s3.get("shop/thumbnails-prontas/garrafa.jpg") != first_output);
    assert!(redone, "the replaced photo made new thumbnails:\n{}", d.log_text());

    // Large files go up in parts; one over MAX_FILE_SIZE or cut off leaves nothing, no part either.
    let large: Vec<u8> = (0..18_000_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    assert_eq!(upload("folder=produtos", &[("grande.jpg", &large)]).status, 201);
    let rejected_whole = wait_until(LONG, || s3.get("shop/rejeitados/grande.jpg").is_some_and(|b| b == large));
    assert!(rejected_whole, "the 18 MB upload arrived whole (and, not being a photo, was rejected)");
    let refused = upload("folder=produtos", &[("enorme.jpg", &vec![7u8; 21_000_000])]);
    assert_eq!(refused.status, 413, "{}", refused.text());
    let stream = partial_upload(d.port, "folder=produtos", "cortado.jpg", &large, |len| len / 2);
    let begun =
        wait_until(Duration::from_secs(20), || s3.unfinished_uploads().iter().any(|k| k.ends_with("cortado.jpg")));
    assert!(begun, "its first part went up: {:?}", s3.unfinished_uploads());
    drop(stream);
    let clean = wait_until(Duration::from_secs(20), || s3.unfinished_uploads().is_empty());
    assert!(clean, "aborted: {:?}", s3.unfinished_uploads());
    let keys = s3.keys("shop/").unwrap();
    assert!(!keys.iter().any(|k| k.contains("enorme") || k.contains("cortado")), "{keys:#?}");
    // The large upload went up in parts; the refused and the cut-off ones were aborted.
    for (op, at_least) in [("complete_multipart", 1.0), ("abort_multipart", 2.0)] {
        let series = format!("thumbgen_storage_requests_total{{op=\"{op}\",outcome=\"ok\"}}");
        assert!(d.metric(&series) >= at_least, "{series}");
    }

    // Rejections: the reason from the note; retry refuses a taken name, brings a fixed file back
    // (queued at once: `broken.jpg` sorts before the listing's tail) and delete removes both objects.
    let rejected = call("GET", "/api/rejected", &[], b"").json();
    let broken = rejected["items"].as_array().unwrap().iter().find(|r| r["name"] == "broken.jpg").unwrap().clone();
    assert_eq!((broken["folder"].as_str(), broken["reason"].as_str()), (Some("produtos"), Some("unsupported_format")));
    let own = format!("http://127.0.0.1:{}", d.port);
    let origin = [("Origin", own.as_str())];
    s3.put("shop/produtos/broken.jpg", b"in the way");
    assert_eq!(call("POST", "/api/rejected/broken.jpg/retry", &origin, b"").status, 409);
    s3.delete("shop/produtos/broken.jpg");
    let fixed = synth::product_jpeg(Shape::Can, [30, 160, 60], 23);
    s3.put("shop/rejeitados/broken.jpg", &fixed);
    let retried = call("POST", "/api/rejected/broken.jpg/retry", &origin, b"");
    assert_eq!(retried.status, 200, "{}", retried.text());
    assert_eq!(s3.get("shop/produtos/broken.jpg"), Some(fixed), "back in produtos/, as fixed");
    let done = wait_until(Duration::from_secs(60), || state_of("broken.jpg") == Some("done".into()));
    assert!(done, "{:#?}\n{}", products(), d.log_text());
    assert_eq!(call("DELETE", "/api/rejected/grande.jpg", &origin, b"").status, 204);
    let keys = s3.keys("shop/rejeitados/").unwrap();
    assert!(keys.is_empty(), "the rejected file and both notes are gone: {keys:#?}");

    // The daemon killed (SIGKILL) mid-upload: no object appears; the multipart upload it had begun
    // is left to the bucket's lifecycle rule.
    let stream = partial_upload(d.port, "folder=produtos", "morto.jpg", &large, |len| len * 2 / 3);
    let begun =
        wait_until(Duration::from_secs(20), || s3.unfinished_uploads().iter().any(|k| k.ends_with("morto.jpg")));
    assert!(begun, "the first part went up: {:?}", s3.unfinished_uploads());
    d.kill();
    drop(stream);
    assert!(s3.get("shop/produtos/morto.jpg").is_none(), "nothing partial appears");
}
