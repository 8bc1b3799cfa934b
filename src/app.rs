//! App: the parts every mode shares, assembled from the configuration — folders, the catalog
//! (those folders, or a bucket), metrics, status, queue, removal engine, stores, pipeline and
//! workers; in cluster mode the queue, the journal and the cut-out reservations are the broker's.
//! With a bucket, the catalog and the cut-out cache are the bucket's and `BASE_PATH` holds only
//! this node's logs and state.

use crate::catalog::bucket::{Bucket, BucketCatalog, BucketCutouts};
use crate::catalog::{Browse, Catalog, Folder, LocalCatalog};
use crate::disk::FileStamp;
use crate::quota::Quota;
use crate::cluster::Cluster;
use crate::config::{Config, EngineChoice, S3Settings};
use crate::dependency::Dependency;
use crate::error::StartError;
use crate::folders::Folders;
use crate::job::InputKind;
use crate::metrics::Metrics;
use crate::pipeline::Pipeline;
use crate::queue::{LocalQueue, WorkQueue};
use crate::remove::{EngineKind, GradioEngine, RemovalEngine};
use crate::shutdown::Shutdown;
use crate::status::Status;
use crate::store::{CutoutCache, CutoutDir, FileJournal, Journal};
use crate::worker::{Retries, Share, Turns, Workers};
use std::sync::Arc;
use std::time::Duration;

/// In a folder every node writes to, a temporary file or a note without its file younger than
/// this may belong to a live writer on another node.
const SHARED_STALE_AFTER: Duration = Duration::from_secs(3600);

/// What [`App::start_pipeline`] starts: the workers, and the journal they record into (which the
/// web console reads).
pub(crate) struct Started {
    pub workers: Arc<Workers>,
    pub journal: Arc<dyn Journal>,
}

pub(crate) struct App {
    pub config: Config,
    pub folders: Folders,
    /// Where inputs come from and outputs go.
    pub catalog: Arc<dyn Catalog>,
    /// The same catalog as the web console sees it.
    pub browse: Arc<dyn Browse>,
    /// The bucket, when the catalog is in one (`STORAGE_URL`).
    pub bucket: Option<Arc<Bucket>>,
    pub metrics: Arc<Metrics>,
    pub status: Arc<Status>,
    pub queue: Arc<dyn WorkQueue>,
    pub shutdown: Shutdown,
    /// Cluster mode's connection to the broker.
    pub cluster: Option<Arc<Cluster>>,
}

/// What every catalog of the process shares (the tenants' catalogs, design §10): one metrics
/// registry, one status (health), one shutdown.
#[derive(Clone)]
pub(crate) struct Shared {
    pub metrics: Arc<Metrics>,
    pub status: Arc<Status>,
    pub shutdown: Shutdown,
}

impl Shared {
    pub(crate) fn new(config: &Config) -> Shared {
        Shared {
            metrics: Arc::new(Metrics::new(&engine_kinds(config), &tenant_names(config))),
            status: Arc::new(Status::default()),
            shutdown: Shutdown::new(),
        }
    }
}

impl App {
    /// The one catalog of a process without tenants: see [`App::with`].
    pub(crate) async fn new(config: Config) -> Result<App, StartError> {
        let shared = Shared::new(&config);
        App::with(config, &shared, None).await
    }

    /// Creates the folders (clearing what a killed run left in them) and the catalog's parts, and
    /// in cluster mode connects to the broker; the engine is loaded by [`App::start_pipeline`].
    /// A tenant's catalog (`tenant`) counts into its own series.
    pub(crate) async fn with(config: Config, shared: &Shared, tenant: Option<&str>) -> Result<App, StartError> {
        let folders = Folders::from_config(&config);
        let s3 = S3Settings::from_config(&config).map_err(|e| StartError::new(e.0))?;
        if s3.is_some() {
            folders.create_state()?;
        } else {
            folders.create_all()?;
            tidy_folders(&config, &folders);
        }
        let metrics = match tenant {
            Some(name) => Arc::new(shared.metrics.for_tenant(name)),
            None => shared.metrics.clone(),
        };
        let (status, shutdown) = (shared.status.clone(), shared.shutdown.clone());
        let (catalog, browse, bucket): (Arc<dyn Catalog>, Arc<dyn Browse>, _) = match s3 {
            Some(settings) => {
                let bucket = Bucket::open(settings, metrics.storage())?;
                bucket.probe().await?;
                status.add_dependency(bucket.clone());
                let catalog = Arc::new(BucketCatalog::new(bucket.clone()));
                (catalog.clone(), catalog, Some(bucket))
            }
            None => {
                let catalog = Arc::new(LocalCatalog::new(folders.clone()));
                (catalog.clone(), catalog, None)
            }
        };
        let (queue, cluster): (Arc<dyn WorkQueue>, _) = if config.nats_servers().is_some() {
            let cluster = Cluster::start(&config, &folders, bucket.clone(), &status, &metrics, &shutdown).await?;
            (cluster.queue(), Some(cluster))
        } else {
            let local =
                LocalQueue::new(config.queue_capacity, metrics.catalog.queue_depth(), metrics.jobs_in_flight.clone());
            (Arc::new(local), None)
        };
        Ok(App { config, folders, catalog, browse, bucket, metrics, status, queue, shutdown, cluster })
    }

    /// The engine asked first for cut-outs.
    pub(crate) fn engine_kind(&self) -> EngineKind {
        engine_kinds(&self.config)[0]
    }

    /// Sets up the removal engine (the embedded model is found here and loaded with the first
    /// photo), opens the stores and
    /// builds the pipeline and its workers.
    pub(crate) async fn start_pipeline(&self, retries: Retries) -> Result<Started, StartError> {
        let engine = self.load_engine().await?;
        self.status.engine_ready();
        let share = Share { turns: Turns::new(self.config.worker_count(), &[1]), index: 0, tenant: None };
        self.start_on(engine, share, retries, None).await
    }

    /// Opens the stores and builds the pipeline and its workers on a removal engine loaded
    /// already, taking turns with other catalogs' workers (`share`), processing at most
    /// `photos_per_day` new photos a day when set (a tenant's quota).
    pub(crate) async fn start_on(
        &self,
        engine: Arc<dyn RemovalEngine>,
        share: Share,
        retries: Retries,
        photos_per_day: Option<u64>,
    ) -> Result<Started, StartError> {
        let cutouts: Arc<dyn CutoutCache> = match &self.bucket {
            Some(bucket) => Arc::new(BucketCutouts::new(bucket.clone(), self.config.cache_enabled.0)),
            None => {
                let dir = self.folders.state.join("cutouts");
                let stale_after = if self.cluster.is_some() { SHARED_STALE_AFTER } else { Duration::ZERO };
                let cutouts = CutoutDir::open(&dir, self.config.cache_enabled.0, stale_after).map_err(|e| {
                    StartError::new(format!("cannot open the cut-out cache {}", dir.display())).because(e)
                })?;
                Arc::new(cutouts)
            }
        };
        let (journal, cutouts): (Arc<dyn Journal>, Arc<dyn CutoutCache>) = match &self.cluster {
            Some(cluster) => (cluster.journal(), cluster.cutouts(cutouts)),
            None => {
                let journal = FileJournal::open(&self.folders.state).map_err(|e| {
                    StartError::new(format!("cannot open the journal in {}", self.folders.state.display()))
                        .because(e)
                        .advice("Check STATE_PATH and its permissions; deleting the folder only costs recomputation")
                })?;
                (Arc::new(journal), cutouts)
            }
        };
        let pipeline = Pipeline::new(
            &self.config,
            self.catalog.clone(),
            self.folders.clone(),
            engine,
            journal.clone(),
            cutouts,
            self.metrics.clone(),
        );
        let pipeline = Arc::new(match photos_per_day {
            Some(limit) => pipeline.with_quota(Quota::new(limit, self.photos_made_today())),
            None => pipeline,
        });
        // Forgetting inputs that left while stopped, and pruning the cache, need the whole journal:
        // in cluster mode, once this node's copy of it is current.
        let (tidy, cluster, ttl) = (pipeline.clone(), self.cluster.clone(), self.config.cache_ttl.0);
        let tidied = async move {
            if let Some(cluster) = cluster {
                cluster.journal_current().await;
            }
            let _ = tokio::task::spawn_blocking(move || {
                tidy.reconcile();
                tidy.prune_cache(ttl);
            })
            .await;
        };
        match &self.cluster {
            Some(_) => {
                let shutdown = self.shutdown.clone();
                self.shutdown.spawn(async move { shutdown.until(tidied).await });
            }
            None => tidied.await,
        }
        let workers = Workers::new(
            pipeline,
            self.queue.clone(),
            self.status.clone(),
            self.metrics.clone(),
            retries,
            self.shutdown.clone(),
            share,
        );
        Ok(Started { workers, journal })
    }

    /// The photos whose main thumbnail was written today, as the catalog shows them now (a
    /// quota's count at start): main images are the outputs without `__` in their names.
    fn photos_made_today(&self) -> u64 {
        let midnight = crate::clock::midnight(crate::clock::now());
        let outputs = self.browse.files(Folder::Output).unwrap_or_default();
        let today = |(name, stamp): &&(String, FileStamp)| {
            !name.contains("__") && stamp.mtime_ns.div_euclid(1_000_000_000) >= midnight
        };
        outputs.iter().filter(today).count() as u64
    }

    /// The configured engine, with a background probe of a remote engine's reachability.
    pub(crate) async fn load_engine(&self) -> Result<Arc<dyn RemovalEngine>, StartError> {
        Engine::load(&self.config, &self.status, &self.shutdown)
    }
}

/// Clears what a killed run left in the folders: temporary files, uploads cut short, notes whose
/// file never moved.
fn tidy_folders(config: &Config, folders: &Folders) {
    let stale_after = if config.nats_servers().is_some() {
        crate::write::set_writer(&config.node());
        SHARED_STALE_AFTER
    } else {
        Duration::ZERO
    };
    crate::write::remove_stale_temps(&folders.output, stale_after);
    crate::write::remove_stale_temps(&folders.rejected, stale_after);
    for kind in InputKind::ALL {
        crate::write::remove_stale_uploads(folders.input_dir(kind), stale_after);
    }
    crate::reject::remove_orphan_notes(&folders.rejected, stale_after);
}

/// The names of the configured tenants: the values of the `tenant` label.
fn tenant_names(config: &Config) -> Vec<String> {
    config.tenants.iter().map(|t| t.name.clone()).collect()
}

/// The configured removal engine, as the pipeline, the health check and the prober see it.
pub(crate) struct Engine {
    pub removal: Arc<dyn RemovalEngine>,
    pub health: Arc<dyn Dependency>,
    /// The remote engine, whose reachability a daemon keeps probing.
    pub remote: Option<Arc<GradioEngine>>,
}

impl Engine {
    /// The configured engine, with a background probe of a remote engine's reachability that
    /// runs until `shutdown` stops (the process's, when catalogs come and go: tenants).
    pub(crate) fn load(config: &Config, status: &Arc<Status>, shutdown: &Shutdown) -> Result<Arc<dyn RemovalEngine>, StartError> {
        let engine = Engine::from_config(config)?;
        status.add_dependency(engine.health);
        if let Some(remote) = engine.remote {
            let status = status.clone();
            shutdown.spawn(remote.keep_probing(shutdown.clone(), move || status.retry_waiting_now()));
        }
        Ok(engine.removal)
    }

    /// The engine the configuration chooses; the remote engine also gets the embedded one as
    /// its stand-in when fallback is on. Must be called inside the tokio runtime.
    pub(crate) fn from_config(config: &Config) -> Result<Engine, StartError> {
        let needs_local = config.engine() == EngineChoice::Local || config.gradio_fallback_enabled.0;
        let local = if needs_local { Some(local_engine(config)?) } else { None };
        match (config.engine(), local) {
            (EngineChoice::Gradio, fallback) => {
                let remote = Arc::new(GradioEngine::new(config, fallback.map(|(engine, _)| engine))?);
                Ok(Engine { removal: remote.clone(), health: remote.clone(), remote: Some(remote) })
            }
            (_, Some((removal, health))) => Ok(Engine { removal, health, remote: None }),
            (_, None) => unreachable!("the embedded engine is found whenever it is the engine"),
        }
    }
}

/// Engines whose metric series exist from the start, the one asked first first.
fn engine_kinds(config: &Config) -> Vec<EngineKind> {
    match config.engine() {
        EngineChoice::Gradio if config.gradio_fallback_enabled.0 => vec![EngineKind::Gradio, EngineKind::Local],
        EngineChoice::Gradio => vec![EngineKind::Gradio],
        _ => vec![EngineKind::Local],
    }
}

/// The embedded engine and its health, found but not loaded: the model loads with the first photo.
type Local = (Arc<dyn RemovalEngine>, Arc<dyn Dependency>);

#[cfg(feature = "embedded")]
fn local_engine(_config: &Config) -> Result<Local, StartError> {
    let engine = Arc::new(crate::remove::LocalEngine::available()?);
    Ok((engine.clone(), engine))
}

/// A build without the `embedded` feature: the embedded engine, chosen or as the remote engine's
/// stand-in, is a start-up error.
#[cfg(not(feature = "embedded"))]
fn local_engine(config: &Config) -> Result<Local, StartError> {
    const NONE: &str = "this build has no embedded engine; rebuild with default features (or --features tract)";
    Err(StartError::new(match config.engine() {
        EngineChoice::Gradio => format!(
            "gradio_fallback_enabled (GRADIO_FALLBACK_ENABLED) needs the embedded engine: {NONE} or set \
             GRADIO_FALLBACK_ENABLED=false"
        ),
        _ => format!("{NONE} or set GRADIO_API_URL"),
    }))
}
