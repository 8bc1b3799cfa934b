//! Workers end to end in process: a new background reaches every product, passing failures are
//! retried, and `process` gives up when told to.

use super::*;
use crate::queue::LocalQueue;
use crate::testkit::{background, photo, Base, FakeEngine};

struct Rig {
    base: Base,
    engine: Arc<FakeEngine>,
    queue: Arc<LocalQueue>,
    status: Arc<Status>,
    workers: Arc<Workers>,
    shutdown: Shutdown,
}

fn rig(engine: FakeEngine, retries: Retries) -> Rig {
    let base = Base::new();
    let engine = Arc::new(engine);
    let pipeline = Arc::new(base.pipeline(engine.clone()));
    let metrics = Arc::new(Metrics::new(&[crate::remove::EngineKind::Local], &[]));
    let queue = Arc::new(LocalQueue::new(100, metrics.catalog.queue_depth(), metrics.jobs_in_flight.clone()));
    let status = Arc::new(Status::default());
    let shutdown = Shutdown::new();
    let workers = Workers::new(pipeline, queue.clone(), status.clone(), metrics, retries, shutdown.clone(), Share { turns: Turns::new(2, &[1]), index: 0, tenant: None });
    workers.spawn(2);
    Rig { base, engine, queue, status, workers, shutdown }
}

impl Rig {
    async fn settle(&self) {
        let waited = tokio::time::timeout(Duration::from_secs(20), async {
            while !self.workers.all_done() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
        assert!(waited.is_ok(), "work did not finish");
    }

    async fn stop(self) {
        self.shutdown.stop();
        self.queue.close();
        assert!(self.shutdown.join(Duration::from_secs(5)).await, "every task ends");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_background_reaches_every_product_without_new_removals() {
    let r = rig(FakeEngine::default(), Retries::Forever);
    r.base.put("produtos", "p.png", &photo([200, 30, 30]));
    r.base.put("produtos", "q.png", &photo([30, 30, 200]));
    r.queue.push(Job::new(crate::job::InputKind::Product, "p.png"));
    r.queue.push(Job::new(crate::job::InputKind::Product, "q.png"));
    r.settle().await;
    r.base.put("backgrounds", "b.png", &background([90, 90, 90]));
    r.queue.push(Job::new(crate::job::InputKind::Background, "b.png"));
    r.settle().await;
    assert_eq!(r.base.outputs(), ["p.jpg", "p__b.jpg", "q.jpg", "q__b.jpg"]);
    assert_eq!(r.engine.calls(), 2);
    assert_eq!(r.workers.tally.inputs(), 3);
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_passing_engine_failure_is_retried_as_soon_as_the_engine_is_back() {
    let r = rig(FakeEngine { fail_first: 1, ..FakeEngine::default() }, Retries::Forever);
    r.base.put("produtos", "p.png", &photo([200, 30, 30]));
    r.queue.push(Job::new(crate::job::InputKind::Product, "p.png"));
    while r.workers.retry.waiting() == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(r.base.outputs().is_empty());
    let job = Job::new(crate::job::InputKind::Product, "p.png");
    assert_eq!(r.workers.retry_cause(&job), Some(Cause::Engine), "it is known to wait for the engine");
    let waiting = |cause: Cause| r.workers.metrics.waiting_total(cause);
    assert_eq!([waiting(Cause::Engine), waiting(Cause::Storage)], [1, 0], "the gauge shows it by cause");
    r.status.retry_waiting_now(); // what the remote engine's probe does when it answers again
    r.settle().await;
    assert_eq!(r.base.outputs(), ["p.jpg"]);
    assert_eq!(r.workers.retry_cause(&job), None);
    assert_eq!(waiting(Cause::Engine), 0, "no longer waiting");
    assert_eq!(r.engine.calls(), 2);
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn process_gives_up_after_its_attempts_and_counts_the_file_as_left() {
    let r = rig(FakeEngine { fail_first: usize::MAX, ..FakeEngine::default() }, Retries::UpTo(2));
    r.base.put("produtos", "p.png", &photo([200, 30, 30]));
    r.queue.push(Job::new(crate::job::InputKind::Product, "p.png"));
    while r.workers.retry.waiting() == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    r.status.retry_waiting_now();
    r.settle().await;
    assert_eq!(r.workers.tally.failed.load(Ordering::Relaxed), 1);
    assert!(r.base.folders.products.join("p.png").exists(), "the file stays for the next run");
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_cancels_waiting_retries_and_joins_every_worker() {
    let r = rig(FakeEngine { fail_first: usize::MAX, ..FakeEngine::default() }, Retries::Forever);
    r.base.put("produtos", "p.png", &photo([200, 30, 30]));
    r.queue.push(Job::new(crate::job::InputKind::Product, "p.png"));
    while r.workers.retry.waiting() == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let workers = r.workers.clone();
    r.stop().await;
    assert_eq!(workers.retry.waiting(), 0);
}
