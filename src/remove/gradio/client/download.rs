//! Download: the endpoint's output files, in order, until one is an image with real transparency.

use super::super::failure::{Failure, Problem};
use super::discover::AppInfo;
use super::Remote;
use crate::format::{sniff, Sniffed};
use image::RgbaImage;
use reqwest::Method;
use serde_json::Value;

impl Remote {
    /// Downloads the output images in order and returns the first with real transparency.
    pub(super) async fn pick_cutout(&self, app: &AppInfo, outputs: &[Value]) -> Result<RgbaImage, Failure> {
        let mut candidates = Vec::new();
        for (index, output) in outputs.iter().enumerate() {
            if self.settings.output_index.is_none_or(|wanted| wanted == index) {
                collect_files(output, &mut candidates);
            }
        }
        if candidates.is_empty() {
            return Err(Failure::unusable(Problem::new("the app returned no image")));
        }
        let mut seen = Vec::new();
        for path in candidates {
            let url = if path.starts_with("http://") || path.starts_with("https://") {
                path.clone()
            } else {
                format!("{}{}/file={path}", self.base, app.prefix)
            };
            let resp = self.send(self.request(Method::GET, &url), "download").await?;
            let bytes = resp.bytes().await.map_err(|e| Failure::retry(Problem::new("download").because(e)))?;
            match sniff(&bytes) {
                Sniffed::Image(format) => seen.push(format.name()),
                _ => {
                    seen.push("not an image");
                    continue;
                }
            }
            if let Ok(image) = image::load_from_memory(&bytes) {
                if crate::cutout::has_real_transparency(&image) {
                    return Ok(image.into_rgba8());
                }
            }
        }
        Err(Failure::unusable(Problem::new(format!(
            "no output of the app has transparency (got: {}); it must return the cut-out with alpha (set GRADIO_OUTPUT_INDEX if it has several outputs)",
            seen.join(", ")
        ))))
    }
}

/// File paths inside one output value: a FileData, a slider pair, a gallery or a file list.
fn collect_files(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if let Some(path) = map.get("path").and_then(Value::as_str) {
                out.push(path.to_owned());
            } else if let Some(image) = map.get("image") {
                collect_files(image, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|item| collect_files(item, out)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn outputs_of_every_shape_yield_their_files() {
        let slider = json!([{"path": "/a.webp"}, {"path": "/b.png"}]);
        let gallery = json!([{"image": {"path": "/g.png"}, "caption": null}]);
        let mut out = Vec::new();
        for v in [json!({"path": "/x.png"}), slider, gallery, Value::Null] {
            collect_files(&v, &mut out);
        }
        assert_eq!(out, ["/x.png", "/a.webp", "/b.png", "/g.png"]);
    }
}
