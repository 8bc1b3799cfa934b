//! The command line: `thumbgen [run|process|health|config|cutout]`. A thin shell over the library; every
//! error ends as one line on stderr that says what to do.

use crate::config::{Config, Sources};
use crate::logging::Logging;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(name = "thumbgen", version, about = "Hot-folder daemon: product photos in, marketplace thumbnails out.")]
struct Cli {
    /// TOML configuration file [default: config/thumbgen.toml when present]
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Base folder holding produtos/, backgrounds/, thumbnails-prontas/ … (overrides BASE_PATH)
    #[arg(long, global = true, value_name = "DIR")]
    base_dir: Option<PathBuf>,
    /// Log level: trace, debug, info, warn, error (overrides LOG_LEVEL)
    #[arg(long, global = true, value_name = "LEVEL")]
    log_level: Option<String>,
    /// File of KEY=value settings (as in .env) that override the environment; read again on
    /// every reload (SIGHUP), e.g. the systemd unit's /etc/thumbgen/thumbgen.env
    #[arg(long, global = true, value_name = "FILE")]
    env_file: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Watch the folders and make thumbnails until stopped (the default)
    Run,
    /// Process everything pending once, then exit (0: all done or rejected; 1: some left to retry)
    Process,
    /// Ask a running daemon for its health (exit 0 when healthy or degraded)
    Health {
        /// Base URL of the daemon [default: from HTTP_ADDR/PORT]
        #[arg(long, value_name = "URL")]
        url: Option<String>,
    },
    /// Print the effective configuration (secrets masked) and check it
    Config,
    /// Write one photo's full-size cut-out (RGBA PNG) with the configured engine, like `rembg i`
    /// (exit 0: written; 1: no product, refused or failed, reason on stderr)
    Cutout {
        /// The photo (JPEG, PNG or WebP)
        photo: PathBuf,
        /// Where to write the PNG (replaced atomically)
        out: PathBuf,
        /// Write the grey alpha mask instead of the cut-out
        #[arg(long)]
        mask: bool,
    },
    /// Cluster mode (NATS_URL): inspect the cluster
    Cluster {
        #[command(subcommand)]
        command: ClusterCommand,
    },
}

#[derive(Subcommand, Debug)]
enum ClusterCommand {
    /// The nodes seen recently, jobs pending and in flight, redeliveries and dead letters
    Status {
        /// Print JSON instead of a table
        #[arg(long)]
        json: bool,
    },
}

/// Exit code for a configuration or start-up error (as sysexits' EX_CONFIG is too obscure).
const EXIT_START_FAILURE: u8 = 2;

pub fn main() -> ExitCode {
    crate::memory::tune_for_images();
    crate::remove::before_threads();
    let cli = Cli::parse();
    // TLS for remote engines (Hugging Face Spaces): one process-wide crypto provider.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let sources =
        Sources { config_file: cli.config, base_dir: cli.base_dir, log_level: cli.log_level, env_file: cli.env_file };
    let config = match Config::load(&sources) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("thumbgen: {e}");
            return ExitCode::from(EXIT_START_FAILURE);
        }
    };
    match cli.command.unwrap_or(Command::Run) {
        Command::Config => {
            print!("{}", config.to_toml());
            eprintln!("thumbgen: configuration is valid");
            ExitCode::SUCCESS
        }
        Command::Cluster { command: ClusterCommand::Status { json } } => {
            match runtime(1).block_on(crate::cluster::status::report(&config, json)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("thumbgen: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Cutout { photo, out, mask } => {
            Logging::init_console_warnings();
            let request = crate::extract::Request { photo, out, mask_only: mask };
            let result = on_runtime(1, async move {
                tokio::task::spawn_blocking(move || crate::extract::run(&config, &request)).await
            });
            match result {
                Ok(Ok(())) => ExitCode::SUCCESS,
                Ok(Err(e @ crate::extract::Failure::Start(_))) => {
                    eprintln!("thumbgen: {e}");
                    ExitCode::from(EXIT_START_FAILURE)
                }
                Ok(Err(e)) => {
                    eprintln!("thumbgen: {e}");
                    ExitCode::FAILURE
                }
                Err(panic) => {
                    eprintln!("thumbgen: internal error: {panic}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Health { url } => {
            let url = url.unwrap_or_else(|| default_url(&config));
            runtime(1).block_on(crate::probe::check(&url))
        }
        Command::Run => {
            let (logging, problem) = Logging::init(&config);
            if let Some(problem) = problem {
                tracing::warn!("{problem}");
            }
            let workers = config.worker_count();
            match on_runtime(workers, crate::daemon::run(config, sources, logging)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!("{e}");
                    eprintln!("thumbgen: {e}");
                    ExitCode::from(EXIT_START_FAILURE)
                }
            }
        }
        Command::Process => {
            let (_logging, problem) = Logging::init(&config);
            if let Some(problem) = problem {
                tracing::warn!("{problem}");
            }
            let workers = config.worker_count();
            match on_runtime(workers, crate::batch::process(config)) {
                Ok(true) => ExitCode::SUCCESS,
                Ok(false) => ExitCode::FAILURE,
                Err(e) => {
                    eprintln!("thumbgen: {e}");
                    ExitCode::from(EXIT_START_FAILURE)
                }
            }
        }
    }
}

/// Runs `main` on a runtime sized for `workers` jobs. Jobs still running on blocking threads
/// when it returns (past `SHUTDOWN_TIMEOUT`) are abandoned, not waited for: outputs are written
/// atomically, and the next start redoes them.
fn on_runtime<T>(workers: usize, main: impl std::future::Future<Output = T>) -> T {
    let runtime = runtime(workers);
    let result = runtime.block_on(main);
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
    result
}

/// The address `thumbgen health` asks when no URL is given: the configured one, with a
/// wildcard bind address replaced by loopback.
fn default_url(config: &Config) -> String {
    match config.http_socket_addr() {
        Ok(mut addr) => {
            if addr.ip().is_unspecified() {
                addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
            }
            format!("http://{addr}")
        }
        Err(_) => "http://127.0.0.1:8501".into(),
    }
}

fn runtime(workers: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(workers + 8)
        .enable_all()
        .build()
        .expect("the tokio runtime starts")
}
