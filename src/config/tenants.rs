//! Tenants (design §10): several shops served by one deployment, each with its own catalog (a
//! folder, or a bucket prefix), console token, presets and share of the workers. No `[[tenants]]`
//! is the single catalog of §1–§9, unchanged.
//!
//! Each tenant runs on a configuration of its own, made here from the deployment's
//! ([`Config::for_tenant`]): the same settings with the tenant's catalog, state and presets, so
//! every part that reads a configuration serves a tenant as it serves the single catalog, and
//! nothing of one tenant's is where another's could find it.

use super::{Config, Secret, Text};
use crate::error::ConfigError;
use crate::preset::Preset;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Longest tenant name: it is a URL segment and a metric label.
const MAX_NAME: usize = 40;
/// Shortest tenant token, as for the console's.
const MIN_TOKEN: usize = 16;

/// One `[[tenants]]` entry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantConfig {
    /// Lowercase letters, digits and `-`: the URL segment (`/t/NAME/`) and the `tenant` label.
    pub name: String,
    /// The tenant's catalog: a folder (relative to `base_path`), or `s3://BUCKET[/PREFIX]`.
    /// Default: `tenants/NAME` under `base_path`.
    #[serde(default)]
    pub base: Option<Text>,
    /// The tenant's console and API secret; `TENANT_<NAME>_TOKEN` in the environment overrides it.
    #[serde(default)]
    pub token: Option<Secret>,
    /// The tenant's share of the workers against the others' (default 1).
    #[serde(default = "one")]
    pub weight: u32,
    /// New photos processed per local day at most; past it they wait (never rejected) for the
    /// next day. Unset: no limit.
    #[serde(default)]
    pub max_photos_per_day: Option<u64>,
    /// The tenant's main preset, when not the deployment's.
    #[serde(default)]
    pub preset: Option<Preset>,
    /// The tenant's extra presets, when not the deployment's.
    #[serde(default)]
    pub extra_presets: Option<Vec<Preset>>,
}

fn one() -> u32 {
    1
}

impl TenantConfig {
    /// The environment variable that overrides the token: `TENANT_<NAME>_TOKEN`, the name in
    /// upper case with `-` as `_`.
    pub(crate) fn token_variable(&self) -> String {
        format!("TENANT_{}_TOKEN", self.name.to_ascii_uppercase().replace('-', "_"))
    }

    /// The token, when one is set (blank counts as unset).
    pub(crate) fn secret(&self) -> Option<&str> {
        self.token.as_ref().map(|t| t.expose().trim()).filter(|t| !t.is_empty())
    }

    fn is_bucket(&self) -> bool {
        self.base.as_ref().is_some_and(|b| b.0.trim().starts_with("s3://"))
    }
}

impl Config {
    /// Takes each tenant's token from its `TENANT_<NAME>_TOKEN` where the environment sets one.
    pub(super) fn tenant_tokens_from(&mut self, environment: impl Fn(&str) -> Option<String>) {
        for tenant in &mut self.tenants {
            if let Some(token) = environment(&tenant.token_variable()) {
                tenant.token = Some(Secret::new(token));
            }
        }
    }

    pub(super) fn check_tenants(&self) -> Result<(), ConfigError> {
        if self.tenants.is_empty() {
            return Ok(());
        }
        for (key, folder) in [
            ("upload_path", &self.upload_path),
            ("background_path", &self.background_path),
            ("output_path", &self.output_path),
            ("rejected_path", &self.rejected_path),
            ("state_path", &self.state_path),
        ] {
            if folder.is_absolute() {
                return Err(ConfigError(format!(
                    "{key} ({}) is an absolute path, which every tenant would share: make it relative (each tenant's \
                     folders are under its own base)",
                    key.to_ascii_uppercase()
                )));
            }
        }
        let mut names = std::collections::HashSet::new();
        let mut places: Vec<(String, String)> = Vec::new();
        let mut tokens: Vec<(String, &str)> = self.console_secret().map(|t| ("console_token".to_owned(), t)).into_iter().collect();
        for (i, tenant) in self.tenants.iter().enumerate() {
            let key = format!("tenants[{i}]");
            if !is_slug(&tenant.name) {
                return Err(ConfigError(format!(
                    "{key}.name `{}` must be 1 to {MAX_NAME} lowercase letters, digits and `-`, starting with a letter or \
                     digit (it is a URL segment and a metric label)",
                    tenant.name
                )));
            }
            if !names.insert(tenant.name.as_str()) {
                return Err(ConfigError(format!("{key}.name `{}` is used twice", tenant.name)));
            }
            if !(1..=1000).contains(&tenant.weight) {
                return Err(ConfigError(format!("{key}.weight must be between 1 and 1000")));
            }
            if tenant.max_photos_per_day == Some(0) {
                return Err(ConfigError(format!(
                    "{key}.max_photos_per_day must be at least 1 (leave it out for no limit)"
                )));
            }
            if tenant.secret().is_some_and(|t| t.chars().count() < MIN_TOKEN) {
                return Err(ConfigError(format!(
                    "{key}.token ({}) must be at least {MIN_TOKEN} characters; make one with `openssl rand -hex 16`",
                    tenant.token_variable()
                )));
            }
            let derived = self.for_tenant(tenant);
            // Where its catalog is: no two tenants may share one, nor hold one inside the other's.
            let place = match &derived.storage_url {
                Some(url) => format!("{}/", url.0.trim().trim_end_matches('/')),
                None => format!("{}/", derived.base_path.display()),
            };
            if let Some((other, _)) = places.iter().find(|(_, p)| p.starts_with(&place) || place.starts_with(p.as_str())) {
                return Err(ConfigError(format!(
                    "{key}.base: the catalogs of tenants {other} and {} overlap; give each tenant a base of its own",
                    tenant.name
                )));
            }
            places.push((tenant.name.clone(), place));
            if let Some(token) = tenant.secret() {
                if let Some((other, _)) = tokens.iter().find(|(_, t)| *t == token) {
                    return Err(ConfigError(format!(
                        "{key}.token ({}) is the same as {other}'s: each tenant needs a token of its own",
                        tenant.token_variable()
                    )));
                }
                tokens.push((tenant.token_variable(), token));
            }
            derived.preset.validate(&format!("{key}.preset"))?;
            for (j, preset) in derived.extra_presets.iter().enumerate() {
                preset.validate(&format!("{key}.extra_presets[{j}]"))?;
            }
            super::S3Settings::from_config(&derived).map_err(|e| ConfigError(format!("{key}.base: {}", e.0)))?;
        }
        Ok(())
    }

    /// The configuration a tenant runs on: this one with the tenant's catalog — its folders under
    /// its base, or its bucket — its own state (journal, cut-outs, previews) and its presets.
    pub(crate) fn for_tenant(&self, tenant: &TenantConfig) -> Config {
        let mut config = self.clone();
        config.tenants = Vec::new();
        config.tenant = Some(tenant.name.clone());
        // Logs are the process's, wherever the tenant's catalog is.
        config.log_path = self.resolve(&self.log_path);
        if tenant.is_bucket() {
            config.storage_url = tenant.base.clone();
            // The journal is local to the node, apart from every other tenant's.
            config.state_path = self.resolve(&self.state_path).join("tenants").join(&tenant.name);
        } else {
            let base = match &tenant.base {
                Some(folder) if !folder.0.trim().is_empty() => PathBuf::from(folder.0.trim()),
                _ => PathBuf::from("tenants").join(&tenant.name),
            };
            config.storage_url = None;
            // The folder names (relative, as checked) and the state now resolve under the
            // tenant's base.
            config.base_path = self.resolve(&base);
        }
        if let Some(preset) = &tenant.preset {
            config.preset = preset.clone();
        }
        if let Some(extra) = &tenant.extra_presets {
            config.extra_presets = extra.clone();
        }
        config
    }
}

/// A lowercase slug: `[a-z0-9][a-z0-9-]*`, at most [`MAX_NAME`] characters.
fn is_slug(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name.len() <= MAX_NAME
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}
