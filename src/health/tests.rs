use super::*;
use crate::dependency::{Condition, Dependency, Report};
use crate::queue::LocalQueue;
use crate::testkit::Base;

struct Broker(bool);

impl Dependency for Broker {
    fn report(&self) -> Report {
        let condition = if self.0 { Condition::Ok } else { Condition::Failing };
        Report { name: "broker", condition, message: String::new(), details: json!({}), ready: self.0 }
    }
}

fn health(base: &Base, status: &Arc<Status>) -> Health {
    let gauge = || prometheus::IntGauge::new("g", "g").unwrap();
    Health {
        status: status.clone(),
        catalogs: Arc::new(Roster::new(vec![Watched {
            tenant: None,
            folders: base.folders.clone(),
            bucket: None,
            queue: Arc::new(LocalQueue::new(8, gauge(), gauge())),
        }])),
        resources: Arc::default(),
        engine: EngineKind::Local,
        metrics: Arc::new(Metrics::new(&[EngineKind::Local], &[])),
        stuck_after: Duration::from_secs(600),
    }
}

#[test]
fn inputs_waiting_for_the_engine_make_the_application_check_a_warning_that_says_so() {
    let base = Base::new();
    let status = Arc::new(Status::default());
    status.engine_ready();
    status.first_scan_done();
    let health = health(&base, &status);
    let application = || health.report().checks.application;
    assert_eq!(application().status, Level::Ok);
    assert_eq!(application().message, "idle, watching for files");
    health.metrics.catalog.waiting(Cause::StillBeingWritten).set(1);
    assert_eq!(application().status, Level::Ok, "a file still being copied in is normal");
    health.metrics.catalog.waiting(Cause::Engine).set(3);
    let check = application();
    assert_eq!(check.status, Level::Warning);
    assert!(
        check.message.contains("4 input(s) waiting") && check.message.contains("3 for the removal engine"),
        "{}",
        check.message
    );
    assert_eq!(check.details["inputs_waiting"]["engine"], 3);
    assert_eq!(health.report().status, "degraded");
}

#[test]
fn readiness_waits_for_the_engine_the_first_scan_and_every_dependency_and_ends_when_stopping() {
    let base = Base::new();
    let status = Arc::new(Status::default());
    let health = health(&base, &status);
    let (ready, body) = health.ready();
    assert!(!ready && body["status"] == "not_ready" && body["engine"] == false, "{body}");
    status.engine_ready();
    assert!(!health.ready().0, "not before the first scan");
    status.first_scan_done();
    assert!(health.ready().0, "{}", health.ready().1);
    status.add_dependency(Arc::new(Broker(false)));
    let (ready, body) = health.ready();
    assert!(!ready && body["broker"] == false, "an unreachable broker makes the node unready: {body}");
    status.set_shutting_down();
    assert!(!health.ready().0);
}
