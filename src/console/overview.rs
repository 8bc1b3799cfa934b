//! The operator's overview (design §10): with tenants, `/` lists every tenant — jobs queued and
//! running, thumbnails made today, products and rejected files — with a link to its console
//! (`/t/NAME/`), and `/api/tenants` gives the same as JSON. Only the operator opens it: its
//! `CONSOLE_TOKEN` (or anyone on this machine on a loopback address without one); a tenant's
//! token does not. Requests under `/t/NAME/` go to that tenant's console as the tenants are now:
//! a reload adds and removes them while the server runs.

use super::access::{self, Access, Guarded};
use super::problem::Problem;
use super::{assets, blocking, Console, Routes};
use crate::config::Config;
use crate::sync::Roster;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{middleware, Json, Router};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::Arc;
use tower::ServiceExt;

pub(crate) struct Overview {
    access: Access,
    tenants: Arc<Roster<Mounted>>,
}

/// A tenant's console with its routes (built once), as requests under `/t/NAME/` reach it.
#[derive(Clone)]
pub(crate) struct Mounted {
    pub console: Arc<Console>,
    router: Router,
}

impl Mounted {
    pub(crate) fn new(console: Arc<Console>) -> Mounted {
        Mounted { router: console.routes().into_router(), console }
    }
}

impl Guarded for Overview {
    fn access(&self) -> &Access {
        &self.access
    }
}

/// One tenant's line: its name, its console's address, queued, running, made today, products,
/// rejected.
type Line = (String, String, [u64; 5]);

impl Overview {
    pub(crate) fn new(config: &Config, addr: SocketAddr, tenants: Arc<Roster<Mounted>>) -> Arc<Overview> {
        let tokens: Vec<&str> = config.console_secret().into_iter().collect();
        Arc::new(Overview { access: Access::new(addr, &tokens, None), tenants })
    }

    /// What the start-up log says about it.
    pub(crate) fn describe(&self, addr: SocketAddr) -> String {
        format!("{}; each tenant's console under /t/NAME/", self.access.describe(addr))
    }

    /// Every tenant's line (blocking: the consoles' listings).
    fn lines(&self) -> Vec<Line> {
        self.tenants
            .now()
            .iter()
            .filter_map(|Mounted { console, .. }| {
                let name = console.tenant()?.to_owned();
                let s = console.snapshot();
                let figures = [s.queue as u64, s.in_flight.max(0) as u64, s.today, s.products as u64, s.rejected as u64];
                Some((name.clone(), format!("/t/{name}/"), figures))
            })
            .collect()
    }

    pub(crate) fn routes(self: &Arc<Self>) -> Routes {
        let guard = middleware::from_fn_with_state(self.clone(), access::guard::<Overview>);
        let quick = Router::new()
            .route("/", get(page))
            .route("/api/tenants", get(list))
            .route("/login", get(access::login_page::<Overview>).post(access::login::<Overview>))
            .route("/logout", post(access::logout::<Overview>))
            .route("/assets/{file}", get(assets::asset))
            .layer(guard)
            .with_state(self.clone());
        let tenants = Router::new()
            .route("/t/{tenant}", any(dispatch))
            .route("/t/{tenant}/", any(dispatch))
            .route("/t/{tenant}/{*rest}", any(dispatch))
            .with_state(self.clone());
        // Each console puts its own quick routes under the time limit.
        Routes { quick, streaming: tenants }
    }
}

/// A request under `/t/NAME/`, handed to that tenant's console; 404 for a name not served.
async fn dispatch(State(overview): State<Arc<Overview>>, request: Request) -> Response {
    let path = request.uri().path();
    let name = path.strip_prefix("/t/").and_then(|rest| rest.split('/').next()).unwrap_or_default();
    let tenants = overview.tenants.now();
    match tenants.iter().find(|m| m.console.tenant() == Some(name)) {
        Some(mounted) => {
            // The console matches the path afresh: the parameters matched here must not reach it.
            let (mut parts, body) = request.into_parts();
            parts.extensions = Default::default();
            match mounted.router.clone().oneshot(Request::from_parts(parts, body)).await {
                Ok(response) => response,
                Err(never) => match never {},
            }
        }
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn page(State(overview): State<Arc<Overview>>) -> Result<Html<String>, Problem> {
    let lines = blocking(move || Ok(overview.lines())).await?;
    Ok(Html(assets::overview(&lines)))
}

/// `GET /api/tenants`.
async fn list(State(overview): State<Arc<Overview>>) -> Result<Json<Value>, Problem> {
    let lines = blocking(move || Ok(overview.lines())).await?;
    let items: Vec<Value> = lines
        .into_iter()
        .map(|(name, url, [queue, running, today, products, rejected])| {
            json!({ "name": name, "url": url, "queue": queue, "in_flight": running, "today": today,
                    "products": products, "rejected": rejected })
        })
        .collect();
    Ok(Json(json!({ "items": items })))
}
