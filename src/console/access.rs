//! Access: who may use the console, CSRF, the security headers of every answer, and the login.
//!
//! Three modes, fixed at start:
//! - **open** — loopback `HTTP_ADDR` and no `CONSOLE_TOKEN`: anyone on this machine. The `Host`
//!   header must name a loopback host, so a web page cannot reach the console by pointing its own
//!   domain at 127.0.0.1 (DNS rebinding).
//! - **token** — `CONSOLE_TOKEN` set (on any address), or for a tenant's console (`/t/NAME/`) the
//!   tenant's token or the operator's `CONSOLE_TOKEN`: a browser logs in once at `login` and gets
//!   an HttpOnly, SameSite=Strict cookie scoped to its console (a value derived from the token, so
//!   changing the token logs everyone out); a script sends `Authorization: Bearer <token>`. Failed
//!   logins are limited. A tenant's token opens only its own console.
//! - **locked** — a non-loopback `HTTP_ADDR` without a token: 403 with advice (`/health*` and
//!   `/metrics` are not the console's and stay open).
//!
//! CSRF: a state-changing request (POST, PUT, PATCH, DELETE) that carries no `Authorization`
//! header must come from the console's own origin — `Sec-Fetch-Site: same-origin`, or an `Origin`
//! equal to the `Host` — and one with the login cookie must say so. On loopback, a request
//! without cookie, `Origin` or `Sec-Fetch-Site` is a script (curl) and passes. Reads other sites
//! try (`Sec-Fetch-Site: cross-site`, other than following a link) are refused too, and every
//! answer forbids being framed or embedded elsewhere.

use super::problem::Problem;
use super::{assets, Console};
use crate::sync::Mutex;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Form;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The login cookie's name (a tenant's console adds `_<name>`).
const COOKIE: &str = "thumbgen_console";
/// How long a login lasts.
const SESSION_SECONDS: u64 = 30 * 86400;
/// Failed logins allowed per [`LOGIN_WINDOW`], for everyone together.
const LOGIN_FAILURES: usize = 10;
const LOGIN_WINDOW: Duration = Duration::from_secs(60);

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// One accepted token: its hash, and the login cookie's value it gives.
struct Key {
    bearer: blake3::Hash,
    session: String,
}

enum Mode {
    Open,
    Token(Vec<Key>),
    Locked,
}

pub(super) struct Access {
    mode: Mode,
    /// Where the console is (`""`, or `/t/NAME` for a tenant's), and its cookie's name.
    prefix: String,
    cookie: String,
    failures: Mutex<VecDeque<Instant>>,
}

/// Who a request comes from, once let in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Caller {
    /// `Authorization: Bearer` with the token: not a browser's ambient credential.
    Script,
    /// The login cookie.
    Browser,
    /// No credentials: the open mode, or the login page itself.
    Anonymous,
}

impl Access {
    /// The console of the deployment (`tenant` `None`) or of a tenant, opened by any of `tokens`
    /// (none: open on loopback, locked elsewhere).
    pub(super) fn new(addr: SocketAddr, tokens: &[&str], tenant: Option<&str>) -> Access {
        let keys: Vec<Key> = tokens
            .iter()
            .map(|token| Key {
                bearer: blake3::hash(token.as_bytes()),
                session: blake3::Hash::from(blake3::derive_key("thumbgen console session v1", token.as_bytes()))
                    .to_hex()
                    .to_string(),
            })
            .collect();
        let mode = match keys.is_empty() {
            false => Mode::Token(keys),
            true if addr.ip().is_loopback() => Mode::Open,
            true => Mode::Locked,
        };
        let (prefix, cookie) = match tenant {
            Some(name) => (format!("/t/{name}"), format!("{COOKIE}_{name}")),
            None => (String::new(), COOKIE.to_owned()),
        };
        Access { mode, prefix, cookie, failures: Mutex::new(VecDeque::new()) }
    }

    pub(super) fn describe(&self, addr: SocketAddr) -> String {
        let at = format!("http://{addr}{}/", self.prefix);
        match self.mode {
            Mode::Open => format!("web console at {at}"),
            Mode::Token(_) if self.prefix.is_empty() => format!("web console at {at} (log in with CONSOLE_TOKEN)"),
            Mode::Token(_) => format!("web console at {at} (log in with the tenant's token or CONSOLE_TOKEN)"),
            Mode::Locked => format!("web console locked on {addr}: {LOCKED_ADVICE}"),
        }
    }

    /// True when browsers log in (a token is set).
    pub(super) fn uses_login(&self) -> bool {
        matches!(self.mode, Mode::Token(_))
    }

    /// Where this console's pages are: `""`, or `/t/NAME` for a tenant's.
    pub(super) fn prefix(&self) -> &str {
        &self.prefix
    }

    /// A request's path within this console (routes nested under the prefix see it removed
    /// already; the page at `/t/NAME/` does not).
    fn local<'a>(&self, path: &'a str) -> &'a str {
        match path.strip_prefix(self.prefix.as_str()) {
            Some(rest) if !self.prefix.is_empty() && rest.is_empty() => "/",
            Some(rest) if !self.prefix.is_empty() => rest,
            _ => path,
        }
    }

    fn caller(&self, headers: &HeaderMap, public: bool) -> Result<Caller, Problem> {
        let Mode::Token(keys) = &self.mode else { return Ok(Caller::Anonymous) };
        if let Some(presented) = bearer_of(headers) {
            // Compared as hashes: equality of `blake3::Hash` takes constant time.
            let presented = blake3::hash(presented.as_bytes());
            return if keys.iter().any(|k| k.bearer == presented) { Ok(Caller::Script) } else { Err(Problem::Unauthorized) };
        }
        // A tenant's console also takes the overview's cookie (`Path=/`): the operator logs in once
        // at `/` and opens every tenant's console. Only the operator's token makes that cookie,
        // and it opens a tenant's console only because the operator's token does.
        let known = |cookie: &str| {
            let presented = blake3::hash(cookie.as_bytes());
            keys.iter().any(|k| blake3::hash(k.session.as_bytes()) == presented)
        };
        let logged_in = [self.cookie.as_str(), COOKIE].iter().filter_map(|name| cookie_of(headers, name)).any(known);
        match logged_in {
            true => Ok(Caller::Browser),
            false if public => Ok(Caller::Anonymous),
            false => Err(Problem::Unauthorized),
        }
    }
}

const LOCKED_ADVICE: &str = "HTTP_ADDR is not a loopback address, so the console needs a secret: set CONSOLE_TOKEN \
                             (e.g. `openssl rand -hex 16`) and restart, or bind HTTP_ADDR to 127.0.0.1. /health and \
                             /metrics stay open.";

/// What the guard and the login stand in front of: a catalog's console, or the operator's
/// overview of the tenants.
pub(super) trait Guarded: Send + Sync + 'static {
    fn access(&self) -> &Access;
}

impl Guarded for Console {
    fn access(&self) -> &Access {
        &self.access
    }
}

/// The middleware in front of every console route.
pub(super) async fn guard<T: Guarded>(State(console): State<Arc<T>>, request: Request, next: Next) -> Response {
    let access = console.access();
    let mut response = match admit(access, &request) {
        Ok(()) => next.run(request).await,
        Err(problem) if wants_page(access, &request) => page_for(access, problem),
        Err(problem) => problem.into_response(),
    };
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::HeaderName::from_static("cross-origin-resource-policy"), "same-origin"),
        (header::HeaderName::from_static("cross-origin-opener-policy"), "same-origin"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    headers.entry(header::CACHE_CONTROL).or_insert(HeaderValue::from_static("no-store"));
    response
}

/// Lets a request in, or says why not.
fn admit(access: &Access, request: &Request) -> Result<(), Problem> {
    let headers = request.headers();
    let path = access.local(request.uri().path());
    let public = path == "/login" || path.starts_with("/assets/");
    match access.mode {
        Mode::Locked if !path.starts_with("/assets/") => {
            return Err(Problem::Forbidden { error: "the console is locked".into(), advice: LOCKED_ADVICE.into() })
        }
        Mode::Open if !loopback_host(headers) => {
            return Err(Problem::Forbidden {
                error: "this console answers only to a loopback host name".into(),
                advice: "Open it as http://127.0.0.1:<port>/ or http://localhost:<port>/.".into(),
            })
        }
        _ => {}
    }
    let caller = access.caller(headers, public)?;
    let site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    let unsafe_method = !matches!(*request.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if unsafe_method && caller != Caller::Script {
        let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
        let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
        let same_origin = match (site, origin) {
            (Some(site), _) => site == "same-origin",
            (None, Some(origin)) => host.is_some_and(|h| origin_authority(origin) == Some(h)),
            // No browser headers at all: a script, unless it holds the browser's cookie.
            (None, None) => caller == Caller::Anonymous,
        };
        if !same_origin {
            return Err(cross_site());
        }
    } else if site == Some("cross-site") && headers.get("sec-fetch-mode").is_none_or(|m| m != "navigate") {
        return Err(cross_site());
    }
    Ok(())
}

fn cross_site() -> Problem {
    Problem::Forbidden {
        error: "cross-site request refused".into(),
        advice: "Use the console's own page, or call the API from a script with `Authorization: Bearer`.".into(),
    }
}

/// `host:port` of an `Origin` value (`http://host:port`).
fn origin_authority(origin: &str) -> Option<&str> {
    origin.split_once("://").map(|(_, rest)| rest.trim_end_matches('/'))
}

/// True when the `Host` header names this machine (or is absent, as from HTTP/1.0 scripts).
fn loopback_host(headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|v| v.to_str().ok()) else { return true };
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    name.eq_ignore_ascii_case("localhost")
        || name.to_ascii_lowercase().ends_with(".localhost")
        || name.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn bearer_of(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

fn cookie_of<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| pair.trim().strip_prefix(name)?.strip_prefix('='))
}

/// A browser asking for a page (not the API) gets a page back.
fn wants_page(access: &Access, request: &Request) -> bool {
    let path = access.local(request.uri().path());
    request.method() == Method::GET && (path == "/" || path == "/login")
}

/// The page for a refused page request: the login form when credentials are missing.
fn page_for(access: &Access, problem: Problem) -> Response {
    match problem {
        Problem::Unauthorized => Redirect::to(&format!("{}/login", access.prefix)).into_response(),
        other => {
            let body = other.body();
            let text = |k: &str| body[k].as_str().unwrap_or_default().to_owned();
            (other.status(), Html(assets::notice(&text("error"), &text("advice")))).into_response()
        }
    }
}

pub(super) async fn login_page<T: Guarded>(State(console): State<Arc<T>>) -> Response {
    match console.access().mode {
        Mode::Token(_) => Html(assets::login(None)).into_response(),
        _ => Redirect::to(&format!("{}/", console.access().prefix)).into_response(),
    }
}

#[derive(serde::Deserialize)]
pub(super) struct Login {
    token: String,
}

pub(super) async fn login<T: Guarded>(
    State(console): State<Arc<T>>,
    headers: HeaderMap,
    Form(form): Form<Login>,
) -> Response {
    let access = console.access();
    let home = format!("{}/", access.prefix);
    let Mode::Token(keys) = &access.mode else { return Redirect::to(&home).into_response() };
    let presented = blake3::hash(form.token.trim().as_bytes());
    let key = keys.iter().find(|k| k.bearer == presented);
    {
        let mut failures = access.failures.lock();
        while failures.front().is_some_and(|t| t.elapsed() > LOGIN_WINDOW) {
            failures.pop_front();
        }
        if failures.len() >= LOGIN_FAILURES {
            let page = assets::login(Some("Too many failed attempts; wait a minute and try again."));
            return (StatusCode::TOO_MANY_REQUESTS, Html(page)).into_response();
        }
        if key.is_none() {
            failures.push_back(Instant::now());
            return (StatusCode::UNAUTHORIZED, Html(assets::login(Some("That is not the console token."))))
                .into_response();
        }
    }
    let secure = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()).is_some_and(|o| o.starts_with("https://"));
    let session = &key.expect("checked above").session;
    let cookie = format!(
        "{}={session}; Path={home}; HttpOnly; SameSite=Strict; Max-Age={SESSION_SECONDS}{}",
        access.cookie,
        if secure { "; Secure" } else { "" }
    );
    with_cookie(Redirect::to(&home), &cookie)
}

pub(super) async fn logout<T: Guarded>(State(console): State<Arc<T>>) -> Response {
    let access = console.access();
    let cookie = format!("{}=; Path={}/; HttpOnly; SameSite=Strict; Max-Age=0", access.cookie, access.prefix);
    with_cookie(Redirect::to(&format!("{}/login", access.prefix)), &cookie)
}

fn with_cookie(redirect: Redirect, cookie: &str) -> Response {
    let mut response = redirect.into_response();
    if let Ok(value) = HeaderValue::from_str(cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(*k, HeaderValue::from_str(v).unwrap());
        }
        map
    }

    #[test]
    fn only_loopback_host_names_reach_the_open_console() {
        for host in ["127.0.0.1:8501", "localhost:8501", "[::1]:8501", "LOCALHOST", "app.localhost:1"] {
            assert!(loopback_host(&headers(&[("host", host)])), "{host}");
        }
        for host in ["evil.example:8501", "192.168.1.5:8501", "[2001:db8::1]:80"] {
            assert!(!loopback_host(&headers(&[("host", host)])), "{host}");
        }
    }

    #[test]
    fn the_cookie_and_the_bearer_are_read_from_their_headers() {
        let h = headers(&[("cookie", "a=1; thumbgen_console=abc"), ("authorization", "Bearer  tok ")]);
        assert_eq!(cookie_of(&h, COOKIE), Some("abc"));
        assert_eq!(bearer_of(&h), Some("tok"));
        assert_eq!(origin_authority("http://127.0.0.1:8501"), Some("127.0.0.1:8501"));
    }

    #[test]
    fn the_mode_follows_the_address_and_the_token() {
        let loopback: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let any: SocketAddr = "0.0.0.0:1".parse().unwrap();
        assert!(matches!(Access::new(loopback, &[], None).mode, Mode::Open));
        assert!(matches!(Access::new(any, &[], None).mode, Mode::Locked));
        assert!(matches!(Access::new(loopback, &["t"], None).mode, Mode::Token(_)));
        let access = Access::new(any, &["secret-token-1234"], Some("loja"));
        let Mode::Token(keys) = &access.mode else { unreachable!() };
        assert!(!keys[0].session.contains("secret"), "the cookie is not the token");
        assert_eq!((access.prefix(), access.cookie.as_str()), ("/t/loja", "thumbgen_console_loja"));
        let ok = headers(&[("authorization", "Bearer secret-token-1234")]);
        assert_eq!(access.caller(&ok, false).unwrap(), Caller::Script);
        assert!(access.caller(&headers(&[("authorization", "Bearer nope")]), true).is_err());
        assert_eq!(access.caller(&headers(&[]), true).unwrap(), Caller::Anonymous);
    }
}
