//! Checks of the loaded configuration that serde cannot express, and the messages that name the
//! offending key, its environment variable and what is accepted.

use super::{Config, EngineChoice, NodeRole};
use crate::error::ConfigError;
use crate::format::InputFormat;

/// Shortest console token accepted: long enough that guessing it through the login is hopeless.
const MIN_CONSOLE_TOKEN: usize = 16;

impl Config {
    /// The console token, when one is set (blank counts as unset).
    pub(crate) fn console_secret(&self) -> Option<&str> {
        self.console_token.as_ref().map(|t| t.expose().trim()).filter(|t| !t.is_empty())
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        for format in &self.allowed_formats {
            if InputFormat::from_name(format).is_none() {
                return Err(ConfigError(format!(
                    "allowed_formats (ALLOWED_FORMATS): `{format}` is not supported; accepted values: jpeg, jpg, png, webp"
                )));
            }
        }
        if self.allowed_formats.is_empty() {
            return Err(ConfigError(
                "allowed_formats (ALLOWED_FORMATS) is empty; accepted values: jpeg, png, webp".into(),
            ));
        }
        if self.max_file_size.0 == 0 {
            return Err(ConfigError("max_file_size (MAX_FILE_SIZE) must be greater than 0".into()));
        }
        if self.max_pixels < 1 {
            return Err(ConfigError("max_pixels (MAX_PIXELS) must be at least 1".into()));
        }
        if self.queue_capacity < 1 {
            return Err(ConfigError("queue_capacity (QUEUE_CAPACITY) must be at least 1".into()));
        }
        if self.max_concurrent_requests < 1 {
            return Err(ConfigError("max_concurrent_requests (MAX_CONCURRENT_REQUESTS) must be at least 1".into()));
        }
        if self.poll_interval.0.is_zero() {
            return Err(ConfigError("poll_interval (POLL_INTERVAL) must be greater than 0".into()));
        }
        self.http_socket_addr()?;
        self.preset.validate("preset")?;
        let mut names = std::collections::HashSet::new();
        for (i, preset) in self.extra_presets.iter().enumerate() {
            let key = format!("extra_presets[{i}]");
            preset.validate(&key)?;
            if !crate::naming::is_plain_suffix(&preset.name) {
                return Err(ConfigError(format!(
                    "{key}.name `{}` must be non-empty and use only letters, digits and `-`",
                    preset.name
                )));
            }
            if !names.insert(preset.name.clone()) {
                return Err(ConfigError(format!("{key}.name `{}` is used twice", preset.name)));
            }
        }
        if self.gradio_max_side < 64 {
            return Err(ConfigError("gradio_max_side (GRADIO_MAX_SIDE) must be at least 64 pixels".into()));
        }
        if let Some(text) = &self.gradio_extra_inputs {
            if serde_json::from_str::<Vec<serde_json::Value>>(&text.0).is_err() {
                return Err(ConfigError(format!(
                    "gradio_extra_inputs (GRADIO_EXTRA_INPUTS) must be a JSON array such as [\"1024x1024\", \"General\"], not `{}`",
                    text.0
                )));
            }
        }
        self.check_cluster()?;
        self.check_tenants()?;
        if self.console_secret().is_some_and(|t| t.chars().count() < MIN_CONSOLE_TOKEN) {
            return Err(ConfigError(format!(
                "console_token (CONSOLE_TOKEN) must be at least {MIN_CONSOLE_TOKEN} characters; make one with \
                 `openssl rand -hex 16`"
            )));
        }
        if self.engine() == EngineChoice::Gradio && self.gradio_api_url.is_none() {
            return Err(ConfigError(
                "removal_engine (REMOVAL_ENGINE) is `gradio` but gradio_api_url (GRADIO_API_URL) is not set".into(),
            ));
        }
        super::S3Settings::from_config(self)?;
        if self.s3_webhook_token.as_ref().is_some_and(|t| t.expose().trim().len() < MIN_CONSOLE_TOKEN) {
            return Err(ConfigError(format!(
                "s3_webhook_token (S3_WEBHOOK_TOKEN) must be at least {MIN_CONSOLE_TOKEN} characters; make one with \
                 `openssl rand -hex 16`"
            )));
        }
        Ok(())
    }
}

impl Config {
    fn check_cluster(&self) -> Result<(), ConfigError> {
        let Some(servers) = self.nats_servers() else {
            if self.node_role == NodeRole::Worker {
                return Err(ConfigError(
                    "node_role (NODE_ROLE) is `worker`, which needs cluster mode: set nats_url (NATS_URL)".into(),
                ));
            }
            return Ok(());
        };
        for url in &servers {
            let scheme = url.split_once("://").map(|(s, _)| s);
            if !matches!(scheme, None | Some("nats" | "tls")) || url.contains(char::is_whitespace) {
                return Err(ConfigError(format!(
                    "nats_url (NATS_URL): `{url}` is not a NATS server address such as nats://10.0.0.5:4222"
                )));
            }
        }
        if self.nats_creds.is_some() && self.nats_token.is_some() {
            return Err(ConfigError("set either nats_creds (NATS_CREDS) or nats_token (NATS_TOKEN), not both".into()));
        }
        for (key, path) in
            [("nats_creds (NATS_CREDS)", &self.nats_creds), ("nats_tls_ca (NATS_TLS_CA)", &self.nats_tls_ca)]
        {
            if let Some(path) = path.as_ref().filter(|p| !p.is_file()) {
                return Err(ConfigError(format!("{key}: {} is not a readable file", path.display())));
            }
        }
        if self.nats_ack_wait.0 < std::time::Duration::from_secs(2) {
            return Err(ConfigError("nats_ack_wait (NATS_ACK_WAIT) must be at least 2s".into()));
        }
        Ok(())
    }
}

/// Turns figment's error into one line that names the key, the value's source and what is accepted.
pub(super) fn describe_figment_error(error: figment::Error) -> ConfigError {
    let lines = error
        .into_iter()
        .map(|e| {
            let key = e.path.join(".");
            let env = key.to_ascii_uppercase();
            let origin = e.metadata.as_ref().map(|m| format!(" (from {})", m.name)).unwrap_or_default();
            if key.is_empty() {
                format!("invalid configuration{origin}: {}", e.kind)
            } else {
                format!("invalid value for {key} ({env}){origin}: {}", e.kind)
            }
        })
        .collect::<Vec<_>>();
    ConfigError(lines.join("\n"))
}
