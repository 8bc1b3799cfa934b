//! HTTP: health, readiness and metrics for orchestrators and Prometheus, and the web console.
//!
//! Bound to loopback by default. Every request has a time limit, except the console's streams
//! (events, uploads, ZIP downloads), which end with their stream; the health and metrics
//! endpoints read no request body and are never behind the console's access rules.

use crate::console::Routes;
use crate::health::Health;
use crate::metrics::Metrics;
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use std::sync::Arc;
use std::time::Instant;

#[derive(Clone)]
struct AppState {
    health: Arc<Health>,
    metrics: Arc<Metrics>,
}

/// Which endpoints exist (the prototype's switches) and whether requests are logged.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Endpoints {
    pub health: bool,
    pub metrics: bool,
    pub log_requests: bool,
}

pub(crate) fn router(
    health: Arc<Health>,
    metrics: Arc<Metrics>,
    endpoints: Endpoints,
    console: Option<Routes>,
    hooks: Option<Router>,
) -> Router {
    let mut router = Router::new().route("/health/live", get(live)).route("/health/ready", get(ready));
    if endpoints.health {
        router = router.route("/health", get(full_health));
    }
    if endpoints.metrics {
        router = router.route("/metrics", get(render_metrics));
    }
    let mut router: Router = router.with_state(AppState { health, metrics });
    if let Some(hooks) = hooks {
        router = router.merge(hooks);
    }
    let mut streaming = None;
    if let Some(console) = console {
        router = router.merge(console.quick);
        streaming = Some(console.streaming);
    }
    let mut router = router.layer(middleware::from_fn(crate::deadline::time_limit));
    if let Some(streaming) = streaming {
        router = router.merge(streaming);
    }
    if endpoints.log_requests {
        router.layer(middleware::from_fn(log_request))
    } else {
        router
    }
}

async fn live() -> impl IntoResponse {
    Json(serde_json::json!({ "status": "alive" }))
}

// The checks stat folders and write a probe file: on a slow network volume that takes a while,
// so they run on a blocking thread and never hold up the runtime's (live, metrics, heartbeats).
async fn ready(State(state): State<AppState>) -> Response {
    let health = state.health.clone();
    match tokio::task::spawn_blocking(move || health.ready()).await {
        Ok((ready, body)) => {
            let code = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
            (code, Json(body)).into_response()
        }
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("readiness check failed: {e}\n")).into_response(),
    }
}

async fn full_health(State(state): State<AppState>) -> Response {
    let health = state.health.clone();
    match tokio::task::spawn_blocking(move || health.report()).await {
        Ok(report) => {
            let code = if report.healthy() { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
            (code, Json(report)).into_response()
        }
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("health check failed: {e}\n")).into_response(),
    }
}

async fn render_metrics(State(state): State<AppState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], state.metrics.render())
}

async fn log_request(request: Request, next: Next) -> Response {
    let (method, path) = (request.method().clone(), request.uri().path().to_owned());
    let started = Instant::now();
    let response = next.run(request).await;
    tracing::info!(
        %method,
        path,
        status = response.status().as_u16(),
        duration_ms = started.elapsed().as_secs_f64() * 1000.0,
        "http request"
    );
    response
}
