//! The web console in a real headless Chromium: uploads through the page (the file picker and a
//! drop), cards that turn done with every version, a bad file's reason and a retry after it is
//! fixed, the ZIP download, a hostile file name shown as text, and screenshots of the main views
//! (light, dark, phone) saved under `target/test-artifacts/console/`; and the same console on a
//! catalog in a bucket (SeaweedFS started by the test).

mod common;
#[path = "common/browser.rs"]
mod browser;

use browser::Browser;
use common::synth::{self, Shape};
use common::Sandbox;
use fantoccini::Locator;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const LONG: Duration = Duration::from_secs(120);
const SHORT: Duration = Duration::from_secs(20);
const HOSTILE: &str = "<img src=x onerror=window.__xss=1>.jpg";

/// The real-photo set of `../shared/fixtures/real` (see its manifest.tsv for sources and licences).
const REAL: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/fixtures/real/images");
/// The photos uploaded, under the names a seller would give them.
const REAL_PHOTOS: [(&str, &str); 3] =
    [("bottles.jpg", "cleargrasp-153.jpg"), ("carton.png", "prod-0b0bd753.png"), ("boxes.png", "prod-0b042c60.png")];

/// Writes the files a seller would pick into a folder of their own.
fn pictures(dir: &Path) -> (PathBuf, Vec<PathBuf>, PathBuf) {
    let background = dir.join("beach.jpg");
    std::fs::write(&background, synth::jpeg(&synth::background(640, 480))).unwrap();
    // Real product photos (Apache-2.0, credited in README "Screenshot credits"), so the
    // screenshots show what a seller would see.
    let photos = REAL_PHOTOS
        .iter()
        .map(|(name, fixture)| {
            let path = dir.join(name);
            std::fs::copy(Path::new(REAL).join(fixture), &path).unwrap_or_else(|e| panic!("{fixture}: {e}"));
            path
        })
        .collect();
    let bad = dir.join("broken.jpg");
    let mut truncated = synth::product_jpeg(Shape::Can, [200, 170, 30], 50);
    truncated.truncate(truncated.len() / 3);
    std::fs::write(&bad, truncated).unwrap();
    (background, photos, bad)
}

fn paths(files: &[PathBuf]) -> String {
    files.iter().map(|p| p.to_str().unwrap()).collect::<Vec<_>>().join("\n")
}

/// Opens the console at `url` once it is live, uploads `background` with the file picker, and
/// leaves the upload view open with products chosen.
async fn upload_a_background(b: &Browser, url: &str, background: &Path) {
    b.client.goto(url).await.unwrap();
    b.wait_for("document.getElementById('st-live').dataset.level === 'ok'", SHORT, "live status").await;
    open_view(b, "upload").await;
    b.client.find(Locator::Css("input[value='backgrounds']")).await.unwrap().click().await.unwrap();
    b.client.find(Locator::Id("file-input")).await.unwrap().send_keys(background.to_str().unwrap()).await.unwrap();
    b.wait_for("document.querySelector('.upload[data-state=done]')", SHORT, "the background uploaded").await;
    b.client.find(Locator::Css("input[value='produtos']")).await.unwrap().click().await.unwrap();
}

async fn open_view(b: &Browser, view: &str) {
    b.client.find(Locator::Css(&format!(".tabs a[data-view='{view}']"))).await.unwrap().click().await.unwrap();
    b.wait_for(&format!("document.body.dataset.loaded === '{view}'"), SHORT, &format!("the {view} view")).await;
}

/// True once every image inside `selector` has loaded.
fn images_loaded(selector: &str) -> String {
    format!(
        "[...document.querySelectorAll('{selector} img')].length > 0 && \
         [...document.querySelectorAll('{selector} img')].every(i => i.complete && i.naturalWidth > 0)"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seller_uploads_sees_every_version_fixes_a_rejection_and_downloads_the_zip_in_a_real_browser() {
    let started = Instant::now();
    let sb = Sandbox::new();
    let d = sb.start(&[]);
    let candles = std::fs::read(Path::new(REAL).join("prod-0c2b3e3a.png")).unwrap();
    sb.drop_file("produtos", HOSTILE, &candles);
    let picked = tempfile::tempdir().unwrap();
    let (background, photos, bad) = pictures(picked.path());

    let b = Browser::start(1280, 900, false).await;
    // A background with the file picker, the photos and the broken file by dropping them.
    upload_a_background(&b, &d.url(), &background).await;
    b.eval("(() => { const i = document.createElement('input'); i.type = 'file'; i.multiple = true; i.id = 'dropped'; document.body.append(i); })()").await;
    let mut dropped = photos.clone();
    dropped.push(bad.clone());
    b.client.find(Locator::Id("dropped")).await.unwrap().send_keys(&paths(&dropped)).await.unwrap();
    b.eval(
        "(() => { const dt = new DataTransfer(); for (const f of document.getElementById('dropped').files) dt.items.add(f); \
         document.getElementById('dropzone').dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true })); \
         document.getElementById('dropped').remove(); })()",
    )
    .await;
    b.wait_for("document.querySelectorAll('.upload[data-state=done]').length === 5", SHORT, "five uploads done").await;
    b.screenshot("upload").await;
    for name in ["bottles.jpg", "carton.png", "boxes.png", "broken.jpg"] {
        assert!(sb.products().join(name).exists() || sb.rejected().join(name).exists(), "{name} arrived");
    }
    assert!(sb.backgrounds().join("beach.jpg").exists());

    // The catalog: every product done with its white image and its beach version.
    open_view(&b, "catalog").await;
    let done = "document.querySelectorAll('#cards .card[data-state=done][data-outputs=\"2\"]').length === 4 && \
                document.querySelector('#cards .card[data-name=\"broken.jpg\"][data-state=rejected]')";
    b.wait_for(done, LONG, "four products done with two versions, and the broken one rejected").await;
    b.wait_for(&images_loaded("#cards"), SHORT, "previews").await;
    b.wait_for("document.getElementById('count-products').textContent === '5'", SHORT, "the tab counting every card")
        .await;
    let shown = b
        .eval(&format!(
            "document.querySelector('#cards .card[data-name=\"{}\"] .name').textContent",
            HOSTILE.replace('"', "\\\"")
        ))
        .await;
    assert_eq!(shown, HOSTILE, "a hostile file name is shown as text");
    assert_eq!(b.eval("typeof window.__xss").await, "undefined", "and never runs");
    let reason = b.eval("document.querySelector('.card[data-name=\"broken.jpg\"] .reason').textContent").await;
    assert!(reason.as_str().unwrap().contains("damaged or incomplete"), "{reason}");
    b.screenshot("catalog").await;

    // A product opened: the original photo beside each full-size thumbnail.
    b.client.find(Locator::Css("#cards .card[data-name='bottles.jpg']")).await.unwrap().click().await.unwrap();
    b.wait_for("document.getElementById('detail').open", SHORT, "the detail dialog").await;
    b.wait_for(&images_loaded("#detail-body"), SHORT, "full-size images").await;
    let figures =
        b.eval("[...document.querySelectorAll('#detail-body figcaption .file')].map(f => f.textContent)").await;
    assert_eq!(figures, serde_json::json!(["Original photo", "bottles.jpg", "bottles__beach.jpg"]));
    b.screenshot("detail").await;
    b.client.find(Locator::Id("detail-close")).await.unwrap().click().await.unwrap();

    open_view(&b, "backgrounds").await;
    b.wait_for(&images_loaded("#bg-cards"), SHORT, "the background and a product on it").await;
    b.screenshot("backgrounds").await;

    // The broken file: its reason, then a retry once the seller has fixed it.
    open_view(&b, "rejected").await;
    let item = ".reject[data-name='broken.jpg']";
    b.wait_for(&format!("document.querySelector(\"{item} .advice\")"), SHORT, "the rejection's advice").await;
    b.screenshot("rejected").await;
    std::fs::write(sb.rejected().join("broken.jpg"), synth::product_jpeg(Shape::Can, [200, 170, 30], 50)).unwrap();
    b.client.find(Locator::Css(&format!("{item} button.primary"))).await.unwrap().click().await.unwrap();
    b.wait_for(&format!("!document.querySelector(\"{item}\")"), SHORT, "the file to leave the list").await;
    open_view(&b, "catalog").await;
    b.wait_for(
        "document.querySelector('#cards .card[data-name=\"broken.jpg\"][data-state=done]')",
        LONG,
        "the fixed file done",
    )
    .await;

    // The ZIP of every thumbnail, downloaded by the browser.
    b.client.find(Locator::Id("zip-all")).await.unwrap().click().await.unwrap();
    let zip = b.downloads.path().join("thumbnails.zip");
    let arrived = common::wait_until(SHORT, || zip.exists());
    assert!(arrived, "no download: {:?}", std::fs::read_dir(b.downloads.path()).unwrap().flatten().collect::<Vec<_>>());
    let mut names = zip_names(&std::fs::read(&zip).unwrap());
    names.sort();
    let (_, catalog) = d.get("/api/products?per_page=200");
    let catalog: serde_json::Value = serde_json::from_str(&catalog).unwrap();
    let mut expected: Vec<String> = catalog["items"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["outputs"].as_array().unwrap().iter().map(|o| o["file"].as_str().unwrap().to_owned()))
        .collect();
    expected.sort();
    assert_eq!(names.len(), 10, "five products on white and on the beach: {names:?}");
    assert_eq!(names, expected);
    assert!(names.contains(&"broken__beach.jpg".to_owned()) && names.contains(&"boxes.jpg".to_owned()));

    // The same catalog on a phone.
    b.client.set_window_size(390, 844).await.unwrap();
    b.wait_for(&images_loaded("#cards"), SHORT, "previews on a phone").await;
    b.screenshot("catalog-phone").await;
    b.close().await;

    // And with the system set to dark.
    let dark = Browser::start(1280, 900, true).await;
    dark.client.goto(&d.url()).await.unwrap();
    dark.wait_for("document.body.dataset.loaded === 'catalog'", SHORT, "the catalog").await;
    dark.wait_for(&images_loaded("#cards"), SHORT, "previews").await;
    let scheme = dark.eval("matchMedia('(prefers-color-scheme: dark)').matches").await;
    assert_eq!(scheme, true, "the browser reports a dark system setting");
    let background = dark.eval("getComputedStyle(document.body).backgroundColor").await;
    assert_eq!(background, "rgb(18, 21, 27)", "the page follows it");
    dark.screenshot("catalog-dark").await;
    dark.close().await;
    eprintln!("browser test took {:.1} s", started.elapsed().as_secs_f64());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_bucket_the_page_uploads_into_it_shows_its_thumbnails_retries_a_fixed_file_and_zips_them() {
    let s3 = common::s3::S3Server::start();
    let settings = s3.env("loja");
    let env: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let sb = Sandbox::new();
    let d = sb.start(&env);
    let picked = tempfile::tempdir().unwrap();
    let (background, photos, bad) = pictures(picked.path());

    let b = Browser::start(1280, 900, false).await;
    upload_a_background(&b, &d.url(), &background).await;
    let chosen = paths(&[photos[0].clone(), bad.clone()]);
    b.client.find(Locator::Id("file-input")).await.unwrap().send_keys(&chosen).await.unwrap();
    b.wait_for("document.querySelectorAll('.upload[data-state=done]').length === 3", SHORT, "three uploads done").await;
    let keys = s3.keys("loja/").unwrap();
    assert!(
        ["loja/backgrounds/beach.jpg", "loja/produtos/bottles.jpg"].iter().all(|k| keys.contains(&k.to_string())),
        "{keys:?}"
    );

    open_view(&b, "catalog").await;
    let done =
        "document.querySelector('#cards .card[data-name=\"bottles.jpg\"][data-state=done][data-outputs=\"2\"]') && \
                document.querySelector('#cards .card[data-name=\"broken.jpg\"][data-state=rejected]')";
    b.wait_for(done, LONG, "the photo done with two versions, and the broken one rejected").await;
    b.wait_for(&images_loaded("#cards"), SHORT, "previews read from the bucket").await;
    b.client.find(Locator::Css("#cards .card[data-name='bottles.jpg']")).await.unwrap().click().await.unwrap();
    b.wait_for(&images_loaded("#detail-body"), SHORT, "the original and full-size thumbnails").await;
    b.screenshot("bucket-detail").await;
    b.client.find(Locator::Id("detail-close")).await.unwrap().click().await.unwrap();

    // The seller fixes the broken file in the bucket, and retries it from the page.
    open_view(&b, "rejected").await;
    let item = ".reject[data-name='broken.jpg']";
    b.wait_for(&format!("document.querySelector(\"{item} .advice\")"), SHORT, "the rejection's advice").await;
    s3.put("loja/rejeitados/broken.jpg", &synth::product_jpeg(Shape::Can, [200, 170, 30], 50));
    b.client.find(Locator::Css(&format!("{item} button.primary"))).await.unwrap().click().await.unwrap();
    b.wait_for(&format!("!document.querySelector(\"{item}\")"), SHORT, "the file to leave the list").await;
    open_view(&b, "catalog").await;
    let fixed = "document.querySelector('#cards .card[data-name=\"broken.jpg\"][data-state=done]')";
    b.wait_for(fixed, LONG, "the fixed file done").await;

    b.client.find(Locator::Id("zip-all")).await.unwrap().click().await.unwrap();
    let zip = b.downloads.path().join("thumbnails.zip");
    assert!(common::wait_until(SHORT, || zip.exists()), "no download");
    let mut names = zip_names(&std::fs::read(&zip).unwrap());
    names.sort();
    assert_eq!(names, ["bottles.jpg", "bottles__beach.jpg", "broken.jpg", "broken__beach.jpg"]);
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_logs_in_to_its_own_console_and_sees_its_catalog_only() {
    const TOKEN: &str = "token-of-loja-a-0123456789";
    let sb = Sandbox::new();
    std::fs::create_dir_all(sb.path("config")).unwrap();
    let config = format!("[[tenants]]\nname = \"loja-a\"\ntoken = \"{TOKEN}\"\n\n[[tenants]]\nname = \"loja-b\"\n");
    std::fs::write(sb.path("config/thumbgen.toml"), config).unwrap();
    let d = sb.start(&[("CONSOLE_TOKEN", "token-of-the-operator-0123")]);
    sb.drop_file("tenants/loja-a/produtos", "nossa.jpg", &synth::product_jpeg(Shape::Box, [30, 60, 200], 61));
    sb.drop_file("tenants/loja-b/produtos", "deles.jpg", &synth::product_jpeg(Shape::Can, [200, 60, 30], 62));

    let b = Browser::start(1280, 900, false).await;
    b.client.goto(&format!("{}/t/loja-a", d.url())).await.unwrap();
    b.wait_for("location.pathname === '/t/loja-a/login'", SHORT, "the tenant's login").await;
    b.client.find(Locator::Css("input[name=token]")).await.unwrap().send_keys(TOKEN).await.unwrap();
    b.client.find(Locator::Css("form.login button")).await.unwrap().click().await.unwrap();
    b.wait_for("location.pathname === '/t/loja-a/'", SHORT, "the tenant's console").await;
    let done = "document.querySelector('#cards .card[data-name=\"nossa.jpg\"][data-state=done]')";
    b.wait_for(done, LONG, "its product done").await;
    b.wait_for(&images_loaded("#cards"), SHORT, "its previews").await;
    assert_eq!(b.eval("document.querySelectorAll('#cards .card').length").await, 1, "loja-b's product is not shown");
    b.screenshot("tenant-catalog").await;
    // The same browser, logged in to loja-a, is refused loja-b's catalog.
    let other = b.eval("fetch('/t/loja-b/api/products').then(r => r.status)").await;
    assert_eq!(other, 401);
    assert_eq!(b.eval("document.getElementById('switcher').hidden").await, true, "a tenant gets no switcher");

    // The operator logs in once at the overview and switches between the tenants' consoles.
    b.client.goto(&format!("{}/", d.url())).await.unwrap();
    b.wait_for("location.pathname === '/login'", SHORT, "the operator's login").await;
    b.client
        .find(Locator::Css("input[name=token]"))
        .await
        .unwrap()
        .send_keys("token-of-the-operator-0123")
        .await
        .unwrap();
    b.client.find(Locator::Css("form.login button")).await.unwrap().click().await.unwrap();
    b.wait_for("location.pathname === '/'", SHORT, "the overview").await;
    b.client.goto(&format!("{}/t/loja-b/", d.url())).await.unwrap();
    b.wait_for("!document.getElementById('switcher').hidden", SHORT, "the operator's switcher").await;
    let options = b.eval("[...document.querySelectorAll('#tenant option')].map(o => o.textContent).join(',')").await;
    assert_eq!(options, "loja-a,loja-b,All tenants (overview)");
    assert_eq!(b.eval("document.getElementById('tenant').value").await, "/t/loja-b/");
    b.eval("(() => { const s = document.getElementById('tenant'); s.value = '/t/loja-a/'; s.dispatchEvent(new Event('change')); return 1; })()").await;
    b.wait_for("location.pathname === '/t/loja-a/'", SHORT, "loja-a's console, without another login").await;
    b.wait_for(done, LONG, "loja-a's catalog").await;
    b.close().await;
}

/// The entry names of a ZIP, read from its central directory.
fn zip_names(zip: &[u8]) -> Vec<String> {
    let u16_at = |at: usize| u16::from_le_bytes([zip[at], zip[at + 1]]) as usize;
    let u32_at = |at: usize| u32::from_le_bytes(zip[at..at + 4].try_into().unwrap()) as usize;
    let end = zip.len() - 22;
    assert_eq!(u32_at(end), 0x0605_4b50, "an end of central directory record");
    let mut at = u32_at(end + 16);
    (0..u16_at(end + 10))
        .map(|_| {
            let (name_len, extra, comment) = (u16_at(at + 28), u16_at(at + 30), u16_at(at + 32));
            let name = String::from_utf8(zip[at + 46..at + 46 + name_len].to_vec()).unwrap();
            at += 46 + name_len + extra + comment;
            name
        })
        .collect()
}
