//! Console: the web page people keep open all day, served by the daemon's own HTTP server — a
//! live status bar, the catalog with every product's thumbnails and state, the backgrounds,
//! the rejected files with retry and delete, uploads and ZIP downloads (design §8).
//!
//! The contract it keeps:
//!
//! - **Who may use it** ([`access`]): on a loopback `HTTP_ADDR` anyone on this machine; a set
//!   `CONSOLE_TOKEN` is then required all the same, and on any other address it is required
//!   (without one the console answers 403 with advice). Browsers log in once (an HttpOnly,
//!   SameSite=Strict cookie), scripts send `Authorization: Bearer`. State-changing requests from a
//!   browser must come from the console's own origin (CSRF).
//! - **Names are looked up, never joined**: every file the console reads, moves or deletes is found
//!   by its exact name in a listing of a known folder ([`listing`]) or in the journal; request text
//!   never becomes a path or a key, and links are never followed.
//! - **Folders or a bucket alike**: every file goes through the catalog's [`Browse`] side, so the
//!   console works the same on `BASE_PATH`'s folders and on a bucket (`STORAGE_URL`).
//! - **Read-only views of the pipeline**: outputs and engines from the [`Journal`], where a job is
//!   from the [`WorkQueue`], what a retry waits for from the [`Workers`]. Uploads and retries only
//!   put files into the input folders, and the watcher takes them like any other file (in a
//!   bucket, which no watcher sees, they are queued at once).
//! - **Cheap**: listings are cached until their folder changes, previews are made once per
//!   thumbnail content ([`preview`]), the live status is computed once a second for all open pages
//!   and only while one is open ([`events`]), and heavy work runs off the async threads.
//!
//! Files: [`access`] (who may ask, CSRF, security headers, login), [`api`] (JSON endpoints),
//! [`assets`] (the embedded page), [`catalog`] (products and their state), [`backgrounds`],
//! [`rejected`] (rejections, retry, delete), [`upload`], [`files`] (thumbnails, originals,
//! previews), [`zip`] (streamed archives), [`snapshot`] and [`events`] (the status bar),
//! [`problem`] (error answers).

mod access;
mod api;
mod assets;
mod backgrounds;
mod catalog;
mod events;
mod files;
mod listing;
mod overview;
mod preview;
mod problem;
mod rejected;
mod routes;
mod snapshot;
mod upload;
mod zip;

use crate::catalog::Browse;
use crate::config::Config;
use crate::job::InputKind;
use crate::metrics::Metrics;
use crate::queue::WorkQueue;
use crate::remove::EngineKind;
use crate::shutdown::Shutdown;
use crate::status::Status;
use crate::store::Journal;
use crate::validate::Limits;
use crate::worker::Workers;
pub(crate) use overview::{Mounted, Overview};
pub(crate) use routes::Routes;

use listing::Listing;
use problem::Problem;
use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

/// What the console needs from the rest of the daemon, all there before the engine loads.
pub(crate) struct Deps {
    /// The tenant whose console this is (served under `/t/NAME/`), or `None` for the deployment's.
    pub tenant: Option<TenantScope>,
    /// Where inputs, outputs and rejections are.
    pub catalog: Arc<dyn Browse>,
    /// Where previews are kept (this node's state folder).
    pub state: PathBuf,
    /// Whether inputs the console puts into the catalog are queued by it: true where no watcher
    /// sees them arrive (a bucket).
    pub queue_arrivals: bool,
    pub status: Arc<Status>,
    pub metrics: Arc<Metrics>,
    pub queue: Arc<dyn WorkQueue>,
    pub engine: EngineKind,
    pub shutdown: Shutdown,
}

/// A tenant's console: its name (the `/t/NAME/` prefix) and its own token, which opens this
/// console only (the operator's `CONSOLE_TOKEN` opens every one).
pub(crate) struct TenantScope {
    pub name: String,
    pub token: Option<String>,
}

/// The parts that exist once the pipeline runs (see [`Console::attach`]).
struct Running {
    journal: Arc<dyn Journal>,
    workers: Arc<Workers>,
}

/// Settings the console reads from the configuration.
struct Settings {
    /// What inputs may be (`MAX_FILE_SIZE`, `MAX_PIXELS`, formats): uploads and previews obey it.
    limits: Limits,
    /// Extension and fingerprint of the main preset: what makes `P.jpg`.
    main_ext: &'static str,
    main_fingerprint: String,
}

pub(crate) struct Console {
    deps: Deps,
    settings: Settings,
    access: access::Access,
    running: OnceLock<Running>,
    products: Listing,
    backgrounds: Listing,
    rejected: rejected::Rejected,
    previews: preview::Previews,
    uploads: upload::Limits,
    status_feed: events::Feed,
    today: snapshot::Today,
}

impl Console {
    pub(crate) fn new(config: &Config, addr: SocketAddr, deps: Deps) -> Arc<Console> {
        let own = deps.tenant.as_ref().and_then(|t| t.token.as_deref());
        let tokens: Vec<&str> = own.into_iter().chain(config.console_secret()).collect();
        let products = Listing::inputs(&deps.catalog, InputKind::Product);
        let backgrounds = Listing::inputs(&deps.catalog, InputKind::Background);
        let rejected = rejected::Rejected::new(&deps.catalog);
        let previews = preview::Previews::new(crate::preview::PreviewDir::under(&deps.state));
        let settings = Settings {
            limits: Limits::from_config(config),
            main_ext: config.preset.format.extension(),
            main_fingerprint: config.preset.fingerprint(),
        };
        let console = Arc::new(Console {
            access: access::Access::new(addr, &tokens, deps.tenant.as_ref().map(|t| t.name.as_str())),
            settings,
            running: OnceLock::new(),
            products,
            backgrounds,
            rejected,
            previews,
            uploads: upload::Limits::default(),
            status_feed: events::Feed::default(),
            today: snapshot::Today::default(),
            deps,
        });
        console.deps.shutdown.spawn(events::feed(console.clone()));
        console
    }

    /// Connects the pipeline's journal and workers once they run; until then the API answers 503
    /// ("starting") and the status bar says the engine is loading.
    pub(crate) fn attach(self: &Arc<Self>, journal: Arc<dyn Journal>, workers: Arc<Workers>) {
        if self.running.set(Running { journal, workers }).is_ok() {
            let me = self.clone();
            self.deps.shutdown.spawn(async move {
                let _ = tokio::task::spawn_blocking(move || me.prune_previews()).await;
            });
        }
    }

    /// The tenant whose console this is.
    pub(crate) fn tenant(&self) -> Option<&str> {
        self.deps.tenant.as_ref().map(|t| t.name.as_str())
    }

    /// What the start-up log says about the console.
    pub(crate) fn describe(&self, addr: SocketAddr) -> String {
        self.access.describe(addr)
    }

    /// Deletes previews of thumbnails and backgrounds that are gone.
    fn prune_previews(&self) {
        let Ok(running) = self.running() else { return };
        let journal = &running.journal;
        let mut keep: HashSet<String> =
            journal.outputs_of(None, None).iter().filter_map(|f| journal.output(f)).map(|r| r.key).collect();
        keep.extend(journal.inputs(InputKind::Background).into_iter().map(|b| format!("bg-{}", b.hash)));
        let pruned = self.previews.prune(&keep);
        if pruned > 0 {
            tracing::info!(pruned, "old console previews removed");
        }
    }

    fn running(&self) -> Result<&Running, Problem> {
        self.running.get().ok_or(Problem::Starting)
    }
}

/// Runs blocking work (folder listings, journal look-ups, file reads) off the async threads.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> Result<T, Problem> + Send + 'static) -> Result<T, Problem> {
    tokio::task::spawn_blocking(work).await.map_err(|e| Problem::Internal(e.to_string()))?
}

/// What a URL path segment (and an RFC 5987 `filename*`) may carry as it is: RFC 3986's
/// unreserved characters.
const UNRESERVED: &percent_encoding::AsciiSet =
    &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// A file name as a URL path segment.
fn segment(name: &str) -> String {
    percent_encoding::utf8_percent_encode(name, UNRESERVED).to_string()
}
