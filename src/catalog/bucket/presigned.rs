//! Requests `object_store` has no call for (a listing that survives any key, a DELETE with
//! `If-Match`) go as presigned URLs through thumbgen's HTTP client, retried like its own.

use super::StoreError;
use std::time::Duration;

/// Sends a presigned request, and again after a passing failure (no answer, 429, 5xx), as
/// `object_store` does for its own requests: three more times, 100 ms apart and doubling.
pub(super) async fn send_presigned(request: impl Fn() -> reqwest::RequestBuilder) -> Result<reqwest::Response, reqwest::Error> {
    let mut wait = Duration::from_millis(100);
    for _ in 0..3 {
        match request().send().await {
            Ok(response) if !passing(response.status().as_u16()) => return Ok(response),
            _ => tokio::time::sleep(wait).await,
        }
        wait *= 2;
    }
    request().send().await
}

/// Whether an HTTP status says the store may answer later.
fn passing(status: u16) -> bool {
    status == 429 || status >= 500
}

/// The error of a request the store answered with `status`.
pub(super) fn unanswered(status: u16, what: String, source: crate::error::Source) -> StoreError {
    match passing(status) {
        true => StoreError::Unavailable { what, source },
        false => StoreError::Failed { what, source },
    }
}

