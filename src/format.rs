//! Input formats: which image formats thumbgen takes, named as users write them in
//! `ALLOWED_FORMATS`, and what a file's first bytes say it is (never its extension).

use image::ImageFormat;

/// Input formats thumbgen decodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum InputFormat {
    Jpeg,
    Png,
    Webp,
}

impl InputFormat {
    /// Parses a name used in `ALLOWED_FORMATS`.
    pub fn from_name(name: &str) -> Option<InputFormat> {
        match name.trim().to_ascii_lowercase().as_str() {
            "jpeg" | "jpg" => Some(InputFormat::Jpeg),
            "png" => Some(InputFormat::Png),
            "webp" => Some(InputFormat::Webp),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            InputFormat::Jpeg => "JPEG",
            InputFormat::Png => "PNG",
            InputFormat::Webp => "WebP",
        }
    }

    pub(crate) fn image_format(self) -> ImageFormat {
        match self {
            InputFormat::Jpeg => ImageFormat::Jpeg,
            InputFormat::Png => ImageFormat::Png,
            InputFormat::Webp => ImageFormat::WebP,
        }
    }
}

/// What the first bytes of a file say it is.
#[derive(Debug, PartialEq, Eq)]
pub enum Sniffed {
    Image(InputFormat),
    /// A recognised format thumbgen does not take, by name.
    Other(&'static str),
    Unknown,
}

pub fn sniff(bytes: &[u8]) -> Sniffed {
    let starts = |magic: &[u8]| bytes.starts_with(magic);
    if starts(&[0xFF, 0xD8, 0xFF]) {
        return Sniffed::Image(InputFormat::Jpeg);
    }
    if starts(b"\x89PNG\r\n\x1a\n") {
        return Sniffed::Image(InputFormat::Png);
    }
    if bytes.len() >= 12 && starts(b"RIFF") && &bytes[8..12] == b"WEBP" {
        return Sniffed::Image(InputFormat::Webp);
    }
    if starts(b"GIF87a") || starts(b"GIF89a") {
        return Sniffed::Other("GIF");
    }
    if starts(b"%PDF") {
        return Sniffed::Other("PDF");
    }
    if starts(b"BM") {
        return Sniffed::Other("BMP");
    }
    if starts(b"II*\0") || starts(b"MM\0*") {
        return Sniffed::Other("TIFF");
    }
    if bytes.len() >= 12 && &bytes[4..8] == b"ftyp" {
        return match &bytes[8..12] {
            b"avif" | b"avis" => Sniffed::Other("AVIF"),
            _ => Sniffed::Other("HEIC/HEIF"),
        };
    }
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(512)]);
    let head = text.trim_start_matches('\u{feff}').trim_start().to_ascii_lowercase();
    if head.starts_with("<svg") || (head.starts_with("<?xml") && head.contains("<svg")) {
        return Sniffed::Other("SVG");
    }
    if head.starts_with("<!doctype html") || head.starts_with("<html") {
        return Sniffed::Other("HTML");
    }
    if !bytes.is_empty() && !text.contains('\u{fffd}') && !text.chars().any(|c| c.is_control() && !c.is_whitespace()) {
        return Sniffed::Other("text");
    }
    Sniffed::Unknown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magic_bytes_decide_the_format() {
        assert_eq!(sniff(&[0xFF, 0xD8, 0xFF, 0xE0]), Sniffed::Image(InputFormat::Jpeg));
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n...."), Sniffed::Image(InputFormat::Png));
        assert_eq!(sniff(b"RIFF\0\0\0\0WEBPVP8 "), Sniffed::Image(InputFormat::Webp));
        assert_eq!(sniff(b"GIF89a..."), Sniffed::Other("GIF"));
        assert_eq!(sniff(b"%PDF-1.7"), Sniffed::Other("PDF"));
        assert_eq!(sniff(b"  <svg xmlns=..."), Sniffed::Other("SVG"));
        assert_eq!(sniff(b"<!DOCTYPE html><html>"), Sniffed::Other("HTML"));
        assert_eq!(sniff(b"hello world\n"), Sniffed::Other("text"));
        assert_eq!(sniff(&[0u8, 1, 2, 3, 0xFE]), Sniffed::Unknown);
    }

    #[test]
    fn format_names_accept_what_users_write() {
        assert_eq!(InputFormat::from_name(" JPG "), Some(InputFormat::Jpeg));
        assert_eq!(InputFormat::from_name("webp"), Some(InputFormat::Webp));
        assert_eq!(InputFormat::from_name("gif"), None);
    }
}
