//! One Gradio app over plain HTTP: discovery, login, and single removal attempts.
//!
//! The protocol (see `shared/research/gradio-protocol.md`): `/config` gives the version, the API
//! prefix (`/gradio_api` on 5.x and later) and the dependency ids; `{P}/info` lists endpoints with
//! their inputs. A call uploads the photo, submits it through `{P}/queue/join` (which carries
//! error text, including quota messages) or, when no dependency id is known, `{P}/call/{name}`,
//! reads the result as server-sent events, picks the output image that has real transparency and
//! downloads it from `{P}/file=<path>`. A dropped stream means a lost job: the next attempt
//! starts again from the upload.

use super::sse;
use crate::config::Secret;
use fast_image_resize as fr;
use image::{RgbImage, RgbaImage};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;

/// Why an attempt did not produce a cut-out, and what the caller should do.
#[derive(Debug)]
pub enum Failure {
    /// Passing trouble (network, 5xx, dropped or stalled stream, app error): try again.
    Retry(String),
    /// The remote named a wait (429 Retry-After, quota "try again in H:MM:SS").
    Wait(Duration, String),
    /// The app's queue is full: back-pressure, not a failure of this photo.
    Busy(String),
    /// Not logged in (anymore): log in and try again.
    Unauthorized(String),
    /// The app answers but cannot give a cut-out (no such endpoint, no image with alpha).
    Unusable(String),
}

impl Failure {
    pub fn message(&self) -> &str {
        match self {
            Failure::Retry(m)
            | Failure::Wait(_, m)
            | Failure::Busy(m)
            | Failure::Unauthorized(m)
            | Failure::Unusable(m) => m,
        }
    }
}

/// How to reach and use the app, from the configuration.
#[derive(Clone, Debug, Default)]
pub struct RemoteSettings {
    pub api_name: Option<String>,
    pub hf_token: Option<Secret>,
    pub token: Option<Secret>,
    pub login: Option<(String, Secret)>,
    pub output_index: Option<usize>,
    pub extra_inputs: Option<Vec<Value>>,
    pub idle_timeout: Duration,
}

/// What discovery learnt about the app; dropped and rebuilt after auth or endpoint errors.
#[derive(Debug)]
pub struct AppInfo {
    pub version: String,
    pub prefix: String,
    pub api_name: String,
    pub fn_index: Option<u64>,
    /// Values sent for the inputs after the image.
    pub extra_inputs: Vec<Value>,
    pub max_file_size: Option<u64>,
}

pub struct Remote {
    http: reqwest::Client,
    base: String,
    settings: RemoteSettings,
    app: Mutex<Option<Arc<AppInfo>>>,
}

/// Accepts a URL or a Hugging Face Space id (`owner/name` → `https://owner-name.hf.space`).
pub fn base_url(url_or_space: &str) -> String {
    let t = url_or_space.trim().trim_end_matches('/');
    if t.contains("://") {
        return t.to_owned();
    }
    let host: String = t.to_lowercase().chars().map(|c| if matches!(c, '/' | '_' | '.') { '-' } else { c }).collect();
    format!("https://{host}.hf.space")
}

fn short(text: &str) -> String {
    let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    one_line.chars().take(300).collect()
}

impl Remote {
    pub fn new(url: &str, settings: RemoteSettings, connect_timeout: Duration) -> Result<Remote, String> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("thumbgen/", env!("CARGO_PKG_VERSION"), " (gradio-http)"))
            .connect_timeout(connect_timeout)
            .cookie_store(true)
            .build()
            .map_err(|e| format!("cannot create the HTTP client: {e}"))?;
        Ok(Remote { http, base: base_url(url), settings, app: Mutex::new(None) })
    }

    pub fn base(&self) -> &str {
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

    async fn send(&self, req: RequestBuilder, what: &str) -> Result<Response, Failure> {
        let resp = req.send().await.map_err(|e| Failure::Retry(format!("{what}: {}", error_chain(&e))))?;
        match resp.status() {
            s if s.is_success() => Ok(resp),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN if what != "download" => {
                Err(Failure::Unauthorized(format!("{what}: HTTP {s}", s = resp.status())))
            }
            StatusCode::TOO_MANY_REQUESTS => {
                let wait = resp
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map_or(Duration::from_secs(5), Duration::from_secs);
                Err(Failure::Wait(wait, format!("{what}: HTTP 429 Too Many Requests")))
            }
            s => {
                let body = resp.text().await.unwrap_or_default();
                if s == StatusCode::SERVICE_UNAVAILABLE && body.contains("Queue is full") {
                    return Err(Failure::Busy(format!("{what}: the app's queue is full")));
                }
                Err(Failure::Retry(format!("{what}: HTTP {s}: {}", short(&body))))
            }
        }
    }

    async fn get_json(&self, url: &str, what: &str) -> Result<Value, Failure> {
        let resp = self.send(self.request(Method::GET, url), what).await?;
        let text = resp.text().await.map_err(|e| Failure::Retry(format!("{what}: {e}")))?;
        serde_json::from_str(&text)
            .map_err(|_| Failure::Retry(format!("{what}: the app answered non-JSON (starting up?)")))
    }

    /// Logs in with the configured Gradio username and password (the session cookie is kept).
    pub async fn login(&self) -> Result<(), Failure> {
        let Some((user, password)) = &self.settings.login else {
            return Err(Failure::Unusable("the app requires a login: set GRADIO_USERNAME and GRADIO_PASSWORD".into()));
        };
        let req = self
            .request(Method::POST, &format!("{}/login", self.base))
            .form(&[("username", user.as_str()), ("password", password.expose())]);
        let resp = req.send().await.map_err(|e| Failure::Retry(format!("login: {}", error_chain(&e))))?;
        match resp.status() {
            s if s.is_success() => Ok(()),
            StatusCode::BAD_REQUEST => {
                Err(Failure::Unusable("login refused: check GRADIO_USERNAME and GRADIO_PASSWORD".into()))
            }
            s => Err(Failure::Retry(format!("login: HTTP {s}"))),
        }
    }

    /// Forgets what discovery learnt (after auth errors or endpoint changes).
    pub async fn forget(&self) {
        *self.app.lock().await = None;
    }

    /// The app's description, discovered on first use.
    pub async fn app(&self) -> Result<Arc<AppInfo>, Failure> {
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

    async fn discover(&self) -> Result<AppInfo, Failure> {
        let config = match self.get_json(&format!("{}/config", self.base), "GET /config").await {
            Err(Failure::Unauthorized(_)) if self.settings.login.is_some() => {
                self.login().await?;
                self.get_json(&format!("{}/config", self.base), "GET /config").await?
            }
            other => other?,
        };
        let prefix = config["api_prefix"].as_str().unwrap_or("").trim_end_matches('/').to_owned();
        let version = config["version"].as_str().unwrap_or("unknown").to_owned();
        let info = self.get_json(&format!("{}{prefix}/info", self.base), "GET /info").await?;
        let endpoints = info["named_endpoints"]
            .as_object()
            .ok_or_else(|| Failure::Unusable("the app's /info lists no endpoints".into()))?;

        let (name, endpoint) = match &self.settings.api_name {
            Some(wanted) => {
                let key = format!("/{}", wanted.trim_start_matches('/'));
                let endpoint = endpoints.get(&key).ok_or_else(|| {
                    let names: Vec<&String> = endpoints.keys().collect();
                    Failure::Unusable(format!("GRADIO_API_NAME {key} is not an endpoint of the app; it has {names:?}"))
                })?;
                (key, endpoint)
            }
            None => endpoints.iter().find(|(_, e)| is_removal_endpoint(e)).map(|(k, e)| (k.clone(), e)).ok_or_else(
                || {
                    Failure::Unusable(
                        "no endpoint of the app takes an image and returns an image; set GRADIO_API_NAME".into(),
                    )
                },
            )?,
        };
        let api_name = name.trim_start_matches('/').to_owned();
        let fn_index = config["dependencies"]
            .as_array()
            .and_then(|deps| deps.iter().find(|d| d["api_name"].as_str() == Some(api_name.as_str())))
            .and_then(|d| d["id"].as_u64());
        let params = endpoint["parameters"].as_array().cloned().unwrap_or_default();
        let extra_inputs = match &self.settings.extra_inputs {
            Some(values) => values.clone(),
            None => params.iter().skip(1).map(default_input).collect(),
        };
        Ok(AppInfo {
            version,
            prefix,
            api_name,
            fn_index,
            extra_inputs,
            max_file_size: config["max_file_size"].as_u64(),
        })
    }

    /// Uploads the photo; returns its path on the server.
    async fn upload(&self, app: &AppInfo, jpeg: &[u8]) -> Result<String, Failure> {
        let part = reqwest::multipart::Part::bytes(jpeg.to_vec())
            .file_name("input.jpg")
            .mime_str("image/jpeg")
            .expect("valid MIME type");
        let form = reqwest::multipart::Form::new().part("files", part);
        let url = format!("{}{}/upload", self.base, app.prefix);
        let resp = match self.send(self.request(Method::POST, &url).multipart(form), "upload").await {
            Err(Failure::Retry(m)) if m.contains("413") => {
                return Err(Failure::Unusable(format!(
                    "the app refused the photo as too large ({m}); lower GRADIO_MAX_SIDE"
                )))
            }
            other => other?,
        };
        let paths: Vec<String> = resp.json().await.map_err(|e| Failure::Retry(format!("upload: {e}")))?;
        paths.into_iter().next().ok_or_else(|| Failure::Retry("upload: the app returned no file path".into()))
    }

    /// One full attempt: upload, submit, wait for the result, download the cut-out. The photo
    /// is sent as JPEG, scaled down to `max_side` and further when the app has a smaller
    /// `max_file_size`.
    pub async fn attempt(&self, photo: &RgbImage, max_side: u32) -> Result<RgbaImage, Failure> {
        let app = self.app().await?;
        let jpeg = fit_for_upload(photo, max_side, app.max_file_size).map_err(Failure::Unusable)?;
        let path = self.upload(&app, &jpeg).await?;
        let mut data = vec![json!({"path": path, "orig_name": "input.jpg", "meta": {"_type": "gradio.FileData"}})];
        data.extend(app.extra_inputs.iter().cloned());
        let outputs = match app.fn_index {
            Some(fn_index) => self.via_queue(&app, fn_index, data).await?,
            None => self.via_call(&app, data).await?,
        };
        self.pick_cutout(&app, &outputs).await
    }

    async fn via_queue(&self, app: &AppInfo, fn_index: u64, data: Vec<Value>) -> Result<Vec<Value>, Failure> {
        let session = session_hash();
        let body = json!({"data": data, "fn_index": fn_index, "session_hash": session, "event_data": null, "trigger_id": null});
        let url = format!("{}{}/queue/join", self.base, app.prefix);
        let resp = self.send(self.request(Method::POST, &url).json(&body), "submit").await?;
        let joined: Value = resp.json().await.map_err(|e| Failure::Retry(format!("submit: {e}")))?;
        let event_id = joined["event_id"].as_str().unwrap_or_default().to_owned();
        let url = format!("{}{}/queue/data?session_hash={session}", self.base, app.prefix);
        let resp = self.send(self.request(Method::GET, &url), "result stream").await?;
        self.read_stream(resp, |event| {
            let msg: Value = serde_json::from_str(&event.data).ok()?;
            if msg["event_id"].as_str().is_some_and(|id| !event_id.is_empty() && id != event_id) {
                return None;
            }
            match msg["msg"].as_str()? {
                "process_completed" if msg["success"].as_bool() == Some(true) => {
                    Some(Ok(msg["output"]["data"].as_array().cloned().unwrap_or_default()))
                }
                "process_completed" => Some(Err(app_error(msg["output"]["error"].as_str()))),
                "unexpected_error" => Some(Err(Failure::Retry(format!(
                    "the app lost the job: {}",
                    msg["message"].as_str().unwrap_or("unexpected error")
                )))),
                "close_stream" => Some(Err(Failure::Retry("the app closed the stream before the result".into()))),
                _ => None,
            }
        })
        .await
    }

    async fn via_call(&self, app: &AppInfo, data: Vec<Value>) -> Result<Vec<Value>, Failure> {
        let url = format!("{}{}/call/{}", self.base, app.prefix, app.api_name);
        let resp = self.send(self.request(Method::POST, &url).json(&json!({ "data": data })), "submit").await?;
        let submitted: Value = resp.json().await.map_err(|e| Failure::Retry(format!("submit: {e}")))?;
        let event_id =
            submitted["event_id"].as_str().ok_or_else(|| Failure::Retry("submit: no event id in the answer".into()))?;
        let resp = self.send(self.request(Method::GET, &format!("{url}/{event_id}")), "result stream").await?;
        self.read_stream(resp, |event| match event.name.as_str() {
            "complete" => Some(
                serde_json::from_str::<Value>(&event.data)
                    .ok()
                    .and_then(|v| v.as_array().cloned())
                    .ok_or_else(|| Failure::Retry("the result is not a list of outputs".into())),
            ),
            "error" => {
                let data: Value = serde_json::from_str(&event.data).unwrap_or(Value::Null);
                let text = data.as_str().or_else(|| data["error"].as_str());
                Some(Err(app_error(text)))
            }
            _ => None,
        })
        .await
    }

    /// Reads server-sent events until `handle` returns a result. Any silence longer than the
    /// idle timeout (heartbeats come every 15 s) or an early end is a lost job.
    async fn read_stream<T>(
        &self,
        mut resp: Response,
        mut handle: impl FnMut(sse::Event) -> Option<Result<T, Failure>>,
    ) -> Result<T, Failure> {
        let is_sse = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        if !is_sse {
            return Err(Failure::Retry("the result stream is not an event stream".into()));
        }
        let mut parser = sse::Parser::default();
        let idle = self.settings.idle_timeout;
        loop {
            let chunk = tokio::time::timeout(idle, resp.chunk()).await.map_err(|_| {
                Failure::Retry(format!("no data from the app for {} s (stalled stream)", idle.as_secs()))
            })?;
            match chunk {
                Ok(Some(bytes)) => {
                    for event in parser.push(&bytes) {
                        if let Some(result) = handle(event) {
                            return result;
                        }
                    }
                }
                Ok(None) => return Err(Failure::Retry("the result stream ended before the result (dropped)".into())),
                Err(e) => return Err(Failure::Retry(format!("the result stream broke: {}", error_chain(&e)))),
            }
        }
    }

    /// Downloads the output images in order and returns the first with real transparency.
    async fn pick_cutout(&self, app: &AppInfo, outputs: &[Value]) -> Result<RgbaImage, Failure> {
        let mut candidates = Vec::new();
        for (index, output) in outputs.iter().enumerate() {
            if self.settings.output_index.is_none_or(|wanted| wanted == index) {
                collect_files(output, &mut candidates);
            }
        }
        if candidates.is_empty() {
            return Err(Failure::Unusable("the app returned no image".into()));
        }
        let mut seen = Vec::new();
        for path in candidates {
            let url = if path.starts_with("http://") || path.starts_with("https://") {
                path.clone()
            } else {
                format!("{}{}/file={path}", self.base, app.prefix)
            };
            let resp = self.send(self.request(Method::GET, &url), "download").await?;
            let bytes = resp.bytes().await.map_err(|e| Failure::Retry(format!("download: {e}")))?;
            match crate::validate::sniff(&bytes) {
                crate::validate::Sniffed::Image(format) => seen.push(format.name()),
                _ => {
                    seen.push("not an image");
                    continue;
                }
            }
            if let Ok(image) = image::load_from_memory(&bytes) {
                if crate::cutout::has_real_transparency(&image) {
                    return Ok(image.into_rgba8());
                }
            }
        }
        Err(Failure::Unusable(format!(
            "no output of the app has transparency (got: {}); it must return the cut-out with alpha (set GRADIO_OUTPUT_INDEX if it has several outputs)",
            seen.join(", ")
        )))
    }

    /// A cheap reachability probe for the health check.
    pub async fn probe(&self, timeout: Duration) -> Result<String, String> {
        let req = self.request(Method::GET, &format!("{}/config", self.base)).timeout(timeout);
        let resp = req.send().await.map_err(|e| error_chain(&e))?;
        match resp.status() {
            s if s.is_success() => {
                let v: Value = resp.json().await.map_err(|_| "non-JSON answer".to_string())?;
                Ok(v["version"].as_str().unwrap_or("unknown").to_owned())
            }
            StatusCode::UNAUTHORIZED => Ok("login required".into()),
            s => Err(format!("HTTP {s}")),
        }
    }
}

/// The photo as JPEG within the app's upload limit: at most `max_side` pixels on its longer side,
/// smaller until it fits `max_file_size`.
fn fit_for_upload(photo: &RgbImage, max_side: u32, max_file_size: Option<u64>) -> Result<Vec<u8>, String> {
    let mut side = max_side.min(photo.width().max(photo.height()));
    loop {
        let jpeg = jpeg_at(photo, side)?;
        match max_file_size {
            Some(limit) if jpeg.len() as u64 > limit && side > 64 => {
                let shrink = (limit as f64 / jpeg.len() as f64).sqrt() * 0.9;
                side = ((side as f64 * shrink) as u32).max(64);
            }
            _ => return Ok(jpeg),
        }
    }
}

fn jpeg_at(photo: &RgbImage, side: u32) -> Result<Vec<u8>, String> {
    let (w, h) = photo.dimensions();
    let scale = (side as f64 / w.max(h) as f64).min(1.0);
    let (tw, th) = (((w as f64 * scale).round() as u32).max(1), ((h as f64 * scale).round() as u32).max(1));
    let pixels = if scale < 1.0 {
        let src = fr::images::ImageRef::new(w, h, photo.as_raw(), fr::PixelType::U8x3).map_err(|e| e.to_string())?;
        let mut dst = fr::images::Image::new(tw, th, fr::PixelType::U8x3);
        fr::Resizer::new().resize(&src, &mut dst, &fr::ResizeOptions::new()).map_err(|e| e.to_string())?;
        dst.into_vec()
    } else {
        photo.as_raw().clone()
    };
    let mut out = Vec::new();
    jpeg_encoder::Encoder::new(&mut out, 92)
        .encode(&pixels, tw as u16, th as u16, jpeg_encoder::ColorType::Rgb)
        .map_err(|e| format!("cannot encode the photo for upload: {e}"))?;
    Ok(out)
}

/// An endpoint whose first input is an image and which returns an image-like output.
fn is_removal_endpoint(endpoint: &Value) -> bool {
    let first_is_image =
        endpoint["parameters"][0]["component"].as_str().is_some_and(|c| c.eq_ignore_ascii_case("image"));
    let returns_image = endpoint["returns"].as_array().is_some_and(|r| {
        r.iter().any(|o| {
            matches!(
                o["component"].as_str().map(str::to_ascii_lowercase).as_deref(),
                Some("image" | "imageslider" | "file" | "gallery")
            )
        })
    });
    first_is_image && returns_image
}

/// The value sent for an input after the image: its declared default, else a neutral value of
/// its kind (first choice of a radio, empty text, false, zero).
fn default_input(param: &Value) -> Value {
    if param["parameter_has_default"].as_bool() == Some(true) {
        return param["parameter_default"].clone();
    }
    if let Some(first) = param["type"]["enum"].as_array().and_then(|e| e.first()) {
        return first.clone();
    }
    match param["component"].as_str().map(str::to_ascii_lowercase).as_deref() {
        Some("textbox") => json!(""),
        Some("checkbox") => json!(false),
        Some("number" | "slider") => json!(0),
        _ => Value::Null,
    }
}

/// File paths inside one output value: a FileData, a slider pair, a gallery or a file list.
fn collect_files(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if let Some(path) = map.get("path").and_then(Value::as_str) {
                out.push(path.to_owned());
            } else if let Some(image) = map.get("image") {
                collect_files(image, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|item| collect_files(item, out)),
        _ => {}
    }
}

/// Classifies an error the app reported: quota messages name a wait; anything else is retried.
fn app_error(text: Option<&str>) -> Failure {
    let Some(text) = text.filter(|t| !t.is_empty()) else {
        return Failure::Retry("the app reported an error without details".into());
    };
    let lower = text.to_lowercase();
    let quota = (lower.contains("exceeded") && lower.contains("quota"))
        || lower.contains("gpu limit")
        || lower.contains("no gpu was available");
    if quota {
        let wait = retry_time(&lower).unwrap_or(Duration::from_secs(60));
        return Failure::Wait(wait, format!("the app's GPU quota is exhausted: {}", short(text)));
    }
    Failure::Retry(format!("the app reported an error: {}", short(text)))
}

/// Parses "try again in H:MM:SS" / "retry in H:MM:SS".
fn retry_time(text: &str) -> Option<Duration> {
    let start = ["try again in ", "retry in "].iter().find_map(|k| text.find(k).map(|i| i + k.len()))?;
    let clock: String = text[start..].chars().take_while(|c| c.is_ascii_digit() || *c == ':').collect();
    let parts: Vec<u64> = clock.split(':').map(|p| p.parse().ok()).collect::<Option<_>>()?;
    let secs = parts.iter().fold(0, |acc, p| acc * 60 + p);
    Some(Duration::from_secs(secs))
}

/// A fresh random session id per job, so one stream carries exactly one job.
fn session_hash() -> String {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    blake3::hash(format!("{nanos}-{n}-{}", std::process::id()).as_bytes()).to_hex()[..20].to_owned()
}

/// An error with its causes ("error sending request: connection refused").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn space_ids_become_their_host() {
        assert_eq!(base_url("briaai/BRIA-RMBG-1.4"), "https://briaai-bria-rmbg-1-4.hf.space");
        assert_eq!(base_url("http://127.0.0.1:7860/"), "http://127.0.0.1:7860");
    }

    #[test]
    fn quota_messages_name_their_wait() {
        let f = app_error(Some(
            "You have exceeded your free ZeroGPU quota (60s requested vs. 12s left). Try again in 0:05:12.",
        ));
        assert!(matches!(f, Failure::Wait(d, _) if d == Duration::from_secs(312)));
        assert!(matches!(app_error(Some("boom")), Failure::Retry(_)));
        assert!(matches!(app_error(None), Failure::Retry(_)));
    }

    #[test]
    fn outputs_of_every_shape_yield_their_files() {
        let slider = json!([{"path": "/a.webp"}, {"path": "/b.png"}]);
        let gallery = json!([{"image": {"path": "/g.png"}, "caption": null}]);
        let mut out = Vec::new();
        for v in [json!({"path": "/x.png"}), slider, gallery, Value::Null] {
            collect_files(&v, &mut out);
        }
        assert_eq!(out, ["/x.png", "/a.webp", "/b.png", "/g.png"]);
    }

    #[test]
    fn extra_inputs_get_defaults() {
        assert_eq!(
            default_input(&json!({"parameter_has_default": true, "parameter_default": "1024x1024"})),
            json!("1024x1024")
        );
        assert_eq!(
            default_input(&json!({"component": "Radio", "type": {"enum": ["General", "Portrait"]}})),
            json!("General")
        );
        assert_eq!(default_input(&json!({"component": "Checkbox"})), json!(false));
    }
}
