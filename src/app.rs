//! App: the parts every mode shares, assembled from the configuration — metrics, status, queue,
//! removal engine, pipeline and workers.

use crate::config::{Config, EngineChoice};
use crate::folders::Folders;
use crate::metrics::Metrics;
use crate::pipeline::Pipeline;
use crate::queue::Queue;
use crate::remove::{GradioEngine, RemovalEngine};
use crate::status::Status;
use crate::worker::{Retries, Workers};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast;

/// How often the remote engine's reachability is probed for the health check.
const PROBE_INTERVAL: Duration = Duration::from_secs(30);
/// While it does not answer, more often, so waiting photos go as soon as it is back.
const PROBE_INTERVAL_DOWN: Duration = Duration::from_secs(5);

pub struct App {
    pub config: Config,
    pub folders: Folders,
    pub metrics: Arc<Metrics>,
    pub status: Arc<Status>,
    pub queue: Arc<Queue>,
}

impl App {
    /// Creates the folders and the shared parts; the engine is loaded by [`App::start_pipeline`].
    pub fn new(config: Config) -> Result<App, String> {
        let folders = Folders::from_config(&config);
        folders.create_all()?;
        let metrics = Arc::new(Metrics::new(&engine_labels(&config)));
        let queue =
            Arc::new(Queue::new(config.queue_capacity, metrics.queue_depth.clone(), metrics.jobs_in_flight.clone()));
        Ok(App { config, folders, metrics, status: Arc::new(Status::default()), queue })
    }

    /// The engine label used in metrics and health.
    pub fn engine_label(&self) -> &'static str {
        engine_label(&self.config)
    }

    /// Loads the removal engine (off the async threads: it takes a moment) and builds the
    /// pipeline and its workers.
    pub async fn start_pipeline(
        &self,
        retries: Retries,
        shutdown: &broadcast::Sender<()>,
    ) -> Result<Arc<Workers>, String> {
        let engine = load_engine(&self.config, &self.status, shutdown).await?;
        self.status.engine_ready();
        let pipeline = Arc::new(Pipeline::new(&self.config, engine, self.metrics.clone())?);
        pipeline.prune_cache(self.config.cache_ttl.0);
        Ok(Workers::new(
            pipeline,
            self.queue.clone(),
            self.status.clone(),
            self.metrics.clone(),
            retries,
            Duration::from_secs(1),
        ))
    }
}

/// Engines whose metric series exist from the start.
fn engine_labels(config: &Config) -> Vec<&'static str> {
    match config.engine() {
        EngineChoice::Gradio if config.gradio_fallback_enabled.0 => vec!["gradio", "local"],
        EngineChoice::Gradio => vec!["gradio"],
        _ => vec!["local"],
    }
}

fn engine_label(config: &Config) -> &'static str {
    match config.engine() {
        EngineChoice::Gradio => "gradio",
        _ => "local",
    }
}

/// Loads the configured engine. The embedded model is parsed off the async threads (it takes a
/// moment); the remote engine also gets the embedded one as its stand-in when fallback is on, and
/// a background probe of its reachability for the health check.
async fn load_engine(
    config: &Config,
    status: &Arc<Status>,
    shutdown: &broadcast::Sender<()>,
) -> Result<Arc<dyn RemovalEngine>, String> {
    let needs_local = config.engine() == EngineChoice::Local || config.gradio_fallback_enabled.0;
    let local = if needs_local { Some(load_local(config).await?) } else { None };
    match (config.engine(), local) {
        (EngineChoice::Gradio, fallback) => {
            let remote = Arc::new(GradioEngine::new(config, fallback)?);
            status.set_remote(remote.clone());
            let probe = remote.clone();
            let mut stop = shutdown.subscribe();
            let status = status.clone();
            tokio::spawn(async move {
                loop {
                    if probe.probe().await {
                        status.retry_waiting_now();
                    }
                    let interval = if probe.reachable() { PROBE_INTERVAL } else { PROBE_INTERVAL_DOWN };
                    tokio::select! {
                        _ = stop.recv() => return,
                        _ = tokio::time::sleep(interval) => {}
                    }
                }
            });
            Ok(remote)
        }
        (_, Some(local)) => Ok(local),
        (_, None) => unreachable!("the embedded engine is loaded whenever it is the engine"),
    }
}

/// The embedded engine, parsed off the async threads.
#[cfg(feature = "embedded")]
async fn load_local(_config: &Config) -> Result<Arc<dyn RemovalEngine>, String> {
    let engine = tokio::task::spawn_blocking(crate::remove::LocalEngine::load).await.map_err(|e| e.to_string())??;
    Ok(Arc::new(engine))
}

/// A build without the `embedded` feature: the embedded engine, chosen or as the remote engine's
/// stand-in, is a start-up error.
#[cfg(not(feature = "embedded"))]
async fn load_local(config: &Config) -> Result<Arc<dyn RemovalEngine>, String> {
    const NONE: &str = "this build has no embedded engine; rebuild with --features embedded";
    Err(match config.engine() {
        EngineChoice::Gradio => format!(
            "gradio_fallback_enabled (GRADIO_FALLBACK_ENABLED) needs the embedded engine: {NONE} or set \
             GRADIO_FALLBACK_ENABLED=false"
        ),
        _ => format!("{NONE} or set GRADIO_API_URL"),
    })
}
