//! The daemon (`thumbgen run`): HTTP first (a taken port fails the start at once, and liveness
//! answers while the model loads), then the engine, the workers and the watcher; then it waits
//! for signals: SIGHUP reloads the configuration ([`reload`]: the log level, and tenants added,
//! changed and removed while the others run on), SIGTERM stops. Stopping goes through the one
//! [`Shutdown`] every task holds (each catalog's a child of it, see [`served`]); jobs in flight get
//! `SHUTDOWN_TIMEOUT` to finish, and every task is joined before exit.

mod reload;
mod served;

use crate::app::Shared;
use crate::config::{Config, Sources};
use crate::console::Overview;
use crate::error::StartError;
use crate::health::{Health, Watched};
use crate::http::{router, Endpoints};
use crate::logging::Logging;
use crate::resources::Resources;
use crate::shutdown::Shutdown;
use crate::signals::{self, Signal};
use crate::status::Status;
use crate::sync::Roster;
use crate::systemd;
use crate::hooks;
use served::{Served, LINGER};
use std::sync::Arc;
use std::time::Duration;
use tracing::{error, info, warn};

/// A pipeline with waiting work and no finished job for this long is reported stuck.
const STUCK_AFTER: Duration = Duration::from_secs(600);

pub(crate) async fn run(config: Config, sources: Sources, logging: Logging) -> Result<(), StartError> {
    let mut signals = signals::listen()?;
    let shared = Shared::new(&config);
    let addr = config.http_socket_addr()?;
    let mut served = Served::open(&config, &shared, addr).await?;
    let config = &config;
    let shutdown = shared.shutdown.clone();
    let tenants = !config.tenants.is_empty();
    let first = &served.catalogs()[0].app;
    let engine_kind = first.engine_kind();

    let resources = Arc::new(Resources::default());
    let health = Arc::new(Health {
        status: shared.status.clone(),
        catalogs: served.watched.clone(),
        resources: resources.clone(),
        engine: engine_kind,
        metrics: shared.metrics.clone(),
        stuck_after: STUCK_AFTER.max(config.gradio_timeout.0 * 2),
    });
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
    // The console of the one catalog at `/`, or each tenant's under `/t/NAME/` with the
    // operator's overview at `/`.
    let overview = (tenants && config.console_enabled.0).then(|| Overview::new(config, addr, served.consoles.clone()));
    let console_routes = match &overview {
        Some(overview) => Some(overview.routes()),
        None => served.console.as_ref().map(|c| c.routes()),
    };
    // Notifications for every catalog in a bucket (a tenant's too, one a reload adds included),
    // matched by bucket and prefix.
    let hooks = (tenants || !served.notified.now().is_empty()).then(|| {
        let token = config.s3_webhook_token.as_ref().map(|t| t.expose().trim().to_owned());
        hooks::routes(served.notified.clone(), token)
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
    match (&overview, &served.console) {
        (Some(overview), _) => info!("{}", overview.describe(addr)),
        (None, Some(console)) => info!("{}", console.describe(addr)),
        (None, None) => {}
    }

    // One engine for every catalog, and turns shared by their workers by weight.
    // Loaded on the process's shutdown, not a catalog's: a remote engine's probe serves every
    // tenant, whichever a reload removes.
    let engine = crate::app::Engine::load(config, &shared.status, &shutdown)?;
    let (cluster, catalog) = (first.cluster.is_some(), first.catalog.location());
    shared.status.engine_ready();
    served.start(engine).await?;
    info!(
        version = env!("CARGO_PKG_VERSION"),
        engine = engine_kind.label(),
        jpeg = %crate::encode::jpeg::ENCODER.describe(),
        workers = config.worker_count(),
        node = %config.node(),
        cluster,
        base = %config.base_path.display(),
        catalog = %catalog,
        catalogs = served.catalogs().len(),
        "thumbgen started"
    );
    shutdown.spawn(tell_systemd(shared.status.clone(), served.watched.clone(), STUCK_AFTER, shutdown.clone()));

    while let Some(Signal::Reload) = signals.recv().await {
        reload::reload(&sources, config, &logging, &mut served).await;
    }

    let in_flight = shared.metrics.jobs_in_flight.get();
    info!(in_flight, "stopping: finishing jobs in flight (at most {:?})", config.shutdown_timeout.0);
    shared.status.set_shutting_down();
    systemd::notify("STOPPING=1\nSTATUS=finishing jobs in flight");
    shutdown.stop();
    let queues: Vec<_> = served.catalogs().iter().map(|c| c.app.queue.clone()).collect();
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

/// READY=1 once the first scan is done, then watchdog pings while the pipeline makes progress:
/// when work waits and no job has finished for `stuck_after`, pings stop and systemd restarts
/// the service (with `WatchdogSec` set).
async fn tell_systemd(status: Arc<Status>, catalogs: Arc<Roster<Watched>>, stuck_after: Duration, shutdown: Shutdown) {
    while !status.is_first_scan_done() {
        if !shutdown.sleep(Duration::from_millis(50)).await {
            return;
        }
    }
    systemd::notify(&format!("READY=1\nSTATUS=watching for files (pid {})", std::process::id()));
    let Some(interval) = systemd::watchdog_interval() else { return };
    loop {
        let stuck = !catalogs.now().iter().all(|c| c.queue.is_idle()) && status.since_progress() > stuck_after;
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
