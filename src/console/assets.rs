//! Assets: the page, its script modules, stylesheet and icon, embedded in the binary (no build
//! step, no CDN). Served with an ETag so a browser revalidates them cheaply after an upgrade.
//! The two server-rendered pages (login, notices) fill their few fields with escaped text.

use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

const INDEX: &str = include_str!("assets/index.html");
const LOGIN: &str = include_str!("assets/login.html");
const NOTICE: &str = include_str!("assets/notice.html");
const OVERVIEW: &str = include_str!("assets/overview.html");

const JS: &str = "text/javascript; charset=utf-8";

/// Files under `/assets/`, by name.
const FILES: &[(&str, &str, &str)] = &[
    ("console.css", "text/css; charset=utf-8", include_str!("assets/console.css")),
    ("icon.svg", "image/svg+xml", include_str!("assets/icon.svg")),
    ("app.js", JS, include_str!("assets/app.js")),
    ("api.js", JS, include_str!("assets/api.js")),
    ("dom.js", JS, include_str!("assets/dom.js")),
    ("status.js", JS, include_str!("assets/status.js")),
    ("catalog.js", JS, include_str!("assets/catalog.js")),
    ("detail.js", JS, include_str!("assets/detail.js")),
    ("backgrounds.js", JS, include_str!("assets/backgrounds.js")),
    ("rejected.js", JS, include_str!("assets/rejected.js")),
    ("upload.js", JS, include_str!("assets/upload.js")),
    ("tenants.js", JS, include_str!("assets/tenants.js")),
];

pub(super) async fn index(headers: HeaderMap) -> Response {
    revalidated(&headers, "text/html; charset=utf-8", INDEX)
}

pub(super) async fn asset(Path(file): Path<String>, headers: HeaderMap) -> Response {
    match FILES.iter().find(|(name, ..)| *name == file) {
        Some((_, kind, body)) => revalidated(&headers, kind, body),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// The body with its ETag, or 304 when the browser already has it.
fn revalidated(headers: &HeaderMap, kind: &'static str, body: &'static str) -> Response {
    let etag = format!("\"{}\"", &blake3::hash(body.as_bytes()).to_hex()[..16]);
    let cached = headers.get(header::IF_NONE_MATCH).is_some_and(|v| v.as_bytes() == etag.as_bytes());
    let mut response = if cached { StatusCode::NOT_MODIFIED.into_response() } else { body.into_response() };
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(etag) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, etag);
    }
    response
}

/// The login page, with a message when the last attempt failed.
pub(super) fn login(message: Option<&str>) -> String {
    let message = message.map(|m| format!("<p class=\"notice-error\" role=\"alert\">{}</p>", escape(m)));
    LOGIN.replace("{{message}}", &message.unwrap_or_default())
}

/// A page that says why the console cannot be used, and what to do.
pub(super) fn notice(error: &str, advice: &str) -> String {
    NOTICE.replace("{{error}}", &escape(error)).replace("{{advice}}", &escape(advice))
}

/// The operator's overview of the tenants: one row per tenant (its name, its console's address,
/// then its figures).
pub(super) fn overview(rows: &[(String, String, [u64; 5])]) -> String {
    let rows: String = rows
        .iter()
        .map(|(name, url, figures)| {
            let cells: String = figures.iter().map(|n| format!("<td>{n}</td>")).collect();
            format!("<tr><td><a href=\"{}\">{}</a></td>{cells}</tr>", escape(url), escape(name))
        })
        .collect();
    OVERVIEW.replace("{{rows}}", &rows)
}

/// Text made safe inside HTML elements and attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_rendered_text_is_escaped() {
        let page = notice("<script>alert(1)</script>", "a \"quoted\" & 'single'");
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(page.contains("a &quot;quoted&quot; &amp; &#39;single&#39;"));
        assert!(!page.contains("<script>alert"));
        assert!(login(Some("<b>")).contains("&lt;b&gt;"));
        assert!(!login(None).contains("{{message}}"));
    }

    #[test]
    fn the_page_loads_no_inline_script_and_every_module_it_imports_is_served() {
        assert!(!INDEX.contains("<script>") && !INDEX.contains("onclick") && !INDEX.contains("style="));
        for (name, _, body) in FILES.iter().filter(|(n, ..)| n.ends_with(".js")) {
            for line in body.lines().filter(|l| l.starts_with("import ")) {
                let module = line.rsplit("\"./").next().unwrap().trim_end_matches("\";");
                assert!(FILES.iter().any(|(n, ..)| *n == module), "{name} imports {module}, which is not served");
            }
        }
    }
}
