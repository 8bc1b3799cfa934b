//! Where the bucket is (`STORAGE_URL=s3://BUCKET[/PREFIX]`) and the credentials thumbgen's own
//! configuration gives for it (the standard AWS variable names, readable from TOML and `.env`
//! too, secrets masked by `thumbgen config`). Checked when the configuration loads, so a wrong URL
//! fails at start naming the key; the client itself is built by the catalog.

use super::{Config, Secret, Text};
use crate::error::ConfigError;

/// The bucket and how to reach it; secrets stay masked in `Debug`.
#[derive(Clone, Debug)]
pub(crate) struct S3Settings {
    pub bucket: String,
    /// `""` or the prefix with its trailing `/` (`shop/`).
    pub prefix: String,
    pub region: String,
    /// An S3-compatible store's address (`AWS_ENDPOINT_URL`); `None` is AWS itself.
    pub endpoint: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<Secret>,
    pub session_token: Option<Secret>,
}

impl S3Settings {
    /// The bucket settings when `STORAGE_URL` is set; the error names the setting that is wrong.
    pub(crate) fn from_config(config: &Config) -> Result<Option<S3Settings>, ConfigError> {
        let Some(url) = config.storage_url.as_ref().map(|u| u.0.trim()).filter(|u| !u.is_empty()) else {
            return Ok(None);
        };
        let (bucket, prefix) = parse_url(url)?;
        let text = |t: &Option<Text>| t.as_ref().map(|t| t.0.trim().to_owned()).filter(|t| !t.is_empty());
        let secret = |s: &Option<Secret>| s.clone().filter(|s| !s.expose().trim().is_empty());
        let endpoint = text(&config.aws_endpoint_url);
        if let Some(endpoint) = &endpoint {
            if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
                return Err(ConfigError(format!(
                    "aws_endpoint_url (AWS_ENDPOINT_URL) `{endpoint}` must start with http:// or https://"
                )));
            }
        }
        let access_key_id = text(&config.aws_access_key_id);
        let secret_access_key = secret(&config.aws_secret_access_key);
        if access_key_id.is_some() != secret_access_key.is_some() {
            return Err(ConfigError(
                "aws_access_key_id (AWS_ACCESS_KEY_ID) and aws_secret_access_key (AWS_SECRET_ACCESS_KEY) go together: \
                 set both, or neither to use the node's role"
                    .into(),
            ));
        }
        Ok(Some(S3Settings {
            bucket,
            prefix,
            region: text(&config.aws_region).unwrap_or_else(|| "us-east-1".into()),
            endpoint,
            access_key_id,
            secret_access_key,
            session_token: secret(&config.aws_session_token),
        }))
    }

    /// `s3://bucket/prefix`.
    pub(crate) fn url(&self) -> String {
        match self.prefix.trim_end_matches('/') {
            "" => format!("s3://{}", self.bucket),
            prefix => format!("s3://{}/{prefix}", self.bucket),
        }
    }

    /// The endpoint requests go to, for messages.
    pub(crate) fn endpoint_label(&self) -> String {
        self.endpoint.clone().unwrap_or_else(|| format!("AWS S3 ({})", self.region))
    }
}

/// `s3://BUCKET[/PREFIX]` → (bucket, `""` or `PREFIX/`).
fn parse_url(url: &str) -> Result<(String, String), ConfigError> {
    let wrong = |why: &str| {
        ConfigError(format!("storage_url (STORAGE_URL) `{url}` {why}; write it as s3://BUCKET or s3://BUCKET/PREFIX"))
    };
    let rest = url.strip_prefix("s3://").ok_or_else(|| wrong("is not an s3:// URL"))?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    let valid_bucket = (3..=63).contains(&bucket.len())
        && bucket.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
    if !valid_bucket {
        return Err(wrong("does not name a bucket (3 to 63 lowercase letters, digits, dots and dashes)"));
    }
    let parts: Vec<&str> = prefix.split('/').filter(|p| !p.is_empty()).collect();
    if parts.iter().any(|p| *p == "." || *p == ".." || p.chars().any(char::is_control)) {
        return Err(wrong("has a prefix with `.`, `..` or control characters"));
    }
    let prefix = if parts.is_empty() { String::new() } else { format!("{}/", parts.join("/")) };
    Ok((bucket.to_owned(), prefix))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_urls_name_a_bucket_and_an_optional_prefix() {
        assert_eq!(parse_url("s3://photos").unwrap(), ("photos".into(), String::new()));
        assert_eq!(parse_url("s3://photos/").unwrap(), ("photos".into(), String::new()));
        assert_eq!(parse_url("s3://photos/shop/a/").unwrap(), ("photos".into(), "shop/a/".into()));
        for bad in ["photos", "https://photos", "s3://", "s3://Photos", "s3://ab", "s3://photos/../x"] {
            let err = parse_url(bad).unwrap_err().0;
            assert!(err.contains("STORAGE_URL") && err.contains("s3://BUCKET"), "{bad}: {err}");
        }
    }

    #[test]
    fn keys_come_in_pairs_and_endpoints_need_a_scheme() {
        let url = Some(Text("s3://photos/shop".into()));
        let base = Config { storage_url: url, ..Config::default() };
        let set = S3Settings::from_config(&base).unwrap().unwrap();
        assert_eq!((set.bucket.as_str(), set.prefix.as_str(), set.region.as_str()), ("photos", "shop/", "us-east-1"));
        assert_eq!(set.url(), "s3://photos/shop");
        let half = Config { aws_access_key_id: Some(Text("AKIA".into())), ..base.clone() };
        assert!(S3Settings::from_config(&half).unwrap_err().0.contains("AWS_SECRET_ACCESS_KEY"));
        let bare = Config { aws_endpoint_url: Some(Text("localhost:8333".into())), ..base };
        assert!(S3Settings::from_config(&bare).unwrap_err().0.contains("AWS_ENDPOINT_URL"));
        assert!(S3Settings::from_config(&Config::default()).unwrap().is_none());
    }

    #[test]
    fn printed_configuration_masks_the_bucket_secrets() {
        let secret = |s: &str| Some(serde_json::from_str::<Secret>(&format!("\"{s}\"")).unwrap());
        let c = Config {
            storage_url: Some(Text("s3://photos".into())),
            aws_access_key_id: Some(Text("AKIAEXAMPLE".into())),
            aws_secret_access_key: secret("wJalrXUtnFEMI-secret"),
            aws_session_token: secret("session-token-value"),
            ..Config::default()
        };
        let text = c.to_toml();
        assert!(!text.contains("wJalrXUtnFEMI-secret") && !text.contains("session-token-value"), "{text}");
        assert!(text.contains("aws_secret_access_key = \"***\"") && text.contains("AKIAEXAMPLE"), "{text}");
        let settings = S3Settings::from_config(&c).unwrap().unwrap();
        assert!(!format!("{settings:?}").contains("wJalrXUtnFEMI-secret"));
    }
}
