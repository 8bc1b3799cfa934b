//! Tenants (design §10): several shops in one daemon, each with its own catalog — a folder, or a
//! prefix in a bucket (SeaweedFS started by the test) — presets and weight, sharing the workers
//! and the removal engine. Nothing crosses: a photo dropped in two shops is removed once per shop,
//! each shop's outputs, rejections and cut-outs stay in its own catalog, and a bad configuration
//! names the tenant.

mod common;

use common::s3::S3Server;
use common::synth::{self, Shape};
use common::{wait_until, Sandbox};
use std::time::Duration;

const LONG: Duration = Duration::from_secs(120);

fn size_of(bytes: &[u8]) -> (u32, u32) {
    let image = image::load_from_memory(bytes).unwrap();
    (image.width(), image.height())
}

#[test]
fn shops_in_folders_and_in_a_bucket_share_one_daemon_and_nothing_crosses_between_them() {
    let s3 = S3Server::start();
    let sb = Sandbox::new();
    std::fs::create_dir_all(sb.path("config")).unwrap();
    let config = format!(
        r#"
[[tenants]]
name = "loja-a"

[[tenants]]
name = "loja-b"
base = "elsewhere/b"
weight = 2
[tenants.preset]
width = 600
height = 600

[[tenants]]
name = "loja-c"
base = "s3://{}/loja-c"
"#,
        common::s3::BUCKET
    );
    std::fs::write(sb.path("config/thumbgen.toml"), config).unwrap();
    let settings = s3.env("");
    let store: Vec<(&str, &str)> =
        settings.iter().filter(|(k, _)| *k != "STORAGE_URL").map(|(k, v)| (*k, v.as_str())).collect();
    let d = sb.start(&store);

    let photo = synth::product_jpeg(Shape::Bottle, [200, 40, 40], 41);
    sb.drop_file("tenants/loja-a/backgrounds", "praia.jpg", &synth::jpeg(&synth::background(640, 480)));
    sb.drop_file("tenants/loja-a/produtos", "garrafa.jpg", &photo);
    sb.drop_file("elsewhere/b/produtos", "garrafa.jpg", &photo);
    sb.drop_file("elsewhere/b/produtos", "quebrada.jpg", b"not a photo");
    s3.put("loja-c/produtos/garrafa.jpg", &photo);

    let a = sb.path("tenants/loja-a/thumbnails-prontas");
    let b = sb.path("elsewhere/b/thumbnails-prontas");
    let done = wait_until(LONG, || {
        a.join("garrafa__praia.jpg").exists()
            && b.join("garrafa.jpg").exists()
            && sb.path("elsewhere/b/rejeitados/quebrada.jpg.error.txt").exists()
            && s3.get("loja-c/thumbnails-prontas/garrafa.jpg").is_some()
    });
    assert!(
        done,
        "every shop's outputs: {:?} {:?}\n{}",
        sb.files("tenants/loja-a/thumbnails-prontas"),
        sb.files("elsewhere/b/thumbnails-prontas"),
        d.log_text()
    );

    // Each shop has exactly its own outputs, in its own presets.
    assert_eq!(sb.files("tenants/loja-a/thumbnails-prontas"), ["garrafa.jpg", "garrafa__praia.jpg"]);
    assert_eq!(sb.files("elsewhere/b/thumbnails-prontas"), ["garrafa.jpg"], "loja-a's background is not loja-b's");
    assert_eq!(size_of(&std::fs::read(b.join("garrafa.jpg")).unwrap()), (600, 600), "loja-b's own preset");
    assert_eq!(size_of(&std::fs::read(a.join("garrafa.jpg")).unwrap()), (1200, 1200));
    let c_outputs = s3.keys("loja-c/thumbnails-prontas/").unwrap();
    assert_eq!(c_outputs, ["loja-c/thumbnails-prontas/garrafa.jpg"]);
    assert!(sb.files("tenants/loja-a/rejeitados").is_empty(), "loja-b's bad file stays with loja-b");
    assert!(!sb.path("produtos").exists(), "no catalog at the base itself: {:?}", sb.files(""));

    // The same photo in three shops is removed three times: a shared cache would tell one shop
    // what another uploaded.
    let removals = d.metric("thumbgen_removals_total{engine=\"local\",outcome=\"success\"}");
    assert_eq!(removals, 3.0, "{}", d.log_text());
    assert_eq!(sb.files("tenants/loja-a/.thumbgen/cutouts").len(), 1);
    assert_eq!(sb.files("elsewhere/b/.thumbgen/cutouts").len(), 1);
    assert!(s3.keys("loja-c/.thumbgen/cutouts/").unwrap().len() == 1);
    let (status, ready) = d.get("/health/ready");
    assert_eq!(status, 200, "{ready}");
    assert!(d.log_text().contains("serving tenant loja-c"), "{}", d.log_text());
}

#[test]
fn a_bad_tenant_setting_stops_the_start_with_a_message_naming_the_tenant() {
    let sb = Sandbox::new();
    std::fs::create_dir_all(sb.path("config")).unwrap();
    for (toml, says) in [
        ("[[tenants]]\nname = \"Loja A\"\n", "tenants[0].name `Loja A`"),
        ("[[tenants]]\nname = \"a\"\n[[tenants]]\nname = \"a\"\n", "tenants[1].name `a` is used twice"),
        ("[[tenants]]\nname = \"a\"\ntoken = \"short\"\n", "TENANT_A_TOKEN"),
        ("[[tenants]]\nname = \"a\"\nweight = 0\n", "tenants[0].weight"),
        ("[[tenants]]\nname = \"a\"\nbase = \"s3://\"\n", "tenants[0].base"),
    ] {
        std::fs::write(sb.path("config/thumbgen.toml"), toml).unwrap();
        let out = sb.run(&["config"], &[]);
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && said.contains(says), "{toml}: {said}");
    }
    std::fs::write(sb.path("config/thumbgen.toml"), "[[tenants]]\nname = \"a\"\ntoken = \"0123456789abcdef-a\"\n")
        .unwrap();
    let out = sb.run(&["config"], &[("TENANT_A_TOKEN", "from-the-environment-0123")]);
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(printed.contains("[[tenants]]") && printed.contains("token = \"***\""), "{printed}");
    assert!(!printed.contains("0123456789abcdef") && !printed.contains("from-the-environment"), "{printed}");
}
