//! Settling and event handling on real temporary folders, in milliseconds: no daemon, no sleeps
//! beyond the filesystem's own clock.

use super::events::Handler;
use super::*;
use crate::queue::LocalQueue;
use crate::testkit::{backdate, Base};
use notify::event::{AccessKind, AccessMode, DataChange, EventKind, ModifyKind};

struct Rig {
    base: Base,
    queue: Arc<LocalQueue>,
    watch: Watch,
}

fn rig() -> Rig {
    let base = Base::new();
    let metrics = Arc::new(Metrics::new(&[crate::remove::EngineKind::Local], &[]));
    let queue = Arc::new(LocalQueue::new(100, metrics.catalog.queue_depth(), metrics.jobs_in_flight.clone()));
    let settings = WatchSettings {
        mode: WatchMode::Poll,
        poll_interval: Duration::from_secs(1),
        rescan_interval: Duration::from_secs(3600),
    };
    let status = Arc::new(Status::default());
    let watch = Watch::new(base.folders.clone(), queue.clone(), metrics, status.clone(), settings, status.first_scan(true));
    Rig { base, queue, watch }
}

impl Rig {
    /// The jobs queued so far, taking them out.
    async fn drain(&self) -> Vec<Job> {
        let mut jobs = Vec::new();
        while self.queue.len() > 0 {
            let job = self.queue.pop().await.unwrap();
            self.queue.done(&job);
            jobs.push(job);
        }
        jobs
    }

    fn handler(&self) -> Handler {
        Handler {
            folders: self.base.folders.clone(),
            queue: self.queue.clone(),
            metrics: self.watch.metrics.clone(),
            status: self.watch.status.clone(),
            notes: self.watch.notes.clone(),
        }
    }
}

fn product(name: &str) -> Job {
    Job::new(InputKind::Product, name)
}

#[tokio::test]
async fn a_file_that_holds_still_is_taken_by_the_first_scan_backgrounds_first() {
    let mut r = rig();
    r.base.put("produtos", "p.jpg", b"photo");
    r.base.put("backgrounds", "b.jpg", b"background");
    r.watch.scan_all(true);
    assert_eq!(r.drain().await, [Job::new(InputKind::Background, "b.jpg"), product("p.jpg")]);
}

#[tokio::test]
async fn a_fresh_file_waits_one_look_and_is_taken_once_unchanged() {
    let mut r = rig();
    std::fs::write(r.base.folders.products.join("new.jpg"), b"just copied").unwrap();
    r.watch.scan_all(true);
    assert!(r.drain().await.is_empty(), "modified moments ago: not yet");
    r.watch.check_unsettled();
    assert_eq!(r.drain().await, [product("new.jpg")], "the same at the next look: complete");
}

#[tokio::test]
async fn a_file_that_keeps_growing_is_not_taken() {
    let mut r = rig();
    let path = r.base.folders.products.join("growing.jpg");
    std::fs::write(&path, b"part one").unwrap();
    r.watch.scan_all(true);
    std::fs::write(&path, b"part one, part two").unwrap();
    r.watch.check_unsettled();
    assert!(r.drain().await.is_empty());
    assert!(r.watch.unsettled.contains_key(&product("growing.jpg")));
}

#[tokio::test]
async fn a_scan_without_force_queues_only_what_changed_or_left() {
    let mut r = rig();
    r.base.put("produtos", "a.jpg", b"a");
    r.base.put("produtos", "b.jpg", b"b");
    r.watch.scan_all(true);
    r.drain().await;
    r.watch.scan_all(false);
    assert!(r.drain().await.is_empty(), "nothing changed");
    r.base.put("produtos", "b.jpg", b"b, edited");
    std::fs::remove_file(r.base.folders.products.join("a.jpg")).unwrap();
    r.watch.scan_all(false);
    let mut jobs = r.drain().await;
    jobs.sort();
    assert_eq!(jobs, [product("a.jpg"), product("b.jpg")], "the edit, and the deletion for its job to forget");
}

#[tokio::test]
async fn a_file_written_and_not_closed_is_left_to_its_close_event() {
    let mut r = rig();
    let path = r.base.folders.products.join("upload.jpg");
    std::fs::write(&path, b"first half").unwrap();
    backdate(&path);
    let handler = r.handler();
    handler.handle(Ok(
        notify::Event::new(EventKind::Modify(ModifyKind::Data(DataChange::Content))).add_path(path.clone())
    ));
    r.watch.scan_all(true);
    assert!(r.drain().await.is_empty(), "a scan leaves a file being written alone, however old");
    handler.handle(Ok(notify::Event::new(EventKind::Access(AccessKind::Close(AccessMode::Write))).add_path(path)));
    assert_eq!(r.drain().await, [product("upload.jpg")], "closing it queues it");
    assert!(r.watch.notes.writing().is_empty());
}

#[tokio::test]
async fn hidden_and_temporary_names_are_never_queued() {
    let r = rig();
    let handler = r.handler();
    for name in [".x.jpg", "y.jpg.part", "~z.jpg"] {
        let path = r.base.folders.products.join(name);
        std::fs::write(&path, b"x").unwrap();
        handler.handle(Ok(notify::Event::new(EventKind::Access(AccessKind::Close(AccessMode::Write))).add_path(path)));
    }
    assert!(r.drain().await.is_empty());
}

/// The watcher's file-system work never runs on the runtime's threads: on a runtime with a single
/// thread, a task standing for `/health/live` and the cluster heartbeats keeps ticking while a
/// large folder is scanned (with the scan on the runtime, it could not tick until the scan ended).
#[tokio::test(flavor = "current_thread")]
async fn the_runtime_keeps_answering_while_a_large_folder_is_scanned() {
    let Rig { base, queue: _queue, watch } = rig();
    for i in 0..20_000 {
        std::fs::write(base.folders.products.join(format!("p{i:05}.jpg")), b"x").unwrap();
    }
    let status = watch.status.clone();
    let ticks = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let ticker = {
        let ticks = ticks.clone();
        tokio::spawn(async move {
            loop {
                ticks.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
    };
    let shutdown = Shutdown::new();
    let watcher = tokio::spawn(watch.run(shutdown.clone()));
    tokio::task::yield_now().await;
    let before = ticks.load(Ordering::SeqCst);
    while !status.is_first_scan_done() {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let during = ticks.load(Ordering::SeqCst) - before;
    assert!(during >= 3, "the runtime stalled during the scan ({during} ticks)");
    shutdown.stop();
    watcher.await.unwrap();
    ticker.abort();
}
