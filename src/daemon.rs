//! The daemon (`thumbgen run`): HTTP first (a taken port fails the start at once, and liveness
//! answers while the model loads), then the engine, the workers and the watcher; then it waits
//! for signals. Stopping goes through the one [`Shutdown`] every task holds; jobs in flight get
//! `SHUTDOWN_TIMEOUT` to finish, and every task is joined before exit.

use crate::app::App;
use crate::config::{Config, NodeRole, Sources};
use crate::console::{Console, Deps};
use crate::error::StartError;
use crate::health::Health;
use crate::http::{router, Endpoints};
use crate::logging::Logging;
use crate::queue::WorkQueue;
use crate::resources::Resources;
use crate::shutdown::Shutdown;
use crate::signals::{self, Signal};
use crate::status::Status;
use crate::systemd;
use crate::hooks;
use crate::listing::{Discovered, Lister, ListingSettings};
use crate::watch::{Watch, WatchSettings};
use crate::worker::Retries;
use std::sync::Arc;
use std::time::Duration;
use tracing::{error, info, warn};

/// A pipeline with waiting work and no finished job for this long is reported stuck.
const STUCK_AFTER: Duration = Duration::from_secs(600);
/// A bucket's input folders are listed at most this far apart while nothing arrives: an idle hour
/// costs about 2 × 60 tail listings plus the sweeps (see [`crate::listing`]).
const LIST_IDLE_INTERVAL: Duration = Duration::from_secs(60);
/// Tasks other than jobs in flight get this long to end after the jobs' own time limit.
const LINGER: Duration = Duration::from_secs(2);

pub(crate) async fn run(config: Config, sources: Sources, logging: Logging) -> Result<(), StartError> {
    let mut signals = signals::listen()?;
    let app = App::new(config).await?;
    let config = &app.config;
    let shutdown = app.shutdown.clone();

    let resources = Arc::new(Resources::default());
    let health = Arc::new(Health {
        status: app.status.clone(),
        folders: app.folders.clone(),
        bucket: app.bucket.as_ref().map(|b| b.url()),
        queue: app.queue.clone(),
        resources: resources.clone(),
        engine: app.engine_kind(),
        waiting: app.metrics.inputs_waiting.clone(),
        stuck_after: STUCK_AFTER.max(config.gradio_timeout.0 * 2),
    });
    let addr = config.http_socket_addr()?;
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        StartError::new(format!("cannot listen on {addr}"))
            .because(e)
            .advice("Set HTTP_ADDR (or PORT) to a free address, e.g. PORT=8502")
    })?;
    let endpoints = Endpoints {
        health: config.health_check_enabled.0,
        metrics: config.metrics_enabled.0,
        log_requests: config.log_requests.0,
    };
    let console = config.console_enabled.0.then(|| {
        let deps = Deps {
            catalog: app.browse.clone(),
            state: app.folders.state.clone(),
            queue_arrivals: app.bucket.is_some(),
            status: app.status.clone(),
            metrics: app.metrics.clone(),
            queue: app.queue.clone(),
            engine: app.engine_kind(),
            shutdown: shutdown.clone(),
        };
        Console::new(config, addr, deps)
    });
    // With a bucket, what the lister and the webhook queued is shared, so each version is queued once.
    let discovered =
        app.bucket.as_ref().map(|b| (b.clone(), Discovered::new(app.queue.clone(), app.metrics.clone(), b.metrics().clone())));
    let hooks = discovered.as_ref().map(|(bucket, discovered)| {
        let token = config.s3_webhook_token.as_ref().map(|t| t.expose().trim().to_owned());
        hooks::routes(bucket.clone(), discovered.clone(), token)
    });
    let routes = router(health, app.metrics.clone(), endpoints, console.as_ref().map(|c| c.routes()), hooks);
    let stopped = shutdown.stopped();
    shutdown.spawn(async move {
        if let Err(e) = axum::serve(listener, routes).with_graceful_shutdown(stopped).await {
            error!("HTTP server failed: {e}");
        }
    });
    shutdown.spawn(resources.sample(shutdown.clone()));
    info!(%addr, "serving /health, /health/live, /health/ready and /metrics");
    if let Some(console) = &console {
        info!("{}", console.describe(addr));
    }

    let started = app.start_pipeline(Retries::Forever).await?;
    started.workers.spawn(config.worker_count());
    if let Some(console) = &console {
        console.attach(started.journal.clone(), started.workers.clone());
    }
    if config.node_role == NodeRole::All {
        match discovered {
            Some((bucket, discovered)) => {
                let lister = Lister::new(
                    bucket,
                    app.cluster.clone(),
                    discovered,
                    app.queue.clone(),
                    app.status.clone(),
                    ListingSettings {
                        min: config.poll_interval.0.min(Duration::from_secs(1)),
                        max: LIST_IDLE_INTERVAL,
                        sweep: config.rescan_interval.0,
                    },
                );
                shutdown.spawn(lister.run(shutdown.clone()));
            }
            None => {
                let watch = Watch::new(
                    app.folders.clone(),
                    app.queue.clone(),
                    app.metrics.clone(),
                    app.status.clone(),
                    WatchSettings {
                        mode: config.watch_mode,
                        poll_interval: config.poll_interval.0,
                        rescan_interval: config.rescan_interval.0,
                    },
                );
                shutdown.spawn(watch.run(shutdown.clone()));
            }
        }
    } else {
        // A worker node finds nothing itself: the nodes with role `all` do.
        app.status.set_watch_mode("none (NODE_ROLE=worker)");
        app.status.first_scan_done();
    }
    info!(
        version = env!("CARGO_PKG_VERSION"),
        engine = app.engine_kind().label(),
        jpeg = %crate::encode::jpeg::ENCODER.describe(),
        workers = config.worker_count(),
        node = %config.node(),
        cluster = app.cluster.is_some(),
        base = %config.base_path.display(),
        catalog = %app.catalog.location(),
        "thumbgen started"
    );
    shutdown.spawn(tell_systemd(app.status.clone(), app.queue.clone(), STUCK_AFTER, shutdown.clone()));

    while let Some(Signal::Reload) = signals.recv().await {
        reload(&sources, config, &logging, &app);
    }

    let in_flight = app.metrics.jobs_in_flight.get();
    info!(in_flight, "stopping: finishing jobs in flight (at most {:?})", config.shutdown_timeout.0);
    app.status.set_shutting_down();
    systemd::notify("STOPPING=1\nSTATUS=finishing jobs in flight");
    shutdown.stop();
    app.queue.close();
    tokio::select! {
        joined = shutdown.join(config.shutdown_timeout.0 + LINGER) => {
            if !joined {
                warn!("jobs still running at exit are redone (here on the next start, or by another node); no partial output is left");
            }
        }
        _ = signals.recv() => warn!("second stop signal: exiting without waiting"),
    }
    app.queue.hand_back().await;
    info!("thumbgen stopped");
    Ok(())
}

/// READY=1 once the first scan is done, then watchdog pings while the pipeline makes progress:
/// when work waits and no job has finished for `stuck_after`, pings stop and systemd restarts
/// the service (with `WatchdogSec` set).
async fn tell_systemd(status: Arc<Status>, queue: Arc<dyn WorkQueue>, stuck_after: Duration, shutdown: Shutdown) {
    while !status.is_first_scan_done() {
        if !shutdown.sleep(Duration::from_millis(50)).await {
            return;
        }
    }
    systemd::notify(&format!("READY=1\nSTATUS=watching for files (pid {})", std::process::id()));
    let Some(interval) = systemd::watchdog_interval() else { return };
    loop {
        let stuck = !queue.is_idle() && status.since_progress() > stuck_after;
        if stuck {
            warn!(
                "pipeline stuck: no job finished for {} s; withholding the watchdog ping",
                status.since_progress().as_secs()
            );
        } else {
            systemd::notify("WATCHDOG=1");
        }
        if !shutdown.sleep(interval).await {
            return;
        }
    }
}

/// SIGHUP: read the configuration again. The log level changes at once; everything else needs a
/// restart, and the log says which keys changed.
fn reload(sources: &Sources, running: &Config, logging: &Logging, app: &App) {
    match Config::load(sources) {
        Err(e) => error!("configuration reload failed, keeping the running settings: {e}"),
        Ok(new) => {
            logging.set_level(new.log_level);
            let changed = changed_keys(running, &new);
            if changed.is_empty() {
                info!("configuration reloaded");
            } else {
                warn!(keys = %changed.join(", "), "configuration reloaded; these changes take effect after a restart");
            }
            app.status.request_rescan();
        }
    }
}

/// Top-level keys (other than the log level) whose values differ.
fn changed_keys(old: &Config, new: &Config) -> Vec<String> {
    let as_table = |c: &Config| toml::Value::try_from(c).ok().and_then(|v| v.as_table().cloned()).unwrap_or_default();
    let (old, new) = (as_table(old), as_table(new));
    new.iter()
        .filter(|(key, value)| key.as_str() != "log_level" && old.get(*key) != Some(value))
        .map(|(key, _)| key.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reload_names_the_keys_that_need_a_restart_but_not_the_log_level() {
        let old = Config::default();
        let new = Config {
            log_level: crate::config::LogLevel::Debug,
            workers: 7,
            delete_orphans: crate::config::Flag(true),
            ..Config::default()
        };
        let mut changed = changed_keys(&old, &new);
        changed.sort();
        assert_eq!(changed, ["delete_orphans", "workers"]);
        assert!(changed_keys(&old, &old.clone()).is_empty());
    }
}
