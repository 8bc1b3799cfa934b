//! File names: which names in the watched folders are inputs, and how output names are built.
//!
//! Output names must be safe on every filesystem and shell a seller might use, never climb out of
//! the output folder, and never be ambiguous: `__` separates product, background and preset, so
//! it is squeezed out of the parts themselves.

use std::path::Path;

/// Longest sanitised part, in bytes: product, background and preset together stay under the
/// 255-byte file-name limit.
const MAX_PART_BYTES: usize = 96;

/// Temporary names that browsers, editors, rsync and sync clients use while a file is incomplete.
const TEMP_SUFFIXES: &[&str] = &[".part", ".tmp", ".crdownload", ".partial", ".download", ".swp", "~"];

/// True when a directory entry named `name` is an input: not hidden, not a temporary file.
pub fn is_input_name(name: &str) -> bool {
    if name.is_empty() || name.starts_with('.') || name.starts_with('~') {
        return false;
    }
    let lower = name.to_lowercase();
    !TEMP_SUFFIXES.iter().any(|suffix| lower.ends_with(suffix))
}

/// The sanitised stem that names every output of an input file.
pub fn output_stem(file_name: &str) -> String {
    let stem = Path::new(file_name).file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    sanitize(&stem)
}

/// A stem that avoids `taken`: the original extension is appended (`foto.png` → `foto-png`).
pub fn disambiguated_stem(file_name: &str) -> String {
    let ext =
        Path::new(file_name).extension().map(|e| e.to_string_lossy().into_owned()).unwrap_or_else(|| "file".into());
    sanitize(&format!("{}-{}", output_stem(file_name), ext))
}

/// Replaces everything but letters, digits, `-`, `_` and `.` by `-`, squeezes runs, trims
/// leading dashes and dots (no hidden files, no option-like names) and caps the length.
pub fn sanitize(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        let c = if c.is_alphanumeric() || c == '-' || c == '_' || c == '.' { c } else { '-' };
        let squeezed = matches!((out.chars().last(), c), (Some('-'), '-') | (Some('_'), '_') | (Some('.'), '.'));
        if !squeezed {
            out.push(c);
        }
    }
    let trimmed = out.trim_start_matches(['-', '.', '_']).trim_end_matches(['-', '.', '_']);
    let mut result = String::new();
    for c in trimmed.chars() {
        if result.len() + c.len_utf8() > MAX_PART_BYTES {
            break;
        }
        result.push(c);
    }
    let result = result.trim_end_matches(['-', '.', '_']).to_owned();
    if result.is_empty() {
        "image".into()
    } else {
        result
    }
}

/// The name an uploaded file gets in a watched folder: the last part of the name the browser sent
/// (never a path), its stem sanitised like output stems and its extension kept in lower case
/// (`Tênis Azul.JPG` → `Tênis-Azul.jpg`). `None` when what is left is not an input name (a
/// temporary name such as `x.part`).
pub fn upload_name(raw: &str) -> Option<String> {
    let last = raw.rsplit(['/', '\\']).next().unwrap_or_default();
    let path = Path::new(last);
    let ext: String = path
        .extension()
        .map(|e| e.to_string_lossy().chars().filter(char::is_ascii_alphanumeric).collect::<String>())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let stem = path.file_stem().map(|s| sanitize(&s.to_string_lossy())).unwrap_or_else(|| sanitize(""));
    let name = if ext.is_empty() || ext.len() > 10 { stem } else { format!("{stem}.{ext}") };
    is_input_name(&name).then_some(name)
}

/// True for preset names usable as a `__<name>` suffix as they are.
pub fn is_plain_suffix(name: &str) -> bool {
    !name.is_empty() && name.len() <= 32 && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

/// The file name of one output: `P.ext`, `P__B.ext`, `P__preset.ext` or `P__B__preset.ext`.
pub fn output_name(product: &str, background: Option<&str>, preset: Option<&str>, ext: &str) -> String {
    let mut name = product.to_owned();
    for part in [background, preset].into_iter().flatten() {
        name.push_str("__");
        name.push_str(part);
    }
    name.push('.');
    name.push_str(ext);
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_and_temporary_names_are_not_inputs() {
        for name in [".hidden.jpg", "a.jpg.part", "a.tmp", "b.JPG.crdownload", "~lock.jpg", "x.jpg~", ""] {
            assert!(!is_input_name(name), "{name}");
        }
        for name in ["a.jpg", "tênis azul.png", "-dash.webp", "x"] {
            assert!(is_input_name(name), "{name}");
        }
    }

    #[test]
    fn stems_are_safe_and_keep_letters() {
        assert_eq!(output_stem("tênis azul.jpg"), "tênis-azul");
        assert_eq!(output_stem("-rf .jpg"), "rf");
        assert_eq!(output_stem("a\"b'c\nd.png"), "a-b-c-d");
        assert_eq!(output_stem("../../etc/passwd.jpg"), "passwd");
        assert_eq!(output_stem("a__b.jpg"), "a_b");
        assert_eq!(output_stem("....jpg"), "image");
        assert_eq!(output_stem(&format!("{}.jpg", "é".repeat(200))).len(), MAX_PART_BYTES);
    }

    #[test]
    fn uploaded_names_lose_their_path_and_unsafe_characters() {
        assert_eq!(upload_name("Tênis Azul.JPG").as_deref(), Some("Tênis-Azul.jpg"));
        assert_eq!(upload_name("../../etc/passwd").as_deref(), Some("passwd"));
        assert_eq!(upload_name("C:\\fakepath\\foto 1.png").as_deref(), Some("foto-1.png"));
        assert_eq!(upload_name("<img src=x onerror=alert(1)>.jpg").as_deref(), Some("img-src-x-onerror-alert-1.jpg"));
        assert_eq!(upload_name("<script>alert(1)</script>.jpg").as_deref(), Some("script.jpg"), "a / ends a path");
        assert_eq!(upload_name(".hidden.jpg").as_deref(), Some("hidden.jpg"));
        assert_eq!(upload_name("/abs/x.webp").as_deref(), Some("x.webp"));
        assert_eq!(upload_name("photo.jpg.part"), None);
        assert_eq!(upload_name("").as_deref(), Some("image"));
    }

    #[test]
    fn output_names_follow_the_contract() {
        assert_eq!(output_name("P", None, None, "jpg"), "P.jpg");
        assert_eq!(output_name("P", Some("B"), None, "jpg"), "P__B.jpg");
        assert_eq!(output_name("P", Some("B"), Some("sq"), "png"), "P__B__sq.png");
        assert_eq!(disambiguated_stem("P.png"), "P-png");
    }
}
