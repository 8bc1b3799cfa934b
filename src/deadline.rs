//! Deadline: the time limit of an HTTP request. A request not answered within it gets 503, so a
//! slow disk or store never holds a client (or a health probe) for ever; streams (events,
//! uploads, ZIP downloads) are not put under it.

use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::time::Duration;

/// Longest time one request may take before it is answered 503.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The middleware (`axum::middleware::from_fn(time_limit)`).
pub(crate) async fn time_limit(request: Request, next: Next) -> Response {
    match tokio::time::timeout(REQUEST_TIMEOUT, next.run(request)).await {
        Ok(response) => response,
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "request timed out\n").into_response(),
    }
}
