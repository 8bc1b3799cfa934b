//! ListObjectsV2, page by page, sent as a presigned request and read here rather than through
//! `object_store`'s listing: that one fails a whole page on a single key its path type cannot
//! hold (`produtos/../x`, `a//b`, a control character), and one hostile upload would then hide
//! every photo. Keys are asked URL-encoded (`encoding-type=url`, what the AWS SDKs send), so any
//! key reads back exactly; a key that is not UTF-8 once decoded is skipped with a warning.

use super::presigned::{send_presigned, unanswered};
use super::{Bucket, StoreError};
use chrono::{DateTime, Utc};
use serde::Deserialize;

/// One object of a listing, named relative to the listed folder.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Listed {
    /// The rest of the key after the folder's prefix (may contain `/`: not directly inside).
    pub name: String,
    pub size: u64,
    pub modified: DateTime<Utc>,
    pub etag: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Page {
    #[serde(default)]
    contents: Vec<Entry>,
    #[serde(default)]
    is_truncated: bool,
    next_continuation_token: Option<String>,
    encoding_type: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Entry {
    key: String,
    last_modified: DateTime<Utc>,
    #[serde(rename = "ETag")]
    e_tag: Option<String>,
    size: u64,
}

/// Every key under `folder` whose name there starts with `starting`, after `start_after` (a whole
/// key), in key order; named relative to `folder`.
pub(super) async fn all_pages(
    bucket: &Bucket,
    folder: &str,
    starting: &str,
    start_after: Option<&str>,
) -> Result<Vec<Listed>, StoreError> {
    let prefix = format!("{folder}{starting}");
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = page(bucket, &prefix, start_after, token.as_deref(), 1000).await?;
        let url_encoded = page.encoding_type.as_deref() == Some("url");
        for entry in page.contents {
            let key = if url_encoded { decode(&entry.key) } else { Some(entry.key.clone()) };
            let Some(key) = key else {
                tracing::warn!(key = %entry.key, "skipping an object whose key is not UTF-8");
                continue;
            };
            let Some(name) = key.strip_prefix(folder) else { continue };
            out.push(Listed { name: name.to_owned(), size: entry.size, modified: entry.last_modified, etag: entry.e_tag });
        }
        match (page.is_truncated, page.next_continuation_token) {
            (true, Some(next)) => token = Some(next),
            _ => return Ok(out),
        }
    }
}

/// One key under `prefix` at most: whether the bucket answers a listing with these credentials.
pub(super) async fn first_page(bucket: &Bucket, prefix: &str) -> Result<(), StoreError> {
    page(bucket, prefix, None, None, 1).await.map(|_| ())
}

async fn page(
    bucket: &Bucket,
    prefix: &str,
    start_after: Option<&str>,
    token: Option<&str>,
    max_keys: u32,
) -> Result<Page, StoreError> {
    let mut query = vec![
        ("list-type".to_owned(), "2".to_owned()),
        ("encoding-type".to_owned(), "url".to_owned()),
        ("max-keys".to_owned(), max_keys.to_string()),
        ("prefix".to_owned(), prefix.to_owned()),
    ];
    if let Some(after) = start_after {
        query.push(("start-after".to_owned(), after.to_owned()));
    }
    if let Some(token) = token {
        query.push(("continuation-token".to_owned(), token.to_owned()));
    }
    let failed = |source: crate::error::Source| StoreError::Failed { what: format!("LIST {prefix}"), source };
    let url = bucket.signed_bucket_url(query).await?;
    let response = send_presigned(|| bucket.http.get(url.as_str())).await.map_err(|e| failed(e.into()))?;
    let status = response.status();
    let body = response.text().await.map_err(|e| failed(e.into()))?;
    if !status.is_success() {
        let code = xml_field(&body, "Code").unwrap_or_default();
        let message = xml_field(&body, "Message").unwrap_or_default();
        let source = format!("status {} {code} {message}", status.as_u16()).trim().to_owned().into();
        return Err(unanswered(status.as_u16(), format!("LIST {prefix}"), source));
    }
    quick_xml::de::from_str(&body).map_err(|e| failed(format!("unreadable listing: {e}").into()))
}

/// A key as S3 sends it with `encoding-type=url` (form encoding: `+` is a space).
fn decode(encoded: &str) -> Option<String> {
    let spaced = encoded.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced).decode_utf8().ok().map(|k| k.into_owned())
}

/// The text of `<field>` in an S3 error body.
fn xml_field(body: &str, field: &str) -> Option<String> {
    let start = body.find(&format!("<{field}>"))? + field.len() + 2;
    let end = body[start..].find(&format!("</{field}>"))? + start;
    Some(body[start..end].to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_encoded_keys_read_back_exactly() {
        assert_eq!(decode("produtos/foto+1%2B2%23%25.jpg").as_deref(), Some("produtos/foto 1+2#%.jpg"));
        assert_eq!(decode("produtos/caf%C3%A9.jpg").as_deref(), Some("produtos/café.jpg"));
        assert_eq!(decode("produtos/%01bell.jpg").as_deref(), Some("produtos/\u{1}bell.jpg"));
        assert_eq!(decode("produtos/%FF.jpg"), None);
    }

    #[test]
    fn a_listing_page_is_read_with_its_continuation() {
        let body = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name><Prefix>produtos/</Prefix>
<KeyCount>1</KeyCount><MaxKeys>1</MaxKeys><EncodingType>url</EncodingType><IsTruncated>true</IsTruncated>
<NextContinuationToken>abc</NextContinuationToken>
<Contents><Key>produtos/a+b.jpg</Key><LastModified>2026-12-06T10:00:00.000Z</LastModified>
<ETag>&quot;9b2cf535f27731c974343645a3985328&quot;</ETag><Size>42</Size><StorageClass>STANDARD</StorageClass></Contents>
</ListBucketResult>"#;
        let page: Page = quick_xml::de::from_str(body).unwrap();
        assert!(page.is_truncated);
        assert_eq!(page.next_continuation_token.as_deref(), Some("abc"));
        assert_eq!(page.encoding_type.as_deref(), Some("url"));
        assert_eq!(page.contents.len(), 1);
        assert_eq!(page.contents[0].key, "produtos/a+b.jpg");
        assert_eq!(page.contents[0].size, 42);
        assert_eq!(page.contents[0].e_tag.as_deref(), Some("\"9b2cf535f27731c974343645a3985328\""));
        let code = xml_field("<Error><Code>NoSuchBucket</Code></Error>", "Code");
        assert_eq!(code.as_deref(), Some("NoSuchBucket"));
    }
}
