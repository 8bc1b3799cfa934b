//! Routes: the console's URLs — at `/` for the deployment's catalog, under `/t/NAME/` for a
//! tenant's (design §10). `/t/NAME` itself redirects to `/t/NAME/`, where the page's relative
//! links resolve. Every route but the login page and the assets is behind the guard.

use super::{access, api, assets, events, files, upload, zip, Console};
use axum::extract::DefaultBodyLimit;
use axum::response::Redirect;
use axum::routing::{delete, get, post};
use axum::{middleware, Router};
use std::sync::Arc;

/// The console's routes, split by how long a request may take: `quick` ones get the server's
/// request time limit, `streaming` ones (events, uploads, ZIP downloads) end with their stream.
pub(crate) struct Routes {
    pub quick: Router,
    pub streaming: Router,
}

impl Routes {
    /// One router: the quick routes under the request time limit, the streaming ones not.
    pub(crate) fn into_router(self) -> Router {
        self.quick.layer(middleware::from_fn(crate::deadline::time_limit)).merge(self.streaming)
    }
}

impl Console {
    pub(crate) fn routes(self: &Arc<Self>) -> Routes {
        let guard = middleware::from_fn_with_state(self.clone(), access::guard::<Console>);
        let quick = Router::new()
            .route("/login", get(access::login_page::<Console>).post(access::login::<Console>))
            .route("/logout", post(access::logout::<Console>))
            .route("/assets/{file}", get(assets::asset))
            .route("/api/status", get(api::status))
            .route("/api/products", get(api::products))
            .route("/api/backgrounds", get(api::backgrounds))
            .route("/api/rejected", get(api::rejected))
            .route("/api/rejected/{name}/retry", post(api::retry))
            .route("/api/rejected/{name}", delete(api::delete_rejected))
            .route("/files/thumbnails/{file}", get(files::thumbnail))
            .route("/files/previews/{file}", get(files::preview))
            .route("/files/originals/{name}", get(files::original))
            .route("/files/backgrounds/{name}", get(files::background));
        let streaming = Router::new()
            .route("/api/upload", post(upload::upload).layer(DefaultBodyLimit::disable()))
            .route("/api/thumbnails.zip", get(zip::download))
            .route("/api/events", get(events::stream))
            .layer(guard.clone())
            .with_state(self.clone());
        let prefix = self.access.prefix().to_owned();
        if prefix.is_empty() {
            let quick = quick.route("/", get(assets::index)).layer(guard).with_state(self.clone());
            return Routes { quick, streaming };
        }
        let home = format!("{prefix}/");
        let index = Router::new().route(&home, get(assets::index)).layer(guard.clone()).with_state(self.clone());
        let to_home = get(move || async move { Redirect::permanent(&home) });
        let quick = Router::new()
            .route(&prefix, to_home)
            .merge(index)
            .nest(&prefix, quick.layer(guard).with_state(self.clone()));
        Routes { quick, streaming: Router::new().nest(&prefix, streaming) }
    }
}
