//! Effective configuration: built-in defaults < TOML file < `.env` < environment < `--env-file`
//! < the other command-line flags. Files are read afresh at every load, so a reload (SIGHUP) sees
//! what they say now; the process environment is never changed.
//!
//! Every setting has one TOML key and one environment variable, the key in upper case; the
//! environment names are the ones the Python prototype used, so its `.env` files keep working.

mod check;
mod choices;
mod env_file;
mod keys;
mod storage;
mod tenants;
mod values;

pub(crate) use choices::{EngineChoice, LogFormat, LogLevel, NodeRole, WatchMode};
pub use keys::ENV_KEYS;
pub(crate) use storage::S3Settings;
pub use tenants::TenantConfig;
pub(crate) use values::{ByteSize, Flag, Seconds, Secret, Text};

use crate::error::ConfigError;
use crate::preset::Preset;
use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Folder that relative paths below are resolved against.
    pub base_path: PathBuf,
    pub upload_path: PathBuf,
    pub background_path: PathBuf,
    pub output_path: PathBuf,
    pub rejected_path: PathBuf,
    pub log_path: PathBuf,
    pub state_path: PathBuf,

    pub log_level: LogLevel,
    pub log_format: LogFormat,

    pub max_file_size: ByteSize,
    #[serde(deserialize_with = "values::list_of_words")]
    pub allowed_formats: Vec<String>,
    pub max_pixels: u64,

    /// Jobs processed at once; 0 means one per CPU core.
    pub workers: usize,
    pub queue_capacity: usize,
    pub watch_mode: WatchMode,
    pub poll_interval: Seconds,
    pub rescan_interval: Seconds,
    pub delete_orphans: Flag,

    pub cache_enabled: Flag,
    pub cache_ttl: Seconds,

    pub removal_engine: EngineChoice,
    pub gradio_api_url: Option<Text>,
    pub gradio_api_name: Option<Text>,
    pub gradio_timeout: Seconds,
    pub gradio_retry_attempts: u32,
    pub gradio_fallback_enabled: Flag,
    pub hf_token: Option<Secret>,
    pub gradio_token: Option<Secret>,
    pub gradio_username: Option<Text>,
    pub gradio_password: Option<Secret>,
    /// Which output of the endpoint holds the cut-out (else: the first image with transparency).
    pub gradio_output_index: Option<usize>,
    /// Values for the endpoint's inputs after the image, as a JSON array (else their defaults).
    pub gradio_extra_inputs: Option<Text>,
    /// Photos are scaled down to this longer side before upload.
    pub gradio_max_side: u32,
    pub max_concurrent_requests: usize,

    pub http_addr: Text,
    pub port: Option<u16>,
    pub metrics_enabled: Flag,
    pub health_check_enabled: Flag,
    pub log_requests: Flag,
    pub shutdown_timeout: Seconds,

    /// The web console at `/` and its API (`/api/*`, `/files/*`).
    pub console_enabled: Flag,
    /// The console's secret: required on a non-loopback `http_addr`, and whenever it is set.
    pub console_token: Option<Secret>,

    /// This node's name in logs, records and cluster status (default: the host name).
    pub node_name: Option<Text>,
    /// Cluster mode: NATS server URLs, comma-separated (unset: a single node, no broker).
    pub nats_url: Option<Text>,
    /// A NATS credentials file (JWT + NKey seed).
    pub nats_creds: Option<PathBuf>,
    /// A NATS authentication token.
    pub nats_token: Option<Secret>,
    /// CA certificate that signed the NATS servers' TLS certificates.
    pub nats_tls_ca: Option<PathBuf>,
    pub node_role: NodeRole,
    /// How long a node may hold a job without a sign of life before it goes to another node.
    pub nats_ack_wait: Seconds,

    /// Object storage: `s3://BUCKET[/PREFIX]` holds the catalog instead of the folders.
    pub storage_url: Option<Text>,
    pub aws_region: Option<Text>,
    /// An S3-compatible store's address (SeaweedFS, MinIO, Ceph RGW, R2); unset for AWS.
    pub aws_endpoint_url: Option<Text>,
    pub aws_access_key_id: Option<Text>,
    pub aws_secret_access_key: Option<Secret>,
    pub aws_session_token: Option<Secret>,
    /// The secret event notifications (`POST /hooks/s3`) carry.
    pub s3_webhook_token: Option<Secret>,

    /// The main output preset (`P.jpg`, `P__B.jpg`).
    pub preset: Preset,
    /// More presets; each adds `__<name>` to its file names.
    pub extra_presets: Vec<Preset>,
    /// Several shops in one deployment (design §10); none: one catalog.
    pub tenants: Vec<TenantConfig>,
    /// The tenant whose catalog this configuration is ([`Config::for_tenant`]); never read from
    /// the files or the environment.
    #[serde(skip)]
    pub tenant: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            base_path: ".".into(),
            upload_path: "produtos".into(),
            background_path: "backgrounds".into(),
            output_path: "thumbnails-prontas".into(),
            rejected_path: "rejeitados".into(),
            log_path: "logs".into(),
            state_path: ".thumbgen".into(),
            log_level: LogLevel::Info,
            log_format: LogFormat::Text,
            max_file_size: ByteSize(10 * 1024 * 1024),
            allowed_formats: vec!["jpeg".into(), "png".into(), "webp".into()],
            max_pixels: 50_000_000,
            workers: 0,
            queue_capacity: 10_000,
            watch_mode: WatchMode::Auto,
            poll_interval: Seconds::secs(2),
            rescan_interval: Seconds::secs(300),
            delete_orphans: Flag(false),
            cache_enabled: Flag(true),
            cache_ttl: Seconds::secs(7 * 86400),
            removal_engine: EngineChoice::Auto,
            gradio_api_url: None,
            gradio_api_name: None,
            gradio_timeout: Seconds::secs(120),
            gradio_retry_attempts: 3,
            gradio_fallback_enabled: Flag(false),
            hf_token: None,
            gradio_token: None,
            gradio_username: None,
            gradio_password: None,
            gradio_output_index: None,
            gradio_extra_inputs: None,
            gradio_max_side: 2048,
            max_concurrent_requests: 2,
            http_addr: Text("127.0.0.1:8501".into()),
            port: None,
            metrics_enabled: Flag(true),
            health_check_enabled: Flag(true),
            log_requests: Flag(false),
            shutdown_timeout: Seconds::secs(30),
            console_enabled: Flag(true),
            console_token: None,
            node_name: None,
            nats_url: None,
            nats_creds: None,
            nats_token: None,
            nats_tls_ca: None,
            node_role: NodeRole::All,
            nats_ack_wait: Seconds::secs(30),
            storage_url: None,
            aws_region: None,
            aws_endpoint_url: None,
            aws_access_key_id: None,
            aws_secret_access_key: None,
            aws_session_token: None,
            s3_webhook_token: None,
            preset: Preset::default(),
            extra_presets: Vec::new(),
            tenants: Vec::new(),
            tenant: None,
        }
    }
}

/// Where configuration comes from, as given on the command line.
#[derive(Clone, Debug, Default)]
pub(crate) struct Sources {
    /// `--config FILE`; without it `config/thumbgen.toml` is read when present.
    pub config_file: Option<PathBuf>,
    /// `--base-dir DIR`.
    pub base_dir: Option<PathBuf>,
    /// `--log-level LEVEL`.
    pub log_level: Option<String>,
    /// `--env-file FILE`: `KEY=value` settings above the environment (the systemd unit's
    /// `/etc/thumbgen/thumbgen.env`, read again on every reload).
    pub env_file: Option<PathBuf>,
}

/// The default TOML file, read when `--config` is not given and the file exists.
pub(crate) const DEFAULT_CONFIG_FILE: &str = "config/thumbgen.toml";

impl Config {
    /// Builds the effective configuration and checks it; the error names the offending key.
    pub(crate) fn load(sources: &Sources) -> Result<Config, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        match &sources.config_file {
            Some(file) if !file.is_file() => {
                return Err(ConfigError(format!("config file {} does not exist", file.display())))
            }
            Some(file) => figment = figment.merge(Toml::file_exact(file)),
            None if Path::new(DEFAULT_CONFIG_FILE).is_file() => {
                figment = figment.merge(Toml::file_exact(DEFAULT_CONFIG_FILE))
            }
            None => {}
        }
        // `.env` fills only variables the environment does not already set.
        if let Some(dotenv) = env_file::read(Path::new(".env"), false)? {
            figment = figment.merge(dotenv);
        }
        figment = figment.merge(Env::raw().only(ENV_KEYS));
        if let Some(file) = &sources.env_file {
            figment = figment.merge(env_file::read(file, true)?.expect("a required file is read or refused"));
        }
        if let Some(dir) = &sources.base_dir {
            figment = figment.merge(("base_path", dir));
        }
        if let Some(level) = &sources.log_level {
            figment = figment.merge(("log_level", level));
        }
        let mut config: Config = figment.extract().map_err(check::describe_figment_error)?;
        config.tenant_tokens_from(|variable| std::env::var(variable).ok());
        config.validate()?;
        Ok(config)
    }

    /// The engine that makes cut-outs: `auto` resolves to gradio when a URL is configured.
    pub(crate) fn engine(&self) -> EngineChoice {
        match (self.removal_engine, &self.gradio_api_url) {
            (EngineChoice::Auto, Some(url)) if !url.0.trim().is_empty() => EngineChoice::Gradio,
            (EngineChoice::Auto, _) => EngineChoice::Local,
            (choice, _) => choice,
        }
    }

    /// `HTTP_ADDR` with `PORT`, when set, replacing its port.
    pub(crate) fn http_socket_addr(&self) -> Result<SocketAddr, ConfigError> {
        let mut addr: SocketAddr = self.http_addr.0.trim().parse().map_err(|_| {
            ConfigError(format!(
                "http_addr (HTTP_ADDR) `{}` is not an address such as 127.0.0.1:8501 or 0.0.0.0:8501",
                self.http_addr.0
            ))
        })?;
        if let Some(port) = self.port {
            addr.set_port(port);
        }
        Ok(addr)
    }

    /// This node's name: `NODE_NAME`, else the host name.
    pub(crate) fn node(&self) -> String {
        match &self.node_name {
            Some(name) if !name.0.trim().is_empty() => name.0.trim().to_owned(),
            _ => host_name(),
        }
    }

    /// The NATS servers of cluster mode; `None` for a single node.
    pub(crate) fn nats_servers(&self) -> Option<Vec<String>> {
        let urls: Vec<String> =
            self.nats_url.as_ref()?.0.split(',').map(str::trim).filter(|u| !u.is_empty()).map(str::to_owned).collect();
        (!urls.is_empty()).then_some(urls)
    }

    /// Number of concurrent jobs.
    pub(crate) fn worker_count(&self) -> usize {
        if self.workers > 0 {
            self.workers
        } else {
            std::thread::available_parallelism().map_or(2, |n| n.get())
        }
    }

    /// Resolves a configured folder against `base_path` (absolute paths stay as they are).
    /// The result is absolute, so file events (which carry absolute paths) match it.
    pub(crate) fn resolve(&self, folder: &Path) -> PathBuf {
        let joined = self.base_path.join(folder);
        std::path::absolute(&joined).unwrap_or(joined)
    }

    /// The configuration as TOML, secrets masked: what `thumbgen config` prints.
    pub(crate) fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot render configuration: {e}\n"))
    }
}

/// The machine's host name (`localhost` when the kernel has none to give).
fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates within it.
    let ok = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0;
    let end = buf.iter().position(|&b| b == 0).unwrap_or(0);
    let name = String::from_utf8_lossy(&buf[..end]).trim().to_owned();
    if ok && !name.is_empty() {
        name
    } else {
        "localhost".into()
    }
}

#[cfg(test)]
mod tests;
