//! App: the parts every mode shares, assembled from the configuration — folders, metrics, status,
//! queue, removal engine, stores, pipeline and workers.

use crate::config::{Config, EngineChoice};
use crate::error::StartError;
use crate::folders::Folders;
use crate::metrics::Metrics;
use crate::pipeline::Pipeline;
use crate::queue::{LocalQueue, WorkQueue};
use crate::remove::{EngineHealth, EngineKind, GradioEngine, RemovalEngine};
use crate::shutdown::Shutdown;
use crate::status::Status;
use crate::store::{CutoutDir, FileJournal};
use crate::worker::{Retries, Workers};
use std::sync::Arc;

pub(crate) struct App {
    pub config: Config,
    pub folders: Folders,
    pub metrics: Arc<Metrics>,
    pub status: Arc<Status>,
    pub queue: Arc<dyn WorkQueue>,
    pub shutdown: Shutdown,
}

impl App {
    /// Creates the folders (clearing what a killed run left in them) and the shared parts; the
    /// engine is loaded by [`App::start_pipeline`].
    pub(crate) fn new(config: Config) -> Result<App, StartError> {
        let folders = Folders::from_config(&config);
        folders.create_all()?;
        crate::write::remove_stale_temps(&folders.output);
        crate::write::remove_stale_temps(&folders.rejected);
        crate::reject::remove_orphan_notes(&folders.rejected);
        let metrics = Arc::new(Metrics::new(&engine_kinds(&config)));
        let queue: Arc<dyn WorkQueue> = Arc::new(LocalQueue::new(
            config.queue_capacity,
            metrics.queue_depth.clone(),
            metrics.jobs_in_flight.clone(),
        ));
        Ok(App { config, folders, metrics, status: Arc::new(Status::default()), queue, shutdown: Shutdown::new() })
    }

    /// The engine asked first for cut-outs.
    pub(crate) fn engine_kind(&self) -> EngineKind {
        engine_kinds(&self.config)[0]
    }

    /// Sets up the removal engine (the embedded model is found here and loaded with the first
    /// photo), opens the stores and builds the pipeline and its workers.
    pub(crate) async fn start_pipeline(&self, retries: Retries) -> Result<Arc<Workers>, StartError> {
        let engine = self.load_engine().await?;
        self.status.engine_ready();
        let journal = FileJournal::open(&self.folders.state).map_err(|e| {
            StartError::new(format!("cannot open the journal in {}", self.folders.state.display()))
                .because(e)
                .advice("Check STATE_PATH and its permissions; deleting the folder only costs recomputation")
        })?;
        let cutouts_dir = self.folders.state.join("cutouts");
        let cutouts = CutoutDir::open(&cutouts_dir, self.config.cache_enabled.0).map_err(|e| {
            StartError::new(format!("cannot open the cut-out cache {}", cutouts_dir.display())).because(e)
        })?;
        let pipeline = Arc::new(Pipeline::new(
            &self.config,
            self.folders.clone(),
            engine,
            Arc::new(journal),
            Arc::new(cutouts),
            self.metrics.clone(),
        ));
        pipeline.reconcile();
        pipeline.prune_cache(self.config.cache_ttl.0);
        Ok(Workers::new(
            pipeline,
            self.queue.clone(),
            self.status.clone(),
            self.metrics.clone(),
            retries,
            self.shutdown.clone(),
        ))
    }

    /// The configured engine, with a background probe of a remote engine's reachability.
    async fn load_engine(&self) -> Result<Arc<dyn RemovalEngine>, StartError> {
        let engine = Engine::from_config(&self.config)?;
        self.status.set_engine_health(engine.health);
        if let Some(remote) = engine.remote {
            let status = self.status.clone();
            self.shutdown.spawn(remote.keep_probing(self.shutdown.clone(), move || status.retry_waiting_now()));
        }
        Ok(engine.removal)
    }
}

/// The configured removal engine, as the pipeline, the health check and the prober see it.
pub(crate) struct Engine {
    pub removal: Arc<dyn RemovalEngine>,
    pub health: Arc<dyn EngineHealth>,
    /// The remote engine, whose reachability a daemon keeps probing.
    pub remote: Option<Arc<GradioEngine>>,
}

impl Engine {
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
type Local = (Arc<dyn RemovalEngine>, Arc<dyn EngineHealth>);

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
