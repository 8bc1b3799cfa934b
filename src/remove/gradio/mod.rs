//! The remote engine: a Gradio app (a Hugging Face Space or self-hosted) makes the cut-out.
//!
//! Policy lives here, protocol in [`client`]: at most `MAX_CONCURRENT_REQUESTS` jobs in flight,
//! `GRADIO_RETRY_ATTEMPTS` attempts per photo within `GRADIO_TIMEOUT`, each from the upload,
//! with exponential backoff and jitter; 429 and quota messages are waited out; a full queue is
//! back-pressure; a circuit breaker stops calls to an app that keeps failing. When the remote
//! cannot deliver, the photo either goes to the embedded engine (`GRADIO_FALLBACK_ENABLED=true`)
//! or stays in place and is retried later: a remote outage never rejects or loses a file.

mod breaker;
mod client;
mod sse;

pub use client::{base_url, RemoteSettings};

use super::{Mask, RemovalEngine};
use crate::config::Config;
use crate::error::JobError;
use crate::health::Level;
use breaker::{Breaker, Gate};
use client::{Failure, Remote};
use fast_image_resize as fr;
use image::{GrayImage, RgbImage, RgbaImage};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tracing::{info, warn};

/// Silence on a result stream longer than this means the job is lost (heartbeats come every 15 s).
const IDLE_TIMEOUT: Duration = Duration::from_secs(45);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// A named wait longer than this is not waited out inside one job: the engine is suspended.
const LONGEST_INLINE_WAIT: Duration = Duration::from_secs(60);

/// What the background probe last saw.
#[derive(Clone, Debug, Default)]
struct Probe {
    reachable: Option<bool>,
    detail: String,
}

pub struct GradioEngine {
    remote: Remote,
    runtime: tokio::runtime::Handle,
    permits: Semaphore,
    breaker: Mutex<Breaker>,
    fallback: Option<Arc<dyn RemovalEngine>>,
    attempts: u32,
    deadline: Duration,
    max_side: u32,
    probe: Mutex<Probe>,
}

impl GradioEngine {
    /// Builds the engine from the configuration; `fallback` is the embedded engine when
    /// `GRADIO_FALLBACK_ENABLED=true`. Must be called inside the tokio runtime.
    pub fn new(config: &Config, fallback: Option<Arc<dyn RemovalEngine>>) -> Result<GradioEngine, String> {
        let url = config.gradio_api_url.as_ref().map(|u| u.0.clone()).unwrap_or_default();
        let extra_inputs = match &config.gradio_extra_inputs {
            Some(text) => Some(
                serde_json::from_str::<Vec<Value>>(&text.0)
                    .map_err(|e| format!("gradio_extra_inputs (GRADIO_EXTRA_INPUTS) must be a JSON array: {e}"))?,
            ),
            None => None,
        };
        let login = match (&config.gradio_username, &config.gradio_password) {
            (Some(user), Some(password)) => Some((user.0.clone(), password.clone())),
            _ => None,
        };
        let settings = RemoteSettings {
            api_name: config.gradio_api_name.as_ref().map(|n| n.0.clone()),
            hf_token: config.hf_token.clone(),
            token: config.gradio_token.clone(),
            login,
            output_index: config.gradio_output_index,
            extra_inputs,
            idle_timeout: IDLE_TIMEOUT,
        };
        Ok(GradioEngine {
            remote: Remote::new(&url, settings, CONNECT_TIMEOUT)?,
            runtime: tokio::runtime::Handle::try_current()
                .map_err(|_| "the gradio engine needs the tokio runtime".to_string())?,
            permits: Semaphore::new(config.max_concurrent_requests),
            breaker: Mutex::new(Breaker::default()),
            fallback,
            attempts: config.gradio_retry_attempts.max(1),
            deadline: config.gradio_timeout.0,
            max_side: config.gradio_max_side,
            probe: Mutex::new(Probe::default()),
        })
    }

    /// Whether the last probe reached the app (true before the first probe).
    pub fn reachable(&self) -> bool {
        self.probe.lock().unwrap().reachable != Some(false)
    }

    /// Checks that the app answers, for the health endpoint; runs in the background, never inside
    /// a health request. Returns true when the app answers again after it did not.
    pub async fn probe(&self) -> bool {
        let result = self.remote.probe(Duration::from_secs(5)).await;
        let mut probe = self.probe.lock().unwrap();
        let was_down = probe.reachable == Some(false);
        *probe = match result {
            Ok(version) => Probe { reachable: Some(true), detail: format!("gradio {version}") },
            Err(e) => Probe { reachable: Some(false), detail: e },
        };
        let recovered = was_down && probe.reachable == Some(true);
        if recovered {
            self.breaker.lock().unwrap().success();
            info!(url = %self.remote.base(), "gradio app answers again; retrying waiting photos now");
        }
        recovered
    }

    /// Health of the remote engine: level, message and details for the `dependencies` check.
    pub fn health(&self) -> (Level, String, Value) {
        let probe = self.probe.lock().unwrap().clone();
        let breaker = self.breaker.lock().unwrap();
        let details = json!({
            "engine": "gradio",
            "url": self.remote.base(),
            "reachable": probe.reachable,
            "circuit": breaker.state(),
            "fallback": self.fallback.is_some(),
        });
        let problem = match (breaker.gate(), probe.reachable) {
            (Gate::Open(until, reason), _) => Some(format!(
                "remote calls suspended for {} s more: {reason}",
                until.saturating_duration_since(Instant::now()).as_secs()
            )),
            (_, Some(false)) => Some(format!("gradio app unreachable: {}", probe.detail)),
            _ => None,
        };
        match problem {
            None => (Level::Ok, format!("gradio app at {} ({})", self.remote.base(), probe.detail), details),
            Some(p) if self.fallback.is_some() => {
                (Level::Warning, format!("{p}; the embedded engine stands in"), details)
            }
            Some(p) => (Level::Error, format!("{p}; photos wait and are retried"), details),
        }
    }

    /// The cut-out's alpha at the photo's resolution, from the remote app.
    async fn remote_mask(&self, photo: &RgbImage) -> Result<GrayImage, String> {
        if let Gate::Open(until, reason) = self.breaker.lock().unwrap().gate() {
            let secs = until.saturating_duration_since(Instant::now()).as_secs();
            return Err(format!("remote calls suspended for {secs} s more: {reason}"));
        }
        let _permit = self.permits.acquire().await.map_err(|e| e.to_string())?;
        let deadline = Instant::now() + self.deadline;
        let mut attempt = 0;
        let mut last = String::new();
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(format!(
                    "no cut-out within GRADIO_TIMEOUT ({} s); last problem: {last}",
                    self.deadline.as_secs()
                ));
            }
            attempt += 1;
            let failure = match tokio::time::timeout(remaining, self.remote.attempt(photo, self.max_side)).await {
                Ok(Ok(cutout)) => {
                    self.breaker.lock().unwrap().success();
                    return Ok(alpha_at(&cutout, photo.width(), photo.height()));
                }
                Ok(Err(failure)) => failure,
                Err(_) => Failure::Retry(format!("no result within GRADIO_TIMEOUT ({} s)", self.deadline.as_secs())),
            };
            last = failure.message().to_owned();
            warn!(attempt, url = %self.remote.base(), "gradio attempt failed: {last}");
            let wait = match failure {
                Failure::Busy(_) => {
                    attempt -= 1; // back-pressure is not the photo's failure
                    backoff(attempt.max(1))
                }
                Failure::Wait(wait, message) => {
                    if wait > LONGEST_INLINE_WAIT || wait >= deadline.saturating_duration_since(Instant::now()) {
                        self.breaker.lock().unwrap().suspend(wait, &message);
                        return Err(message);
                    }
                    wait
                }
                Failure::Unauthorized(message) => {
                    self.remote.forget().await;
                    if let Err(e) = self.remote.login().await {
                        self.breaker.lock().unwrap().failure(e.message());
                        return Err(format!("{message}; {}", e.message()));
                    }
                    Duration::ZERO
                }
                Failure::Unusable(message) => {
                    self.remote.forget().await;
                    self.breaker.lock().unwrap().failure(&message);
                    return Err(message);
                }
                Failure::Retry(message) => {
                    self.breaker.lock().unwrap().failure(&message);
                    if message.contains("HTTP 500") || message.contains("HTTP 404") {
                        self.remote.forget().await; // the endpoint may have changed
                    }
                    backoff(attempt)
                }
            };
            if attempt >= self.attempts {
                return Err(format!("gave up after {attempt} attempts: {last}"));
            }
            if matches!(self.breaker.lock().unwrap().gate(), Gate::Open(..)) {
                return Err(format!("remote failing repeatedly, calls suspended: {last}"));
            }
            tokio::time::sleep(wait.min(deadline.saturating_duration_since(Instant::now()))).await;
        }
    }
}

impl RemovalEngine for GradioEngine {
    fn name(&self) -> &'static str {
        "gradio"
    }

    fn mask(&self, photo: &RgbImage) -> Result<Option<Mask>, JobError> {
        match self.runtime.block_on(self.remote_mask(photo)) {
            Ok(alpha) => Ok(Some(Mask { alpha, engine: "gradio" })),
            Err(reason) => match &self.fallback {
                Some(local) => {
                    info!("gradio engine unavailable ({reason}); using the embedded engine for this photo");
                    local.mask(photo)
                }
                None => Err(JobError::Transient(format!("gradio engine: {reason}"))),
            },
        }
    }
}

/// Exponential backoff with ±25 % jitter: 2 s, 8 s, 30 s, then 30 s.
fn backoff(attempt: u32) -> Duration {
    let base = [2.0, 8.0, 30.0][(attempt.saturating_sub(1) as usize).min(2)];
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    Duration::from_secs_f64(base * (0.75 + (nanos % 500) as f64 / 1000.0))
}

/// The cut-out's alpha scaled back to the original photo's size.
fn alpha_at(cutout: &RgbaImage, width: u32, height: u32) -> GrayImage {
    let alpha: Vec<u8> = cutout.pixels().map(|p| p[3]).collect();
    if cutout.dimensions() == (width, height) {
        return GrayImage::from_raw(width, height, alpha).expect("sizes match");
    }
    let src =
        fr::images::Image::from_vec_u8(cutout.width(), cutout.height(), alpha, fr::PixelType::U8).expect("sizes match");
    let mut dst = fr::images::Image::new(width, height, fr::PixelType::U8);
    let options = fr::ResizeOptions::new().resize_alg(fr::ResizeAlg::Convolution(fr::FilterType::Bilinear));
    fr::Resizer::new().resize(&src, &mut dst, &options).expect("resize of a valid mask");
    GrayImage::from_raw(width, height, dst.into_vec()).expect("sizes match")
}
