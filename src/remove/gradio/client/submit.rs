//! Submit: run the endpoint on an uploaded photo and read its result as server-sent events,
//! through `{P}/queue/join` + `{P}/queue/data` when the dependency id is known, else `{P}/call`.

use super::super::failure::{short, Failure, Problem};
use super::super::sse;
use super::discover::AppInfo;
use super::Remote;
use reqwest::{Method, Response};
use serde_json::{json, Value};
use std::time::Duration;

impl Remote {
    /// The endpoint's outputs for the photo uploaded at `path`.
    pub(super) async fn submit(&self, app: &AppInfo, path: &str) -> Result<Vec<Value>, Failure> {
        let mut data = vec![json!({"path": path, "orig_name": "input.jpg", "meta": {"_type": "gradio.FileData"}})];
        data.extend(app.extra_inputs.iter().cloned());
        match app.fn_index {
            Some(fn_index) => self.via_queue(app, fn_index, data).await,
            None => self.via_call(app, data).await,
        }
    }

    async fn via_queue(&self, app: &AppInfo, fn_index: u64, data: Vec<Value>) -> Result<Vec<Value>, Failure> {
        let session = session_hash();
        let body = json!({"data": data, "fn_index": fn_index, "session_hash": session, "event_data": null, "trigger_id": null});
        let url = format!("{}{}/queue/join", self.base, app.prefix);
        let resp = self.send(self.request(Method::POST, &url).json(&body), "submit").await?;
        let joined: Value = resp.json().await.map_err(|e| Failure::retry(Problem::new("submit").because(e)))?;
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
                "unexpected_error" => Some(Err(Failure::retry(Problem::new(format!(
                    "the app lost the job: {}",
                    msg["message"].as_str().unwrap_or("unexpected error")
                ))))),
                "close_stream" => {
                    Some(Err(Failure::retry(Problem::new("the app closed the stream before the result"))))
                }
                _ => None,
            }
        })
        .await
    }

    async fn via_call(&self, app: &AppInfo, data: Vec<Value>) -> Result<Vec<Value>, Failure> {
        let url = format!("{}{}/call/{}", self.base, app.prefix, app.api_name);
        let resp = self.send(self.request(Method::POST, &url).json(&json!({ "data": data })), "submit").await?;
        let submitted: Value = resp.json().await.map_err(|e| Failure::retry(Problem::new("submit").because(e)))?;
        let event_id = submitted["event_id"]
            .as_str()
            .ok_or_else(|| Failure::retry(Problem::new("submit: no event id in the answer")))?;
        let resp = self.send(self.request(Method::GET, &format!("{url}/{event_id}")), "result stream").await?;
        self.read_stream(resp, |event| match event.name.as_str() {
            "complete" => Some(
                serde_json::from_str::<Value>(&event.data)
                    .ok()
                    .and_then(|v| v.as_array().cloned())
                    .ok_or_else(|| Failure::retry(Problem::new("the result is not a list of outputs"))),
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
            return Err(Failure::retry(Problem::new("the result stream is not an event stream")));
        }
        let mut parser = sse::Parser::default();
        let idle = self.settings.idle_timeout;
        loop {
            let chunk = tokio::time::timeout(idle, resp.chunk()).await.map_err(|_| {
                Failure::retry(Problem::new(format!("no data from the app for {} s (stalled stream)", idle.as_secs())))
            })?;
            match chunk {
                Ok(Some(bytes)) => {
                    for event in parser.push(&bytes) {
                        if let Some(result) = handle(event) {
                            return result;
                        }
                    }
                }
                Ok(None) => {
                    return Err(Failure::retry(Problem::new("the result stream ended before the result (dropped)")))
                }
                Err(e) => return Err(Failure::retry(Problem::new("the result stream broke").because(e))),
            }
        }
    }
}

/// Classifies an error the app reported: quota messages name a wait; anything else is retried.
fn app_error(text: Option<&str>) -> Failure {
    let Some(text) = text.filter(|t| !t.is_empty()) else {
        return Failure::retry(Problem::new("the app reported an error without details"));
    };
    let lower = text.to_lowercase();
    let quota = (lower.contains("exceeded") && lower.contains("quota"))
        || lower.contains("gpu limit")
        || lower.contains("no gpu was available");
    if quota {
        let wait = retry_time(&lower).unwrap_or(Duration::from_secs(60));
        return Failure::wait(wait, Problem::new(format!("the app's GPU quota is exhausted: {}", short(text))));
    }
    Failure::retry(Problem::new(format!("the app reported an error: {}", short(text))))
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

#[cfg(test)]
mod tests {
    use super::super::super::failure::Kind;
    use super::*;

    #[test]
    fn quota_messages_name_their_wait() {
        let f = app_error(Some(
            "You have exceeded your free ZeroGPU quota (60s requested vs. 12s left). Try again in 0:05:12.",
        ));
        assert_eq!(f.kind, Kind::Wait(Duration::from_secs(312)));
        assert_eq!(app_error(Some("boom")).kind, Kind::Retry);
        assert_eq!(app_error(None).kind, Kind::Retry);
    }
}
