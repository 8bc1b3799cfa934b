//! Served: the catalogs this daemon serves — the one of `BASE_PATH` (or `STORAGE_URL`), or one per
//! tenant (design §10) — each with its own shutdown, console, webhook entry and health entry.
//! They are opened before the HTTP server starts (a bad catalog fails the start), started once the
//! engine is loaded, and with tenants a reload adds, restarts and stops them one by one while the
//! others run on ([`super::reload`]).
//!
//! What the HTTP server, the health checks and the webhook read of them is a [`Roster`]: the
//! catalogs as they are now.

use crate::app::{App, Shared};
use crate::catalog::bucket::Bucket;
use crate::config::{Config, NodeRole, TenantConfig};
use crate::console::{Console, Deps, Mounted, TenantScope};
use crate::dependency::Dependency;
use crate::error::StartError;
use crate::health::Watched;
use crate::hooks::Notified;
use crate::listing::{Discovered, Lister, ListingSettings};
use crate::remove::RemovalEngine;
use crate::shutdown::Shutdown;
use crate::status::FirstScan;
use crate::sync::{Mutex, Roster};
use crate::watch::{Watch, WatchSettings};
use crate::worker::{Retries, Share, Turns};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tracing::{info, warn};

/// A bucket's input folders are listed at most this far apart while nothing arrives: an idle hour
/// costs about 2 × 60 tail listings plus the sweeps (see [`crate::listing`]).
const LIST_IDLE_INTERVAL: Duration = Duration::from_secs(60);
/// Tasks other than jobs in flight get this long to end after the jobs' own time limit.
pub(super) const LINGER: Duration = Duration::from_secs(2);

/// Every catalog served, and what the server's surfaces read of them.
pub(super) struct Served {
    /// The deployment's configuration as at start (a reload changes only the tenants).
    config: Config,
    shared: Shared,
    addr: SocketAddr,
    catalogs: Vec<Catalog>,
    /// The tenants' consoles, under `/t/NAME/` (empty without tenants).
    pub consoles: Arc<Roster<Mounted>>,
    /// The console of the only catalog, at `/` (without tenants).
    pub console: Option<Arc<Console>>,
    pub watched: Arc<Roster<Watched>>,
    pub notified: Arc<Roster<Notified>>,
    /// Set by [`Served::start`]: what a catalog added later starts on.
    engine: Option<(Arc<dyn RemovalEngine>, Arc<Turns>)>,
    /// Tenants stopped whose jobs outlived `SHUTDOWN_TIMEOUT`: not served again on their base
    /// until those jobs end (two pipelines on one catalog would fight over its journal).
    lingering: Mutex<Vec<(String, Shutdown)>>,
}

/// One catalog served.
pub(super) struct Catalog {
    /// The tenant's entry; `None` without tenants.
    pub tenant: Option<TenantConfig>,
    pub app: App,
    console: Option<Arc<Console>>,
    /// What the lister and the webhook queued, with a bucket.
    discovered: Option<Arc<Discovered>>,
    /// Its index among the turns' tenants, once started.
    turn: usize,
}

impl Served {
    /// Opens every catalog of `config` (folders created, bucket probed, broker joined).
    pub(super) async fn open(config: &Config, shared: &Shared, addr: SocketAddr) -> Result<Served, StartError> {
        let mut served = Served {
            config: config.clone(),
            shared: shared.clone(),
            addr,
            catalogs: Vec::new(),
            consoles: Arc::new(Roster::new(Vec::new())),
            console: None,
            watched: Arc::new(Roster::new(Vec::new())),
            notified: Arc::new(Roster::new(Vec::new())),
            engine: None,
            lingering: Mutex::new(Vec::new()),
        };
        if config.tenants.is_empty() {
            let catalog = served.open_one(None).await?;
            served.console = catalog.console.clone();
            served.catalogs.push(catalog);
        }
        for tenant in &config.tenants {
            let catalog = served.open_one(Some(tenant.clone())).await?;
            served.catalogs.push(catalog);
        }
        Ok(served)
    }

    pub(super) fn catalogs(&self) -> &[Catalog] {
        &self.catalogs
    }

    /// Starts every catalog's pipeline, workers and watcher (or lister) on the loaded `engine`.
    pub(super) async fn start(&mut self, engine: Arc<dyn RemovalEngine>) -> Result<(), StartError> {
        let weights: Vec<u32> = self.catalogs.iter().map(|c| c.tenant.as_ref().map_or(1, |t| t.weight)).collect();
        let turns = Turns::new(self.config.worker_count(), &weights);
        self.engine = Some((engine, turns));
        self.shared.status.expect_scans(self.catalogs.len());
        for i in 0..self.catalogs.len() {
            self.catalogs[i].turn = i;
            self.start_one(&self.catalogs[i], true).await?;
        }
        Ok(())
    }

    /// Opens a catalog: its folders or bucket, its queue, its console; entered into the rosters.
    async fn open_one(&self, tenant: Option<TenantConfig>) -> Result<Catalog, StartError> {
        let shared = Shared { shutdown: self.shared.shutdown.child(), ..self.shared.clone() };
        let (config, name) = match &tenant {
            Some(t) => (self.config.for_tenant(t), Some(t.name.as_str())),
            None => (self.config.clone(), None),
        };
        if let Some(name) = name {
            self.shared.metrics.add_tenant(name);
        }
        let app = App::with(config, &shared, name).await.map_err(|e| match name {
            Some(name) => e.context(format!("tenant {name}")),
            None => e,
        })?;
        let console = self.config.console_enabled.0.then(|| {
            let deps = Deps {
                tenant: tenant.as_ref().map(|t| TenantScope { name: t.name.clone(), token: t.secret().map(str::to_owned) }),
                catalog: app.browse.clone(),
                state: app.folders.state.clone(),
                queue_arrivals: app.bucket.is_some(),
                status: app.status.clone(),
                metrics: app.metrics.clone(),
                queue: app.queue.clone(),
                engine: app.engine_kind(),
                shutdown: app.shutdown.clone(),
            };
            Console::new(&app.config, self.addr, deps)
        });
        // With a bucket, what the lister and the webhook queued is shared, so each version is queued once.
        let discovered = app.bucket.as_ref().map(|bucket| {
            Discovered::new(app.queue.clone(), app.metrics.clone(), bucket.metrics().clone())
        });
        let name = tenant.as_ref().map(|t| t.name.clone());
        self.watched.change(|w| {
            w.push(Watched {
                tenant: name.clone(),
                folders: app.folders.clone(),
                bucket: app.bucket.as_ref().map(|b| b.url()),
                queue: app.queue.clone(),
            })
        });
        if let (Some(bucket), Some(discovered)) = (&app.bucket, &discovered) {
            self.notified.change(|n| n.push((bucket.clone(), discovered.clone())));
        }
        if let (Some(console), Some(_)) = (&console, &tenant) {
            self.consoles.change(|c| c.push(Mounted::new(console.clone())));
        }
        Ok(Catalog { tenant, app, console, discovered, turn: 0 })
    }

    /// Starts an opened catalog's pipeline, workers and watcher (or lister); readiness waits for
    /// its first scan when `at_start`.
    async fn start_one(&self, catalog: &Catalog, at_start: bool) -> Result<(), StartError> {
        let (engine, turns) = self.engine.as_ref().expect("started after the engine loaded");
        let (app, name) = (&catalog.app, catalog.tenant.as_ref().map(|t| t.name.clone()));
        let share = Share { turns: turns.clone(), index: catalog.turn, tenant: name.clone() };
        let quota = catalog.tenant.as_ref().and_then(|t| t.max_photos_per_day);
        let started = app.start_on(engine.clone(), share, Retries::Forever, quota).await?;
        started.workers.spawn(self.config.worker_count());
        if let Some(console) = &catalog.console {
            console.attach(started.journal.clone(), started.workers.clone());
        }
        let span = match &name {
            Some(name) => tracing::info_span!("tenant", tenant = %name),
            None => tracing::Span::none(),
        };
        let discovered = app.bucket.clone().zip(catalog.discovered.clone());
        span.in_scope(|| find_inputs(app, discovered, app.status.first_scan(at_start)));
        // Without tenants the start-up line names the one catalog.
        if let Some(name) = name {
            info!(tenant = %name, catalog = %app.catalog.location(), "serving tenant {name}");
        }
        Ok(())
    }

    /// Serves a tenant a reload added: opened and started like those of the start.
    pub(super) async fn add(&mut self, tenant: &TenantConfig) -> Result<(), StartError> {
        self.sweep_lingering();
        if self.lingering.lock().iter().any(|(name, _)| *name == tenant.name) {
            return Err(StartError::new("its jobs from before the reload are still running")
                .advice("Reload again once they have finished (the log says when the tenant stopped)"));
        }
        let (_, turns) = self.engine.as_ref().expect("reloads come after the start");
        let mut catalog = match self.open_one(Some(tenant.clone())).await {
            Ok(catalog) => catalog,
            Err(e) => {
                self.unlist(&tenant.name, None);
                self.shared.metrics.remove_tenant(&tenant.name);
                return Err(e);
            }
        };
        catalog.turn = turns.add(tenant.weight);
        if let Err(e) = self.start_one(&catalog, false).await {
            self.stop(catalog).await;
            return Err(e);
        }
        self.catalogs.push(catalog);
        Ok(())
    }

    /// Stops serving the tenants `names` (a reload removed or changed them), all at once: their
    /// consoles and webhook entries go at once, their jobs in flight get `SHUTDOWN_TIMEOUT` to
    /// finish, and their files stay where they are.
    pub(super) async fn remove(&mut self, names: &[String]) {
        let (gone, kept) = std::mem::take(&mut self.catalogs)
            .into_iter()
            .partition(|c| c.tenant.as_ref().is_some_and(|t| names.contains(&t.name)));
        self.catalogs = kept;
        let gone: Vec<Catalog> = gone;
        futures_util::future::join_all(gone.into_iter().map(|c| self.stop(c))).await;
    }

    /// Forgets lingering tenants whose last jobs have ended, and their series (which those jobs
    /// may have counted into after the stop).
    pub(super) fn sweep_lingering(&self) {
        let ended: Vec<String> = {
            let mut lingering = self.lingering.lock();
            let (ended, running): (Vec<_>, Vec<_>) =
                std::mem::take(&mut *lingering).into_iter().partition(|(_, s)| s.is_finished());
            *lingering = running;
            ended.into_iter().map(|(name, _)| name).collect()
        };
        for name in ended {
            let served_again = self.catalogs.iter().any(|c| c.tenant.as_ref().is_some_and(|t| t.name == name));
            if !served_again {
                self.shared.metrics.remove_tenant(&name);
            }
        }
    }

    /// Asks every catalog's watcher or lister for a full rescan.
    pub(super) fn rescan(&self) {
        self.shared.status.request_rescan();
    }

    /// Changes the weight of a tenant served now.
    pub(super) fn set_weight(&mut self, name: &str, weight: u32) {
        let (_, turns) = self.engine.as_ref().expect("reloads come after the start");
        for catalog in &mut self.catalogs {
            if let Some(tenant) = catalog.tenant.as_mut().filter(|t| t.name == name) {
                tenant.weight = weight;
                turns.set_weight(catalog.turn, weight);
            }
        }
    }

    async fn stop(&self, catalog: Catalog) {
        let Catalog { tenant, app, discovered, .. } = catalog;
        let name = tenant.map(|t| t.name).unwrap_or_default();
        self.unlist(&name, discovered.as_ref());
        app.shutdown.stop();
        app.queue.close();
        let ended = app.shutdown.join(self.config.shutdown_timeout.0 + LINGER).await;
        if ended {
            app.queue.hand_back().await;
        } else {
            // Jobs still running keep their place (in cluster mode their lease and message, so no
            // other node starts them meanwhile) until they end; then the rest goes back.
            let (queue, tasks) = (app.queue.clone(), app.shutdown.clone());
            self.shared.shutdown.spawn(async move {
                while !tasks.join(Duration::from_secs(60)).await {}
                queue.hand_back().await;
            });
        }
        if let Some(bucket) = &app.bucket {
            self.shared.status.remove_dependency(&(bucket.clone() as Arc<dyn Dependency>));
        }
        if let Some(cluster) = &app.cluster {
            self.shared.status.remove_dependency(&cluster.dependency());
        }
        self.shared.metrics.remove_tenant(&name);
        if ended {
            info!(tenant = %name, "stopped serving tenant {name}; its files stay in {}", app.catalog.location());
        } else {
            warn!(
                tenant = %name,
                "stopped serving tenant {name}; jobs still running after SHUTDOWN_TIMEOUT finish first, and it can be \
                 served again once they have"
            );
            self.lingering.lock().push((name, app.shutdown.clone()));
        }
    }

    /// Takes a tenant out of what the server's surfaces see.
    fn unlist(&self, name: &str, discovered: Option<&Arc<Discovered>>) {
        self.consoles.change(|c| c.retain(|m| m.console.tenant() != Some(name)));
        self.watched.change(|w| w.retain(|w| w.tenant.as_deref() != Some(name)));
        if let Some(discovered) = discovered {
            self.notified.change(|n| n.retain(|(_, d)| !Arc::ptr_eq(d, discovered)));
        }
    }
}

/// Starts what finds a catalog's new inputs: the lister of a bucket, the watcher of folders, or
/// nothing on a worker node (the nodes with role `all` find them).
fn find_inputs(app: &App, discovered: Option<(Arc<Bucket>, Arc<Discovered>)>, mut first_scan: FirstScan) {
    let (config, shutdown) = (&app.config, &app.shutdown);
    if config.node_role != NodeRole::All {
        app.status.set_watch_mode("none (NODE_ROLE=worker)");
        first_scan.done();
        return;
    }
    match discovered {
        Some((bucket, discovered)) => {
            let settings = ListingSettings {
                min: config.poll_interval.0.min(Duration::from_secs(1)),
                max: LIST_IDLE_INTERVAL,
                sweep: config.rescan_interval.0,
            };
            let (queue, status) = (app.queue.clone(), app.status.clone());
            let lister = Lister::new(bucket, app.cluster.clone(), discovered, queue, status, settings, first_scan);
            shutdown.spawn(tracing::Instrument::in_current_span(lister.run(shutdown.clone())));
        }
        None => {
            let settings = WatchSettings {
                mode: config.watch_mode,
                poll_interval: config.poll_interval.0,
                rescan_interval: config.rescan_interval.0,
            };
            let (queue, metrics, status) = (app.queue.clone(), app.metrics.clone(), app.status.clone());
            let watch = Watch::new(app.folders.clone(), queue, metrics, status, settings, first_scan);
            shutdown.spawn(tracing::Instrument::in_current_span(watch.run(shutdown.clone())));
        }
    }
}
