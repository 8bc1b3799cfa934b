//! Events: `GET /api/events`, server-sent events carrying the status bar's figures (`event:
//! status`, JSON) — at once, then whenever they change. A page refetches its products when the
//! figures' `changes` moves, and falls back to polling `/api/status` when the stream breaks.
//!
//! The figures are computed once a second for every open page together, and not at all while no
//! page is open. Streams end when the daemon stops, so they never hold up a shutdown; at most
//! [`MAX_STREAMS`] are open at once.

use super::problem::Problem;
use super::snapshot::Snapshot;
use super::{blocking, Console};
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, StreamExt};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// How often the figures are computed while a page listens.
const TICK: Duration = Duration::from_secs(1);
/// Comment lines that keep idle connections (and proxies) open.
const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// Open event streams at most (a page holds one).
const MAX_STREAMS: usize = 64;

/// The latest figures, shared by every open stream.
pub(super) struct Feed {
    latest: watch::Sender<Option<Arc<Snapshot>>>,
    open: Arc<AtomicUsize>,
}

impl Default for Feed {
    fn default() -> Feed {
        Feed { latest: watch::channel(None).0, open: Arc::new(AtomicUsize::new(0)) }
    }
}

/// Computes the figures every [`TICK`] while some page listens, until the daemon stops.
pub(super) async fn feed(console: Arc<Console>) {
    let shutdown = console.deps.shutdown.clone();
    while shutdown.sleep(TICK).await {
        if console.status_feed.latest.receiver_count() == 0 {
            continue;
        }
        let me = console.clone();
        let Ok(now) = tokio::task::spawn_blocking(move || me.snapshot()).await else { continue };
        console.status_feed.latest.send_if_modified(|latest| {
            let changed = latest.as_deref() != Some(&now);
            if changed {
                *latest = Some(Arc::new(now));
            }
            changed
        });
    }
}

/// Counts a stream as open until it is dropped.
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

pub(super) async fn stream(State(console): State<Arc<Console>>) -> Result<Response, Problem> {
    let feed = &console.status_feed;
    if feed.open.fetch_add(1, Ordering::SeqCst) >= MAX_STREAMS {
        feed.open.fetch_sub(1, Ordering::SeqCst);
        return Err(Problem::Unavailable("too many open event streams".into()));
    }
    let slot = Slot(feed.open.clone());
    let mut updates = feed.latest.subscribe();
    updates.mark_unchanged();
    let me = console.clone();
    let first = blocking(move || Ok(me.snapshot())).await?;
    let later = stream::unfold((updates, slot), |(mut updates, slot)| async move {
        loop {
            updates.changed().await.ok()?;
            let latest = updates.borrow_and_update().clone();
            if let Some(latest) = latest {
                return Some((event(&latest), (updates, slot)));
            }
        }
    });
    let events = stream::once(async move { event(&first) }).chain(later).take_until(console.deps.shutdown.stopped());
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)).into_response())
}

fn event(snapshot: &Snapshot) -> Result<Event, axum::Error> {
    Event::default().event("status").json_data(snapshot)
}
