//! Checks of the crate's shape that rustc does not make: data flows one way through the layers
//! `lib.rs` declares, and every file stays one concept.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The top-level modules in the order `lib.rs` declares them (bottom layer first).
fn declared_modules() -> Vec<String> {
    let lib = std::fs::read_to_string(src().join("lib.rs")).unwrap();
    lib.lines()
        .map(str::trim)
        .filter_map(|l| l.strip_prefix("pub mod ").or_else(|| l.strip_prefix("mod ")))
        .map(|l| l.trim_end_matches(';').to_owned())
        .filter(|m| m != "architecture" && m != "testkit")
        .collect()
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file belongs to (`pipeline/outputs.rs` → `pipeline`).
fn module_of(file: &Path) -> String {
    let rel = file.strip_prefix(src()).unwrap();
    let first = rel.components().next().unwrap().as_os_str().to_string_lossy().into_owned();
    first.trim_end_matches(".rs").to_owned()
}

/// The crate's top-level modules a file's code names (`crate::x`, `use crate::{x, y}`),
/// comments left out.
fn uses(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.starts_with("//")) {
        let mut rest = line;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            if let Some(group) = rest.strip_prefix('{') {
                let inner = &group[..group.find('}').unwrap_or(group.len())];
                for item in inner.split(',') {
                    let name: String = item.trim().chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                    found.push(name);
                }
            } else {
                found.push(rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect());
            }
        }
    }
    found.retain(|m| !m.is_empty());
    found
}

#[test]
fn data_flows_one_way() {
    let order = declared_modules();
    let rank: HashMap<&str, usize> = order.iter().enumerate().map(|(i, m)| (m.as_str(), i)).collect();
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut upward = Vec::new();
    for file in files {
        let module = module_of(&file);
        let Some(&own) = rank.get(module.as_str()) else { continue }; // the test helpers
        let text = std::fs::read_to_string(&file).unwrap();
        for used in uses(&text) {
            match rank.get(used.as_str()) {
                Some(&r) if r > own => upward.push(format!("{} uses {used}", file.display())),
                Some(_) => {}
                // Test helpers, and items re-exported at the crate root, are not layers.
                None => assert!(
                    ["testkit", "ENV_KEYS", "content_hash"].contains(&used.as_str()),
                    "{}: crate::{used}?",
                    file.display()
                ),
            }
        }
    }
    assert!(upward.is_empty(), "modules using one declared after them in lib.rs:\n{}", upward.join("\n"));
}

#[test]
fn every_file_is_one_concept_of_reasonable_size() {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut big = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        // Unit tests at the end do not count.
        let code = text.split("#[cfg(test)]\nmod tests").next().unwrap();
        let lines = code.lines().count();
        let explained = text.lines().take_while(|l| l.starts_with("//!")).any(|l| l.contains("Longer than usual"));
        if lines > 350 && !explained {
            big.push(format!("{} ({lines} lines)", file.display()));
        }
    }
    assert!(big.is_empty(), "files past 350 lines of code without a reason in their header:\n{}", big.join("\n"));
}

#[test]
fn the_check_sees_grouped_and_inline_uses() {
    let text = "use crate::{job::Job, error};\n// crate::http in a comment\nlet x = crate::disk::free_bytes(p);";
    assert_eq!(uses(text), ["job", "error", "disk"]);
}
