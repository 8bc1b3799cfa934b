//! `POST /hooks/s3`: event notifications as a fast path to the listing (design §9). The body is
//! the S3 event JSON that AWS (through SNS or an HTTP endpoint), MinIO and Ceph RGW send —
//! `Records[].s3.bucket.name` and `Records[].s3.object.key` (URL-encoded) — an SNS `Notification`
//! wrapping it in `Message`, or an EventBridge event (`detail.bucket.name`, `detail.object.key`).
//!
//! A notification is a hint, never the only source and never trusted for content: each key in the
//! bucket and prefix of a catalog this node serves (one per tenant with tenants) that names an input
//! is looked at (HEAD) and its version queued, for that catalog, unless the lister (or an earlier
//! hint) queued it already. Authenticated by `S3_WEBHOOK_TOKEN`
//! (`Authorization: Bearer TOKEN`, or `?token=TOKEN` for senders that cannot set a header); the
//! route answers 403 with advice while no token is set.

use crate::catalog::bucket::{is_input, stamp, Bucket};
use crate::job::{InputKind, Job};
use crate::listing::Discovered;
use crate::sync::Roster;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;

/// Largest notification body read.
const MAX_BODY: usize = 1 << 20;

/// A catalog in a bucket, and what its lister and notifications queued.
pub(crate) type Notified = (Arc<Bucket>, Arc<Discovered>);

#[derive(Clone)]
struct Hooks {
    catalogs: Arc<Roster<Notified>>,
    token: Option<String>,
}

/// The route, for the catalogs in buckets as they are now (a reload adds and removes tenants).
pub(crate) fn routes(catalogs: Arc<Roster<Notified>>, token: Option<String>) -> Router {
    Router::new()
        .route("/hooks/s3", post(notified))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(Hooks { catalogs, token })
}

async fn notified(
    State(hooks): State<Hooks>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(token) = &hooks.token else {
        let advice = "set S3_WEBHOOK_TOKEN (at least 16 characters) and send it as `Authorization: Bearer TOKEN`";
        return (StatusCode::FORBIDDEN, Json(json!({ "error": "webhook not enabled", "advice": advice }))).into_response();
    };
    let bearer = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let given = bearer.or(query.get("token").map(String::as_str)).unwrap_or_default();
    if !same(given.as_bytes(), token.as_bytes()) {
        return (StatusCode::UNAUTHORIZED, Json(json!({ "error": "wrong or missing webhook token" }))).into_response();
    }
    let Ok(event) = serde_json::from_slice::<Value>(&body) else {
        return (StatusCode::BAD_REQUEST, Json(json!({ "error": "the body is not JSON" }))).into_response();
    };
    let mut objects = Vec::new();
    collect(&event, &mut objects);
    let (mut queued, mut ignored) = (0, 0);
    let catalogs = hooks.catalogs.now();
    for (bucket, key) in objects {
        let taken = match input_of(&catalogs, &bucket, &key) {
            Some((catalog, job)) => offer(catalog, job).await,
            None => false,
        };
        if taken {
            queued += 1;
        } else {
            ignored += 1;
        }
    }
    (StatusCode::ACCEPTED, Json(json!({ "queued": queued, "ignored": ignored }))).into_response()
}

/// The catalog and input a notified key names, if it is in the bucket and prefix of one.
fn input_of<'a>(catalogs: &'a [Notified], bucket: &str, key: &str) -> Option<(&'a Notified, Job)> {
    catalogs.iter().filter(|(b, _)| b.name() == bucket).find_map(|catalog| {
        InputKind::ALL.into_iter().find_map(|kind| {
            let name = key.strip_prefix(&catalog.0.key(kind.label(), ""))?;
            is_input(name).then(|| (catalog, Job::new(kind, name)))
        })
    })
}

/// Looks at the object and queues its version for its catalog unless it was queued already.
async fn offer((bucket, discovered): &Notified, job: Job) -> bool {
    let Ok(head) = bucket.head(&bucket.key(job.kind.label(), &job.name)).await else {
        return false;
    };
    let look = stamp(head.size, head.modified, head.etag.as_deref());
    discovered.offer(job, look, head.modified)
}

/// Every (bucket, key) an S3, SNS-wrapped or EventBridge notification names.
fn collect(event: &Value, out: &mut Vec<(String, String)>) {
    if let Some(message) = event.get("Message").and_then(Value::as_str) {
        if let Ok(inner) = serde_json::from_str::<Value>(message) {
            collect(&inner, out);
        }
    }
    for record in event.get("Records").and_then(Value::as_array).into_iter().flatten() {
        let s3 = &record["s3"];
        if let (Some(bucket), Some(key)) = (s3["bucket"]["name"].as_str(), s3["object"]["key"].as_str()) {
            if let Some(key) = url_decoded(key) {
                out.push((bucket.to_owned(), key));
            }
        }
    }
    let detail = &event["detail"];
    if let (Some(bucket), Some(key)) = (detail["bucket"]["name"].as_str(), detail["object"]["key"].as_str()) {
        out.push((bucket.to_owned(), key.to_owned()));
    }
}

/// A key as S3 notifications carry it (form encoding: `+` is a space).
fn url_decoded(key: &str) -> Option<String> {
    let spaced = key.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced).decode_utf8().ok().map(|k| k.into_owned())
}

/// Compares two secrets in time that does not depend on where they differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_read_from_s3_sns_and_eventbridge_notifications() {
        let s3 = json!({ "Records": [
            { "eventName": "ObjectCreated:Put", "s3": { "bucket": { "name": "b" }, "object": { "key": "produtos/foto+1%23.jpg" } } },
            { "eventName": "s3:ObjectCreated:Put", "s3": { "bucket": { "name": "b" }, "object": { "key": "backgrounds/wood.jpg" } } }
        ]});
        let sns = json!({ "Type": "Notification", "Message": s3.to_string() });
        let bridge = json!({ "detail-type": "Object Created", "detail": { "bucket": { "name": "b" }, "object": { "key": "produtos/x y.jpg" } } });
        let mut out = Vec::new();
        for event in [&s3, &sns, &bridge] {
            collect(event, &mut out);
        }
        let keys: Vec<&str> = out.iter().map(|(_, k)| k.as_str()).collect();
        assert_eq!(keys, ["produtos/foto 1#.jpg", "backgrounds/wood.jpg", "produtos/foto 1#.jpg", "backgrounds/wood.jpg", "produtos/x y.jpg"]);
        assert!(out.iter().all(|(b, _)| b == "b"));
        assert!(same(b"secret-token", b"secret-token") && !same(b"secret-token", b"secret-tokem") && !same(b"a", b"ab"));
    }
}
