//! Objects as `object_store` sees them: exact keys, what a HEAD or GET says, its errors sorted
//! into the few a caller acts on, the content type thumbgen writes.

use super::{Head, StoreError, JOB_KEY};
use object_store::path::Path as Key;
use object_store::{Attribute, Attributes};

/// A key as `object_store` names it, exactly (never re-encoded); keys no path can hold (a `.` or
/// `..` segment, an empty segment, a control character) are refused, not altered.
pub(super) fn parse(key: &str) -> Result<Key, StoreError> {
    Key::parse(key).map_err(|e| StoreError::Failed { what: format!("the key {key:?} cannot be used"), source: e.into() })
}

pub(super) fn head_of(meta: &object_store::ObjectMeta, attributes: &Attributes) -> Head {
    Head {
        size: meta.size,
        modified: meta.last_modified,
        etag: meta.e_tag.clone(),
        job: attributes.get(&Attribute::Metadata(JOB_KEY.into())).map(|v| v.to_string()),
    }
}

pub(super) fn classify(op: &str, key: &str, e: object_store::Error) -> StoreError {
    match e {
        object_store::Error::NotFound { .. } => StoreError::NotFound,
        object_store::Error::Precondition { .. } | object_store::Error::AlreadyExists { .. } => {
            StoreError::Precondition
        }
        other => StoreError::Failed { what: format!("{op} {key}"), source: other.into() },
    }
}

/// The `Content-Type` of what thumbgen writes, by extension: browsers and CDNs serve it right.
pub(super) fn content_type(key: &str) -> &'static str {
    let ext = key.rsplit('.').next().unwrap_or_default().to_ascii_lowercase();
    match ext.as_str() {
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "webp" => "image/webp",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}
