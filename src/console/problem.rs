//! Problems: every way a console request can fail, each with its HTTP status and a JSON body
//! `{error, advice?}` that says what happened and what to do.

use crate::catalog::bucket::StoreError;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use std::io;

#[derive(Debug)]
pub(super) enum Problem {
    /// The pipeline is not running yet (the engine loads).
    Starting,
    /// No such product, file or rejection (by exact name).
    NotFound(String),
    /// A request the API does not understand.
    BadRequest(String),
    /// A name that is already taken, or a file in the way.
    Conflict { error: String, advice: String },
    /// An upload over `MAX_FILE_SIZE`, or too many files at once.
    TooLarge { error: String, advice: String },
    /// Too many requests of this kind: come back after this many seconds.
    RateLimited { error: String, retry_after: u64 },
    /// No or wrong credentials.
    Unauthorized,
    /// Refused whoever asks: the console is locked, or a browser request came from another site.
    Forbidden { error: String, advice: String },
    /// Stopping, or at the limit of open streams.
    Unavailable(String),
    /// The filesystem failed (a full disk answers 507).
    Io(io::Error),
    /// A bug: a task panicked.
    Internal(String),
}

impl Problem {
    pub(super) fn status(&self) -> StatusCode {
        match self {
            Problem::Starting | Problem::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Problem::NotFound(_) => StatusCode::NOT_FOUND,
            Problem::BadRequest(_) => StatusCode::BAD_REQUEST,
            Problem::Conflict { .. } => StatusCode::CONFLICT,
            Problem::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Problem::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Problem::Unauthorized => StatusCode::UNAUTHORIZED,
            Problem::Forbidden { .. } => StatusCode::FORBIDDEN,
            Problem::Io(e) if is_full(e) => StatusCode::INSUFFICIENT_STORAGE,
            Problem::Io(e) if StoreError::is_unanswered(e) => StatusCode::SERVICE_UNAVAILABLE,
            Problem::Io(_) | Problem::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The JSON body: `error`, and `advice` when there is something to do.
    pub(super) fn body(&self) -> Value {
        let (error, advice): (String, Option<&str>) = match self {
            Problem::Starting => {
                ("starting: the removal engine is loading".into(), Some("Try again in a few seconds."))
            }
            Problem::NotFound(what) => (format!("not found: {what}"), None),
            Problem::BadRequest(error) => (error.clone(), None),
            Problem::Conflict { error, advice } | Problem::TooLarge { error, advice } => (error.clone(), Some(advice)),
            Problem::Forbidden { error, advice } => (error.clone(), Some(advice)),
            Problem::RateLimited { error, retry_after } => {
                (format!("{error}; try again in {retry_after} s"), Some("Send fewer requests at once."))
            }
            Problem::Unauthorized => (
                "authentication required".into(),
                Some("Log in at /login, or send the CONSOLE_TOKEN as `Authorization: Bearer <token>`."),
            ),
            Problem::Unavailable(error) => (error.clone(), Some("Try again shortly.")),
            Problem::Io(e) if is_full(e) => (format!("the disk is full: {e}"), Some("Free some space and try again.")),
            Problem::Io(e) if StoreError::is_unanswered(e) => {
                (format!("the bucket does not answer: {e}"), Some("Try again shortly; /health says whether it is back."))
            }
            Problem::Io(e) => (format!("file system error: {e}"), None),
            Problem::Internal(e) => (format!("internal error: {e}"), Some("See the daemon's log.")),
        };
        match advice {
            Some(advice) => json!({ "error": error, "advice": advice }),
            None => json!({ "error": error }),
        }
    }

    /// The answer with `extra` fields added to the body (an upload's `accepted` names).
    pub(super) fn respond_with(self, extra: Value) -> Response {
        let mut body = self.body();
        if let (Some(body), Value::Object(extra)) = (body.as_object_mut(), extra) {
            body.extend(extra);
        }
        let mut response = (self.status(), Json(body)).into_response();
        match &self {
            Problem::RateLimited { retry_after, .. } => {
                response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(*retry_after));
            }
            Problem::Unauthorized => {
                response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            _ => {}
        }
        response
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        self.respond_with(Value::Null)
    }
}

impl From<io::Error> for Problem {
    fn from(e: io::Error) -> Problem {
        Problem::Io(e)
    }
}

fn is_full(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOSPC | libc::EDQUOT))
}
