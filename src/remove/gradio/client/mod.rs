//! One Gradio app over plain HTTP: the transport (authentication headers, status handling),
//! login, and what discovery learnt, shared by the steps of an attempt.
//!
//! The protocol (see `shared/research/gradio-protocol.md`): `/config` gives the version, the API
//! prefix (`/gradio_api` on 5.x and later) and the dependency ids; `{P}/info` lists endpoints with
//! their inputs ([`discover`]). A call uploads the photo ([`upload`]), submits it through
//! `{P}/queue/join` (which carries error text, including quota messages) or, when no dependency id
//! is known, `{P}/call/{name}`, reads the result as server-sent events ([`submit`]), and picks the
//! output image that has real transparency ([`download`]). A dropped stream means a lost job: the
//! next attempt starts again from the upload.

mod discover;
mod download;
mod submit;
mod upload;

use super::failure::{Failure, Problem};
use crate::config::Secret;
use discover::AppInfo;
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;

/// How to reach and use the app, from the configuration.
#[derive(Clone, Debug, Default)]
pub(crate) struct RemoteSettings {
    pub api_name: Option<String>,
    pub hf_token: Option<Secret>,
    pub token: Option<Secret>,
    pub login: Option<(String, Secret)>,
    pub output_index: Option<usize>,
    pub extra_inputs: Option<Vec<Value>>,
    pub idle_timeout: Duration,
}

pub(crate) struct Remote {
    http: reqwest::Client,
    base: String,
    settings: RemoteSettings,
    app: Mutex<Option<Arc<AppInfo>>>,
}

/// Accepts a URL or a Hugging Face Space id (`owner/name` → `https://owner-name.hf.space`).
pub(crate) fn base_url(url_or_space: &str) -> String {
    let t = url_or_space.trim().trim_end_matches('/');
    if t.contains("://") {
        return t.to_owned();
    }
    let host: String = t.to_lowercase().chars().map(|c| if matches!(c, '/' | '_' | '.') { '-' } else { c }).collect();
    format!("https://{host}.hf.space")
}

impl Remote {
    pub(crate) fn new(url: &str, settings: RemoteSettings, connect_timeout: Duration) -> reqwest::Result<Remote> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("thumbgen/", env!("CARGO_PKG_VERSION"), " (gradio-http)"))
            .connect_timeout(connect_timeout)
            .cookie_store(true)
            .build()?;
        Ok(Remote { http, base: base_url(url), settings, app: Mutex::new(None) })
    }

    pub(crate) fn base(&self) -> &str {
        &self.base
    }

    fn request(&self, method: Method, url: &str) -> RequestBuilder {
        let mut req = self.http.request(method, url);
        if let Some(token) = &self.settings.hf_token {
            // The Spaces proxy authenticates this header and strips it, so the app never sees it.
            req = req.header("X-HF-Authorization", format!("Bearer {}", token.expose()));
        }
        if let Some(token) = &self.settings.token {
            req = req.bearer_auth(token.expose());
        }
        req
    }

    /// Sends a request of step `step`; any answer but a success becomes the [`Failure`] it means.
    async fn send(&self, req: RequestBuilder, step: &str) -> Result<Response, Failure> {
        let resp = req.send().await.map_err(|e| Failure::retry(Problem::new(step).because(e)))?;
        let status = resp.status();
        match status {
            s if s.is_success() => Ok(resp),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN if step != "download" => {
                Err(Failure::unauthorized(Problem::http(step, status, "")))
            }
            StatusCode::TOO_MANY_REQUESTS => {
                let wait = resp
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map_or(Duration::from_secs(5), Duration::from_secs);
                Err(Failure::wait(wait, Problem::http(step, status, "")))
            }
            _ => {
                let body = resp.text().await.unwrap_or_default();
                if status == StatusCode::SERVICE_UNAVAILABLE && body.contains("Queue is full") {
                    return Err(Failure::busy(Problem::new(format!("{step}: the app's queue is full"))));
                }
                Err(Failure::retry(Problem::http(step, status, &body)))
            }
        }
    }

    async fn get_json(&self, url: &str, step: &str) -> Result<Value, Failure> {
        let resp = self.send(self.request(Method::GET, url), step).await?;
        let text = resp.text().await.map_err(|e| Failure::retry(Problem::new(step).because(e)))?;
        serde_json::from_str(&text)
            .map_err(|_| Failure::retry(Problem::new(format!("{step}: the app answered non-JSON (starting up?)"))))
    }

    /// Logs in with the configured Gradio username and password (the session cookie is kept).
    pub(crate) async fn login(&self) -> Result<(), Failure> {
        let Some((user, password)) = &self.settings.login else {
            return Err(Failure::unusable(Problem::new(
                "the app requires a login: set GRADIO_USERNAME and GRADIO_PASSWORD",
            )));
        };
        let req = self
            .request(Method::POST, &format!("{}/login", self.base))
            .form(&[("username", user.as_str()), ("password", password.expose())]);
        let resp = req.send().await.map_err(|e| Failure::retry(Problem::new("login").because(e)))?;
        match resp.status() {
            s if s.is_success() => Ok(()),
            StatusCode::BAD_REQUEST => {
                Err(Failure::unusable(Problem::new("login refused: check GRADIO_USERNAME and GRADIO_PASSWORD")))
            }
            s => Err(Failure::retry(Problem::http("login", s, ""))),
        }
    }

    /// Forgets what discovery learnt (after auth errors or endpoint changes).
    pub(crate) async fn forget(&self) {
        *self.app.lock().await = None;
    }

    /// The app's description, discovered on first use.
    async fn app(&self) -> Result<Arc<AppInfo>, Failure> {
        let mut slot = self.app.lock().await;
        if let Some(app) = slot.as_ref() {
            return Ok(app.clone());
        }
        let app = Arc::new(self.discover().await?);
        tracing::info!(
            url = %self.base,
            version = %app.version,
            endpoint = %format!("/{}", app.api_name),
            route = if app.fn_index.is_some() { "queue/join" } else { "call" },
            "gradio app discovered"
        );
        *slot = Some(app.clone());
        Ok(app)
    }

    /// One full attempt: upload, submit, wait for the result, download the cut-out. The photo
    /// is sent as JPEG, scaled down to `max_side` and further when the app has a smaller
    /// `max_file_size`.
    pub(crate) async fn attempt(&self, photo: &image::RgbImage, max_side: u32) -> Result<image::RgbaImage, Failure> {
        let app = self.app().await?;
        let path = self.upload(&app, photo, max_side).await?;
        let outputs = self.submit(&app, &path).await?;
        self.pick_cutout(&app, &outputs).await
    }

    /// A cheap reachability probe for the health check: the app's version when it answers.
    pub(crate) async fn probe(&self, timeout: Duration) -> Result<String, Problem> {
        let req = self.request(Method::GET, &format!("{}/config", self.base)).timeout(timeout);
        let resp = req.send().await.map_err(|e| Problem::new("GET /config").because(e))?;
        match resp.status() {
            s if s.is_success() => {
                let v: Value = resp.json().await.map_err(|_| Problem::new("GET /config: non-JSON answer"))?;
                Ok(v["version"].as_str().unwrap_or("unknown").to_owned())
            }
            StatusCode::UNAUTHORIZED => Ok("login required".into()),
            s => Err(Problem::http("GET /config", s, "")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn space_ids_become_their_host() {
        assert_eq!(base_url("briaai/BRIA-RMBG-1.4"), "https://briaai-bria-rmbg-1-4.hf.space");
        assert_eq!(base_url("http://127.0.0.1:7860/"), "http://127.0.0.1:7860");
    }
}
