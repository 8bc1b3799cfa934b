//! The JSON API the page uses and scripts may call (README, "Web console"): status, products,
//! backgrounds, rejected files and the actions on them. Uploads, the ZIP and the event stream
//! have files of their own.

use super::catalog::Query as ProductQuery;
use super::problem::Problem;
use super::{blocking, Console};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use std::sync::Arc;

/// `GET /api/status`: the status bar's figures now (the page's fallback when events fail).
pub(super) async fn status(State(console): State<Arc<Console>>) -> Result<Json<Value>, Problem> {
    let snapshot = blocking(move || Ok(console.snapshot())).await?;
    Ok(Json(serde_json::to_value(snapshot).map_err(|e| Problem::Internal(e.to_string()))?))
}

/// `GET /api/products?page=&per_page=&q=&state=`: one page of the catalog, newest first.
pub(super) async fn products(
    State(console): State<Arc<Console>>,
    Query(query): Query<ProductQuery>,
) -> Result<Json<Value>, Problem> {
    blocking(move || console.products(&query)).await.map(Json)
}

/// `GET /api/backgrounds`.
pub(super) async fn backgrounds(State(console): State<Arc<Console>>) -> Result<Json<Value>, Problem> {
    blocking(move || console.backgrounds()).await.map(Json)
}

/// `GET /api/rejected`: every file in `rejeitados/` with its reason and advice, newest first.
pub(super) async fn rejected(State(console): State<Arc<Console>>) -> Result<Json<Value>, Problem> {
    blocking(move || {
        let snapshot = console.rejected.snapshot();
        let items: Vec<Value> = snapshot.entries.iter().map(|r| r.to_json()).collect();
        Ok(json!({ "items": items }))
    })
    .await
    .map(Json)
}

/// `POST /api/rejected/{name}/retry`: back into its folder; the watcher takes it from there.
pub(super) async fn retry(
    State(console): State<Arc<Console>>,
    Path(name): Path<String>,
) -> Result<Json<Value>, Problem> {
    let me = console.clone();
    let (kind, moved) = blocking(move || me.rejected.retry(&name)).await?;
    console.arrived(kind, &moved);
    Ok(Json(json!({ "name": moved, "folder": kind.label() })))
}

/// `DELETE /api/rejected/{name}`.
pub(super) async fn delete_rejected(
    State(console): State<Arc<Console>>,
    Path(name): Path<String>,
) -> Result<Response, Problem> {
    blocking(move || console.rejected.delete(&name)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
