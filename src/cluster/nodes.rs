//! Nodes: each node's heartbeat in the nodes bucket, and which nodes are alive.
//!
//! A node is alive while its heartbeat keeps changing, judged by this node's own clock (so clocks
//! that disagree between machines do not matter). A lease held by an instance that is not alive
//! — killed, or restarted under the same name — may be taken over.

use super::names;
use crate::config::NodeRole;
use crate::sync::Mutex;
use async_nats::jetstream::kv::{self, Operation};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

/// How often a node beats.
pub(super) const BEAT: Duration = Duration::from_secs(2);
/// A heartbeat unchanged this long means its node is gone.
const STALE: Duration = Duration::from_secs(10);

/// This running process: its node name and an id of this start of it.
#[derive(Clone, Debug)]
pub(super) struct Me {
    pub node: String,
    pub instance: String,
    pub role: NodeRole,
}

/// What a node publishes about itself.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct Heartbeat {
    pub node: String,
    pub instance: String,
    pub role: NodeRole,
    pub version: String,
    pub jobs_done: u64,
    pub redeliveries: u64,
    /// Milliseconds since the epoch, by the node's clock (shown, never compared across nodes).
    pub at_ms: u64,
}

struct Seen {
    beat: Heartbeat,
    changed: Instant,
}

pub(super) struct Nodes {
    pub me: Me,
    pub jobs_done: AtomicU64,
    pub redeliveries: AtomicU64,
    seen: Mutex<HashMap<String, Seen>>,
    watching_since: Mutex<Option<Instant>>,
}

impl Nodes {
    pub(super) fn new(me: Me) -> Nodes {
        Nodes {
            me,
            jobs_done: AtomicU64::new(0),
            redeliveries: AtomicU64::new(0),
            seen: Mutex::new(HashMap::new()),
            watching_since: Mutex::new(None),
        }
    }

    /// Whether `instance` of `node` is running.
    pub(super) fn alive(&self, node: &str, instance: &str) -> bool {
        if instance == self.me.instance {
            return true;
        }
        match self.seen.lock().get(node) {
            Some(seen) => seen.beat.instance == instance && seen.changed.elapsed() < STALE,
            // Not heard of: alive until this node has watched long enough to have heard of it.
            None => self.watching_since.lock().is_none_or(|since| since.elapsed() < STALE),
        }
    }

    /// The nodes heard from recently, with the time since their last heartbeat.
    pub(super) fn recent(&self) -> Vec<(Heartbeat, Duration)> {
        let mut nodes: Vec<(Heartbeat, Duration)> = self
            .seen
            .lock()
            .values()
            .filter(|s| s.changed.elapsed() < STALE * 3)
            .map(|s| (s.beat.clone(), s.changed.elapsed()))
            .collect();
        nodes.sort_by(|a, b| a.0.node.cmp(&b.0.node));
        nodes
    }

    /// Publishes this node's heartbeat.
    pub(super) async fn beat(&self, bucket: &kv::Store) -> Result<(), kv::PutError> {
        let beat = Heartbeat {
            node: self.me.node.clone(),
            instance: self.me.instance.clone(),
            role: self.me.role,
            version: env!("CARGO_PKG_VERSION").into(),
            jobs_done: self.jobs_done.load(Ordering::Relaxed),
            redeliveries: self.redeliveries.load(Ordering::Relaxed),
            at_ms: SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64),
        };
        let value = serde_json::to_vec(&beat).expect("a heartbeat serialises");
        bucket.put(names::encode(&self.me.node), value.into()).await.map(|_| ())
    }

    /// Takes `beat` as just heard, as the watch does.
    #[cfg(test)]
    pub(super) fn hear(&self, beat: Heartbeat) {
        self.seen.lock().insert(beat.node.clone(), Seen { beat, changed: Instant::now() });
    }

    /// Follows every node's heartbeat until the watch ends (the broker went away).
    pub(super) async fn watch(&self, bucket: &kv::Store) {
        let Ok(mut entries) = bucket.watch_with_history(">").await else { return };
        self.watching_since.lock().get_or_insert_with(Instant::now);
        while let Some(Ok(entry)) = entries.next().await {
            if entry.operation != Operation::Put {
                continue;
            }
            if let Ok(beat) = serde_json::from_slice::<Heartbeat>(&entry.value) {
                self.seen.lock().insert(beat.node.clone(), Seen { beat, changed: Instant::now() });
            }
        }
    }
}

/// A fresh id for this start of the process.
pub(super) fn new_instance() -> String {
    let nanos = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    blake3::hash(format!("{nanos}-{}", std::process::id()).as_bytes()).to_hex()[..16].to_owned()
}
