//! What the cluster is doing: the figures the metrics show on every node, and
//! `thumbgen cluster status` — the nodes seen recently, jobs pending and in flight,
//! redeliveries and dead letters.

use super::broker::{Broker, Handles};
use super::names::key;
use super::nodes::{Heartbeat, Nodes};
use super::BrokerError;
use crate::config::Config;
use crate::error::StartError;
use crate::job::{InputKind, Job};
use crate::metrics::ClusterMetrics;
use async_nats::jetstream::kv::Operation;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use std::time::{Duration, SystemTime};

/// A job rejected because the runs that took it kept dying.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct DeadLetter {
    pub kind: InputKind,
    pub name: String,
    pub crashed_runs: u32,
    pub node: String,
    pub at_ms: u64,
}

impl DeadLetter {
    /// The record of `job`, rejected by `node` after `crashed_runs` runs of it died.
    pub(super) fn new(job: &Job, crashed_runs: u32, node: &str) -> DeadLetter {
        let at_ms = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
        DeadLetter { kind: job.kind, name: job.name.clone(), crashed_runs, node: node.to_owned(), at_ms }
    }
}

/// Jobs waiting and being run, over both consumers.
async fn job_counts(handles: &Handles) -> Result<(u64, u64, u64), BrokerError> {
    let (mut pending, mut in_flight, mut redelivered) = (0, 0, 0);
    for kind in InputKind::ALL {
        let info = handles
            .consumer(kind)
            .get_info()
            .await
            .map_err(|e| BrokerError::new("cannot read the job consumers", e))?;
        pending += info.num_pending;
        in_flight += info.num_ack_pending as u64;
        redelivered += info.num_redelivered as u64;
    }
    Ok((pending, in_flight, redelivered))
}

/// Refreshes the cluster gauges of this node's metrics.
pub(super) async fn sample(handles: &Handles, nodes: &Nodes, metrics: &ClusterMetrics) {
    if let Ok((pending, in_flight, _)) = job_counts(handles).await {
        metrics.jobs_pending.set(pending as i64);
        metrics.jobs_in_flight.set(in_flight as i64);
    }
    metrics.nodes.set(nodes.recent().len() as i64);
}

/// Everything `thumbgen cluster status` shows.
#[derive(Debug, Serialize)]
struct Overview {
    servers: String,
    nodes: Vec<NodeLine>,
    jobs_pending: u64,
    jobs_in_flight: u64,
    jobs_redelivered_now: u64,
    dead_letters: Vec<DeadLetter>,
}

#[derive(Debug, Serialize)]
struct NodeLine {
    #[serde(flatten)]
    beat: Heartbeat,
    seconds_since_heartbeat: f64,
}

/// `thumbgen cluster status`: prints the overview (as JSON with `json`); with tenants, each
/// tenant's (its own stream and buckets), by name.
pub(crate) async fn report(config: &Config, json: bool) -> Result<(), StartError> {
    if config.tenants.is_empty() {
        let overview = overview(config).await?;
        match json {
            true => println!("{}", serde_json::to_string_pretty(&overview).expect("the overview serialises")),
            false => print!("{}", render(&overview)),
        }
        return Ok(());
    }
    let mut all = serde_json::Map::new();
    for tenant in &config.tenants {
        let overview = overview(&config.for_tenant(tenant)).await?;
        match json {
            true => {
                all.insert(tenant.name.clone(), serde_json::to_value(&overview).expect("the overview serialises"));
            }
            false => print!("tenant {}: {}", tenant.name, render(&overview)),
        }
    }
    if json {
        let all = serde_json::json!({ "tenants": all });
        println!("{}", serde_json::to_string_pretty(&all).expect("the overview serialises"));
    }
    Ok(())
}

/// One catalog's overview, read from the broker.
async fn overview(config: &Config) -> Result<Overview, StartError> {
    let servers = config.nats_servers().ok_or_else(|| {
        StartError::new("this is not a cluster: NATS_URL is not set")
            .advice("Set NATS_URL to the cluster's NATS servers")
    })?;
    let broker = Broker::connect(config, servers.clone(), "status").await?;
    let unreachable = |e: BrokerError| {
        StartError::new(format!("cannot read the cluster's state from NATS at {}", servers.join(",")))
            .because(e)
            .advice("Check that the broker runs and NATS_URL points at it")
    };
    let handles = tokio::time::timeout(Duration::from_secs(10), async {
        while !broker.connected() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .map_err(|_| unreachable(BrokerError::unavailable("no connection within 10 s")))
    .map(|_| broker.handles());
    let handles = match handles? {
        Some(handles) => handles,
        None => {
            broker.provision().await.map_err(unreachable)?;
            broker.handles().ok_or_else(|| unreachable(BrokerError::unavailable("not provisioned")))?
        }
    };
    let (jobs_pending, jobs_in_flight, jobs_redelivered_now) = job_counts(&handles).await.map_err(unreachable)?;
    let now_ms = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
    let mut nodes = Vec::new();
    let mut beats =
        handles.nodes.watch_with_history(">").await.map_err(|e| unreachable(BrokerError::new("watch", e)))?;
    while let Ok(Some(Ok(entry))) = tokio::time::timeout(Duration::from_millis(500), beats.next()).await {
        if let Ok(beat) = serde_json::from_slice::<Heartbeat>(&entry.value) {
            let age = now_ms.saturating_sub(beat.at_ms) as f64 / 1000.0;
            // Nodes gone for more than a day are history, not cluster members.
            if entry.operation == Operation::Put && age < 86_400.0 {
                nodes.push(NodeLine { beat, seconds_since_heartbeat: age });
            }
        }
        if entry.delta == 0 {
            break;
        }
    }
    nodes.sort_by(|a, b| a.beat.node.cmp(&b.beat.node));
    let mut dead_letters = Vec::new();
    if let Ok(mut keys) = handles.journal.keys().await {
        while let Some(Ok(k)) = keys.next().await {
            if k.starts_with("dead.") {
                if let Ok(Some(value)) = handles.journal.get(k).await {
                    dead_letters.extend(serde_json::from_slice::<DeadLetter>(&value).ok());
                }
            }
        }
    }
    Ok(Overview { servers: servers.join(","), nodes, jobs_pending, jobs_in_flight, jobs_redelivered_now, dead_letters })
}

fn render(o: &Overview) -> String {
    let mut out = format!("cluster at {}: {} node(s) seen recently\n", o.servers, o.nodes.len());
    out.push_str(&format!(
        "{:<24} {:<7} {:>10} {:>12} {:>16}\n",
        "NODE", "ROLE", "JOBS DONE", "REDELIVERED", "LAST HEARTBEAT"
    ));
    for n in &o.nodes {
        let role =
            serde_json::to_value(n.beat.role).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
        out.push_str(&format!(
            "{:<24} {:<7} {:>10} {:>12} {:>14.1} s\n",
            n.beat.node, role, n.beat.jobs_done, n.beat.redeliveries, n.seconds_since_heartbeat
        ));
    }
    out.push_str(&format!(
        "jobs: {} pending, {} in flight, {} being redelivered\n",
        o.jobs_pending, o.jobs_in_flight, o.jobs_redelivered_now
    ));
    out.push_str(&format!("dead letters: {}\n", o.dead_letters.len()));
    for d in &o.dead_letters {
        out.push_str(&format!(
            "  {}/{}: rejected after {} crashed runs (by {})\n",
            d.kind.label(),
            d.name,
            d.crashed_runs,
            d.node
        ));
    }
    out
}

/// Records a dead letter for `job`.
pub(super) async fn record_dead_letter(handles: &Handles, letter: &DeadLetter) {
    let value = serde_json::to_vec(letter).expect("a dead letter serialises");
    let _ = handles.journal.put(key::dead(letter.kind, &letter.name), value.into()).await;
}
