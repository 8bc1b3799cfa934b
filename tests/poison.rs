//! A photo that kills every node that tries it (a decoder that aborts the process, simulated by
//! the `test-hooks` build) ends in `rejeitados/` with an explanation after a bounded number of
//! runs, instead of taking the cluster down in turn; everything else is made.
//!
//! Needs `--features test-hooks` (scripts/test passes it).

mod common;

use common::nats::NatsServer;
use common::{wait_until, Sandbox};
use std::time::Duration;

#[test]
fn a_photo_that_kills_every_node_that_tries_it_is_rejected_after_three_crashed_runs() {
    let sb = Sandbox::new();
    let nats = NatsServer::start();
    let url = nats.url();
    let env = |node: &'static str| {
        [
            ("NATS_URL", url.clone()),
            ("NODE_NAME", node.to_owned()),
            ("NATS_ACK_WAIT", "3s".to_owned()),
            ("THUMBGEN_TEST_CRASH_ON", "poison".to_owned()),
            ("LOG_LEVEL", "info".to_owned()),
        ]
    };
    let spawn = |node: &'static str| {
        let env = env(node);
        let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        sb.spawn(&pairs)
    };
    let names = ["node-a", "node-b", "node-c"];
    let mut nodes: Vec<_> = names.iter().map(|n| spawn(n)).collect();
    nodes.iter().for_each(|d| d.wait_ready());
    let (poison, _) = common::synth::product_photo(common::synth::Shape::Box, [190, 30, 40], 400, 300, 3);
    let (good, _) = common::synth::product_photo(common::synth::Shape::Ball, [30, 80, 170], 400, 300, 7);
    sb.drop_file("produtos", "poison.jpg", &common::synth::jpeg(&poison));
    sb.drop_file("produtos", "good.jpg", &common::synth::jpeg(&good));

    // A supervisor's job: bring back every node that died.
    let mut crashes = 0;
    let rejected = sb.rejected().join("poison.jpg");
    let settled = wait_until(Duration::from_secs(120), || {
        for (i, d) in nodes.iter_mut().enumerate() {
            if d.exited() {
                crashes += 1;
                *d = spawn(names[i]);
            }
        }
        rejected.exists() && sb.output().join("good.jpg").exists()
    });
    let logs: String = nodes.iter().map(|d| d.log_text()).collect::<Vec<_>>().join("\n-----\n");
    assert!(settled, "the poison photo was not rejected ({crashes} crashes)\n{logs}");
    let note = std::fs::read_to_string(sb.rejected().join("poison.jpg.error.txt")).unwrap();
    assert!(note.contains("repeated_crash") && note.contains("3 thumbgen workers"), "{note}");
    std::thread::sleep(Duration::from_secs(2));
    for (i, d) in nodes.iter_mut().enumerate() {
        if d.exited() {
            crashes += 1;
            *d = spawn(names[i]);
        }
    }
    assert_eq!(crashes, 3, "three runs died, the fourth delivery was rejected without running\n{logs}");
    assert!(!sb.products().join("poison.jpg").exists());

    let status = sb.run(&["cluster", "status", "--json"], &[("NATS_URL", &url)]);
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    let dead = status["dead_letters"].as_array().unwrap();
    assert_eq!(dead.len(), 1, "{status}");
    assert_eq!(dead[0]["name"], "poison.jpg");
    assert_eq!(dead[0]["crashed_runs"], 3);
    let metric = nodes[0].metric("thumbgen_inputs_rejected_total{reason=\"repeated_crash\"}")
        + nodes[1].metric("thumbgen_inputs_rejected_total{reason=\"repeated_crash\"}")
        + nodes[2].metric("thumbgen_inputs_rejected_total{reason=\"repeated_crash\"}");
    assert_eq!(metric, 1.0);
}
