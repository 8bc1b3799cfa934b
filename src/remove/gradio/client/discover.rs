//! Discovery: what the app is (version, API prefix) and which endpoint removes backgrounds,
//! with values for its inputs after the image.

use super::super::failure::{Failure, Kind, Problem};
use super::Remote;
use serde_json::{json, Value};

/// What discovery learnt about the app; dropped and rebuilt after auth or endpoint errors.
#[derive(Debug)]
pub(crate) struct AppInfo {
    pub version: String,
    pub prefix: String,
    pub api_name: String,
    pub fn_index: Option<u64>,
    /// Values sent for the inputs after the image.
    pub extra_inputs: Vec<Value>,
    pub max_file_size: Option<u64>,
}

impl Remote {
    pub(super) async fn discover(&self) -> Result<AppInfo, Failure> {
        let config_url = format!("{}/config", self.base);
        let config = match self.get_json(&config_url, "GET /config").await {
            Err(f) if f.kind == Kind::Unauthorized && self.settings.login.is_some() => {
                self.login().await?;
                self.get_json(&config_url, "GET /config").await?
            }
            other => other?,
        };
        let prefix = config["api_prefix"].as_str().unwrap_or("").trim_end_matches('/').to_owned();
        let version = config["version"].as_str().unwrap_or("unknown").to_owned();
        let info = self.get_json(&format!("{}{prefix}/info", self.base), "GET /info").await?;
        let endpoints = info["named_endpoints"]
            .as_object()
            .ok_or_else(|| Failure::unusable(Problem::new("the app's /info lists no endpoints")))?;

        let (name, endpoint) = match &self.settings.api_name {
            Some(wanted) => {
                let key = format!("/{}", wanted.trim_start_matches('/'));
                let endpoint = endpoints.get(&key).ok_or_else(|| {
                    let names: Vec<&String> = endpoints.keys().collect();
                    Failure::unusable(Problem::new(format!(
                        "GRADIO_API_NAME {key} is not an endpoint of the app; it has {names:?}"
                    )))
                })?;
                (key, endpoint)
            }
            None => endpoints.iter().find(|(_, e)| is_removal_endpoint(e)).map(|(k, e)| (k.clone(), e)).ok_or_else(
                || {
                    Failure::unusable(Problem::new(
                        "no endpoint of the app takes an image and returns an image; set GRADIO_API_NAME",
                    ))
                },
            )?,
        };
        let api_name = name.trim_start_matches('/').to_owned();
        let fn_index = config["dependencies"]
            .as_array()
            .and_then(|deps| deps.iter().find(|d| d["api_name"].as_str() == Some(api_name.as_str())))
            .and_then(|d| d["id"].as_u64());
        let params = endpoint["parameters"].as_array().cloned().unwrap_or_default();
        let extra_inputs = match &self.settings.extra_inputs {
            Some(values) => values.clone(),
            None => params.iter().skip(1).map(default_input).collect(),
        };
        Ok(AppInfo {
            version,
            prefix,
            api_name,
            fn_index,
            extra_inputs,
            max_file_size: config["max_file_size"].as_u64(),
        })
    }
}

/// An endpoint whose first input is an image and which returns an image-like output.
fn is_removal_endpoint(endpoint: &Value) -> bool {
    let first_is_image =
        endpoint["parameters"][0]["component"].as_str().is_some_and(|c| c.eq_ignore_ascii_case("image"));
    let returns_image = endpoint["returns"].as_array().is_some_and(|r| {
        r.iter().any(|o| {
            matches!(
                o["component"].as_str().map(str::to_ascii_lowercase).as_deref(),
                Some("image" | "imageslider" | "file" | "gallery")
            )
        })
    });
    first_is_image && returns_image
}

/// The value sent for an input after the image: its declared default, else a neutral value of
/// its kind (first choice of a radio, empty text, false, zero).
fn default_input(param: &Value) -> Value {
    if param["parameter_has_default"].as_bool() == Some(true) {
        return param["parameter_default"].clone();
    }
    if let Some(first) = param["type"]["enum"].as_array().and_then(|e| e.first()) {
        return first.clone();
    }
    match param["component"].as_str().map(str::to_ascii_lowercase).as_deref() {
        Some("textbox") => json!(""),
        Some("checkbox") => json!(false),
        Some("number" | "slider") => json!(0),
        _ => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extra_inputs_get_defaults() {
        assert_eq!(
            default_input(&json!({"parameter_has_default": true, "parameter_default": "1024x1024"})),
            json!("1024x1024")
        );
        assert_eq!(
            default_input(&json!({"component": "Radio", "type": {"enum": ["General", "Portrait"]}})),
            json!("General")
        );
        assert_eq!(default_input(&json!({"component": "Checkbox"})), json!(false));
    }

    #[test]
    fn a_removal_endpoint_takes_an_image_and_returns_one() {
        let endpoint = json!({"parameters": [{"component": "Image"}], "returns": [{"component": "ImageSlider"}]});
        assert!(is_removal_endpoint(&endpoint));
        assert!(!is_removal_endpoint(
            &json!({"parameters": [{"component": "Textbox"}], "returns": [{"component": "Image"}]})
        ));
    }
}
