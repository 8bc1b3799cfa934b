//! Deployment and operations: the systemd unit, install.sh, backup/restore, diagnose.sh, the shell
//! scripts' options, and the Docker, Compose and Kubernetes files (their lint and validation by the
//! tools users run is scripts/check-deploy).
//!
//! Tools these tests drive (missing ones fail the test with what to install):
//! `systemd-analyze` (Debian package systemd), `tar`, `gzip`, `sha256sum`, and
//! the test virtualenv's Python with PyYAML (scripts/setup-test-env).

mod common;

use common::synth::{self, Shape};
use common::{wait_until, Sandbox};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, SystemTime};

const UNIT: &str = "systemd/thumbgen.service";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn describe(out: &Output) -> String {
    format!("exit {:?}\n--- stdout\n{}\n--- stderr\n{}", out.status.code(), text(&out.stdout), text(&out.stderr))
}

/// Runs a command to completion; a missing program fails with what to install.
fn run(cmd: &mut Command, install_hint: &str) -> Output {
    let program = cmd.get_program().to_string_lossy().into_owned();
    cmd.output().unwrap_or_else(|e| panic!("cannot run {program}: {e}. Install it: {install_hint}"))
}

/// A repository script with an environment free of thumbgen settings, so the surrounding
/// shell cannot change what it does.
fn script(name: &str) -> Command {
    let mut cmd = Command::new(repo().join("scripts").join(name));
    let ops_keys = ["DESTDIR", "PREFIX", "THUMBGEN_BIN", "THUMBGEN_ENV_FILE"];
    for key in thumbgen::ENV_KEYS.iter().chain(&ops_keys) {
        cmd.env_remove(key);
    }
    cmd
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).permissions().mode() & 0o7777
}

// --- SHA-256 (FIPS 180-4), so trees are compared without extra crates ---------------------------

/// Content digest for comparing trees (BLAKE3, already a dependency of the crate).
fn digest(data: &[u8]) -> String {
    blake3::hash(data).to_hex().to_string()
}

/// Every entry under `root`: files as "digest mode", folders as "dir mode", links as their target.
fn tree(root: &Path) -> BTreeMap<String, String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        for entry in fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.unwrap().path();
            let rel = path.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            let meta = fs::symlink_metadata(&path).unwrap();
            let perms = meta.permissions().mode() & 0o7777;
            if meta.is_dir() {
                out.insert(rel, format!("dir {perms:o}"));
                walk(root, &path, out);
            } else if meta.file_type().is_symlink() {
                out.insert(rel, format!("link {}", fs::read_link(&path).unwrap().display()));
            } else {
                out.insert(rel, format!("{} {perms:o}", digest(&fs::read(&path).unwrap())));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

fn assert_same_tree(before: &BTreeMap<String, String>, after: &BTreeMap<String, String>) {
    let missing: Vec<_> = before.keys().filter(|k| !after.contains_key(*k)).collect();
    let extra: Vec<_> = after.keys().filter(|k| !before.contains_key(*k)).collect();
    let changed: Vec<_> =
        before.iter().filter(|(k, v)| after.get(*k).is_some_and(|a| a != *v)).map(|(k, _)| k).collect();
    assert!(
        missing.is_empty() && extra.is_empty() && changed.is_empty(),
        "trees differ\nmissing: {missing:?}\nextra: {extra:?}\nchanged: {changed:?}"
    );
}

// --- systemd ---------------------------------------------------------------------------------

const SYSTEMD_HINT: &str = "apt-get install systemd (provides systemd-analyze)";

/// The unit's `Key=value` lines, in order.
fn unit_settings() -> Vec<(String, String)> {
    let unit = fs::read_to_string(repo().join(UNIT)).expect("systemd/thumbgen.service exists");
    unit.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with(';') && !l.starts_with('['))
        .filter_map(|l| l.split_once('=').map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned())))
        .collect()
}

fn setting<'a>(settings: &'a [(String, String)], key: &str) -> Vec<&'a str> {
    settings.iter().filter(|(k, _)| k == key).map(|(_, v)| v.as_str()).collect()
}

#[test]
fn systemd_unit_has_the_service_contract() {
    let s = unit_settings();
    let one = |key: &str| {
        let values = setting(&s, key);
        assert_eq!(values.len(), 1, "{key} should be set once, found {values:?}");
        values[0].to_owned()
    };
    assert_eq!(one("Type"), "notify");
    assert_eq!(one("NotifyAccess"), "main");
    assert_eq!(one("WatchdogSec"), "60");
    assert_eq!(one("Restart"), "on-failure");
    assert_eq!(one("User"), "thumbgen");
    // The daemon reads the env file itself, at start and on every reload: systemd's
    // EnvironmentFile= would be read only at start, so a reload could not see an edit.
    assert_eq!(one("ExecStart"), "/usr/local/bin/thumbgen run --env-file /etc/thumbgen/thumbgen.env");
    assert_eq!(one("ExecReload"), "/bin/kill -HUP $MAINPID");
    assert!(setting(&s, "EnvironmentFile").is_empty(), "the env file is the daemon's to read");
    assert_eq!(one("StateDirectory"), "thumbgen");
    assert_eq!(one("LogsDirectory"), "thumbgen");
    let env = setting(&s, "Environment");
    assert!(env.contains(&"BASE_PATH=/var/lib/thumbgen"), "{env:?}");
    assert!(env.contains(&"LOG_PATH=/var/log/thumbgen"), "{env:?}");
    let stop: u64 = one("TimeoutStopSec").trim_end_matches('s').parse().expect("TimeoutStopSec in seconds");
    assert!(stop >= 45, "TimeoutStopSec={stop} must leave SHUTDOWN_TIMEOUT (30 s) room");
    for (key, value) in [
        ("ProtectSystem", "strict"),
        ("NoNewPrivileges", "yes"),
        ("PrivateTmp", "yes"),
        ("PrivateDevices", "yes"),
        ("ProtectHome", "yes"),
        ("MemoryDenyWriteExecute", "yes"),
        ("CapabilityBoundingSet", ""),
        ("AmbientCapabilities", ""),
        ("RestrictAddressFamilies", "AF_UNIX AF_INET AF_INET6"),
        ("SystemCallArchitectures", "native"),
        ("UMask", "0027"),
        ("ProtectProc", "invisible"),
    ] {
        assert_eq!(one(key), value, "{key}");
    }
    assert!(setting(&s, "SystemCallFilter").contains(&"@system-service"));
}

#[test]
fn systemd_unit_passes_systemd_analyze_verify() {
    // `verify` also checks that ExecStart's binary exists. The unit names the installed path
    // (/usr/local/bin/thumbgen), which a build machine does not have, so verify a copy whose
    // ExecStart points at the binary cargo just built; every other line is verified as shipped.
    let unit = fs::read_to_string(repo().join(UNIT)).unwrap();
    let exec = "ExecStart=/usr/local/bin/thumbgen ";
    assert!(unit.contains(exec), "the unit's ExecStart changed; update this test");
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("thumbgen.service");
    fs::write(&copy, unit.replace(exec, &format!("ExecStart={} ", common::BIN))).unwrap();
    let out = run(Command::new("systemd-analyze").args(["verify", "--man=no"]).arg(&copy), SYSTEMD_HINT);
    let complaints: Vec<&str> = std::str::from_utf8(&out.stderr)
        .unwrap()
        .lines()
        .chain(std::str::from_utf8(&out.stdout).unwrap().lines())
        .filter(|l| l.contains("thumbgen"))
        .collect();
    assert!(
        out.status.success() && complaints.is_empty(),
        "systemd-analyze verify: {complaints:#?}\n{}",
        describe(&out)
    );
}

#[test]
fn systemd_unit_exposure_is_at_most_2() {
    let out = run(
        Command::new("systemd-analyze").args(["security", "--offline=true", "--no-pager"]).arg(repo().join(UNIT)),
        SYSTEMD_HINT,
    );
    let stdout = text(&out.stdout);
    let line = stdout
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .unwrap_or_else(|| panic!("no overall exposure in the output\n{}", describe(&out)));
    let number: f64 = line
        .split(':')
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("cannot read the exposure from {line:?}"));
    eprintln!("systemd-analyze security: {line}");
    assert!(number <= 2.0, "exposure {number} > 2.0:\n{stdout}");
}

// --- install.sh ------------------------------------------------------------------------------

fn install(destdir: &Path, prefix: Option<&str>) -> Output {
    let mut cmd = script("install.sh");
    cmd.args(["--binary", common::BIN]).env("DESTDIR", destdir);
    if let Some(prefix) = prefix {
        cmd.env("PREFIX", prefix);
    }
    let out = run(&mut cmd, "bash");
    assert!(out.status.success(), "install.sh failed\n{}", describe(&out));
    out
}

#[test]
fn install_sh_lays_out_binary_unit_settings_and_folders_under_destdir() {
    let dest = tempfile::tempdir().unwrap();
    let d = dest.path();
    let out = install(d, None);
    assert!(
        text(&out.stdout).contains("systemctl daemon-reload && systemctl enable --now thumbgen"),
        "next steps missing\n{}",
        describe(&out)
    );

    let bin = d.join("usr/local/bin/thumbgen");
    assert_eq!(mode(&bin), 0o755);
    assert_eq!(digest(&fs::read(&bin).unwrap()), digest(&fs::read(common::BIN).unwrap()), "installed binary differs");
    let version = Command::new(&bin).arg("--version").output().unwrap();
    assert!(version.status.success() && text(&version.stdout).contains(env!("CARGO_PKG_VERSION")));

    let unit = d.join("etc/systemd/system/thumbgen.service");
    assert_eq!(mode(&unit), 0o644);
    assert_eq!(fs::read_to_string(&unit).unwrap(), fs::read_to_string(repo().join(UNIT)).unwrap());

    let env = d.join("etc/thumbgen/thumbgen.env");
    assert_eq!(mode(&env), 0o640, "the settings file may hold HF_TOKEN");
    let template = fs::read_to_string(&env).unwrap();
    for key in ["LOG_LEVEL", "HTTP_ADDR", "WORKERS", "WATCH_MODE", "GRADIO_API_URL", "HF_TOKEN"] {
        assert!(template.contains(&format!("#{key}=")), "{key} missing from the template:\n{template}");
    }
    assert!(
        template.lines().all(|l| l.is_empty() || l.starts_with('#')),
        "the template must not set anything by default"
    );

    for (folder, expected) in [
        ("var/lib/thumbgen", 0o750),
        ("var/lib/thumbgen/produtos", 0o2770),
        ("var/lib/thumbgen/backgrounds", 0o2770),
        ("var/lib/thumbgen/thumbnails-prontas", 0o2750),
        ("var/lib/thumbgen/rejeitados", 0o2770),
        ("var/log/thumbgen", 0o750),
    ] {
        let path = d.join(folder);
        assert!(path.is_dir(), "{folder} missing");
        assert_eq!(mode(&path), expected, "{folder}");
    }
    assert!(d.join("usr/local/share/doc/thumbgen/LICENSE-U2NET-Apache-2.0.txt").is_file());
    for tool in ["backup.sh", "restore.sh", "diagnose.sh"] {
        assert_eq!(mode(&d.join("usr/local/share/thumbgen").join(tool)), 0o755, "{tool}");
    }

    // Installing again keeps the administrator's settings.
    fs::write(&env, "LOG_LEVEL=debug\n").unwrap();
    let again = install(d, None);
    assert_eq!(fs::read_to_string(&env).unwrap(), "LOG_LEVEL=debug\n", "{}", describe(&again));
}

#[test]
fn install_sh_honours_prefix_in_paths_and_unit() {
    let dest = tempfile::tempdir().unwrap();
    install(dest.path(), Some("/opt/thumbgen"));
    assert_eq!(mode(&dest.path().join("opt/thumbgen/bin/thumbgen")), 0o755);
    assert!(!dest.path().join("usr/local/bin/thumbgen").exists());
    let unit = fs::read_to_string(dest.path().join("etc/systemd/system/thumbgen.service")).unwrap();
    let exec = "ExecStart=/opt/thumbgen/bin/thumbgen run --env-file /etc/thumbgen/thumbgen.env";
    assert!(unit.lines().any(|l| l == exec), "{unit}");
    assert!(!unit.contains("/usr/local/bin/thumbgen"), "{unit}");
}

// --- backup.sh / restore.sh --------------------------------------------------------------------

/// A base folder with every component populated, odd names included.
fn populated_base() -> tempfile::TempDir {
    let base = tempfile::tempdir().unwrap();
    let files: [(&str, &[u8]); 13] = [
        ("produtos/garrafa azul.jpg", &[0xff, 0xd8, 0xff, 0xe0, 1, 2, 3]),
        ("produtos/tênis.png", b"\x89PNG fake"),
        ("backgrounds/studio wall.jpg", b"background bytes"),
        ("thumbnails-prontas/garrafa-azul.jpg", b"thumb"),
        ("thumbnails-prontas/garrafa-azul__studio-wall.jpg", b"thumb on wall"),
        ("rejeitados/notes.jpg", b"not an image"),
        ("rejeitados/notes.jpg.error.txt", b"unsupported_format"),
        ("logs/app.log", b"{\"level\":\"INFO\"}\n"),
        (".thumbgen/journal.jsonl", b"{\"done\":1}\n"),
        (".thumbgen/cutouts/ab/cd/abcd1234 with space.png", b"nested cut-out"),
        (".thumbgen/cutouts/ab/empty.bin", b""),
        ("config/thumbgen.toml", b"log_level = \"info\"\n"),
        (".env", b"HF_TOKEN=hf_secret\n"),
    ];
    for (rel, bytes) in files {
        let path = base.path().join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, bytes).unwrap();
    }
    fs::set_permissions(base.path().join(".env"), fs::Permissions::from_mode(0o600)).unwrap();
    fs::create_dir_all(base.path().join(".thumbgen/empty-dir")).unwrap();
    base
}

fn backup(base: &Path, dest: &Path, env_file: &Path, extra: &[&str]) -> Output {
    let out = run(
        script("backup.sh")
            .arg("--base")
            .arg(base)
            .arg("--dest")
            .arg(dest)
            .args(extra)
            .env("THUMBGEN_ENV_FILE", env_file),
        "apt-get install tar gzip coreutils",
    );
    assert!(out.status.success(), "backup.sh failed\n{}", describe(&out));
    out
}

fn archives(dest: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = fs::read_dir(dest)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with(".tar.gz"))
        .collect();
    found.sort();
    found
}

fn restore(archive: &Path, base: &Path, env_file: &Path, extra: &[&str]) -> Output {
    run(
        script("restore.sh")
            .arg("--from")
            .arg(archive)
            .arg("--base")
            .arg(base)
            .args(extra)
            .env("THUMBGEN_ENV_FILE", env_file),
        "apt-get install tar gzip coreutils",
    )
}

#[test]
fn backup_wipe_restore_reproduces_identical_trees() {
    let base = populated_base();
    let etc = tempfile::tempdir().unwrap();
    let env_file = etc.path().join("thumbgen.env");
    fs::write(&env_file, "LOG_LEVEL=debug\n").unwrap();
    let dest = tempfile::tempdir().unwrap();
    let before = tree(base.path());
    let env_before = fs::read(&env_file).unwrap();

    backup(base.path(), dest.path(), &env_file, &[]);
    let made = archives(dest.path());
    assert_eq!(made.len(), 1, "{made:?}");
    let name = made[0].file_name().unwrap().to_string_lossy().into_owned();
    let stamp = name.strip_prefix("thumbgen-backup-").and_then(|s| s.strip_suffix(".tar.gz")).unwrap_or("");
    assert!(
        stamp.len() == 15 && stamp.chars().enumerate().all(|(i, c)| if i == 8 { c == '-' } else { c.is_ascii_digit() }),
        "archive name {name} is not thumbgen-backup-YYYYmmdd-HHMMSS.tar.gz"
    );
    assert!(dest.path().join(format!("{name}.sha256")).is_file(), "no checksum file beside the archive");
    assert_eq!(mode(&made[0]) & 0o077, 0, "the archive holds secrets: it must not be readable by others");

    // The manifest and the checksums are inside.
    let listing = run(Command::new("tar").arg("-tzf").arg(&made[0]), "apt-get install tar");
    let listing = text(&listing.stdout);
    let top = name.trim_end_matches(".tar.gz");
    for member in ["MANIFEST", "SHA256SUMS", "state/cutouts/ab/cd/abcd1234 with space.png", "config/base/.env"] {
        assert!(listing.lines().any(|l| l == format!("{top}/{member}")), "{member} missing from:\n{listing}");
    }

    // Wipe everything, restore everything.
    for entry in fs::read_dir(base.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            fs::remove_dir_all(&path).unwrap();
        } else {
            fs::remove_file(&path).unwrap();
        }
    }
    fs::remove_file(&env_file).unwrap();
    let out = restore(&made[0], base.path(), &env_file, &[]);
    assert!(out.status.success(), "restore.sh failed\n{}", describe(&out));
    assert_same_tree(&before, &tree(base.path()));
    assert_eq!(fs::read(&env_file).unwrap(), env_before);
}

/// A populated base folder and one full backup of it.
struct Backed {
    base: tempfile::TempDir,
    _etc: tempfile::TempDir,
    env_file: PathBuf,
    dest: tempfile::TempDir,
    archive: PathBuf,
}

fn backed_up() -> Backed {
    let base = populated_base();
    let etc = tempfile::tempdir().unwrap();
    let env_file = etc.path().join("thumbgen.env");
    let dest = tempfile::tempdir().unwrap();
    backup(base.path(), dest.path(), &env_file, &[]);
    let archive = archives(dest.path()).remove(0);
    Backed { base, _etc: etc, env_file, dest, archive }
}

#[test]
fn restore_of_one_component_leaves_the_others_alone_and_needs_force_over_data() {
    let Backed { base, _etc, env_file, dest: _dest, archive } = backed_up();
    let original_products = tree(&base.path().join("produtos"));

    // Damage produtos, and change the thumbnails in a way a produtos restore must not undo.
    fs::remove_file(base.path().join("produtos/garrafa azul.jpg")).unwrap();
    fs::write(base.path().join("produtos/new.jpg"), b"new").unwrap();
    fs::write(base.path().join("thumbnails-prontas/added-later.jpg"), b"later").unwrap();
    let damaged_products = tree(&base.path().join("produtos"));
    let thumbnails = tree(&base.path().join("thumbnails-prontas"));

    let refused = restore(&archive, base.path(), &env_file, &["--component", "produtos"]);
    assert!(
        !refused.status.success(),
        "restore over a non-empty folder without --force must refuse\n{}",
        describe(&refused)
    );
    assert!(text(&refused.stderr).contains("--force"), "{}", describe(&refused));
    assert_same_tree(&damaged_products, &tree(&base.path().join("produtos")));

    let out = restore(&archive, base.path(), &env_file, &["--component", "produtos", "--force"]);
    assert!(out.status.success(), "{}", describe(&out));
    assert_same_tree(&original_products, &tree(&base.path().join("produtos")));
    assert_same_tree(&thumbnails, &tree(&base.path().join("thumbnails-prontas")));

    // --force moved the current folder aside instead of deleting it.
    let aside: Vec<PathBuf> = fs::read_dir(base.path())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("produtos.before-restore-"))
        .collect();
    assert_eq!(aside.len(), 1, "expected one produtos.before-restore-* folder\n{}", describe(&out));
    assert_same_tree(&damaged_products, &tree(&aside[0]));

    // A component the archive does not have is an error.
    let partial = tempfile::tempdir().unwrap();
    backup(base.path(), partial.path(), &env_file, &["--components", "state"]);
    let only_state = archives(partial.path()).remove(0);
    let out = restore(&only_state, base.path(), &env_file, &["--component", "produtos"]);
    assert!(!out.status.success(), "{}", describe(&out));
}

#[test]
fn restore_refuses_a_damaged_archive() {
    let Backed { base: _base, _etc, env_file, dest: _dest, archive } = backed_up();
    let top = archive.file_name().unwrap().to_string_lossy().trim_end_matches(".tar.gz").to_owned();

    // 1. A file altered inside a re-packed archive (no outer checksum): SHA256SUMS catches it.
    let work = tempfile::tempdir().unwrap();
    let unpack = run(Command::new("tar").arg("-C").arg(work.path()).arg("-xzf").arg(&archive), "apt-get install tar");
    assert!(unpack.status.success(), "{}", describe(&unpack));
    fs::write(work.path().join(&top).join("produtos/tênis.png"), b"tampered").unwrap();
    let repacked = work.path().join("repacked.tar.gz");
    let pack =
        run(Command::new("tar").arg("-C").arg(work.path()).arg("-czf").arg(&repacked).arg(&top), "apt-get install tar");
    assert!(pack.status.success(), "{}", describe(&pack));
    let target = tempfile::tempdir().unwrap();
    let out = restore(&repacked, target.path(), &env_file, &["--component", "produtos"]);
    assert!(!out.status.success(), "a tampered file was restored\n{}", describe(&out));
    assert!(!target.path().join("produtos").exists(), "nothing may be restored from a damaged archive");

    // 2. The archive itself altered: its .sha256 catches it.
    let mut bytes = fs::read(&archive).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    fs::write(&archive, bytes).unwrap();
    let out = restore(&archive, target.path(), &env_file, &[]);
    assert!(!out.status.success(), "a corrupted archive was accepted\n{}", describe(&out));
    assert!(text(&out.stderr).contains("damaged"), "{}", describe(&out));
}

#[test]
fn backup_retention_deletes_only_old_backups() {
    let base = populated_base();
    let etc = tempfile::tempdir().unwrap();
    let env_file = etc.path().join("thumbgen.env");
    let dest = tempfile::tempdir().unwrap();
    let day = Duration::from_secs(86_400);
    let age = |name: &str, days: u32| {
        let path = dest.path().join(name);
        fs::write(&path, b"old").unwrap();
        let file = fs::File::options().write(true).open(&path).unwrap();
        file.set_modified(SystemTime::now() - day * days).unwrap();
    };
    age("thumbgen-backup-20200101-000000.tar.gz", 10);
    age("thumbgen-backup-20200101-000000.tar.gz.sha256", 10);
    age("thumbgen-backup-20200105-000000.tar.gz", 3);
    age("notes.txt", 10);

    let out = backup(base.path(), dest.path(), &env_file, &["--retention-days", "7", "--components", "produtos"]);
    let left: Vec<String> =
        fs::read_dir(dest.path()).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    assert!(!left.contains(&"thumbgen-backup-20200101-000000.tar.gz".to_owned()), "10-day-old backup kept: {left:?}");
    assert!(!left.contains(&"thumbgen-backup-20200101-000000.tar.gz.sha256".to_owned()), "{left:?}");
    assert!(left.contains(&"thumbgen-backup-20200105-000000.tar.gz".to_owned()), "3-day-old backup deleted: {left:?}");
    assert!(left.contains(&"notes.txt".to_owned()), "a file that is not a backup was deleted: {left:?}");
    assert_eq!(archives(dest.path()).len(), 2, "{left:?}\n{}", describe(&out));
}

// --- diagnose.sh -----------------------------------------------------------------------------

/// The row of the folder table for `folder`: (file count, the whole line).
fn folder_row(report: &str, folder: &str) -> (u64, String) {
    let line = report
        .lines()
        .find(|l| l.split_whitespace().next() == Some(&format!("{folder}/")))
        .unwrap_or_else(|| panic!("no row for {folder}/ in:\n{report}"));
    let count = line.split_whitespace().nth(1).and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("{line}"));
    (count, line.to_owned())
}

#[test]
fn diagnose_reports_a_running_daemon() {
    let sb = Sandbox::new();
    let d = sb.start(&[]);
    sb.drop_file("backgrounds", "wall.jpg", &synth::jpeg(&synth::background(800, 600)));
    sb.drop_file("produtos", "caneca azul.jpg", &synth::product_jpeg(Shape::Box, [30, 80, 170], 7));
    let done = wait_until(Duration::from_secs(120), || sb.files("thumbnails-prontas").len() >= 2);
    assert!(done, "no thumbnails: {:?}\n{}", sb.files("thumbnails-prontas"), d.log_text());

    let out = run(
        script("diagnose.sh")
            .args(["--url", &d.url()])
            .arg("--base")
            .arg(sb.dir.path())
            .env("THUMBGEN_BIN", common::BIN),
        "bash",
    );
    let report = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(
        report.contains("status: healthy") || report.contains("status: degraded"),
        "no health status in the report\n{report}"
    );
    assert!(report.contains("\"checks\""), "the /health JSON is missing\n{report}");
    assert!(report.contains("thumbgen_thumbnails_written_total"), "metrics missing\n{report}");
    assert!(report.contains("thumbgen_queue_depth"), "queue depth missing\n{report}");
    assert!(report.contains("thumbnails written"), "the log lines are missing\n{report}");
    assert_eq!(folder_row(&report, "produtos").0, 1);
    assert_eq!(folder_row(&report, "backgrounds").0, 1);
    assert_eq!(folder_row(&report, "thumbnails-prontas").0, 2);
    for limit in ["max_user_watches", "max_user_instances", "max_queued_events"] {
        assert!(report.contains(limit), "{limit} missing\n{report}");
    }
    assert!(report.contains("Avail"), "free disk missing\n{report}");
}

#[test]
fn diagnose_fails_when_nothing_listens() {
    let sb = Sandbox::new();
    let port = common::free_port();
    let out = run(
        script("diagnose.sh")
            .args(["--url", &format!("http://127.0.0.1:{port}")])
            .arg("--base")
            .arg(sb.dir.path())
            .env("THUMBGEN_BIN", common::BIN),
        "bash",
    );
    assert!(!out.status.success(), "diagnose.sh succeeded with no daemon\n{}", describe(&out));
    assert!(text(&out.stdout).contains("unreachable"), "{}", describe(&out));
}

// --- shell scripts ---------------------------------------------------------------------------

#[test]
fn operations_scripts_are_strict_and_have_help() {
    for name in ["install.sh", "backup.sh", "restore.sh", "diagnose.sh"] {
        let path = repo().join("scripts").join(name);
        let body = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(body.starts_with("#!/usr/bin/env bash\n"), "{name}: shebang");
        assert!(body.contains("\nset -euo pipefail\n"), "{name}: set -euo pipefail");
        assert!(mode(&path) & 0o111 != 0, "{name} is not executable");
        let out = run(script(name).arg("--help"), "bash");
        assert!(out.status.success() && text(&out.stdout).contains("Usage:"), "{name} --help\n{}", describe(&out));
        let bad = run(script(name).arg("--no-such-flag"), "bash");
        assert!(!bad.status.success(), "{name} accepted an unknown flag");
    }
}

// --- Docker, Compose, Kubernetes ---------------------------------------------------------------

/// YAML documents of a file, as JSON, read by PyYAML in the test virtualenv.
fn yaml_documents(path: &Path) -> Vec<Value> {
    let python = std::env::var("THUMBGEN_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|_| repo().join(".venv/test/bin/python"));
    let code =
        "import json, sys, yaml\nprint(json.dumps(list(yaml.safe_load_all(open(sys.argv[1], encoding='utf-8')))))";
    let out = Command::new(&python)
        .args(["-c", code])
        .arg(path)
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}. Run scripts/setup-test-env (it installs PyYAML)", python.display()));
    assert!(
        out.status.success(),
        "{} does not parse (or PyYAML is missing: run scripts/setup-test-env)\n{}",
        path.display(),
        describe(&out)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn strs(value: &Value) -> Vec<String> {
    value.as_array().map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect()).unwrap_or_default()
}

#[test]
fn compose_file_runs_the_service_with_its_folders_and_healthcheck() {
    let docs = yaml_documents(&repo().join("docker-compose.yml"));
    assert_eq!(docs.len(), 1);
    let services = docs[0]["services"].as_object().expect("services");
    // Every service has a profile: a single-node daemon never runs beside cluster nodes.
    let by_default: Vec<_> = services.iter().filter(|(_, svc)| svc.get("profiles").is_none()).map(|(k, _)| k).collect();
    assert!(by_default.is_empty(), "services without a profile: {by_default:?}");
    let svc = &services["thumbgen"];
    assert_eq!(strs(&svc["profiles"]), ["single"]);
    assert_eq!(svc["build"], ".");
    assert!(strs(&svc["ports"]).contains(&"8501:8501".to_owned()), "{}", svc["ports"]);
    assert_eq!(svc["restart"], "unless-stopped");
    let volumes = strs(&svc["volumes"]);
    for (host, container) in [
        ("./produtos", "/data/produtos"),
        ("./backgrounds", "/data/backgrounds"),
        ("./thumbnails-prontas", "/data/thumbnails-prontas"),
        ("./logs", "/data/logs"),
    ] {
        assert!(
            volumes.iter().any(|v| v.starts_with(&format!("{host}:{container}"))),
            "{host} is not mounted at {container}: {volumes:?}"
        );
    }
    let state = volumes.iter().find(|v| v.contains(":/data/.thumbgen")).expect("a volume for the state");
    let state_volume = state.split(':').next().unwrap();
    assert!(docs[0]["volumes"].get(state_volume).is_some(), "named volume {state_volume} is not declared");

    let test = strs(&svc["healthcheck"]["test"]).join(" ");
    assert!(test.contains("thumbgen health"), "healthcheck: {test}");
    assert_eq!(svc["stop_grace_period"], "45s");
    let env = &svc["environment"];
    assert_eq!(env["BASE_PATH"], "/data");
    assert_eq!(env["GRADIO_API_URL"], "${GRADIO_API_URL:-}");
    assert_eq!(env["HF_TOKEN"], "${HF_TOKEN:-}");
    assert!(env.get("LOG_LEVEL").is_some());
}

#[test]
fn compose_cluster_profile_runs_nats_with_jetstream_and_three_nodes_on_the_same_folders() {
    let docs = yaml_documents(&repo().join("docker-compose.yml"));
    let services = &docs[0]["services"];
    let nats = &services["nats"];
    assert_eq!(strs(&nats["profiles"]), ["cluster", "bucket"], "the bucket setup shares the broker's service");
    assert!(nats["image"].as_str().unwrap_or("").starts_with("nats:2."), "official NATS image: {}", nats["image"]);
    assert!(strs(&nats["command"]).contains(&"-js".to_owned()), "JetStream on: {}", nats["command"]);
    let store = strs(&nats["volumes"]).into_iter().next().expect("a volume for the NATS store");
    assert!(docs[0]["volumes"].get(store.split(':').next().unwrap()).is_some(), "{store} not declared");

    let node = &services["node"];
    assert_eq!(strs(&node["profiles"]), ["cluster"]);
    assert_eq!(node["deploy"]["replicas"], 3);
    assert!(node["depends_on"]["nats"].is_object(), "nodes wait for NATS");
    assert_eq!(node["environment"]["NATS_URL"], "nats://nats:4222");
    assert_eq!(node["environment"]["BASE_PATH"], "/data");
    let single = strs(&services["thumbgen"]["volumes"]);
    for mount in strs(&node["volumes"]) {
        let container = mount.split(':').nth(1).unwrap().to_owned();
        if container != "/data/.thumbgen" {
            assert!(single.contains(&mount), "{mount} is not the folder the single node uses");
        }
    }
    assert!(strs(&node["volumes"]).iter().any(|v| v.ends_with(":/data/.thumbgen")), "shared cut-outs");
}

#[test]
fn compose_bucket_profile_runs_seaweedfs_nats_and_three_nodes_that_share_no_folder() {
    let docs = yaml_documents(&repo().join("docker-compose.yml"));
    let services = &docs[0]["services"];
    let store = &services["seaweedfs"];
    assert_eq!(strs(&store["profiles"]), ["bucket"]);
    let command = strs(&store["command"]);
    assert!(command.contains(&"mini".to_owned()) && command.contains(&"-bucket=thumbgen".to_owned()), "{command:?}");
    let node = &services["bucket-node"];
    assert_eq!(strs(&node["profiles"]), ["bucket"]);
    assert_eq!(node["deploy"]["replicas"], 3);
    assert!(node["depends_on"]["nats"].is_object() && node["depends_on"]["seaweedfs"].is_object());
    let env = &node["environment"];
    assert_eq!(env["STORAGE_URL"], "s3://thumbgen");
    assert_eq!(env["AWS_ENDPOINT_URL"], "http://seaweedfs:8333");
    assert_eq!(env["NATS_URL"], "nats://nats:4222");
    assert!(node["volumes"].is_null(), "nothing shared through a folder: {}", node["volumes"]);
    // The node and the store agree on the keys.
    assert_eq!(env["AWS_ACCESS_KEY_ID"], store["environment"]["AWS_ACCESS_KEY_ID"]);
    assert_eq!(env["AWS_SECRET_ACCESS_KEY"], store["environment"]["AWS_SECRET_ACCESS_KEY"]);
}

/// A manifest of the single-node setup: in `deploy/kubernetes/base/` (shared with the cluster
/// overlay) or, for the top-level kustomization and the Secret example, `deploy/kubernetes/`.
fn kube(name: &str) -> Value {
    let base = repo().join("deploy/kubernetes/base").join(name);
    let path = if base.is_file() { base } else { repo().join("deploy/kubernetes").join(name) };
    let mut docs = yaml_documents(&path);
    assert_eq!(docs.len(), 1, "{name}: one document");
    docs.remove(0)
}

#[test]
fn kubernetes_manifests_parse_and_the_pod_is_hardened() {
    // `kubectl apply -k deploy/kubernetes` renders the base, which the cluster overlay shares
    // (an overlay inside its own base is a cycle kustomize refuses).
    let top = yaml_documents(&repo().join("deploy/kubernetes/kustomization.yaml"));
    assert_eq!(strs(&top[0]["resources"]), ["base"]);
    let kustomization = kube("kustomization.yaml");
    let resources = strs(&kustomization["resources"]);
    for file in ["deployment.yaml", "service.yaml", "pvc.yaml", "configmap.yaml"] {
        assert!(resources.contains(&file.to_owned()), "{file} not in kustomization: {resources:?}");
    }
    for file in &resources {
        assert!(repo().join("deploy/kubernetes/base").join(file).is_file(), "{file} listed but missing");
    }

    let deployment = kube("deployment.yaml");
    assert_eq!(deployment["kind"], "Deployment");
    assert_eq!(deployment["spec"]["replicas"], 1, "two daemons on one volume race: one replica");
    assert_eq!(deployment["spec"]["strategy"]["type"], "Recreate");
    let pod = &deployment["spec"]["template"]["spec"];
    assert!(pod["terminationGracePeriodSeconds"].as_u64().unwrap_or(30) >= 45);
    let containers = pod["containers"].as_array().expect("containers");
    assert_eq!(containers.len(), 1);
    let c = &containers[0];
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/health/live");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/health/ready");
    assert!(c["startupProbe"]["httpGet"]["path"].is_string(), "startupProbe missing");
    let sc = &c["securityContext"];
    let pod_sc = &pod["securityContext"];
    assert!(sc["runAsNonRoot"] == true || pod_sc["runAsNonRoot"] == true, "runAsNonRoot");
    assert!(sc["runAsUser"] == 1000 || pod_sc["runAsUser"] == 1000, "uid 1000");
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(strs(&sc["capabilities"]["drop"]), ["ALL"]);
    assert!(
        sc["seccompProfile"]["type"] == "RuntimeDefault" || pod_sc["seccompProfile"]["type"] == "RuntimeDefault",
        "seccomp RuntimeDefault"
    );
    for kind in ["requests", "limits"] {
        for resource in ["cpu", "memory"] {
            assert!(c["resources"][kind][resource].is_string(), "resources.{kind}.{resource} missing");
        }
    }

    // Volumes: the PVC at /data, an emptyDir at /tmp.
    let mounts = c["volumeMounts"].as_array().expect("volumeMounts");
    let volume_at = |path: &str| {
        let name = mounts.iter().find(|m| m["mountPath"] == path).unwrap_or_else(|| panic!("nothing at {path}"))
            ["name"]
            .clone();
        pod["volumes"].as_array().unwrap().iter().find(|v| v["name"] == name).unwrap().clone()
    };
    let pvc = kube("pvc.yaml");
    assert_eq!(pvc["kind"], "PersistentVolumeClaim");
    assert_eq!(volume_at("/data")["persistentVolumeClaim"]["claimName"], pvc["metadata"]["name"]);
    assert!(volume_at("/tmp")["emptyDir"].is_object());

    // Settings from the ConfigMap and the Secret.
    let config = kube("configmap.yaml");
    let secret = kube("secret.yaml");
    let env_from = c["envFrom"].as_array().expect("envFrom");
    assert!(env_from.iter().any(|e| e["configMapRef"]["name"] == config["metadata"]["name"]));
    assert!(env_from.iter().any(|e| e["secretRef"]["name"] == secret["metadata"]["name"]));
    assert_eq!(config["data"]["HTTP_ADDR"], "0.0.0.0:8501");
    assert_eq!(config["data"]["BASE_PATH"], "/data");
    assert!(secret["stringData"]["HF_TOKEN"].is_string());

    // The Service reaches the pod.
    let service = kube("service.yaml");
    let labels = &deployment["spec"]["template"]["metadata"]["labels"];
    for (key, value) in service["spec"]["selector"].as_object().expect("selector") {
        assert_eq!(&labels[key], value, "the Service selector does not match the pod");
    }
    assert_eq!(service["spec"]["ports"][0]["port"], 8501);
}

/// Dockerfile instructions with continuation lines joined: (INSTRUCTION, arguments).
fn dockerfile() -> Vec<(String, String)> {
    let raw = fs::read_to_string(repo().join("Dockerfile")).expect("Dockerfile");
    let mut out = Vec::new();
    let mut current = String::new();
    for line in raw.lines() {
        let trimmed = line.trim();
        if current.is_empty() && (trimmed.is_empty() || trimmed.starts_with('#')) {
            continue;
        }
        if trimmed.starts_with('#') {
            continue;
        }
        if let Some(part) = trimmed.strip_suffix('\\') {
            current.push_str(part);
            current.push(' ');
            continue;
        }
        current.push_str(trimmed);
        let (instruction, args) = current.split_once(char::is_whitespace).unwrap_or((&current, ""));
        out.push((instruction.to_uppercase(), args.trim().to_owned()));
        current.clear();
    }
    out
}

#[test]
fn dockerfile_builds_in_two_stages_and_runs_as_uid_1000_with_healthcheck_and_volumes() {
    let steps = dockerfile();
    let all = |name: &str| steps.iter().filter(|(i, _)| i == name).map(|(_, a)| a.clone()).collect::<Vec<_>>();
    let froms = all("FROM");
    assert!(froms.len() >= 2, "multi-stage build expected: {froms:?}");
    assert!(froms[0].to_lowercase().contains(" as builder"), "{froms:?}");
    assert!(all("RUN").iter().any(|r| r.contains("cargo build --release --locked")), "cargo build --release --locked");

    // Everything after the last FROM is the runtime image.
    let last_from = steps.iter().rposition(|(i, _)| i == "FROM").unwrap();
    let runtime = &steps[last_from..];
    let get = |name: &str| runtime.iter().filter(|(i, _)| i == name).map(|(_, a)| a.clone()).collect::<Vec<_>>();
    let user = get("USER");
    let user = user.last().expect("USER in the runtime stage");
    let uid = user.split(':').next().unwrap();
    assert!(
        uid == "1000"
            || get("RUN").iter().any(|r| r.contains("useradd") && r.contains("--uid 1000") && r.contains(uid)),
        "runtime user must be uid 1000, got USER {user}"
    );
    let health = get("HEALTHCHECK").join(" ");
    assert!(health.contains(r#"CMD ["thumbgen", "health"]"#) || health.contains("CMD thumbgen health"), "{health}");
    assert!(get("EXPOSE").iter().any(|e| e.split_whitespace().any(|p| p == "8501" || p == "8501/tcp")));
    let volumes = get("VOLUME").join(" ");
    for folder in ["/data/produtos", "/data/backgrounds", "/data/thumbnails-prontas", "/data/logs", "/data/.thumbgen"] {
        assert!(volumes.contains(&format!("\"{folder}\"")), "VOLUME {folder} missing: {volumes}");
    }
    let env = get("ENV").join(" ");
    assert!(env.contains("HTTP_ADDR=0.0.0.0:8501") && env.contains("BASE_PATH=/data"), "{env}");
    assert_eq!(get("WORKDIR").last().map(String::as_str), Some("/data"));
    assert_eq!(get("STOPSIGNAL").last().map(String::as_str), Some("SIGTERM"));
    assert_eq!(get("ENTRYPOINT").last().map(String::as_str), Some(r#"["thumbgen"]"#));
    assert_eq!(get("CMD").last().map(String::as_str), Some(r#"["run"]"#));

    // Every file copied from the build context exists and is not excluded by .dockerignore.
    let ignore = fs::read_to_string(repo().join(".dockerignore")).expect(".dockerignore");
    let ignored: Vec<&str> = ignore
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.trim_end_matches('/'))
        .collect();
    for needed in ["target", ".git", ".venv", ".env"] {
        assert!(ignored.contains(&needed), "{needed} should be in .dockerignore: {ignored:?}");
    }
    for copy in all("COPY") {
        if copy.starts_with("--from") {
            continue;
        }
        let parts: Vec<&str> = copy.split_whitespace().filter(|p| !p.starts_with("--")).collect();
        for source in &parts[..parts.len() - 1] {
            assert!(repo().join(source).exists(), "COPY {source}: not in the repository");
            let top = source.split('/').next().unwrap();
            assert!(!ignored.contains(&top) && !ignored.contains(source), "COPY {source} is excluded by .dockerignore");
        }
    }
}

fn kube_cluster(name: &str) -> Value {
    kube(&format!("cluster/{name}"))
}

#[test]
fn kubernetes_cluster_overlay_scales_on_the_job_backlog_and_shares_one_volume() {
    let kustomization = kube_cluster("kustomization.yaml");
    let mut files = strs(&kustomization["resources"]);
    files.extend(
        kustomization["patches"].as_array().expect("patches").iter().map(|p| p["path"].as_str().unwrap().to_owned()),
    );
    for file in ["nats.yaml", "pdb.yaml", "keda-scaledobject.yaml", "deployment-patch.yaml", "pvc-patch.yaml"] {
        assert!(files.contains(&file.to_owned()), "{file} not in the overlay: {files:?}");
    }
    assert!(files.contains(&"../base".to_owned()), "the overlay builds on the shared base: {files:?}");
    for file in files.iter().filter(|f| *f != "../base") {
        assert!(repo().join("deploy/kubernetes/cluster").join(file).is_file(), "{file} listed but missing");
    }

    let deployment = kube_cluster("deployment-patch.yaml");
    assert!(deployment["spec"]["replicas"].as_u64().unwrap() > 1);
    assert_eq!(deployment["spec"]["strategy"]["type"], "RollingUpdate");
    let grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"].as_u64().unwrap();
    let config = kube_cluster("configmap-patch.yaml");
    let shutdown = config["data"]["SHUTDOWN_TIMEOUT"].as_str().unwrap();
    let shutdown: u64 = shutdown.trim_end_matches('s').parse().unwrap();
    assert!(grace > shutdown, "the pod's grace ({grace} s) must outlast the daemon's shutdown ({shutdown} s)");
    assert!(config["data"]["NATS_URL"].as_str().unwrap().starts_with("nats://"));
    assert_eq!(config["data"]["WATCH_MODE"], "poll", "a shared volume delivers no file events");
    assert_eq!(strs(&kube_cluster("pvc-patch.yaml")["spec"]["accessModes"]), ["ReadWriteMany"]);
    assert_eq!(kube_cluster("pdb.yaml")["kind"], "PodDisruptionBudget");

    let keda = kube_cluster("keda-scaledobject.yaml");
    let triggers = keda["spec"]["triggers"].as_array().expect("triggers");
    let mut consumers: Vec<&str> = triggers.iter().map(|t| t["metadata"]["consumer"].as_str().unwrap()).collect();
    consumers.sort();
    assert_eq!(consumers, ["workers-backgrounds", "workers-products"], "KEDA scales on both consumers");
    for trigger in triggers {
        assert_eq!(trigger["type"], "nats-jetstream");
        assert_eq!(trigger["metadata"]["stream"], "THUMBGEN_JOBS");
    }
    assert_eq!(keda["spec"]["scaleTargetRef"]["name"], deployment["metadata"]["name"]);
    let hpa = kube_cluster("hpa-prometheus.yaml");
    assert_eq!(hpa["spec"]["metrics"][0]["external"]["metric"]["name"], "thumbgen_cluster_jobs_pending");

    let nats = yaml_documents(&repo().join("deploy/kubernetes/cluster/nats.yaml"));
    let statefulset = nats.iter().find(|d| d["kind"] == "StatefulSet").expect("a NATS StatefulSet");
    let args = strs(&statefulset["spec"]["template"]["spec"]["containers"][0]["args"]);
    let command = strs(&statefulset["spec"]["template"]["spec"]["containers"][0]["command"]);
    assert!(args.iter().chain(&command).any(|a| a == "-js" || a == "--jetstream"), "JetStream on: {args:?}");
    let service = nats.iter().find(|d| d["kind"] == "Service").expect("a NATS Service");
    let host = config["data"]["NATS_URL"]
        .as_str()
        .unwrap()
        .trim_start_matches("nats://")
        .split(':')
        .next()
        .unwrap()
        .to_owned();
    assert_eq!(service["metadata"]["name"], host.as_str(), "NATS_URL names the NATS Service");
}
