//! The catalog in an S3-compatible bucket (design §9), against a real store: SeaweedFS started by
//! the tests (see `common::s3`), talked to with curl.
//!
//! The contract: with `STORAGE_URL=s3://BUCKET/PREFIX` the folders are key prefixes with the same
//! names and the outputs are the same bytes as from local folders; bad inputs are moved to
//! `rejeitados/` with their note and the original deleted; keys no folder could hold do not hide
//! the others; a node with an empty `BASE_PATH` redoes nothing; a store that goes down makes the
//! node unready, loses nothing, and work resumes when it returns; a throttling store (`503 Slow
//! Down`, injected by a proxy in front of it) is waited out; a bad photo replaced or deleted while it
//! is moved aside (the copy held by the proxy), or whose node is killed meanwhile, is never lost,
//! copied twice nor left half moved; a 2 000-object
//! catalog is listed over pages and processed; three cluster nodes with nothing shared but the
//! bucket and the broker, one killed and the store and broker restarted, make every output once
//! with one removal per photo. The web console on a bucket: `storage_console.rs`.

mod common;

use common::catalog::{background_bytes, expected_outputs, product_jpeg, product_name, removals, Rng};
use common::gradio::{FaultProxy, GradioApp};
use common::nats::NatsServer;
use common::s3::S3Server;
use common::synth::{self, Shape};
use common::{wait_until, Daemon, Sandbox};
use std::collections::BTreeSet;
use std::time::Duration;

const LONG: Duration = Duration::from_secs(120);

fn env_of<'a>(pairs: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    pairs.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

fn background() -> Vec<u8> {
    synth::jpeg(&synth::background(800, 600))
}

#[test]
fn a_bucket_catalog_makes_the_same_thumbnails_as_folders_and_rejects_bad_inputs_with_a_note() {
    let product = synth::product_jpeg(Shape::Bottle, [200, 40, 40], 7);
    let odd = synth::product_jpeg(Shape::Box, [40, 40, 200], 8);

    // The same inputs in folders, processed once.
    let local = Sandbox::new();
    local.drop_file("backgrounds", "wood.jpg", &background());
    local.drop_file("produtos", "bottle.jpg", &product);
    let out = local.run(&["process"], &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let s3 = S3Server::start();
    let settings = s3.env("shop");
    let mut env = env_of(&settings);
    env.push(("MAX_FILE_SIZE", "150000"));
    let base = Sandbox::new();
    let daemon = base.start(&env);

    s3.put("shop/backgrounds/wood.jpg", &background());
    // A name as long as a file system allows (this store refuses longer keys).
    s3.put(&format!("shop/produtos/{}.jpg", "x".repeat(240)), &odd);
    s3.put("shop/produtos/bottle.jpg", &product);
    s3.put("shop/produtos/not-a-photo.jpg", b"this is text, not a JPEG");
    s3.put("shop/produtos/huge.jpg", &vec![0xAB; 200_000]);
    // Keys no folder could hold, next to a name with characters a URL must escape (last in key
    // order, so the next listings start after it).
    s3.put("shop/produtos/zz top+#1%.jpg", &odd);
    s3.put("shop/produtos/sub/nested.jpg", &product);
    s3.put("shop/produtos/marker/", b"");
    s3.put("shop/produtos/\u{1}bell.jpg", &product);

    let outputs = ["bottle.jpg", "bottle__wood.jpg", "zz-top-1.jpg", "zz-top-1__wood.jpg"];
    let done = wait_until(LONG, || {
        let keys = s3.keys("shop/").unwrap_or_default();
        outputs.iter().all(|o| keys.contains(&format!("shop/thumbnails-prontas/{o}")))
            && keys.contains(&"shop/rejeitados/huge.jpg.error.txt".to_owned())
            && keys.contains(&"shop/rejeitados/not-a-photo.jpg.error.txt".to_owned())
            && keys.iter().filter(|k| k.starts_with("shop/thumbnails-prontas/xxxxxxxxxxxxxxxx")).count() == 2
    });
    let keys = s3.keys("shop/").unwrap();
    assert!(done, "outputs and rejections in the bucket: {keys:#?}\n{}", daemon.log_text());
    s3.put("shop/produtos/zzz-late.jpg", &odd);
    let late = wait_until(LONG, || s3.get("shop/thumbnails-prontas/zzz-late.jpg").is_some());
    assert!(late, "a key after the escaped one is found by the next listing:\n{}", daemon.log_text());

    for file in ["bottle.jpg", "bottle__wood.jpg"] {
        let from_bucket = s3.get(&format!("shop/thumbnails-prontas/{file}")).unwrap();
        let from_folder = std::fs::read(local.output().join(file)).unwrap();
        assert!(from_bucket == from_folder, "{file}: the bucket's output is the folder's, byte for byte");
    }
    for (name, says) in [("huge.jpg", "MAX_FILE_SIZE"), ("not-a-photo.jpg", "not")] {
        let note = String::from_utf8(s3.get(&format!("shop/rejeitados/{name}.error.txt")).unwrap()).unwrap();
        assert!(note.contains(says) && note.contains("What to do:"), "{name}: {note}");
        assert!(s3.get(&format!("shop/rejeitados/{name}")).is_some(), "{name} kept in rejeitados/");
        assert!(!keys.contains(&format!("shop/produtos/{name}")), "{name} left produtos/");
    }
    assert_eq!(s3.get("shop/rejeitados/huge.jpg").unwrap().len(), 200_000, "the rejected copy is whole");
    for kept in ["shop/produtos/sub/nested.jpg", "shop/produtos/marker/", "shop/produtos/\u{1}bell.jpg"] {
        assert!(keys.contains(&kept.to_owned()), "{kept} is not an input and is left alone: {keys:#?}");
    }
    assert!(!keys.iter().any(|k| k.contains("nested") && k.contains("thumbnails")), "{keys:#?}");
    let long = keys
        .iter()
        .find(|k| k.starts_with("shop/thumbnails-prontas/xxxxxxxxxxxxxxxx"))
        .expect("the long name's output");
    assert!(long.len() - "shop/thumbnails-prontas/".len() <= 255, "an output name a file system could hold: {long}");
    assert!(keys.iter().any(|k| k.starts_with("shop/.thumbgen/cutouts/")), "cut-outs cached in the bucket");
    assert!(!base.path("produtos").exists(), "no local catalog folders: {:?}", base.files(""));

    assert!(daemon.metric("thumbgen_storage_requests_total{op=\"list\",outcome=\"ok\"}") >= 2.0);
    assert!(daemon.metric("thumbgen_storage_requests_total{op=\"put\",outcome=\"ok\"}") >= 4.0);
    assert!(daemon.metric("thumbgen_discovery_lag_seconds_count") >= 4.0);
    assert_eq!(daemon.metric("thumbgen_inputs_rejected_total{reason=\"too_large\"}"), 1.0);
    let (_, health) = daemon.get("/health");
    let health: serde_json::Value = serde_json::from_str(&health).unwrap();
    assert_eq!(health["checks"]["dependencies"]["storage"]["status"], "ok", "{health:#}");
}

#[test]
fn a_node_with_an_empty_base_folder_redoes_nothing_on_a_bucket() {
    let s3 = S3Server::start();
    let settings = s3.env("");
    let env = env_of(&settings);
    s3.put("backgrounds/wood.jpg", &background());
    s3.put("produtos/bottle.jpg", &synth::product_jpeg(Shape::Bottle, [200, 40, 40], 3));

    let json_logs = [&env[..], &[("LOG_FORMAT", "json")]].concat();
    let node = Sandbox::new();
    let first = node.run(&["process"], &json_logs);
    let said = String::from_utf8_lossy(&first.stdout);
    assert!(first.status.success() && said.contains("2 thumbnails written"), "{said}");
    let log = std::fs::read_to_string(node.path("logs/app.log")).unwrap();
    assert!(log.contains("model loaded"), "the first node sent the photo for removal:\n{log}");
    let before: Vec<_> = ["thumbnails-prontas/bottle.jpg", "thumbnails-prontas/bottle__wood.jpg"]
        .iter()
        .map(|k| s3.get(k).unwrap())
        .collect();

    // Another node, nothing local: it finds the outputs made by the same jobs and writes nothing.
    let fresh = Sandbox::new();
    let second = fresh.run(&["process"], &json_logs);
    let said = String::from_utf8_lossy(&second.stdout);
    assert!(second.status.success() && said.contains("0 thumbnails written"), "{said}");
    let log = std::fs::read_to_string(fresh.path("logs/app.log")).unwrap();
    assert!(!log.contains("model loaded"), "no photo was sent for removal again:\n{log}");
    for (key, bytes) in ["thumbnails-prontas/bottle.jpg", "thumbnails-prontas/bottle__wood.jpg"].iter().zip(before) {
        assert!(s3.get(key).unwrap() == bytes, "{key} unchanged");
    }
}

#[test]
fn a_store_that_goes_down_makes_the_node_unready_and_work_resumes_when_it_returns() {
    let mut s3 = S3Server::start();
    let settings = s3.env("");
    let base = Sandbox::new();
    let daemon = base.start(&env_of(&settings));

    s3.stop();
    let unready = wait_until(Duration::from_secs(60), || !daemon.is_ready());
    assert!(unready, "not ready while the store is down:\n{}", daemon.log_text());
    let (status, body) = daemon.get("/health");
    let health: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(health["checks"]["dependencies"]["storage"]["status"], "error", "{health:#} ({status})");

    s3.restart();
    s3.put("produtos/bottle.jpg", &synth::product_jpeg(Shape::Bottle, [200, 40, 40], 5));
    let back = wait_until(LONG, || s3.get("thumbnails-prontas/bottle.jpg").is_some());
    assert!(back, "the photo put after the store returned is processed:\n{}", daemon.log_text());
    assert!(wait_until(Duration::from_secs(30), || daemon.is_ready()), "ready again");
}

#[test]
fn a_throttling_store_is_waited_out_and_nothing_is_rejected() {
    let s3 = S3Server::start();
    // The first 12 requests through the proxy answer `503 Slow Down`: the start-up listing, the
    // first sweeps and their retries.
    let proxy = FaultProxy::start(&s3.endpoint(), "slowdown:12");
    let settings = s3.env_through("", &proxy.url());
    let base = Sandbox::new();
    let daemon = base.start(&env_of(&settings));
    s3.put("backgrounds/wood.jpg", &background());
    s3.put("produtos/bottle.jpg", &synth::product_jpeg(Shape::Bottle, [200, 40, 40], 9));

    let done = wait_until(LONG, || {
        s3.get("thumbnails-prontas/bottle.jpg").is_some() && s3.get("thumbnails-prontas/bottle__wood.jpg").is_some()
    });
    assert!(done, "made once the store stops throttling:\n{}", daemon.log_text());
    assert_eq!(s3.keys("rejeitados/").unwrap(), Vec::<String>::new(), "nothing rejected");
    assert!(s3.get("produtos/bottle.jpg").is_some(), "the photo stays in the catalog");
    assert!(daemon.metric("thumbgen_storage_requests_total{op=\"list\",outcome=\"error\"}") >= 1.0);
    assert!(daemon.log_text().contains("SlowDown"), "the log says why it waited");
}

#[test]
fn three_nodes_with_no_shared_folder_share_a_bucket_survive_a_kill_and_restarts_of_store_and_broker_with_one_removal_per_photo(
) {
    const PRODUCTS: usize = 40;
    const BACKGROUNDS: [&str; 2] = ["studio.jpg", "madeira.png"];
    let mut s3 = S3Server::start();
    let mut nats = NatsServer::start();
    // A real removal engine outside the nodes, so removals are counted where they happen.
    let app = GradioApp::start("6", "blocks_png", &["--mark", "--concurrency", "4"]);
    let mut rng = Rng(0xB0_C4_E7);
    let photos: Vec<Vec<u8>> = (0..PRODUCTS).map(|i| product_jpeg(i, &mut rng)).collect();
    for (i, name) in BACKGROUNDS.iter().enumerate() {
        s3.put(&format!("backgrounds/{name}"), &background_bytes(name, i));
    }

    // Each node has its own empty base folder: nothing is shared but the bucket and the broker.
    let settings = s3.env("");
    let nats_url = nats.url();
    let start = |node: &str| {
        let base = Sandbox::new();
        let mut env = env_of(&settings);
        let cluster = [
            ("NATS_URL", nats_url.clone()),
            ("NODE_NAME", node.to_owned()),
            ("GRADIO_API_URL", app.url()),
            ("MAX_CONCURRENT_REQUESTS", "1".into()),
            ("WORKERS", "2".into()),
            ("NATS_ACK_WAIT", "4s".into()),
        ];
        env.extend(cluster.iter().map(|(k, v)| (*k, v.as_str())));
        let daemon = base.spawn(&env);
        (base, daemon)
    };
    let mut nodes: Vec<(Sandbox, Daemon)> = ["node-a", "node-b", "node-c"].iter().map(|n| start(n)).collect();
    nodes.iter().for_each(|(_, d)| d.wait_ready());
    for (i, photo) in photos.iter().enumerate() {
        s3.put(&format!("produtos/{}", product_name(i)), photo);
    }
    s3.put("produtos/zz-broken.jpg", b"a bad input among the photos");
    // node-c dies (SIGKILL) while the burst is being worked through; the others take its jobs.
    std::thread::sleep(Duration::from_millis(1500));
    let (_killed_base, killed) = nodes.pop().unwrap();
    let killed_log = killed.log_text();
    killed.kill();
    // Then the store restarts (its data kept), and the broker: the nodes wait for each and go on.
    s3.restart();
    nats.restart();

    let expected = expected_outputs(PRODUCTS, &BACKGROUNDS);
    let outputs = || -> BTreeSet<String> {
        let keys = s3.keys("thumbnails-prontas/").unwrap_or_default();
        keys.iter().filter_map(|k| k.strip_prefix("thumbnails-prontas/")).map(str::to_owned).collect()
    };
    let done = wait_until(Duration::from_secs(300), || outputs() == expected);
    let logs: Vec<String> = nodes.iter().map(|(_, d)| d.log_text()).collect();
    assert!(done, "outputs: {} of {}\n{}", outputs().len(), expected.len(), logs.join("\n-----\n"));
    let rejected = wait_until(Duration::from_secs(30), || {
        s3.keys("rejeitados/").unwrap_or_default() == ["rejeitados/zz-broken.jpg", "rejeitados/zz-broken.jpg.error.txt"]
    });
    assert!(rejected, "only the bad input is rejected, once: {:?}", s3.keys("rejeitados/"));
    // Every output is whole, though a node was killed mid-burst (each is one PUT).
    for file in &expected {
        let bytes = s3.get(&format!("thumbnails-prontas/{file}")).unwrap();
        let image = image::load_from_memory(&bytes).unwrap_or_else(|e| panic!("{file} is not a whole image: {e}"));
        assert_eq!((image.width(), image.height()), (1200, 1200), "{file}");
    }

    // One removal per photo; a node killed holding photos may cost one more each (at most two:
    // WORKERS=2), never more.
    let calls = removals(&app, PRODUCTS);
    let wrong: Vec<(usize, usize)> =
        calls.iter().copied().enumerate().filter(|&(_, n)| !(1..=2).contains(&n)).collect();
    assert!(wrong.is_empty(), "products removed other than once (product, removals): {wrong:?}");
    let extra: usize = calls.iter().map(|n| n - 1).sum();
    assert!(extra <= 2, "the kill cost {extra} removals: {calls:?}");
    for (base, _) in &nodes {
        assert!(!base.path("produtos").exists() && !base.path("thumbnails-prontas").exists());
    }
    // One node lists the bucket for the cluster; another takes over only when it was the one
    // killed.
    let mut logs: Vec<String> = nodes.iter().map(|(_, d)| d.log_text()).collect();
    logs.push(killed_log);
    let listers = logs.iter().filter(|l| l.contains("lists the bucket for the cluster")).count();
    assert!((1..=2).contains(&listers), "{listers} nodes listed the bucket:\n{}", logs.join("\n-----\n"));

    // The dashboard's object-storage row and the storage alert query only series and labels such a
    // node exports.
    let families = common::parse_metrics(&nodes[0].1.get("/metrics").1);
    let mut exported: std::collections::BTreeMap<String, BTreeSet<String>> = Default::default();
    for family in families.as_object().unwrap().values() {
        for sample in family["samples"].as_array().unwrap() {
            let labels = exported.entry(sample[0].as_str().unwrap().to_owned()).or_default();
            labels.extend(sample[1].as_object().unwrap().keys().cloned());
        }
    }
    for (file, at_least) in
        [("deploy/grafana/thumbgen-dashboard.json", 3), ("deploy/prometheus/thumbgen-alerts.yml", 1)]
    {
        let text = std::fs::read_to_string(format!("{}/{file}", env!("CARGO_MANIFEST_DIR"))).unwrap();
        let queried = common::queried_metrics(&text);
        let storage: Vec<_> = queried.into_iter().filter(|(n, _)| common::is_storage_series(n)).collect();
        assert!(storage.len() >= at_least, "{file} queries the storage series: {storage:?}");
        for (name, labels) in storage {
            let known =
                exported.get(&name).unwrap_or_else(|| panic!("{file} queries {name}, which the node does not export"));
            for label in labels.into_iter().filter(|l| l != "job" && l != "instance") {
                assert!(known.contains(&label), "{file}: {name} has no label {label:?} (it has {known:?})");
            }
        }
    }

    // A node that joins later with an empty base folder: once the others stop, it takes the
    // listing over, sweeps the whole bucket and redoes nothing.
    let before = calls.iter().sum::<usize>();
    let (_late_base, late) = start("node-d");
    late.wait_ready();
    for (_, node) in nodes.drain(..) {
        assert!(node.stop().success(), "SIGTERM stops a node cleanly");
    }
    let listed = wait_until(Duration::from_secs(90), || {
        late.metric("thumbgen_files_detected_total{folder=\"produtos\"}") >= PRODUCTS as f64
            && late.metric("thumbgen_cluster_jobs_pending") == 0.0
            && late.metric("thumbgen_jobs_in_flight") == 0.0
    });
    assert!(listed, "the late node took the listing over and the queue emptied:\n{}", late.log_text());
    assert!(late.log_text().contains("lists the bucket for the cluster now"), "{}", late.log_text());
    assert_eq!(late.metric("thumbgen_thumbnails_written_total"), 0.0, "{}", late.log_text());
    assert_eq!(removals(&app, PRODUCTS).iter().sum::<usize>(), before, "no photo sent for removal again");
}

#[test]
fn an_s3_event_notification_queues_a_photo_the_tail_listing_would_not_reach_until_the_next_sweep() {
    let s3 = S3Server::start();
    let settings = s3.env("shop");
    let mut env = env_of(&settings);
    let token = "a-webhook-secret-of-32-characters";
    env.push(("S3_WEBHOOK_TOKEN", token));
    let base = Sandbox::new();
    let daemon = base.start(&env);
    let photo = synth::product_jpeg(Shape::Bottle, [200, 40, 40], 11);
    s3.put("shop/produtos/zzz.jpg", &photo);
    assert!(wait_until(LONG, || s3.get("shop/thumbnails-prontas/zzz.jpg").is_some()), "{}", daemon.log_text());

    // The tail is listed after `zzz.jpg`: a name sorting before it waits for the next sweep
    // (an hour away in the tests) — or for a notification.
    s3.put("shop/produtos/aaa.jpg", &synth::product_jpeg(Shape::Box, [40, 40, 200], 12));
    let event = |bucket: &str, key: &str| {
        serde_json::json!({ "Records": [{ "eventName": "ObjectCreated:Put",
            "s3": { "bucket": { "name": bucket }, "object": { "key": key, "size": 1 } } }] })
        .to_string()
    };
    let post = |auth: Option<&str>, body: &str| {
        let bearer = auth.map(|t| format!("Bearer {t}"));
        let mut headers = vec![("Content-Type", "application/json")];
        if let Some(b) = &bearer {
            headers.push(("Authorization", b.as_str()));
        }
        common::web::request(daemon.port, "POST", "/hooks/s3", &headers, body.as_bytes()).unwrap()
    };
    let aaa = event(common::s3::BUCKET, "shop/produtos/aaa.jpg");
    assert_eq!(post(None, &aaa).status, 401, "no token, refused");
    assert_eq!(post(Some("a-wrong-secret-of-32-characters!!"), &aaa).status, 401, "wrong token, refused");
    assert_eq!(post(Some(token), "not json").status, 400);
    let answer = post(Some(token), &aaa);
    assert_eq!((answer.status, answer.json()["queued"].as_u64()), (202, Some(1)), "{}", answer.text());
    let found = wait_until(Duration::from_secs(30), || s3.get("shop/thumbnails-prontas/aaa.jpg").is_some());
    assert!(found, "the notified photo is processed:\n{}", daemon.log_text());

    // The same notification again is the same version: not queued twice. Keys of another bucket,
    // outside the prefix or not inputs are ignored.
    let again = post(Some(token), &aaa);
    assert_eq!(again.json()["queued"].as_u64(), Some(0), "{}", again.text());
    for (bucket, key) in [("other-bucket", "shop/produtos/aaa.jpg"), (common::s3::BUCKET, "produtos/aaa.jpg")] {
        let answer = post(Some(token), &event(bucket, key));
        assert_eq!(answer.json()["ignored"].as_u64(), Some(1), "{bucket}/{key}: {}", answer.text());
    }
}

#[test]
fn a_bad_photo_replaced_or_deleted_while_it_is_moved_aside_is_never_lost_nor_left_half_moved() {
    let s3 = S3Server::start();
    // The copies into `rejeitados/` are held for 3 s: the time to change the photo under them.
    let proxy = FaultProxy::start(&s3.endpoint(), "hold_copy:3");
    let settings = s3.env_through("", &proxy.url());
    let base = Sandbox::new();
    let mut daemon = base.start(&env_of(&settings));
    let held = |n: usize| wait_until(LONG, || proxy.requests().matches("hold_copy").count() >= n);

    // Replaced by a good photo while the bad one is copied aside: the copy and note are taken
    // back, the good photo stays and is processed.
    s3.put("produtos/troca.jpg", b"not a photo");
    assert!(held(1), "{}\n{}", proxy.requests(), daemon.log_text());
    let good = synth::product_jpeg(Shape::Bottle, [200, 40, 40], 31);
    s3.put("produtos/troca.jpg", &good);
    let made = wait_until(LONG, || s3.get("thumbnails-prontas/troca.jpg").is_some());
    assert!(made, "the new version is processed:\n{}", daemon.log_text());
    assert_eq!(s3.get("produtos/troca.jpg"), Some(good), "the re-upload survived the rejection");
    assert_eq!(s3.keys("rejeitados/").unwrap(), Vec::<String>::new(), "copy and note taken back");
    let refused =
        |l: &str| l.starts_with("DELETE ") && l.contains("/produtos/troca.jpg?") && l.trim_end().ends_with("-> 412");
    assert!(proxy.requests().lines().any(refused), "the delete was conditional: {}", proxy.requests());

    // Deleted while it is copied aside: nothing is left in `rejeitados/`, not even the note. (Named
    // to sort after the listing's tail, so the next tail listing finds it.)
    s3.put("produtos/zzz.jpg", b"not a photo either");
    assert!(held(2), "{}", proxy.requests());
    assert!(s3.keys("rejeitados/").unwrap().contains(&"rejeitados/zzz.jpg.error.txt".to_owned()), "the note first");
    s3.delete("produtos/zzz.jpg");
    let clean = wait_until(Duration::from_secs(30), || s3.keys("rejeitados/").is_some_and(|k| k.is_empty()));
    assert!(clean, "{:?}\n{}", s3.keys("rejeitados/"), daemon.log_text());
    assert_eq!(daemon.metric("thumbgen_inputs_rejected_total{reason=\"unsupported_format\"}"), 0.0);
    assert!(daemon.is_ready(), "{}", daemon.log_text());

    // Killed while the copy is under way (the proxy still delivers it): the next run finds that
    // copy and finishes the move — one copy, one note, not `zzzz (2).jpg`.
    s3.put("produtos/zzzz.jpg", b"rejected across a kill");
    assert!(held(3), "{}", proxy.requests());
    daemon.kill();
    let copied = wait_until(Duration::from_secs(20), || s3.get("rejeitados/zzzz.jpg").is_some());
    assert!(copied, "the held copy arrives after the kill: {}", proxy.requests());
    daemon = base.start(&env_of(&settings));
    let moved = wait_until(LONG, || s3.get("produtos/zzzz.jpg").is_none());
    assert!(moved, "{}", daemon.log_text());
    let keys = s3.keys("rejeitados/").unwrap();
    assert_eq!(keys, ["rejeitados/zzzz.jpg", "rejeitados/zzzz.jpg.error.txt"], "{}", daemon.log_text());
}

/// A small cut-out (an RGBA PNG with real transparency, so no engine is needed), one per `i`.
fn cutout_png(i: usize) -> Vec<u8> {
    let colour = [(i * 37 % 256) as u8, (i * 91 % 256) as u8, (i * 53 % 256) as u8, 255];
    let image = image::RgbaImage::from_fn(48, 48, |x, y| {
        let inside = (x as i32 - 24).pow(2) + (y as i32 - 24).pow(2) < 18 * 18;
        image::Rgba(if inside { colour } else { [0, 0, 0, 0] })
    });
    let mut bytes = Vec::new();
    image.write_to(&mut std::io::Cursor::new(&mut bytes), image::ImageFormat::Png).unwrap();
    bytes
}

#[test]
fn a_catalog_of_two_thousand_objects_is_listed_page_by_page_and_every_photo_is_processed() {
    const COUNT: usize = 2000;
    let s3 = S3Server::start();
    let objects: Vec<(String, Vec<u8>)> =
        (0..COUNT).map(|i| (format!("produtos/p{i:04}.png"), cutout_png(i))).collect();
    s3.put_many(&objects);
    let settings = s3.env("");
    let base = Sandbox::new();
    // Small outputs: what is measured here is listing and storage, not encoding.
    let config = base.path("small.toml");
    std::fs::write(&config, "[preset]\nwidth = 160\nheight = 160\n").unwrap();
    let out = base.run(&["--config", config.to_str().unwrap(), "process"], &env_of(&settings));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{said}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(said.contains(&format!("{COUNT} thumbnails written")), "{said}");
    let made: BTreeSet<String> = s3.keys("thumbnails-prontas/").unwrap().into_iter().collect();
    let expected: BTreeSet<String> = (0..COUNT).map(|i| format!("thumbnails-prontas/p{i:04}.jpg")).collect();
    assert_eq!(made.len(), COUNT, "listed over two pages of 1 000");
    assert!(
        made == expected,
        "one output per photo: {:?}",
        made.symmetric_difference(&expected).take(5).collect::<Vec<_>>()
    );
    assert!(s3.keys("rejeitados/").unwrap().is_empty());
}
