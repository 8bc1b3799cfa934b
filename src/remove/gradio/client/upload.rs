//! Upload: the photo as a JPEG small enough for the app, sent to `{P}/upload`.

use super::super::failure::{Failure, Kind, Problem};
use super::discover::AppInfo;
use super::Remote;
use crate::imaging::{resize, Filter, Layout};
use image::RgbImage;
use reqwest::{Method, StatusCode};

impl Remote {
    /// Uploads the photo; returns its path on the server.
    pub(super) async fn upload(&self, app: &AppInfo, photo: &RgbImage, max_side: u32) -> Result<String, Failure> {
        let jpeg = fit_for_upload(photo, max_side, app.max_file_size)
            .map_err(|e| Failure::unusable(Problem::new("cannot encode the photo for upload").because(e)))?;
        let part = reqwest::multipart::Part::bytes(jpeg)
            .file_name("input.jpg")
            .mime_str("image/jpeg")
            .expect("valid MIME type");
        let form = reqwest::multipart::Form::new().part("files", part);
        let url = format!("{}{}/upload", self.base, app.prefix);
        let resp = match self.send(self.request(Method::POST, &url).multipart(form), "upload").await {
            Err(f) if f.kind == Kind::Retry && f.problem.status() == Some(StatusCode::PAYLOAD_TOO_LARGE) => {
                return Err(Failure::unusable(Problem::new(format!(
                    "the app refused the photo as too large ({}); lower GRADIO_MAX_SIDE",
                    f.problem
                ))))
            }
            other => other?,
        };
        let paths: Vec<String> = resp.json().await.map_err(|e| Failure::retry(Problem::new("upload").because(e)))?;
        paths.into_iter().next().ok_or_else(|| Failure::retry(Problem::new("upload: the app returned no file path")))
    }
}

/// The photo as JPEG within the app's upload limit: at most `max_side` pixels on its longer side,
/// smaller until it fits `max_file_size`.
fn fit_for_upload(
    photo: &RgbImage,
    max_side: u32,
    max_file_size: Option<u64>,
) -> Result<Vec<u8>, jpeg_encoder::EncodingError> {
    let mut side = max_side.min(photo.width().max(photo.height()));
    loop {
        let jpeg = jpeg_at(photo, side)?;
        match max_file_size {
            Some(limit) if jpeg.len() as u64 > limit && side > 64 => {
                let shrink = (limit as f64 / jpeg.len() as f64).sqrt() * 0.9;
                side = ((side as f64 * shrink) as u32).max(64);
            }
            _ => return Ok(jpeg),
        }
    }
}

fn jpeg_at(photo: &RgbImage, side: u32) -> Result<Vec<u8>, jpeg_encoder::EncodingError> {
    let (w, h) = photo.dimensions();
    let scale = (side as f64 / w.max(h) as f64).min(1.0);
    let (tw, th) = (((w as f64 * scale).round() as u32).max(1), ((h as f64 * scale).round() as u32).max(1));
    let scaled;
    let pixels = if scale < 1.0 {
        scaled = resize(photo.as_raw(), w, h, Layout::Rgb, (tw, th), Filter::Lanczos3, None);
        &scaled
    } else {
        photo.as_raw()
    };
    let mut out = Vec::new();
    jpeg_encoder::Encoder::new(&mut out, 92).encode(pixels, tw as u16, th as u16, jpeg_encoder::ColorType::Rgb)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_photo_shrinks_until_it_fits_the_apps_limit() {
        let photo = RgbImage::from_fn(800, 600, |x, y| image::Rgb([(x * 7 % 251) as u8, (y * 13 % 241) as u8, 90]));
        let unlimited = fit_for_upload(&photo, 2048, None).unwrap();
        let limited = fit_for_upload(&photo, 2048, Some(unlimited.len() as u64 / 3)).unwrap();
        assert!(limited.len() as u64 <= unlimited.len() as u64 / 3, "{} > {}", limited.len(), unlimited.len() / 3);
        let small = image::load_from_memory(&fit_for_upload(&photo, 100, None).unwrap()).unwrap();
        assert_eq!((small.width(), small.height()), (100, 75));
    }
}
