//! Tenants (design §10): several shops in one daemon, each with its own catalog — a folder, or a
//! prefix in a bucket (SeaweedFS started by the test) — presets and weight, sharing the workers
//! and the removal engine. Nothing crosses: a photo dropped in two shops is removed once per shop,
//! each shop's outputs, rejections and cut-outs stay in its own catalog, and a bad configuration
//! names the tenant.

mod common;

use common::nats::NatsServer;
use common::s3::S3Server;
use common::synth::{self, Shape};
use common::{wait_until, Sandbox};
use std::time::Duration;

const LONG: Duration = Duration::from_secs(120);

fn size_of(bytes: &[u8]) -> (u32, u32) {
    let image = image::load_from_memory(bytes).unwrap();
    (image.width(), image.height())
}

#[test]
fn shops_in_folders_and_in_a_bucket_share_one_daemon_and_nothing_crosses_between_them() {
    let s3 = S3Server::start();
    let sb = Sandbox::new();
    std::fs::create_dir_all(sb.path("config")).unwrap();
    let config = format!(
        r#"
[[tenants]]
name = "loja-a"

[[tenants]]
name = "loja-b"
base = "elsewhere/b"
weight = 2
[tenants.preset]
width = 600
height = 600

[[tenants]]
name = "loja-c"
base = "s3://{}/loja-c"
"#,
        common::s3::BUCKET
    );
    std::fs::write(sb.path("config/thumbgen.toml"), config).unwrap();
    let settings = s3.env("");
    let mut store: Vec<(&str, &str)> =
        settings.iter().filter(|(k, _)| *k != "STORAGE_URL").map(|(k, v)| (*k, v.as_str())).collect();
    let token = "a-webhook-secret-of-32-characters";
    store.push(("S3_WEBHOOK_TOKEN", token));
    let d = sb.start(&store);

    let photo = synth::product_jpeg(Shape::Bottle, [200, 40, 40], 41);
    sb.drop_file("tenants/loja-a/backgrounds", "praia.jpg", &synth::jpeg(&synth::background(640, 480)));
    sb.drop_file("tenants/loja-a/produtos", "garrafa.jpg", &photo);
    sb.drop_file("elsewhere/b/produtos", "garrafa.jpg", &photo);
    sb.drop_file("elsewhere/b/produtos", "quebrada.jpg", b"not a photo");
    s3.put("loja-c/produtos/garrafa.jpg", &photo);

    let a = sb.path("tenants/loja-a/thumbnails-prontas");
    let b = sb.path("elsewhere/b/thumbnails-prontas");
    let done = wait_until(LONG, || {
        a.join("garrafa__praia.jpg").exists()
            && b.join("garrafa.jpg").exists()
            && sb.path("elsewhere/b/rejeitados/quebrada.jpg.error.txt").exists()
            && s3.get("loja-c/thumbnails-prontas/garrafa.jpg").is_some()
    });
    assert!(
        done,
        "every shop's outputs: {:?} {:?}\n{}",
        sb.files("tenants/loja-a/thumbnails-prontas"),
        sb.files("elsewhere/b/thumbnails-prontas"),
        d.log_text()
    );

    // Each shop has exactly its own outputs, in its own presets.
    assert_eq!(sb.files("tenants/loja-a/thumbnails-prontas"), ["garrafa.jpg", "garrafa__praia.jpg"]);
    assert_eq!(sb.files("elsewhere/b/thumbnails-prontas"), ["garrafa.jpg"], "loja-a's background is not loja-b's");
    assert_eq!(size_of(&std::fs::read(b.join("garrafa.jpg")).unwrap()), (600, 600), "loja-b's own preset");
    assert_eq!(size_of(&std::fs::read(a.join("garrafa.jpg")).unwrap()), (1200, 1200));
    let c_outputs = s3.keys("loja-c/thumbnails-prontas/").unwrap();
    assert_eq!(c_outputs, ["loja-c/thumbnails-prontas/garrafa.jpg"]);
    assert!(sb.files("tenants/loja-a/rejeitados").is_empty(), "loja-b's bad file stays with loja-b");
    assert!(!sb.path("produtos").exists(), "no catalog at the base itself: {:?}", sb.files(""));

    // The same photo in three shops is removed three times: a shared cache would tell one shop
    // what another uploaded.
    let removals = d.metric("thumbgen_removals_total{engine=\"local\",outcome=\"success\"}");
    assert_eq!(removals, 3.0, "{}", d.log_text());
    assert_eq!(sb.files("tenants/loja-a/.thumbgen/cutouts").len(), 1);
    assert_eq!(sb.files("elsewhere/b/.thumbgen/cutouts").len(), 1);
    assert!(s3.keys("loja-c/.thumbgen/cutouts/").unwrap().len() == 1);
    // Each tenant's work is counted under its name, and only configured names appear.
    // (Counted just after the files appear.)
    let written = |tenant: &str| d.metric(&format!("thumbgen_thumbnails_written_total{{tenant=\"{tenant}\"}}"));
    let rejected = "thumbgen_inputs_rejected_total{reason=\"unsupported_format\",tenant=\"loja-b\"}";
    let counted = wait_until(Duration::from_secs(10), || {
        (written("loja-a"), written("loja-b"), written("loja-c"), d.metric(rejected)) == (2.0, 1.0, 1.0, 1.0)
    });
    assert!(counted, "{} {} {} {}", written("loja-a"), written("loja-b"), written("loja-c"), d.metric(rejected));
    let families = common::parse_metrics(&d.get("/metrics").1);
    let mut tenants = std::collections::BTreeSet::new();
    for family in families.as_object().unwrap().values() {
        for sample in family["samples"].as_array().unwrap() {
            tenants.extend(sample[1]["tenant"].as_str().map(str::to_owned));
        }
    }
    assert_eq!(tenants.into_iter().collect::<Vec<_>>(), ["loja-a", "loja-b", "loja-c"]);
    // Every series the dashboard selects by tenant carries the label here (the cluster's: below).
    assert_dashboard_tenant_series_are_labelled(&families, false);
    let (status, ready) = d.get("/health/ready");
    assert_eq!(status, 200, "{ready}");
    assert!(d.log_text().contains("serving tenant loja-c"), "{}", d.log_text());

    // A notification reaches the bucket tenant's catalog: a name before its listing's tail is
    // processed at once.
    s3.put("loja-c/produtos/aaa.jpg", &photo);
    let event = serde_json::json!({ "Records": [{ "eventName": "ObjectCreated:Put",
        "s3": { "bucket": { "name": common::s3::BUCKET }, "object": { "key": "loja-c/produtos/aaa.jpg" } } }] });
    let bearer = format!("Bearer {token}");
    let headers = [("Content-Type", "application/json"), ("Authorization", bearer.as_str())];
    let answer = common::web::request(d.port, "POST", "/hooks/s3", &headers, event.to_string().as_bytes()).unwrap();
    assert_eq!((answer.status, answer.json()["queued"].as_u64()), (202, Some(1)), "{}", answer.text());
    let notified = wait_until(Duration::from_secs(30), || s3.get("loja-c/thumbnails-prontas/aaa.jpg").is_some());
    assert!(notified, "{}", d.log_text());
    let named = d.log_text().lines().any(|l| l.contains("quebrada.jpg") && l.contains("tenant=loja-b"));
    assert!(named, "the log names the tenant of each job:\n{}", d.log_text());
}

/// Every series the dashboard selects by tenant (`cluster`: those of cluster mode; else the others)
/// is in `families`, each sample with a `tenant` label.
fn assert_dashboard_tenant_series_are_labelled(families: &serde_json::Value, cluster: bool) {
    let dashboard =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/grafana/thumbgen-dashboard.json"));
    let by_tenant: Vec<String> = common::queried_metrics(&dashboard.unwrap())
        .into_iter()
        .filter(|(name, labels)| {
            labels.iter().any(|l| l == "tenant") && name.starts_with("thumbgen_cluster_") == cluster
        })
        .map(|(name, _)| name)
        .collect();
    assert!(by_tenant.len() >= 5, "{by_tenant:?}");
    let samples: Vec<&serde_json::Value> =
        families.as_object().unwrap().values().flat_map(|f| f["samples"].as_array().unwrap()).collect();
    for name in by_tenant {
        let of_it: Vec<_> = samples.iter().filter(|s| s[0] == name.as_str()).collect();
        assert!(!of_it.is_empty(), "{name} is exported");
        assert!(of_it.iter().all(|s| s[1]["tenant"].is_string()), "{name} carries a tenant label");
    }
}

#[test]
fn a_bad_tenant_setting_stops_the_start_with_a_message_naming_the_tenant() {
    let sb = Sandbox::new();
    std::fs::create_dir_all(sb.path("config")).unwrap();
    for (toml, says) in [
        ("[[tenants]]\nname = \"Loja A\"\n", "tenants[0].name `Loja A`"),
        ("[[tenants]]\nname = \"a\"\n[[tenants]]\nname = \"a\"\n", "tenants[1].name `a` is used twice"),
        ("[[tenants]]\nname = \"a\"\ntoken = \"short\"\n", "TENANT_A_TOKEN"),
        ("[[tenants]]\nname = \"a\"\nweight = 0\n", "tenants[0].weight"),
        ("[[tenants]]\nname = \"a\"\nbase = \"s3://\"\n", "tenants[0].base"),
        ("[[tenants]]\nname = \"a\"\n[[tenants]]\nname = \"b\"\nbase = \"tenants/a/b\"\n", "overlap"),
        (
            "[[tenants]]\nname = \"a\"\ntoken = \"0123456789abcdef\"\n[[tenants]]\nname = \"b\"\ntoken = \"0123456789abcdef\"\n",
            "TENANT_B_TOKEN) is the same as TENANT_A_TOKEN",
        ),
    ] {
        std::fs::write(sb.path("config/thumbgen.toml"), toml).unwrap();
        let out = sb.run(&["config"], &[]);
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && said.contains(says), "{toml}: {said}");
    }
    std::fs::write(sb.path("config/thumbgen.toml"), "[[tenants]]\nname = \"a\"\ntoken = \"0123456789abcdef-a\"\n")
        .unwrap();
    let out = sb.run(&["config"], &[("TENANT_A_TOKEN", "from-the-environment-0123")]);
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(printed.contains("[[tenants]]") && printed.contains("token = \"***\""), "{printed}");
    assert!(!printed.contains("0123456789abcdef") && !printed.contains("from-the-environment"), "{printed}");
}

#[test]
fn a_tenants_token_opens_only_its_own_console_and_the_operators_opens_every_one() {
    use common::web::{multipart, request};
    const A: &str = "token-of-loja-a-0123456789";
    const B: &str = "token-of-loja-b-0123456789";
    const OPERATOR: &str = "token-of-the-operator-0123";
    let sb = Sandbox::new();
    std::fs::create_dir_all(sb.path("config")).unwrap();
    let config = format!("[[tenants]]\nname = \"loja-a\"\ntoken = \"{A}\"\n\n[[tenants]]\nname = \"loja-b\"\n");
    std::fs::write(sb.path("config/thumbgen.toml"), config).unwrap();
    let d = sb.start(&[("CONSOLE_TOKEN", OPERATOR), ("TENANT_LOJA_B_TOKEN", B)]);
    let call = |token: Option<&str>, method: &str, path: &str, body: &[u8], extra: &[(&str, &str)]| {
        let bearer = token.map(|t| format!("Bearer {t}"));
        let mut headers: Vec<(&str, &str)> = extra.to_vec();
        if let Some(b) = &bearer {
            headers.push(("Authorization", b.as_str()));
        }
        request(d.port, method, path, &headers, body).unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    };
    let get = |token: Option<&str>, path: &str| call(token, "GET", path, b"", &[]);
    sb.drop_file("tenants/loja-a/produtos", "segredo-a.jpg", &synth::product_jpeg(Shape::Box, [30, 60, 200], 51));
    sb.drop_file("tenants/loja-b/produtos", "segredo-b.jpg", &synth::product_jpeg(Shape::Can, [200, 60, 30], 52));
    let done = |token: &str, tenant: &str| {
        let items = get(Some(token), &format!("/t/{tenant}/api/products")).json()["items"].clone();
        items[0]["state"] == "done"
    };
    let made = wait_until(LONG, || done(A, "loja-a") && done(B, "loja-b"));
    assert!(made, "{}\n{}", get(Some(A), "/t/loja-a/api/products").text(), d.log_text());

    // Every route of each console: its own token and the operator's open it; the other tenant's,
    // none, or a wrong one do not, and nothing of the tenant is in the refusal.
    let products = get(Some(A), "/t/loja-a/api/products").json();
    let thumbnail = products["items"][0]["outputs"][0]["url"].as_str().unwrap().to_owned();
    assert!(thumbnail.starts_with("/t/loja-a/files/thumbnails/segredo-a.jpg?v="), "{thumbnail}");
    for (tenant, own, other) in [("loja-a", A, B), ("loja-b", B, A)] {
        let photo = if tenant == "loja-a" { "segredo-a" } else { "segredo-b" };
        let routes = [
            format!("/t/{tenant}/"),
            format!("/t/{tenant}/api/products"),
            format!("/t/{tenant}/api/backgrounds"),
            format!("/t/{tenant}/api/rejected"),
            format!("/t/{tenant}/api/status"),
            format!("/t/{tenant}/api/thumbnails.zip"),
            format!("/t/{tenant}/files/originals/{photo}.jpg"),
        ];
        for route in &routes {
            for token in [Some(own), Some(OPERATOR)] {
                assert_eq!(get(token, route).status, 200, "{route} with its own or the operator's token");
            }
            for token in [Some(other), None, Some("not-a-token-of-anyone-000")] {
                let refused = get(token, route);
                // The page sends a browser to its console's login; the API answers 401.
                let login = format!("/t/{tenant}/login");
                let expected = if route.ends_with('/') { (303, Some(login.as_str())) } else { (401, None) };
                let location = refused.header("location").filter(|_| expected.0 == 303);
                assert_eq!((refused.status, location), expected, "{route} with {token:?}");
                assert!(!refused.text().contains("segredo"), "{route}: {}", refused.text());
            }
        }
    }
    let a_catalog = get(Some(A), "/t/loja-a/api/products").text();
    assert!(a_catalog.contains("segredo-a") && !a_catalog.contains("segredo-b"), "{a_catalog}");
    assert_eq!(get(Some(A), "/t/loja-a/api/status").json()["products"], 1, "loja-a counts only its own");

    // Crafted names and encoded traversal reach nothing of the other tenant.
    for path in [
        "/t/loja-a/files/originals/segredo-b.jpg",
        "/t/loja-a/files/originals/..%2F..%2Floja-b%2Fprodutos%2Fsegredo-b.jpg",
        "/t/loja-a/files/thumbnails/segredo-b.jpg",
        "/t/loja-a/../loja-b/api/products",
        "/t/loja-a%2F..%2Floja-b/api/products",
    ] {
        let answer = get(Some(A), path);
        assert!(answer.status == 404 || answer.status == 401, "{path}: {}", answer.status);
        // The same answer as for a name no tenant has: nothing depends on loja-b's files.
        let nobody = get(Some(A), &path.replace("segredo-b", "inexistente"));
        assert_eq!(answer.status, nobody.status, "{path}");
        assert_eq!(answer.text(), nobody.text().replace("inexistente", "segredo-b"), "{path}");
    }

    // Uploads: into its own catalog only.
    let (kind, body) = multipart(&[("novo.jpg", &synth::product_jpeg(Shape::Bottle, [90, 90, 90], 53))]);
    let form = [("Content-Type", kind.as_str())];
    assert_eq!(call(Some(A), "POST", "/t/loja-b/api/upload?folder=produtos", &body, &form).status, 401);
    assert!(!sb.path("tenants/loja-b/produtos/novo.jpg").exists());
    assert_eq!(call(Some(A), "POST", "/t/loja-a/api/upload?folder=produtos", &body, &form).status, 201);
    assert!(sb.path("tenants/loja-a/produtos/novo.jpg").exists());

    // A browser's login cookie is the tenant's own, scoped to its console.
    let login = call(
        None,
        "POST",
        "/t/loja-a/login",
        format!("token={A}").as_bytes(),
        &[("Content-Type", "application/x-www-form-urlencoded")],
    );
    let cookie = login.header("set-cookie").unwrap().to_owned();
    assert!(cookie.starts_with("thumbgen_console_loja-a=") && cookie.contains("Path=/t/loja-a/"), "{cookie}");
    let session = cookie.split(';').next().unwrap().to_owned();
    let with_cookie = |path: &str| call(None, "GET", path, b"", &[("Cookie", session.as_str())]).status;
    assert_eq!((with_cookie("/t/loja-a/api/products"), with_cookie("/t/loja-b/api/products")), (200, 401));
    assert_eq!(get(Some(A), "/t/loja-a").status, 308, "the console's address without its slash");

    // The operator's overview lists every tenant; a tenant's token does not open it.
    let overview = get(Some(OPERATOR), "/api/tenants").json();
    let names: Vec<&str> = overview["items"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["loja-a", "loja-b"]);
    assert_eq!(overview["items"][1]["products"], 1, "{overview:#}");
    assert_eq!(get(Some(OPERATOR), "/").status, 200);
    assert_eq!(get(Some(A), "/api/tenants").status, 401);
    let page = get(Some(A), "/");
    assert_eq!((page.status, page.header("location")), (303, Some("/login")), "to the operator's login");

    // The operator logs in once, at the overview: its cookie (Path=/) opens every tenant's console.
    // A tenant's token does not log in there, so no tenant gets such a cookie.
    let form = [("Content-Type", "application/x-www-form-urlencoded")];
    let operator = call(None, "POST", "/login", format!("token={OPERATOR}").as_bytes(), &form);
    let cookie = operator.header("set-cookie").unwrap().to_owned();
    assert!(cookie.starts_with("thumbgen_console=") && cookie.contains("Path=/;"), "{cookie}");
    let session = cookie.split(';').next().unwrap().to_owned();
    let with_cookie = |path: &str| call(None, "GET", path, b"", &[("Cookie", session.as_str())]).status;
    let opened = ["/t/loja-a/api/products", "/t/loja-b/api/products", "/api/tenants"].map(with_cookie);
    assert_eq!(opened, [200, 200, 200], "the switcher's list and both consoles");
    assert_ne!(call(None, "POST", "/login", format!("token={A}").as_bytes(), &form).status, 303);
    let tenant_cookie = format!("thumbgen_console={}", "a".repeat(64));
    let forged = call(None, "GET", "/t/loja-a/api/products", b"", &[("Cookie", tenant_cookie.as_str())]);
    assert_eq!(forged.status, 401, "a made-up overview cookie opens nothing");
}

#[test]
fn past_its_daily_quota_a_tenants_photos_wait_and_flow_again_when_the_day_turns() {
    // Days of 30 s (a test build's clock hook), so the day can turn during the test.
    const DAY: u64 = 30;
    let sb = Sandbox::new();
    std::fs::create_dir_all(sb.path("config")).unwrap();
    let config = "[[tenants]]\nname = \"loja-a\"\nmax_photos_per_day = 2\n\n[[tenants]]\nname = \"loja-b\"\n";
    std::fs::write(sb.path("config/thumbgen.toml"), config).unwrap();
    let d = sb.start(&[("THUMBGEN_TEST_DAY_SECONDS", "30")]);
    let states = |tenant: &str| -> Vec<String> {
        let items = d.get(&format!("/t/{tenant}/api/products")).1;
        let items: serde_json::Value = serde_json::from_str(&items).unwrap();
        let mut states: Vec<String> =
            items["items"].as_array().unwrap().iter().map(|p| p["state"].as_str().unwrap().to_owned()).collect();
        states.sort();
        states
    };
    // Start at the beginning of a day, so the three photos arrive on the same one.
    let into_day = || std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() % DAY;
    assert!(wait_until(Duration::from_secs(DAY + 1), || into_day() == 0));
    for (i, name) in ["a.jpg", "b.jpg", "c.jpg"].iter().enumerate() {
        sb.drop_file("tenants/loja-a/produtos", name, &synth::product_jpeg(Shape::Box, [40, 90, 200], 70 + i as u64));
    }
    sb.drop_file("tenants/loja-b/produtos", "d.jpg", &synth::product_jpeg(Shape::Can, [200, 90, 40], 79));

    let held = wait_until(Duration::from_secs(DAY - 4), || {
        states("loja-a") == ["done", "done", "over_quota"] && states("loja-b") == ["done"]
    });
    assert!(
        held,
        "two made, one over the quota, loja-b unaffected: {:?} {:?}\n{}",
        states("loja-a"),
        states("loja-b"),
        d.log_text()
    );
    let over_quota =
        |tenant: &str| d.metric(&format!("thumbgen_inputs_waiting{{cause=\"over_quota\",tenant=\"{tenant}\"}}"));
    assert_eq!((over_quota("loja-a"), over_quota("loja-b")), (1.0, 0.0), "counted for its tenant");
    assert_eq!(sb.files("tenants/loja-a/produtos").len(), 3, "it waits in its folder");
    assert!(sb.files("tenants/loja-a/rejeitados").is_empty(), "never rejected");
    let (_, health) = d.get("/health");
    let health: serde_json::Value = serde_json::from_str(&health).unwrap();
    let application = &health["checks"]["application"];
    assert_eq!(application["status"], "ok", "waiting for the next day is not a problem: {health:#}");
    assert_eq!(application["inputs_waiting"]["over_quota"], 1, "{health:#}");
    assert!(application["message"].as_str().unwrap().contains("quota"), "{health:#}");

    let flowed = wait_until(Duration::from_secs(DAY + 10), || states("loja-a") == ["done", "done", "done"]);
    assert!(flowed, "the next day it is made: {:?}\n{}", states("loja-a"), d.log_text());
    assert_eq!(over_quota("loja-a"), 0.0);
}

#[test]
fn a_reload_adds_changes_and_removes_tenants_while_the_others_run_on() {
    let sb = Sandbox::new();
    std::fs::create_dir_all(sb.path("config")).unwrap();
    let write_config = |text: &str| std::fs::write(sb.path("config/thumbgen.toml"), text).unwrap();
    write_config("[[tenants]]\nname = \"loja-a\"\n\n[[tenants]]\nname = \"loja-b\"\n");
    let d = sb.start(&[]);
    let reload = |seen: usize| {
        unsafe { libc::kill(d.pid(), libc::SIGHUP) };
        let reloaded = wait_until(LONG, || d.log_text().matches("configuration reloaded").count() > seen);
        assert!(reloaded, "{}", d.log_text());
    };
    let photo = |seed| synth::product_jpeg(Shape::Bottle, [30, 120, 60], seed);
    sb.drop_file("tenants/loja-a/produtos", "a1.jpg", &photo(90));
    sb.drop_file("tenants/loja-b/produtos", "b1.jpg", &photo(91));
    let made = wait_until(LONG, || {
        sb.path("tenants/loja-a/thumbnails-prontas/a1.jpg").exists()
            && sb.path("tenants/loja-b/thumbnails-prontas/b1.jpg").exists()
    });
    assert!(made, "{}", d.log_text());

    // loja-b goes, loja-c comes, loja-a gets a new weight (no restart for that).
    write_config("[[tenants]]\nname = \"loja-a\"\nweight = 3\n\n[[tenants]]\nname = \"loja-c\"\n");
    reload(0);
    let log = d.log_text();
    assert!(log.contains("stopped serving tenant loja-b"), "{log}");
    assert!(log.contains("serving tenant loja-c"), "{log}");
    assert!(log.contains("tenant loja-a's weight changed"), "{log}");
    assert!(!log.contains("stopped serving tenant loja-a"), "a new weight alone restarts nothing: {log}");
    assert!(!log.contains("take effect after a restart"), "nothing waits for a restart: {log}");

    sb.drop_file("tenants/loja-b/produtos", "b2.jpg", &photo(92));
    sb.drop_file("tenants/loja-c/produtos", "c1.jpg", &photo(93));
    sb.drop_file("tenants/loja-a/produtos", "a2.jpg", &photo(94));
    let served = wait_until(LONG, || {
        sb.path("tenants/loja-c/thumbnails-prontas/c1.jpg").exists()
            && sb.path("tenants/loja-a/thumbnails-prontas/a2.jpg").exists()
    });
    assert!(served, "the added tenant and the one that stayed are served: {}", d.log_text());
    // The removed tenant's files stay where they are, and nothing new of it is read.
    assert_eq!(sb.files("tenants/loja-b/thumbnails-prontas"), ["b1.jpg"]);
    assert_eq!(sb.files("tenants/loja-b/produtos"), ["b1.jpg", "b2.jpg"]);
    assert_eq!(d.get("/t/loja-b/api/products").0, 404, "its console is gone");
    assert_eq!(d.get("/t/loja-c/api/products").0, 200);
    let (_, overview) = d.get("/api/tenants");
    let overview: serde_json::Value = serde_json::from_str(&overview).unwrap();
    let names: Vec<&str> = overview["items"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["loja-a", "loja-c"]);
    let metrics = d.get("/metrics").1;
    common::parse_metrics(&metrics);
    assert!(metrics.contains("thumbgen_thumbnails_written_total{tenant=\"loja-c\"} 1"), "{metrics}");
    assert!(!metrics.contains("tenant=\"loja-b\""), "a removed tenant's series go: {metrics}");
    assert_eq!(d.get("/health/ready").0, 200);

    // A changed entry restarts that tenant on its new settings.
    write_config(
        "[[tenants]]\nname = \"loja-a\"\nweight = 3\n\n[[tenants]]\nname = \"loja-c\"\n[tenants.preset]\nwidth = 500\nheight = 500\n",
    );
    reload(1);
    assert!(d.log_text().contains("stopped serving tenant loja-c"), "{}", d.log_text());
    sb.drop_file("tenants/loja-c/produtos", "c2.jpg", &photo(95));
    let c2 = sb.path("tenants/loja-c/thumbnails-prontas/c2.jpg");
    assert!(wait_until(LONG, || c2.exists()), "{}", d.log_text());
    assert_eq!(size_of(&std::fs::read(&c2).unwrap()), (500, 500), "the new preset");
    // What it had made is remade in the new preset, from its cached cut-out: five photos, five
    // removals in all.
    let c1 = sb.path("tenants/loja-c/thumbnails-prontas/c1.jpg");
    let remade = wait_until(LONG, || std::fs::read(&c1).is_ok_and(|b| size_of(&b) == (500, 500)));
    assert!(remade, "{}", d.log_text());
    assert_eq!(d.metric("thumbgen_removals_total{engine=\"local\",outcome=\"success\"}"), 5.0, "{}", d.log_text());
    let log = d.log_text();
    assert_eq!(log.matches("serving tenant loja-a").count(), 1, "loja-a ran on through both reloads: {log}");
    let idle = wait_until(LONG, || {
        d.metric("thumbgen_jobs_in_flight") == 0.0
            && d.metric("thumbgen_queue_depth{tenant=\"loja-a\"}") == 0.0
            && d.metric("thumbgen_queue_depth{tenant=\"loja-c\"}") == 0.0
    });
    assert!(idle, "the gauges come back to zero: {}", d.get("/metrics").1);

    // Back to no tenants needs a restart: nothing is stopped.
    write_config("");
    reload(2);
    let log = d.log_text();
    assert!(log.contains("take effect after a restart") && log.contains("tenants"), "{log}");
    assert_eq!(d.get("/t/loja-a/api/products").0, 200, "still served until the restart");
}

#[test]
fn a_quota_raised_by_a_reload_lets_the_waiting_photos_flow_the_same_day() {
    let sb = Sandbox::new();
    std::fs::create_dir_all(sb.path("config")).unwrap();
    let write_config = |limit: u32| {
        let text =
            format!("[[tenants]]\nname = \"loja-a\"\nmax_photos_per_day = {limit}\n\n[[tenants]]\nname = \"loja-b\"\n");
        std::fs::write(sb.path("config/thumbgen.toml"), text).unwrap();
    };
    write_config(1);
    let d = sb.start(&[]);
    for (i, name) in ["a.jpg", "b.jpg", "c.jpg"].iter().enumerate() {
        sb.drop_file("tenants/loja-a/produtos", name, &synth::product_jpeg(Shape::Box, [40, 90, 200], 340 + i as u64));
    }
    let over_quota = || d.metric("thumbgen_inputs_waiting{cause=\"over_quota\",tenant=\"loja-a\"}");
    let made = || sb.files("tenants/loja-a/thumbnails-prontas").len();
    assert!(wait_until(LONG, || made() == 1 && over_quota() == 2.0), "{} {}\n{}", made(), over_quota(), d.log_text());

    write_config(10);
    unsafe { libc::kill(d.pid(), libc::SIGHUP) };
    assert!(wait_until(LONG, || made() == 3), "the two that waited are made now: {}\n{}", made(), d.log_text());
    assert_eq!(over_quota(), 0.0);
    assert_eq!(d.metric("thumbgen_removals_total{engine=\"local\",outcome=\"success\"}"), 3.0, "each photo once");
}

#[test]
fn a_tenant_a_reload_cannot_open_is_not_served_and_the_next_reload_serves_it() {
    let mut s3 = S3Server::start();
    let sb = Sandbox::new();
    std::fs::create_dir_all(sb.path("config")).unwrap();
    let tenants = |with_bucket: bool| {
        let mut text = "[[tenants]]\nname = \"loja-a\"\n".to_owned();
        if with_bucket {
            text += &format!("\n[[tenants]]\nname = \"loja-c\"\nbase = \"s3://{}/loja-c\"\n", common::s3::BUCKET);
        }
        std::fs::write(sb.path("config/thumbgen.toml"), text).unwrap();
    };
    tenants(false);
    let settings = s3.env("");
    let store: Vec<(&str, &str)> =
        settings.iter().filter(|(k, _)| *k != "STORAGE_URL").map(|(k, v)| (*k, v.as_str())).collect();
    let d = sb.start(&store);
    let reload = |seen: usize| {
        unsafe { libc::kill(d.pid(), libc::SIGHUP) };
        let reloaded = wait_until(LONG, || d.log_text().matches("configuration reloaded").count() > seen);
        assert!(reloaded, "{}", d.log_text());
    };

    // The store does not answer: the new tenant is not served, and says so; the others run on.
    s3.stop();
    tenants(true);
    reload(0);
    assert!(d.log_text().contains("cannot serve tenant loja-c"), "{}", d.log_text());
    assert_eq!(d.get("/t/loja-c/api/products").0, 404);
    assert!(!d.get("/metrics").1.contains("tenant=\"loja-c\""), "no series of a tenant not served");
    assert_eq!(d.get("/health/ready").0, 200, "a tenant not served holds nothing back");
    sb.drop_file("tenants/loja-a/produtos", "a.jpg", &synth::product_jpeg(Shape::Can, [90, 40, 160], 350));
    assert!(wait_until(LONG, || sb.path("tenants/loja-a/thumbnails-prontas/a.jpg").exists()), "{}", d.log_text());

    // Once it answers, the next reload serves it.
    s3.restart();
    reload(1);
    s3.put("loja-c/produtos/c.jpg", &synth::product_jpeg(Shape::Bottle, [160, 90, 40], 351));
    let made = wait_until(LONG, || s3.get("loja-c/thumbnails-prontas/c.jpg").is_some());
    assert!(made, "{}", d.log_text());
    assert_eq!(d.get("/t/loja-c/api/products").0, 200);
}

#[test]
fn in_cluster_mode_each_tenant_has_its_own_stream_and_journal_and_every_node_serves_every_tenant_a_reload_adds() {
    let nats = NatsServer::start();
    let sb = Sandbox::new();
    std::fs::create_dir_all(sb.path("config")).unwrap();
    std::fs::write(
        sb.path("config/thumbgen.toml"),
        "[[tenants]]\nname = \"loja-a\"\n\n[[tenants]]\nname = \"loja-b\"\n",
    )
    .unwrap();
    let url = nats.url();
    let node = |name: &str| sb.start(&[("NATS_URL", url.as_str()), ("NODE_NAME", name), ("WORKERS", "2")]);
    let (n1, n2, n3) = (node("node-1"), node("node-2"), node("node-3"));

    // The same photo in both shops, and some of each shop's own; a background in loja-a only.
    let same = synth::product_jpeg(Shape::Bottle, [200, 40, 40], 301);
    sb.drop_file("tenants/loja-a/backgrounds", "praia.jpg", &synth::jpeg(&synth::background(640, 480)));
    sb.drop_file("tenants/loja-a/produtos", "garrafa.jpg", &same);
    sb.drop_file("tenants/loja-b/produtos", "garrafa.jpg", &same);
    for i in 0..3u64 {
        let photo = synth::product_jpeg(Shape::Box, [40, 90, 200], 310 + i);
        sb.drop_file("tenants/loja-a/produtos", &format!("a{i}.jpg"), &photo);
        sb.drop_file(
            "tenants/loja-b/produtos",
            &format!("b{i}.jpg"),
            &synth::product_jpeg(Shape::Can, [90, 200, 40], 320 + i),
        );
    }
    let a = |name: &str| sb.path(&format!("tenants/loja-a/thumbnails-prontas/{name}"));
    let b = |name: &str| sb.path(&format!("tenants/loja-b/thumbnails-prontas/{name}"));
    let done = wait_until(LONG, || {
        ["garrafa", "a0", "a1", "a2"]
            .iter()
            .all(|p| a(&format!("{p}.jpg")).exists() && a(&format!("{p}__praia.jpg")).exists())
            && ["garrafa", "b0", "b1", "b2"].iter().all(|p| b(&format!("{p}.jpg")).exists())
    });
    assert!(
        done,
        "{:?} {:?}\n{}\n{}",
        sb.files("tenants/loja-a/thumbnails-prontas"),
        sb.files("tenants/loja-b/thumbnails-prontas"),
        n1.log_text(),
        n2.log_text()
    );
    assert_eq!(sb.files("tenants/loja-b/thumbnails-prontas").len(), 4, "loja-a's background is not loja-b's");

    // One removal per photo per shop across both nodes: each shop's journal and leases are its own.
    let removals = |d: &common::Daemon| d.metric("thumbgen_removals_total{engine=\"local\",outcome=\"success\"}");
    let total = || removals(&n1) + removals(&n2) + removals(&n3);
    assert!(wait_until(Duration::from_secs(10), || total() == 8.0), "8 photos, 8 removals: {}", total());

    // Each tenant's stream and buckets exist in the broker, none of a deployment without tenants.
    let streams = stream_names(&url);
    for name in
        ["THUMBGEN_JOBS_loja-a", "THUMBGEN_JOBS_loja-b", "KV_thumbgen_journal_loja-a", "KV_thumbgen_nodes_loja-b"]
    {
        assert!(streams.iter().any(|s| s == name), "{name} in {streams:?}");
    }
    assert!(!streams.iter().any(|s| s == "THUMBGEN_JOBS" || s == "KV_thumbgen_journal"), "{streams:?}");
    // The nodes report per tenant.
    let status = sb.run(&["cluster", "status", "--json"], &[("NATS_URL", url.as_str())]);
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    for tenant in ["loja-a", "loja-b"] {
        let nodes: Vec<&str> = status["tenants"][tenant]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["node"].as_str().unwrap())
            .collect();
        assert_eq!(nodes, ["node-1", "node-2", "node-3"], "{status:#}");
        assert_eq!(status["tenants"][tenant]["jobs_pending"], 0, "{status:#}");
    }
    let sampled = wait_until(Duration::from_secs(30), || {
        n1.metric("thumbgen_cluster_nodes{tenant=\"loja-a\"}") == 3.0
            && n1.metric("thumbgen_cluster_nodes{tenant=\"loja-b\"}") == 3.0
    });
    assert!(sampled, "{}", n1.get("/metrics").1);
    assert_dashboard_tenant_series_are_labelled(&common::parse_metrics(&n1.get("/metrics").1), true);
    let idle = wait_until(LONG, || [&n1, &n2, &n3].iter().all(|d| d.metric("thumbgen_jobs_in_flight") == 0.0));
    assert!(idle, "the tenants' queues add up in the in-flight gauge and come back to zero");

    // A tenant added by a reload of every node: its photos are made once, by any node.
    let config = "[[tenants]]\nname = \"loja-a\"\n\n[[tenants]]\nname = \"loja-b\"\n\n[[tenants]]\nname = \"loja-c\"\n";
    std::fs::write(sb.path("config/thumbgen.toml"), config).unwrap();
    for d in [&n1, &n2, &n3] {
        unsafe { libc::kill(d.pid(), libc::SIGHUP) };
    }
    let reloaded = wait_until(LONG, || [&n1, &n2, &n3].iter().all(|d| d.log_text().contains("configuration reloaded")));
    assert!(reloaded, "{}", n1.log_text());
    for i in 0..4u64 {
        sb.drop_file(
            "tenants/loja-c/produtos",
            &format!("c{i}.jpg"),
            &synth::product_jpeg(Shape::Bottle, [120, 60, 160], 330 + i),
        );
    }
    let c = |i: u64| sb.path(&format!("tenants/loja-c/thumbnails-prontas/c{i}.jpg"));
    assert!(wait_until(LONG, || (0..4).all(|i| c(i).exists())), "{}\n{}", n1.log_text(), n2.log_text());
    assert!(wait_until(Duration::from_secs(10), || total() == 12.0), "4 more photos, 4 more removals: {}", total());

    // loja-b removed by a reload: every node stops serving it, nothing stays counted in flight, and
    // the nodes stay ready (their health names each tenant's broker connection).
    let config = "[[tenants]]\nname = \"loja-a\"\n\n[[tenants]]\nname = \"loja-c\"\n";
    std::fs::write(sb.path("config/thumbgen.toml"), config).unwrap();
    for d in [&n1, &n2, &n3] {
        unsafe { libc::kill(d.pid(), libc::SIGHUP) };
    }
    let stopped =
        wait_until(LONG, || [&n1, &n2, &n3].iter().all(|d| d.log_text().contains("stopped serving tenant loja-b")));
    assert!(stopped, "{}", n1.log_text());
    for d in [&n1, &n2, &n3] {
        assert!(wait_until(LONG, || d.metric("thumbgen_jobs_in_flight") == 0.0), "{}", d.get("/metrics").1);
        let (status, body) = d.get("/health/ready");
        assert_eq!(status, 200, "{body}");
        let health: serde_json::Value = serde_json::from_str(&d.get("/health").1).unwrap();
        let brokers = &health["checks"]["dependencies"]["broker"];
        assert_eq!(brokers["loja-a"]["status"], "ok", "{health:#}");
        assert!(brokers["loja-b"].is_null(), "a removed tenant's broker is no dependency any more: {health:#}");
    }
    for d in [n1, n2, n3] {
        assert!(d.stop().success(), "SIGTERM stops a node of several tenants cleanly");
    }
}

/// The names of every stream the NATS server at `url` holds.
fn stream_names(url: &str) -> Vec<String> {
    use futures_util::StreamExt;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let client = async_nats::connect(url).await.unwrap();
        let names: Vec<_> = async_nats::jetstream::new(client).stream_names().collect().await;
        names.into_iter().map(Result::unwrap).collect()
    })
}
