//! App: the parts every mode shares, assembled from the configuration — metrics, status, queue,
//! removal engine, pipeline and workers.

use crate::config::{Config, EngineChoice};
use crate::folders::Folders;
use crate::metrics::Metrics;
use crate::pipeline::Pipeline;
use crate::queue::Queue;
use crate::remove::{LocalEngine, RemovalEngine};
use crate::status::Status;
use crate::worker::{Retries, Workers};
use std::sync::Arc;
use std::time::Duration;

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
        let metrics = Arc::new(Metrics::new(&[engine_label(&config), "local"]));
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
    pub async fn start_pipeline(&self, retries: Retries) -> Result<Arc<Workers>, String> {
        let engine = load_engine(&self.config).await?;
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

fn engine_label(config: &Config) -> &'static str {
    match config.engine() {
        EngineChoice::Gradio => "gradio",
        _ => "local",
    }
}

async fn load_engine(config: &Config) -> Result<Arc<dyn RemovalEngine>, String> {
    match config.engine() {
        EngineChoice::Gradio => Err(
            "the gradio removal engine is not available in this version; unset GRADIO_API_URL (or set REMOVAL_ENGINE=local) to use the embedded engine".into(),
        ),
        _ => {
            let engine = tokio::task::spawn_blocking(LocalEngine::load).await.map_err(|e| e.to_string())??;
            Ok(Arc::new(engine))
        }
    }
}
