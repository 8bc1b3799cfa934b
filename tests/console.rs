//! The web console over HTTP, against the running binary: who may use it, CSRF, names that try to
//! leave the folders, uploads that are too large, cut off or in the way, hostile names, the
//! catalog's states, rejections with retry and delete, previews, events and ZIP downloads.

mod common;

use common::synth::{self, Shape};
use common::web::{multipart, partial_upload, request, Reply};
use common::{wait_until, Daemon, Sandbox};
use serde_json::Value;
use std::io::Write;
use std::time::Duration;

const LONG: Duration = Duration::from_secs(120);
const TOKEN: &str = "console-test-token-0123456789";

fn call(d: &Daemon, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
    request(d.port, method, path, headers, body).unwrap_or_else(|e| panic!("{method} {path}: {e}\n{}", d.log_text()))
}

fn get(d: &Daemon, path: &str) -> Reply {
    call(d, "GET", path, &[], b"")
}

/// Uploads `files` into `folder` the way a script does (no browser headers).
fn upload(d: &Daemon, query: &str, files: &[(&str, &[u8])], extra: &[(&str, &str)]) -> Reply {
    let (kind, body) = multipart(files);
    let mut headers = vec![("Content-Type", kind.as_str())];
    headers.extend_from_slice(extra);
    call(d, "POST", &format!("/api/upload?{query}"), &headers, &body)
}

/// Every name in a folder, hidden ones too.
fn all_names(sb: &Sandbox, folder: &str) -> Vec<String> {
    sb.files(folder)
}

fn products(d: &Daemon) -> Vec<Value> {
    get(d, "/api/products?per_page=200").json()["items"].as_array().unwrap().clone()
}

fn product<'a>(items: &'a [Value], name: &str) -> Option<&'a Value> {
    items.iter().find(|p| p["name"] == name)
}

fn photo(seed: u64) -> Vec<u8> {
    synth::product_jpeg(Shape::Box, [180, ((40 + seed * 30) % 256) as u8, 40], seed)
}

fn background() -> Vec<u8> {
    synth::jpeg(&synth::background(320, 240))
}

#[test]
fn the_console_is_open_on_loopback_locked_on_other_addresses_and_can_be_removed() {
    let sb = Sandbox::new();
    let d = sb.start(&[]);
    let page = get(&d, "/");
    assert_eq!(page.status, 200);
    let csp = page.header("content-security-policy").unwrap();
    assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(page.header("x-frame-options"), Some("DENY"));
    assert!(page.text().contains("src=\"assets/app.js\"") && !page.text().contains("<script>"));
    assert_eq!(get(&d, "/api/status").json()["engine"]["name"], "local");
    assert_eq!(get(&d, "/assets/app.js").header("content-type"), Some("text/javascript; charset=utf-8"));
    assert_eq!(get(&d, "/assets/../Cargo.toml").status, 404);
    drop(d);

    let d = sb.start(&[("HTTP_ADDR", "0.0.0.0:0")]);
    let locked = get(&d, "/");
    assert_eq!(locked.status, 403);
    assert!(locked.text().contains("CONSOLE_TOKEN"), "the refusal says what to do: {}", locked.text());
    let api = get(&d, "/api/products");
    assert_eq!(api.status, 403);
    assert!(api.json()["advice"].as_str().unwrap().contains("CONSOLE_TOKEN"));
    assert_eq!(get(&d, "/health").status, 200, "health stays open");
    assert_eq!(get(&d, "/metrics").status, 200, "metrics stay open");
    drop(d);

    let d = sb.start(&[("CONSOLE_ENABLED", "false")]);
    assert_eq!(get(&d, "/").status, 404);
    assert_eq!(get(&d, "/api/products").status, 404);
    assert_eq!(get(&d, "/health/ready").status, 200);
}

#[test]
fn with_a_token_browsers_log_in_with_a_strict_cookie_scripts_use_bearer_and_csrf_is_refused() {
    let sb = Sandbox::new();
    let d = sb.start(&[("HTTP_ADDR", "0.0.0.0:0"), ("CONSOLE_TOKEN", TOKEN)]);
    let page = get(&d, "/");
    assert_eq!((page.status, page.header("location")), (303, Some("/login")));
    assert_eq!(get(&d, "/login").status, 200);
    let api = get(&d, "/api/products");
    assert_eq!(api.status, 401);
    assert_eq!(api.header("www-authenticate"), Some("Bearer"));
    let bearer = format!("Bearer {TOKEN}");
    assert_eq!(call(&d, "GET", "/api/products", &[("Authorization", &bearer)], b"").status, 200);
    assert_eq!(call(&d, "GET", "/api/products", &[("Authorization", "Bearer wrong")], b"").status, 401);
    assert_eq!(get(&d, "/health").status, 200);

    let form = [("Content-Type", "application/x-www-form-urlencoded")];
    let wrong = call(&d, "POST", "/login", &form, b"token=guess");
    assert_eq!(wrong.status, 401);
    assert!(wrong.header("set-cookie").is_none());
    let login = call(&d, "POST", "/login", &form, format!("token={TOKEN}").as_bytes());
    assert_eq!((login.status, login.header("location")), (303, Some("/")));
    let set = login.header("set-cookie").unwrap();
    assert!(set.contains("HttpOnly") && set.contains("SameSite=Strict") && !set.contains(TOKEN), "{set}");
    let cookie = set.split(';').next().unwrap().to_owned();
    assert_eq!(call(&d, "GET", "/", &[("Cookie", &cookie)], b"").status, 200);
    assert_eq!(call(&d, "GET", "/api/rejected", &[("Cookie", &cookie)], b"").status, 200);

    // State-changing requests with the cookie must show they come from the console's origin.
    let host = format!("127.0.0.1:{}", d.port);
    let own = format!("http://{host}");
    let path = "/api/rejected/nothing.jpg";
    let csrf = |headers: &[(&str, &str)]| call(&d, "DELETE", path, headers, b"").status;
    assert_eq!(csrf(&[("Cookie", &cookie)]), 403, "a cookie alone does not pass");
    assert_eq!(csrf(&[("Cookie", &cookie), ("Origin", "http://evil.example")]), 403);
    assert_eq!(csrf(&[("Cookie", &cookie), ("Origin", &own), ("Sec-Fetch-Site", "cross-site")]), 403);
    assert_eq!(csrf(&[("Cookie", &cookie), ("Origin", &own)]), 404, "same origin: let in (nothing to delete)");
    assert_eq!(csrf(&[("Cookie", &cookie), ("Sec-Fetch-Site", "same-origin")]), 404);
    assert_eq!(csrf(&[("Authorization", &bearer)]), 404, "scripts with the token are not refused");

    let logout = call(&d, "POST", "/logout", &[("Cookie", &cookie), ("Origin", &own)], b"");
    assert!(logout.header("set-cookie").unwrap().contains("Max-Age=0"));
}

#[test]
fn on_loopback_other_origins_and_foreign_host_names_are_refused_and_scripts_pass() {
    let sb = Sandbox::new();
    let d = sb.start(&[]);
    let one = [("a.jpg", &b"x"[..])];
    let refused = upload(&d, "folder=produtos", &one, &[("Origin", "http://evil.example")]);
    assert_eq!(refused.status, 403);
    assert_eq!(upload(&d, "folder=produtos", &one, &[("Sec-Fetch-Site", "cross-site")]).status, 403);
    assert_eq!(upload(&d, "folder=produtos", &one, &[("Origin", "null")]).status, 403);
    assert!(all_names(&sb, "produtos").is_empty(), "nothing was written");
    let rebound = call(&d, "GET", "/api/status", &[("Host", "evil.example:8501")], b"");
    assert_eq!(rebound.status, 403, "a page on another domain pointed at 127.0.0.1 (DNS rebinding)");
    let read = call(&d, "GET", "/api/products", &[("Sec-Fetch-Site", "cross-site"), ("Sec-Fetch-Mode", "cors")], b"");
    assert_eq!(read.status, 403, "other sites cannot read the catalog");
    assert_eq!(get(&d, "/api/status").header("cross-origin-resource-policy"), Some("same-origin"));

    let own = format!("http://127.0.0.1:{}", d.port);
    assert_eq!(upload(&d, "folder=produtos", &[("s.jpg", &b"x"[..])], &[("Origin", &own)]).status, 201);
    assert_eq!(upload(&d, "folder=produtos", &[("c.jpg", &b"x"[..])], &[]).status, 201, "curl");
}

#[test]
fn uploads_are_named_safely_streamed_whole_and_never_leave_partial_or_overwritten_files() {
    let sb = Sandbox::new();
    let d = sb.start(&[("MAX_FILE_SIZE", "200KB")]);
    let p = photo(1);
    let hostile = "<img src=x onerror=alert(1)>.JPG";
    let ok = upload(&d, "folder=produtos", &[("tênis azul.jpg", &p), (hostile, &p), ("../../escape.jpg", &p)], &[]);
    assert_eq!(ok.status, 201, "{}", ok.text());
    assert_eq!(
        ok.json()["accepted"],
        serde_json::json!(["tênis-azul.jpg", "img-src-x-onerror-alert-1.jpg", "escape.jpg"])
    );
    assert!(sb.path("escape.jpg").symlink_metadata().is_err() && sb.products().join("escape.jpg").is_file());

    // Over MAX_FILE_SIZE: 413 while streaming, and nothing of it left behind.
    let big = vec![0xAB; 300_000];
    let refused = upload(&d, "folder=produtos", &[("big.jpg", &big)], &[]);
    assert_eq!(refused.status, 413, "{}", refused.text());
    assert!(refused.json()["error"].as_str().unwrap().contains("MAX_FILE_SIZE"));
    // A taken name is refused, not overwritten, unless replacing is asked for.
    let taken = upload(&d, "folder=produtos", &[("tênis azul.jpg", &background())], &[]);
    assert_eq!(taken.status, 409, "{}", taken.text());
    assert_eq!(std::fs::read(sb.products().join("tênis-azul.jpg")).unwrap(), p);
    assert_eq!(upload(&d, "folder=produtos&replace=true", &[("tênis azul.jpg", &photo(2))], &[]).status, 201);
    assert_eq!(std::fs::read(sb.products().join("tênis-azul.jpg")).unwrap(), photo(2));
    assert_eq!(upload(&d, "folder=../../tmp", &[("x.jpg", &p)], &[]).status, 400);
    assert_eq!(upload(&d, "folder=produtos", &[("x.jpg.part", &p)], &[]).status, 400);

    // An upload cut off half-way: the connection closes before the file ends.
    let stream = partial_upload(d.port, "folder=produtos", "cut.jpg", &p, |len| len / 2);
    std::thread::sleep(Duration::from_millis(300));
    drop(stream);

    let expected = ["escape.jpg", "img-src-x-onerror-alert-1.jpg", "tênis-azul.jpg"];
    let clean = wait_until(Duration::from_secs(10), || all_names(&sb, "produtos") == expected);
    assert!(clean, "no partial upload is left: {:?}", all_names(&sb, "produtos"));
    assert!(wait_until(LONG, || sb.output().join("img-src-x-onerror-alert-1.jpg").exists()), "{}", d.log_text());
}

#[test]
fn names_from_requests_never_reach_outside_the_folders_nor_through_links() {
    let sb = Sandbox::new();
    std::fs::write(sb.path("secret.txt"), "top secret").unwrap();
    let d = sb.start(&[]);
    sb.drop_file("produtos", "p.jpg", &photo(3));
    assert!(wait_until(LONG, || sb.output().join("p.jpg").exists()), "{}", d.log_text());
    assert!(wait_until(LONG, || get(&d, "/files/thumbnails/p.jpg").status == 200));
    for path in [
        "/files/thumbnails/..%2Fsecret.txt",
        "/files/thumbnails/%2Fetc%2Fpasswd",
        "/files/thumbnails/../secret.txt",
        "/files/originals/..%2Fsecret.txt",
        "/files/originals/%2E%2E%2Fsecret.txt",
        "/files/originals/%2Fetc%2Fpasswd",
        "/files/previews/..%2F..%2Fsecret.txt",
        "/files/backgrounds/..%2Fsecret.txt",
        "/files/originals/p.jpg%00.txt",
    ] {
        let reply = get(&d, path);
        assert!(matches!(reply.status, 400 | 404), "{path}: {}", reply.status);
        assert!(!reply.text().contains("top secret"), "{path}");
    }
    let own = format!("http://127.0.0.1:{}", d.port);
    for (method, path) in [
        ("POST", "/api/rejected/..%2Fprodutos%2Fp.jpg/retry"),
        ("DELETE", "/api/rejected/..%2Fsecret.txt"),
        ("DELETE", "/api/rejected/%2Fetc%2Fpasswd"),
    ] {
        assert_eq!(call(&d, method, path, &[("Origin", &own)], b"").status, 404, "{method} {path}");
    }
    assert!(sb.path("secret.txt").exists() && sb.products().join("p.jpg").exists());

    // A thumbnail replaced by a link to a secret is not followed.
    let out = sb.output().join("p.jpg");
    std::fs::remove_file(&out).unwrap();
    std::os::unix::fs::symlink(sb.path("secret.txt"), &out).unwrap();
    let linked = get(&d, "/files/thumbnails/p.jpg");
    assert_eq!(linked.status, 404);
    assert!(!linked.text().contains("top secret"));
}

#[test]
fn the_catalog_shows_states_outputs_engines_and_reasons_and_rejections_can_be_retried_and_deleted() {
    let sb = Sandbox::new();
    let d = sb.start(&[]);
    sb.drop_file("backgrounds", "praia.jpg", &background());
    sb.drop_file("produtos", "a.jpg", &photo(4));
    std::thread::sleep(Duration::from_millis(20));
    sb.drop_file("produtos", "b.jpg", &photo(5));
    let hostile = "<img src=x onerror=alert(1)>.jpg";
    sb.drop_file("produtos", hostile, &photo(6));
    sb.drop_file("produtos", "bad.jpg", b"this is not a photo");
    let settled = || {
        let items = products(&d);
        let finished = |p: &Value| {
            p["state"] == "rejected" || (p["state"] == "done" && p["outputs"].as_array().unwrap().len() == 2)
        };
        items.len() == 4 && items.iter().all(finished)
    };
    assert!(wait_until(LONG, settled), "{:#?}\n{}", products(&d), d.log_text());
    let items = products(&d);
    let names: Vec<&str> = items.iter().map(|p| p["name"].as_str().unwrap()).collect();
    let at = |name: &str| names.iter().position(|n| *n == name);
    assert!(at("b.jpg") < at("a.jpg"), "newest first: {names:?}");
    let a = product(&items, "a.jpg").unwrap();
    assert_eq!(a["engine"], "local");
    let files: Vec<&str> = a["outputs"].as_array().unwrap().iter().map(|o| o["file"].as_str().unwrap()).collect();
    assert_eq!(files, ["a.jpg", "a__praia.jpg"], "the main image first");
    let url = a["outputs"][0]["url"].as_str().unwrap();
    assert!(url.starts_with("/files/thumbnails/a.jpg?v="), "{url}");
    let odd = product(&items, hostile).expect("a hostile name is data, shown as it is");
    assert!(!odd["outputs"][0]["url"].as_str().unwrap().contains('<'), "URLs are percent-encoded");
    let bad = product(&items, "bad.jpg").unwrap();
    assert_eq!((bad["state"].as_str(), bad["reason"].as_str()), (Some("rejected"), Some("unsupported_format")));
    let search = get(&d, "/api/products?q=A.JP").json();
    assert_eq!(search["total"], 1, "search by name, any case");
    assert_eq!(get(&d, "/api/products?state=rejected").json()["total"], 1);
    let paged = get(&d, "/api/products?per_page=2&page=2").json();
    assert_eq!((paged["pages"].as_u64(), paged["items"].as_array().unwrap().len()), (Some(2), 2));

    // Previews are small JPEGs, revalidated by their content key.
    let preview_url = a["outputs"][1]["preview"].as_str().unwrap();
    let preview = get(&d, preview_url);
    assert_eq!((preview.status, preview.header("content-type")), (200, Some("image/jpeg")));
    let img = image::load_from_memory(&preview.body).unwrap();
    assert!(img.width() <= 320 && img.height() <= 320);
    assert!(preview.header("cache-control").unwrap().contains("immutable"));
    let etag = preview.header("etag").unwrap().to_owned();
    assert_eq!(call(&d, "GET", preview_url, &[("If-None-Match", &etag)], b"").status, 304);
    let original = get(&d, a["original"].as_str().unwrap());
    assert_eq!((original.status, original.body.as_slice()), (200, photo(4).as_slice()));

    let backgrounds = get(&d, "/api/backgrounds").json();
    let praia = &backgrounds["items"][0];
    assert_eq!(
        (praia["name"].as_str(), praia["state"].as_str(), praia["outputs"].as_u64()),
        (Some("praia.jpg"), Some("done"), Some(3))
    );
    assert!(praia["sample"]["file"].as_str().unwrap().ends_with("__praia.jpg"));
    assert_eq!(get(&d, praia["preview"].as_str().unwrap()).header("content-type"), Some("image/jpeg"));

    // Rejected: reason and advice from the note; retry moves it back, delete removes it.
    let rejected = get(&d, "/api/rejected").json();
    let note = &rejected["items"][0];
    assert_eq!((note["name"].as_str(), note["folder"].as_str()), (Some("bad.jpg"), Some("produtos")));
    assert!(!note["problem"].as_str().unwrap().is_empty() && !note["advice"].as_str().unwrap().is_empty());
    std::fs::write(sb.rejected().join("bad.jpg"), photo(7)).unwrap(); // the seller fixes it
    let own = format!("http://127.0.0.1:{}", d.port);
    let retried = call(&d, "POST", "/api/rejected/bad.jpg/retry", &[("Origin", &own)], b"");
    assert_eq!(retried.status, 200, "{}", retried.text());
    assert_eq!(retried.json()["folder"], "produtos");
    assert!(!sb.rejected().join("bad.jpg.error.txt").exists());
    let done = || product(&products(&d), "bad.jpg").is_some_and(|p| p["state"] == "done");
    assert!(wait_until(LONG, done), "{:#?}", products(&d));
    sb.drop_file("produtos", "worse.jpg", b"");
    assert!(wait_until(LONG, || sb.rejected().join("worse.jpg").exists()));
    assert_eq!(call(&d, "DELETE", "/api/rejected/worse.jpg", &[("Origin", &own)], b"").status, 204);
    assert!(sb.files("rejeitados").is_empty());
}

#[test]
fn the_zip_streams_every_thumbnail_or_one_backgrounds_set_and_events_carry_the_status() {
    let sb = Sandbox::new();
    let d = sb.start(&[]);
    sb.drop_file("backgrounds", "b1.jpg", &background());
    sb.drop_file("produtos", "x.jpg", &photo(8));
    sb.drop_file("produtos", "y.jpg", &photo(9));
    assert!(wait_until(LONG, || sb.files("thumbnails-prontas").len() == 4), "{}", d.log_text());
    assert!(wait_until(LONG, || products(&d).iter().all(|p| p["state"] == "done")));

    let all = get(&d, "/api/thumbnails.zip");
    assert_eq!((all.status, all.header("content-type")), (200, Some("application/zip")));
    let disposition = all.header("content-disposition").unwrap_or_default();
    assert!(disposition.contains("thumbnails.zip"), "{disposition}");
    assert_eq!(zip_names(&all.body), ["x.jpg", "x__b1.jpg", "y.jpg", "y__b1.jpg"]);
    let set = get(&d, "/api/thumbnails.zip?background=b1.jpg");
    assert_eq!(zip_names(&set.body), ["x__b1.jpg", "y__b1.jpg"]);
    assert_eq!(std::fs::read(sb.output().join("x__b1.jpg")).unwrap(), zip_entry(&set.body, "x__b1.jpg"));
    assert_eq!(get(&d, "/api/thumbnails.zip?background=nope.jpg").status, 404);

    // Server-sent events: the status at once, as JSON.
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", d.port)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(stream, "GET /api/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains("\n\n") {
        let n = std::io::Read::read(&mut stream, &mut buf).unwrap();
        assert!(n > 0, "the stream ended");
        seen.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&seen);
    assert!(text.to_lowercase().contains("content-type: text/event-stream"), "{text}");
    let data = text.lines().find_map(|l| l.strip_prefix("data: ")).unwrap();
    let status: Value = serde_json::from_str(data).unwrap();
    assert_eq!((status["products"].as_u64(), status["engine"]["state"].as_str()), (Some(2), Some("ok")));
    assert!(status["today"].as_u64().unwrap() >= 4);
    assert!(text.contains("event: status"));
}

#[test]
fn a_photo_waiting_for_an_unreachable_remote_engine_is_shown_as_waiting_for_it() {
    let sb = Sandbox::new();
    let url = format!("http://127.0.0.1:{}", common::free_port());
    let d = sb.start(&[("GRADIO_API_URL", &url), ("GRADIO_RETRY_ATTEMPTS", "1")]);
    sb.drop_file("produtos", "wait.jpg", &photo(10));
    let waiting = || product(&products(&d), "wait.jpg").is_some_and(|p| p["state"] == "waiting_remote");
    assert!(wait_until(LONG, waiting), "{:#?}\n{}", products(&d), d.log_text());
    let status = get(&d, "/api/status").json();
    assert_eq!((status["engine"]["name"].as_str(), status["engine"]["state"].as_str()), (Some("gradio"), Some("down")));
}

/// The names in a ZIP, read by Python's zipfile (an independent reader that checks every CRC).
fn zip_names(zip: &[u8]) -> Vec<String> {
    let listing = python_zip(zip, "z.testzip() is None or sys.exit('bad CRC'); print('\\n'.join(z.namelist()))");
    listing.lines().map(str::to_owned).collect()
}

fn zip_entry(zip: &[u8], name: &str) -> Vec<u8> {
    let hex = python_zip(zip, &format!("print(z.read({name:?}).hex())"));
    (0..hex.trim().len()).step_by(2).map(|i| u8::from_str_radix(&hex.trim()[i..i + 2], 16).unwrap()).collect()
}

fn python_zip(zip: &[u8], code: &str) -> String {
    let python = std::env::var("THUMBGEN_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.zip");
    std::fs::write(&path, zip).unwrap();
    let script = format!("import sys, zipfile\nz = zipfile.ZipFile({:?})\n{code}\n", path.to_str().unwrap());
    let out = std::process::Command::new(&python).arg("-c").arg(script).output().unwrap();
    assert!(out.status.success(), "zipfile refused the archive: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}
