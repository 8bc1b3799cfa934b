//! The operator's overview (design §10): with tenants, `/` lists every tenant — jobs queued and
//! running, thumbnails made today, products and rejected files — with a link to its console
//! (`/t/NAME/`), and `/api/tenants` gives the same as JSON. Only the operator opens it: its
//! `CONSOLE_TOKEN` (or anyone on this machine on a loopback address without one); a tenant's
//! token does not.

use super::access::{self, Access, Guarded};
use super::problem::Problem;
use super::{assets, blocking, Console, Routes};
use crate::config::Config;
use axum::extract::State;
use axum::response::Html;
use axum::routing::{get, post};
use axum::{middleware, Json, Router};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::Arc;

pub(crate) struct Overview {
    access: Access,
    tenants: Vec<Arc<Console>>,
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
    pub(crate) fn new(config: &Config, addr: SocketAddr, tenants: Vec<Arc<Console>>) -> Arc<Overview> {
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
            .iter()
            .filter_map(|console| {
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
        Routes { quick, streaming: Router::new() }
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
