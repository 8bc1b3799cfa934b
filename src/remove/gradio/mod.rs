//! The remote engine: a Gradio app (a Hugging Face Space or self-hosted) makes the cut-out.
//!
//! Policy lives here, protocol in [`client`]: at most `MAX_CONCURRENT_REQUESTS` jobs in flight,
//! `GRADIO_RETRY_ATTEMPTS` attempts per photo within `GRADIO_TIMEOUT`, each from the upload,
//! with exponential backoff and jitter; 429 and quota messages are waited out; a full queue is
//! back-pressure; a circuit breaker stops calls to an app that keeps failing. When the remote
//! cannot deliver, the photo either goes to the embedded engine (`GRADIO_FALLBACK_ENABLED=true`)
//! or stays in place and is retried later: a remote outage never rejects or loses a file. Its
//! reachability is probed in the background ([`health`]).

mod breaker;
mod client;
mod failure;
mod health;
mod sse;

use super::{EngineKind, Mask, RemovalEngine};
use crate::backoff::Backoff;
use crate::config::Config;
use crate::error::{Cause, JobError, StartError, Transient};
use crate::imaging::{resize, Filter, Layout};
use crate::sync::Mutex;
use breaker::{Breaker, Gate};
use client::{Remote, RemoteSettings};
use failure::{Failure, Kind, Problem};
use image::{GrayImage, RgbImage, RgbaImage};
use reqwest::StatusCode;
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tracing::{info, warn};

/// Silence on a result stream longer than this means the job is lost (heartbeats come every 15 s).
const IDLE_TIMEOUT: Duration = Duration::from_secs(45);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// A named wait longer than this is not waited out inside one job: the engine is suspended.
const LONGEST_INLINE_WAIT: Duration = Duration::from_secs(60);
/// Waits between attempts at one photo: 2 s, 8 s, then 30 s.
const BACKOFF: Backoff = Backoff { first: Duration::from_secs(2), factor: 4, max: Duration::from_secs(30) };

pub(crate) struct GradioEngine {
    remote: Remote,
    runtime: tokio::runtime::Handle,
    permits: Semaphore,
    breaker: Mutex<Breaker>,
    fallback: Option<Arc<dyn RemovalEngine>>,
    attempts: u32,
    deadline: Duration,
    max_side: u32,
    probe: Mutex<health::Probe>,
}

impl GradioEngine {
    /// Builds the engine from the configuration; `fallback` is the embedded engine when
    /// `GRADIO_FALLBACK_ENABLED=true`. Must be called inside the tokio runtime.
    pub(crate) fn new(config: &Config, fallback: Option<Arc<dyn RemovalEngine>>) -> Result<GradioEngine, StartError> {
        let url = config.gradio_api_url.as_ref().map(|u| u.0.clone()).unwrap_or_default();
        let extra_inputs = match &config.gradio_extra_inputs {
            Some(text) => Some(serde_json::from_str::<Vec<Value>>(&text.0).map_err(|e| {
                StartError::new("gradio_extra_inputs (GRADIO_EXTRA_INPUTS) must be a JSON array").because(e)
            })?),
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
        let remote = Remote::new(&url, settings, CONNECT_TIMEOUT)
            .map_err(|e| StartError::new("cannot create the HTTP client for the gradio engine").because(e))?;
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|e| StartError::new("the gradio engine needs the tokio runtime").because(e))?;
        Ok(GradioEngine {
            remote,
            runtime,
            permits: Semaphore::new(config.max_concurrent_requests),
            breaker: Mutex::new(Breaker::default()),
            fallback,
            attempts: config.gradio_retry_attempts.max(1),
            deadline: config.gradio_timeout.0,
            max_side: config.gradio_max_side,
            probe: Mutex::new(health::Probe::default()),
        })
    }

    /// The cut-out's alpha at the photo's resolution, from the remote app.
    async fn remote_mask(&self, photo: &RgbImage) -> Result<GrayImage, Problem> {
        if let Gate::Open(until, reason) = self.breaker.lock().gate() {
            let secs = until.saturating_duration_since(Instant::now()).as_secs();
            return Err(Problem::new(format!("remote calls suspended for {secs} s more: {reason}")));
        }
        let _permit = self.permits.acquire().await.map_err(|e| Problem::new("no request slot").because(e))?;
        let deadline = Instant::now() + self.deadline;
        let mut attempt = 0;
        let mut last: Option<Problem> = None;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                let timeout = Problem::new(format!("no cut-out within GRADIO_TIMEOUT ({} s)", self.deadline.as_secs()));
                return Err(match last {
                    Some(last) => timeout.because(last),
                    None => timeout,
                });
            }
            attempt += 1;
            let failure = match tokio::time::timeout(remaining, self.remote.attempt(photo, self.max_side)).await {
                Ok(Ok(cutout)) => {
                    self.breaker.lock().success();
                    return Ok(alpha_at(&cutout, photo.width(), photo.height()));
                }
                Ok(Err(failure)) => failure,
                Err(_) => Failure::retry(Problem::new(format!(
                    "no result within GRADIO_TIMEOUT ({} s)",
                    self.deadline.as_secs()
                ))),
            };
            warn!(attempt, url = %self.remote.base(), "gradio attempt failed: {}", failure.problem);
            let problem = failure.problem;
            let wait = match failure.kind {
                Kind::Busy => {
                    attempt -= 1; // back-pressure is not the photo's failure
                    BACKOFF.delay(attempt.max(1))
                }
                Kind::Wait(wait) => {
                    if wait > LONGEST_INLINE_WAIT || wait >= deadline.saturating_duration_since(Instant::now()) {
                        self.breaker.lock().suspend(wait, &problem.to_string());
                        return Err(problem);
                    }
                    wait
                }
                Kind::Unauthorized => {
                    self.remote.forget().await;
                    if let Err(e) = self.remote.login().await {
                        self.breaker.lock().failure(&e.problem.to_string());
                        return Err(Problem::new(problem.to_string()).because(e.problem));
                    }
                    Duration::ZERO
                }
                Kind::Unusable => {
                    self.remote.forget().await;
                    self.breaker.lock().failure(&problem.to_string());
                    return Err(problem);
                }
                Kind::Retry => {
                    self.breaker.lock().failure(&problem.to_string());
                    if matches!(problem.status(), Some(StatusCode::INTERNAL_SERVER_ERROR | StatusCode::NOT_FOUND)) {
                        self.remote.forget().await; // the endpoint may have changed
                    }
                    BACKOFF.delay(attempt)
                }
            };
            if attempt >= self.attempts {
                return Err(Problem::new(format!("gave up after {attempt} attempts")).because(problem));
            }
            if matches!(self.breaker.lock().gate(), Gate::Open(..)) {
                return Err(Problem::new("remote failing repeatedly, calls suspended").because(problem));
            }
            last = Some(problem);
            tokio::time::sleep(wait.min(deadline.saturating_duration_since(Instant::now()))).await;
        }
    }
}

impl RemovalEngine for GradioEngine {
    fn kind(&self) -> EngineKind {
        EngineKind::Gradio
    }

    fn release_idle(&self) {
        if let Some(local) = &self.fallback {
            local.release_idle();
        }
    }

    fn mask(&self, photo: &RgbImage) -> Result<Option<Mask>, JobError> {
        match self.runtime.block_on(self.remote_mask(photo)) {
            Ok(alpha) => Ok(Some(Mask { alpha, engine: EngineKind::Gradio })),
            Err(problem) => match &self.fallback {
                Some(local) => {
                    info!("gradio engine unavailable ({problem}); using the embedded engine for this photo");
                    local.mask(photo)
                }
                None => Err(Transient::new(Cause::Engine, "gradio engine").because(problem).into()),
            },
        }
    }
}

/// The cut-out's alpha scaled back to the original photo's size.
fn alpha_at(cutout: &RgbaImage, width: u32, height: u32) -> GrayImage {
    let alpha: Vec<u8> = cutout.pixels().map(|p| p[3]).collect();
    let (w, h) = cutout.dimensions();
    let pixels = if (w, h) == (width, height) {
        alpha
    } else {
        resize(&alpha, w, h, Layout::Grey, (width, height), Filter::Bilinear, None)
    };
    GrayImage::from_raw(width, height, pixels).expect("sizes match")
}
