//! The `object_store` client for the bucket thumbgen's settings name: the environment's credential
//! chain (web identity for IRSA and Pod Identity, container credentials, the instance profile),
//! then the configured keys, region and endpoint over it. Any S3-compatible store is reached
//! path-style at `AWS_ENDPOINT_URL` (`http://` accepted).

use crate::config::S3Settings;
use crate::error::StartError;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::{BackoffConfig, ClientOptions, RetryConfig};
use std::time::Duration;

/// The `object_store` client: the environment's credential chain, then these settings over
/// it; requests retried three times within 15 s (the job is retried after that, with backoff,
/// and the store's health says it fails meanwhile).
pub(super) fn client(settings: &S3Settings) -> Result<AmazonS3, StartError> {
    let mut builder = AmazonS3Builder::from_env()
        .with_bucket_name(&settings.bucket)
        .with_region(&settings.region)
        .with_virtual_hosted_style_request(false)
        .with_retry(RetryConfig {
            backoff: BackoffConfig {
                init_backoff: Duration::from_millis(100),
                max_backoff: Duration::from_secs(5),
                base: 2.0,
            },
            max_retries: 3,
            retry_timeout: Duration::from_secs(15),
        })
        .with_client_options(
            ClientOptions::new().with_connect_timeout(Duration::from_secs(5)).with_timeout(Duration::from_secs(60)),
        );
    if let Some(endpoint) = &settings.endpoint {
        builder = builder.with_endpoint(endpoint).with_allow_http(endpoint.starts_with("http://"));
    }
    if let (Some(id), Some(secret)) = (&settings.access_key_id, &settings.secret_access_key) {
        builder = builder.with_access_key_id(id).with_secret_access_key(secret.expose());
    }
    if let Some(token) = &settings.session_token {
        builder = builder.with_token(token.expose());
    }
    builder.build().map_err(|e| {
        StartError::new(format!("cannot set up the S3 client for {}", settings.url()))
            .because(e)
            .advice("Check STORAGE_URL, AWS_REGION and AWS_ENDPOINT_URL")
    })
}
