//! The daemon (`thumbgen run`): HTTP first (a taken port fails the start at once, and liveness
//! answers while the model loads), then the engine, the workers and the watcher; then it waits
//! for signals. Stopping goes through the one [`Shutdown`] every task holds; jobs in flight get
//! `SHUTDOWN_TIMEOUT` to finish, and every task is joined before exit.

use crate::app::{App, Shared};
use crate::catalog::bucket::Bucket;
use crate::config::{Config, NodeRole, Sources};
use crate::console::{Console, Deps, Overview, TenantScope};
use crate::error::StartError;
use crate::health::{Health, Watched};
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
use crate::worker::{Retries, Share, Turns};
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
    let shared = Shared::new(&config);
    let apps = open_catalogs(&config, &shared).await?;
    let config = &config;
    let shutdown = shared.shutdown.clone();
    let first = &apps[0].1;
    let tenants = !config.tenants.is_empty();

    let resources = Arc::new(Resources::default());
    let catalogs = apps
        .iter()
        .map(|(_, app)| Watched {
            folders: app.folders.clone(),
            bucket: app.bucket.as_ref().map(|b| b.url()),
            queue: app.queue.clone(),
        })
        .collect();
    let health = Arc::new(Health {
        status: shared.status.clone(),
        catalogs,
        resources: resources.clone(),
        engine: first.engine_kind(),
        metrics: shared.metrics.clone(),
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
    // One console per catalog: at `/`, or per tenant under `/t/NAME/` with the operator's
    // overview at `/`.
    let consoles: Vec<Arc<Console>> = match config.console_enabled.0 {
        false => Vec::new(),
        true => apps
            .iter()
            .zip(config.tenants.iter().map(Some).chain(std::iter::repeat(None)))
            .map(|((_, app), tenant)| {
                let deps = Deps {
                    tenant: tenant.map(|t| TenantScope { name: t.name.clone(), token: t.secret().map(str::to_owned) }),
                    catalog: app.browse.clone(),
                    state: app.folders.state.clone(),
                    queue_arrivals: app.bucket.is_some(),
                    status: shared.status.clone(),
                    metrics: app.metrics.clone(),
                    queue: app.queue.clone(),
                    engine: app.engine_kind(),
                    shutdown: shutdown.clone(),
                };
                Console::new(&app.config, addr, deps)
            })
            .collect(),
    };
    let overview = (tenants && !consoles.is_empty()).then(|| Overview::new(config, addr, consoles.clone()));
    let console_routes = match &overview {
        Some(overview) => Some(consoles.iter().fold(overview.routes(), |routes, c| routes.merge(c.routes()))),
        None => consoles.first().map(|c| c.routes()),
    };
    // With a bucket, what the lister and the webhook queued is shared, so each version is queued once.
    let discovered: Vec<Option<(Arc<Bucket>, Arc<Discovered>)>> = apps
        .iter()
        .map(|(_, app)| {
            let bucket = app.bucket.as_ref()?;
            Some((bucket.clone(), Discovered::new(app.queue.clone(), app.metrics.clone(), bucket.metrics().clone())))
        })
        .collect();
    // Notifications for every catalog in a bucket (a tenant's too), matched by bucket and prefix.
    let notified: Vec<hooks::Notified> = discovered.iter().flatten().cloned().collect();
    let hooks = (!notified.is_empty()).then(|| {
        let token = config.s3_webhook_token.as_ref().map(|t| t.expose().trim().to_owned());
        hooks::routes(notified, token)
    });
    let routes = router(health, shared.metrics.clone(), endpoints, console_routes, hooks);
    let stopped = shutdown.stopped();
    shutdown.spawn(async move {
        if let Err(e) = axum::serve(listener, routes).with_graceful_shutdown(stopped).await {
            error!("HTTP server failed: {e}");
        }
    });
    shutdown.spawn(resources.sample(shutdown.clone()));
    info!(%addr, "serving /health, /health/live, /health/ready and /metrics");
    match &overview {
        Some(overview) => info!("{}", overview.describe(addr)),
        None => consoles.iter().for_each(|c| info!("{}", c.describe(addr))),
    }

    // One engine for every catalog, and turns shared by their workers by weight.
    let engine = first.load_engine().await?;
    shared.status.engine_ready();
    let weights: Vec<u32> = match tenants {
        true => config.tenants.iter().map(|t| t.weight).collect(),
        false => vec![1],
    };
    let turns = Turns::new(config.worker_count(), &weights);
    shared.status.expect_scans(apps.len());
    for (i, ((tenant, app), discovered)) in apps.iter().zip(discovered).enumerate() {
        let share = Share { turns: turns.clone(), index: i, tenant: tenant.clone() };
        let quota = config.tenants.get(i).and_then(|t| t.max_photos_per_day);
        let started = app.start_on(engine.clone(), share, Retries::Forever, quota).await?;
        started.workers.spawn(config.worker_count());
        if let Some(console) = consoles.get(i) {
            console.attach(started.journal.clone(), started.workers.clone());
        }
        let span = match tenant {
            Some(name) => tracing::info_span!("tenant", tenant = %name),
            None => tracing::Span::none(),
        };
        span.in_scope(|| find_inputs(app, discovered));
        // Without tenants the start-up line below names the one catalog.
        if let Some(name) = tenant {
            info!(tenant = %name, catalog = %app.catalog.location(), "serving tenant {name}");
        }
    }
    info!(
        version = env!("CARGO_PKG_VERSION"),
        engine = first.engine_kind().label(),
        jpeg = %crate::encode::jpeg::ENCODER.describe(),
        workers = config.worker_count(),
        node = %config.node(),
        cluster = first.cluster.is_some(),
        base = %config.base_path.display(),
        catalog = %first.catalog.location(),
        catalogs = apps.len(),
        "thumbgen started"
    );
    let queues: Vec<Arc<dyn WorkQueue>> = apps.iter().map(|(_, app)| app.queue.clone()).collect();
    shutdown.spawn(tell_systemd(shared.status.clone(), queues.clone(), STUCK_AFTER, shutdown.clone()));

    while let Some(Signal::Reload) = signals.recv().await {
        reload(&sources, config, &logging, &shared.status);
    }

    let in_flight = shared.metrics.jobs_in_flight.get();
    info!(in_flight, "stopping: finishing jobs in flight (at most {:?})", config.shutdown_timeout.0);
    shared.status.set_shutting_down();
    systemd::notify("STOPPING=1\nSTATUS=finishing jobs in flight");
    shutdown.stop();
    queues.iter().for_each(|q| q.close());
    tokio::select! {
        joined = shutdown.join(config.shutdown_timeout.0 + LINGER) => {
            if !joined {
                warn!("jobs still running at exit are redone (here on the next start, or by another node); no partial output is left");
            }
        }
        _ = signals.recv() => warn!("second stop signal: exiting without waiting"),
    }
    for queue in &queues {
        queue.hand_back().await;
    }
    info!("thumbgen stopped");
    Ok(())
}

/// The catalogs this process serves: the one of `BASE_PATH` (or `STORAGE_URL`), or one per
/// tenant (design §10), each named.
async fn open_catalogs(config: &Config, shared: &Shared) -> Result<Vec<(Option<String>, App)>, StartError> {
    if config.tenants.is_empty() {
        return Ok(vec![(None, App::with(config.clone(), shared, None).await?)]);
    }
    let mut apps = Vec::new();
    for tenant in &config.tenants {
        let app = App::with(config.for_tenant(tenant), shared, Some(&tenant.name))
            .await
            .map_err(|e| e.context(format!("tenant {}", tenant.name)))?;
        apps.push((Some(tenant.name.clone()), app));
    }
    Ok(apps)
}

/// Starts what finds a catalog's new inputs: the lister of a bucket, the watcher of folders, or
/// nothing on a worker node (the nodes with role `all` find them).
fn find_inputs(app: &App, discovered: Option<(Arc<Bucket>, Arc<Discovered>)>) {
    let (config, shutdown) = (&app.config, &app.shutdown);
    if config.node_role != NodeRole::All {
        app.status.set_watch_mode("none (NODE_ROLE=worker)");
        app.status.first_scan_done();
        return;
    }
    match discovered {
        Some((bucket, discovered)) => {
            let settings = ListingSettings {
                min: config.poll_interval.0.min(Duration::from_secs(1)),
                max: LIST_IDLE_INTERVAL,
                sweep: config.rescan_interval.0,
            };
            let lister =
                Lister::new(bucket, app.cluster.clone(), discovered, app.queue.clone(), app.status.clone(), settings);
            shutdown.spawn(tracing::Instrument::in_current_span(lister.run(shutdown.clone())));
        }
        None => {
            let settings = WatchSettings {
                mode: config.watch_mode,
                poll_interval: config.poll_interval.0,
                rescan_interval: config.rescan_interval.0,
            };
            let watch =
                Watch::new(app.folders.clone(), app.queue.clone(), app.metrics.clone(), app.status.clone(), settings);
            shutdown.spawn(tracing::Instrument::in_current_span(watch.run(shutdown.clone())));
        }
    }
}

/// READY=1 once the first scan is done, then watchdog pings while the pipeline makes progress:
/// when work waits and no job has finished for `stuck_after`, pings stop and systemd restarts
/// the service (with `WatchdogSec` set).
async fn tell_systemd(status: Arc<Status>, queues: Vec<Arc<dyn WorkQueue>>, stuck_after: Duration, shutdown: Shutdown) {
    while !status.is_first_scan_done() {
        if !shutdown.sleep(Duration::from_millis(50)).await {
            return;
        }
    }
    systemd::notify(&format!("READY=1\nSTATUS=watching for files (pid {})", std::process::id()));
    let Some(interval) = systemd::watchdog_interval() else { return };
    loop {
        let stuck = !queues.iter().all(|q| q.is_idle()) && status.since_progress() > stuck_after;
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
fn reload(sources: &Sources, running: &Config, logging: &Logging, status: &Status) {
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
            status.request_rescan();
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
