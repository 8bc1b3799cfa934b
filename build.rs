//! Build script: the JPEG encoder's bridge to libjpeg-turbo where the machine has it, and, with
//! the `onnxruntime` feature, the onnxruntime shared library that the embedded engine loads at
//! run time.
//!
//! libjpeg-turbo: `src/encode/libjpeg.c` is compiled with the machine's C compiler against the
//! system's `<jpeglib.h>` (Debian `libjpeg62-turbo-dev`, Ubuntu `libjpeg-turbo8-dev`, Fedora
//! `libjpeg-turbo-devel`) and linked to its `libjpeg`; this sets `cfg(thumbgen_libjpeg)`. Where
//! the header or a C compiler is missing the build goes on with the pure-Rust encoder and says so
//! in a warning; `THUMBGEN_LIBJPEG=0` asks for that encoder without one (src/encode/jpeg.rs).
//!
//! onnxruntime:
//! The library comes from a registry package, never from a hand-made download: the PyPI wheel
//! `onnxruntime` at a pinned version, fetched with the machine's own `pip download` (so pip's
//! index and proxy settings apply) and checked against a pinned SHA-256. It is unpacked once per
//! target folder (`target/onnxruntime-<version>/`, reused by every profile and feature set) and
//! copied beside the binaries (`target/<profile>/`), with its licence and third-party notices, so
//! `cargo run` and an installed copy find it. After the first build nothing is fetched again:
//! builds and runs work offline.
//!
//! `THUMBGEN_ORT_WHEEL=/path/to/the.whl` uses a wheel already at hand (still checked). Without
//! pip or a registry, build the pure-Rust engine instead: `--no-default-features --features tract`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The onnxruntime release: the same one rembg runs in the benchmarks.
const VERSION: &str = "1.32.0";
/// The wheel for CPython 3.11 on manylinux 2.28 x86-64; the library inside is the same for every
/// Python version, so one wheel is pinned whatever the machine's Python is.
const WHEEL: &str = "onnxruntime-1.32.0-cp311-cp311-manylinux_2_28_x86_64.whl";
const WHEEL_SHA256: &str = "5a34fc4dfeb5a7b4a74c95dcba1e773d722abda720b474edf1b0c419dc6d163d";
/// What is taken out of the wheel: the library and its licence texts.
const LIBRARY: &str = "libonnxruntime.so.1.32.0";
const FILES: [(&str, &str); 3] = [
    ("onnxruntime/capi/libonnxruntime.so.1.32.0", LIBRARY),
    ("onnxruntime/LICENSE", "LICENSE-onnxruntime-MIT.txt"),
    ("onnxruntime/ThirdPartyNotices.txt", "onnxruntime-ThirdPartyNotices.txt"),
];

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    libjpeg();
    onnxruntime();
}

/// Builds the bridge to libjpeg-turbo, or says why the pure-Rust encoder is used.
fn libjpeg() {
    const BRIDGE: &str = "src/encode/libjpeg.c";
    println!("cargo:rustc-check-cfg=cfg(thumbgen_libjpeg)");
    println!("cargo:rerun-if-changed={BRIDGE}");
    println!("cargo:rerun-if-env-changed=THUMBGEN_LIBJPEG");
    if std::env::var("THUMBGEN_LIBJPEG").is_ok_and(|v| v == "0") {
        return;
    }
    match cc::Build::new().file(BRIDGE).opt_level(2).warnings(true).try_compile("thumbgen_libjpeg") {
        Ok(()) => {
            println!("cargo:rustc-link-lib=jpeg");
            println!("cargo:rustc-cfg=thumbgen_libjpeg");
        }
        Err(e) => println!(
            "cargo:warning=thumbgen: libjpeg-turbo's header was not found or did not compile ({}); using the \
             pure-Rust JPEG encoder, about 3x slower. Install libjpeg62-turbo-dev (Debian), libjpeg-turbo8-dev \
             (Ubuntu) or libjpeg-turbo-devel (Fedora) and rebuild for the faster one.",
            e.to_string().lines().next().unwrap_or_default()
        ),
    }
}

/// With the `onnxruntime` feature: the library, unpacked once and copied beside the binaries.
fn onnxruntime() {
    println!("cargo:rerun-if-env-changed=THUMBGEN_ORT_WHEEL");
    if std::env::var_os("CARGO_FEATURE_ONNXRUNTIME").is_none() {
        return;
    }
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let target = target_dir(&out_dir);
    let store = target.join(format!("onnxruntime-{VERSION}"));
    if let Err(problem) = unpack(&store) {
        panic!(
            "\n\nthumbgen: cannot obtain onnxruntime {VERSION} for the embedded engine: {problem}\n\
             It comes from the PyPI wheel `onnxruntime=={VERSION}` via `python3 -m pip download`.\n\
             Either let pip reach the package index, set THUMBGEN_ORT_WHEEL to a downloaded {WHEEL},\n\
             or build the pure-Rust engine instead: cargo build --release --no-default-features --features tract\n\n"
        );
    }
    // Beside the binaries of this profile (target/<profile>/ and its deps/ for test binaries).
    let profile_dir = out_dir.ancestors().nth(3).expect("OUT_DIR is target/<profile>/build/<pkg>/out");
    for (_, name) in FILES {
        for dir in [profile_dir.to_path_buf(), profile_dir.join("deps")] {
            copy_if_changed(&store.join(name), &dir.join(name));
        }
    }
    println!("cargo:rustc-env=THUMBGEN_ORT_BUILT_LIBRARY={}", store.join(LIBRARY).display());
    println!("cargo:rustc-env=THUMBGEN_ORT_LIBRARY_NAME={LIBRARY}");
}

/// The target folder: the nearest ancestor of OUT_DIR that cargo marked with `CACHEDIR.TAG`.
fn target_dir(out_dir: &Path) -> PathBuf {
    out_dir.ancestors().find(|dir| dir.join("CACHEDIR.TAG").is_file()).unwrap_or(out_dir).to_path_buf()
}

/// Makes sure `store` holds the checked files of the wheel.
fn unpack(store: &Path) -> Result<(), String> {
    let done = store.join(".complete");
    if done.is_file() && FILES.iter().all(|(_, name)| store.join(name).is_file()) {
        return Ok(());
    }
    std::fs::create_dir_all(store).map_err(|e| format!("cannot create {}: {e}", store.display()))?;
    let wheel = match std::env::var_os("THUMBGEN_ORT_WHEEL") {
        Some(path) => PathBuf::from(path),
        None => download(store)?,
    };
    // Python is there (pip needs it): its zipfile and hashlib check and unpack the wheel.
    let members: Vec<&str> = FILES.iter().map(|(member, _)| *member).collect();
    let names: Vec<&str> = FILES.iter().map(|(_, name)| *name).collect();
    let script = r#"
import hashlib, os, sys, zipfile
wheel, expected, store = sys.argv[1], sys.argv[2], sys.argv[3]
members, names = sys.argv[4].split(','), sys.argv[5].split(',')
digest = hashlib.sha256(open(wheel, 'rb').read()).hexdigest()
if digest != expected:
    sys.exit(f'{wheel} has SHA-256 {digest}, expected {expected}')
with zipfile.ZipFile(wheel) as z:
    for member, name in zip(members, names):
        tmp = os.path.join(store, name + '.part')
        with z.open(member) as src, open(tmp, 'wb') as dst:
            dst.write(src.read())
        os.replace(tmp, os.path.join(store, name))
"#;
    run(Command::new(python())
        .args(["-c", script])
        .arg(&wheel)
        .arg(WHEEL_SHA256)
        .arg(store)
        .arg(members.join(","))
        .arg(names.join(",")))?;
    std::fs::write(&done, WHEEL).map_err(|e| format!("cannot write {}: {e}", done.display()))?;
    Ok(())
}

/// `pip download` of the pinned wheel into `store`; returns its path.
fn download(store: &Path) -> Result<PathBuf, String> {
    let wheel = store.join(WHEEL);
    if wheel.is_file() {
        return Ok(wheel);
    }
    run(Command::new(python())
        .args(["-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:"])
        .args(["--python-version", "3.11", "--implementation", "cp", "--abi", "cp311"])
        .args(["--platform", "manylinux_2_28_x86_64", "--disable-pip-version-check"])
        .arg(format!("onnxruntime=={VERSION}"))
        .arg("--dest")
        .arg(store))?;
    if wheel.is_file() {
        Ok(wheel)
    } else {
        Err(format!("pip did not leave {WHEEL} in {}", store.display()))
    }
}

fn python() -> String {
    std::env::var("PYTHON").unwrap_or_else(|_| "python3".into())
}

fn run(command: &mut Command) -> Result<(), String> {
    let shown = format!("{command:?}");
    let out = command.output().map_err(|e| format!("cannot run {shown}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("{shown} failed: {}", String::from_utf8_lossy(&out.stderr).trim()))
    }
}

fn copy_if_changed(from: &Path, to: &Path) {
    let same = |a: &Path, b: &Path| match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(a), Ok(b)) => a.len() == b.len() && a.modified().ok() <= b.modified().ok(),
        _ => false,
    };
    if same(from, to) {
        return;
    }
    if let Some(dir) = to.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let tmp = to.with_extension("part");
    std::fs::copy(from, &tmp)
        .and_then(|_| std::fs::rename(&tmp, to))
        .unwrap_or_else(|e| panic!("cannot copy {} to {}: {e}", from.display(), to.display()));
}
