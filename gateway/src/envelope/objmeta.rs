//! How the envelope header travels in S3 object metadata: one user-metadata entry,
//! `x-amz-meta-twofold`, holding the header in unpadded base64url. Also reads the metadata
//! JSON of the break-glass CLI, which is either what `aws s3api head-object` prints
//! (`{"Metadata": {"twofold": "..."}, ...}`) or a flat map of header names to values.

use crate::envelope::header::{HEADER_LEN_MAX, Header, HeaderError};
use base64::Engine;

/// User-metadata name of the header (the HTTP header is `x-amz-meta-twofold`).
pub const METADATA_NAME: &str = "twofold";
/// The HTTP header that carries it.
pub const HTTP_HEADER: &str = "x-amz-meta-twofold";

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Why object metadata does not yield a header.
#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    /// No `twofold` entry: the object was not written through Twofold.
    #[error("the object has no x-amz-meta-twofold metadata: it was not written by Twofold")]
    Missing,
    /// The entry is not base64url or is too long.
    #[error("the x-amz-meta-twofold metadata is not valid base64url of a header")]
    Encoding,
    /// The header inside does not parse.
    #[error(transparent)]
    Header(#[from] HeaderError),
    /// The metadata file is not JSON of a known shape.
    #[error("metadata file: {0}")]
    Json(String),
}

/// The metadata value for a header.
pub fn encode(header: &Header) -> String {
    B64.encode(header.to_bytes())
}

/// The header from a metadata value.
pub fn decode(value: &str) -> Result<Header, MetaError> {
    if value.len() > HEADER_LEN_MAX.div_ceil(3) * 4 {
        return Err(MetaError::Encoding);
    }
    let bytes = B64.decode(value.trim()).map_err(|_| MetaError::Encoding)?;
    Ok(Header::parse(&bytes)?)
}

/// The metadata JSON the CLI writes, in the shape of `aws s3api head-object` output: the
/// header and, for format version 2, the sealed metadata record.
pub fn to_json(header: &Header, described: Option<&str>) -> String {
    let mut meta = serde_json::Map::new();
    meta.insert(METADATA_NAME.into(), encode(header).into());
    if let Some(record) = described {
        meta.insert(META_RECORD_METADATA_NAME.into(), record.into());
    }
    let mut top = serde_json::Map::new();
    top.insert("Metadata".into(), serde_json::Value::Object(meta));
    let mut s = serde_json::Value::Object(top).to_string();
    s.push('\n');
    s
}

/// Finds the header in metadata JSON of either accepted shape.
pub fn from_json(text: &str) -> Result<Header, MetaError> {
    Ok(stored_from_json(text)?.header)
}

/// User-metadata name of the sealed layout record of an unaligned multipart object.
pub const LAYOUT_METADATA_NAME: &str = "twofold-layout";
/// Longest layout record value the gateway accepts, in characters.
pub const LAYOUT_VALUE_LEN_MAX: usize = 1024;
/// User-metadata name of the sealed checksum record.
pub const CHECKSUM_METADATA_NAME: &str = "twofold-checksum";
/// User-metadata name of the sealed metadata record (format version 2).
pub const META_RECORD_METADATA_NAME: &str = "twofold-meta";

/// What metadata JSON says of a stored object: the header, and the other items the
/// gateway stores with it, as they are (still sealed).
#[derive(Debug, Clone)]
pub struct StoredMeta {
    /// The parsed header.
    pub header: Header,
    /// The sealed layout record (`x-amz-meta-twofold-layout`), base64url, if any.
    pub layout: Option<String>,
    /// The sealed checksum record (`x-amz-meta-twofold-checksum`), base64url, if any.
    pub checksum: Option<String>,
    /// The sealed metadata record (`x-amz-meta-twofold-meta`), base64url, if any.
    pub described: Option<String>,
    /// The backend's ETag (`ETag`), if given.
    pub etag: Option<String>,
    /// The stored length (`ContentLength`, or a flat `content-length`), if given.
    pub content_length: Option<u64>,
}

/// Reads metadata JSON of either accepted shape: `aws s3api head-object` output (the
/// user metadata under `Metadata`, `ETag` and `ContentLength` beside it) or a flat map of
/// HTTP header names (`x-amz-meta-twofold`, `etag`, `content-length`...) to values.
pub fn stored_from_json(text: &str) -> Result<StoredMeta, MetaError> {
    let v: serde_json::Value =
        serde_json::from_str(text).map_err(|e| MetaError::Json(e.to_string()))?;
    let top = v
        .as_object()
        .ok_or_else(|| MetaError::Json("expected a JSON object".into()))?;
    let map = top
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("metadata"))
        .and_then(|(_, v)| v.as_object())
        .unwrap_or(top);
    let user = |name: &str| {
        map.iter()
            .find(|(k, _)| {
                let prefix = "x-amz-meta-".len();
                k.eq_ignore_ascii_case(name)
                    || (k
                        .get(..prefix)
                        .is_some_and(|p| p.eq_ignore_ascii_case("x-amz-meta-"))
                        && k.get(prefix..)
                            .is_some_and(|k| k.eq_ignore_ascii_case(name)))
            })
            .map(|(_, v)| v)
    };
    let text_of = |v: &serde_json::Value| v.as_str().map(str::to_owned).ok_or(MetaError::Encoding);
    let value = user(METADATA_NAME).ok_or(MetaError::Missing)?;
    let header = decode(value.as_str().ok_or(MetaError::Encoding)?)?;
    let layout = user(LAYOUT_METADATA_NAME).map(text_of).transpose()?;
    let checksum = user(CHECKSUM_METADATA_NAME).map(text_of).transpose()?;
    let described = user(META_RECORD_METADATA_NAME).map(text_of).transpose()?;
    let top_value = |names: &[&str]| {
        top.iter()
            .find(|(k, _)| names.iter().any(|n| k.eq_ignore_ascii_case(n)))
            .map(|(_, v)| v)
    };
    let etag = top_value(&["ETag"])
        .and_then(|v| v.as_str())
        .map(str::to_owned);
    let content_length = match top_value(&["ContentLength", "content-length"]) {
        None => None,
        Some(v) => Some(
            v.as_u64()
                .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
                .ok_or_else(|| MetaError::Json("ContentLength is not a number".into()))?,
        ),
    };
    Ok(StoredMeta {
        header,
        layout,
        checksum,
        described,
        etag,
        content_length,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::envelope::header::test_header;

    #[test]
    fn head_object_output_and_flat_maps() {
        let h = encode(&test_header(3));
        let head = format!(
            r#"{{"ContentLength": 1234, "ETag": "\"abc-3\"",
               "Metadata": {{"twofold": "{h}", "twofold-layout": "LAY", "twofold-checksum": "SUM"}}}}"#
        );
        let m = stored_from_json(&head).unwrap();
        assert_eq!(m.header, test_header(3));
        assert_eq!(m.layout.as_deref(), Some("LAY"));
        assert_eq!(m.checksum.as_deref(), Some("SUM"));
        assert_eq!(m.described, None);
        assert_eq!(m.etag.as_deref(), Some("\"abc-3\""));
        assert_eq!(m.content_length, Some(1234));
        let flat = format!(
            r#"{{"x-amz-meta-twofold": "{h}", "x-amz-meta-twofold-layout": "LAY", "content-length": "77"}}"#
        );
        let m = stored_from_json(&flat).unwrap();
        assert_eq!(m.layout.as_deref(), Some("LAY"));
        let upper =
            format!(r#"{{"X-AMZ-META-TWOFOLD": "{h}", "X-Amz-Meta-Twofold-Checksum": "S"}}"#);
        let u = stored_from_json(&upper).unwrap();
        assert_eq!(
            (u.header, u.checksum.as_deref()),
            (test_header(3), Some("S"))
        );
        assert_eq!(m.checksum, None);
        assert_eq!(m.etag, None);
        assert_eq!(m.content_length, Some(77));
        // Only the header itself is needed.
        let bare = format!(r#"{{"Metadata": {{"twofold": "{h}"}}}}"#);
        let m = stored_from_json(&bare).unwrap();
        assert_eq!((m.layout, m.checksum, m.content_length), (None, None, None));
        assert!(matches!(
            stored_from_json(r#"{"Metadata": {}}"#),
            Err(MetaError::Missing)
        ));
        assert!(
            stored_from_json(&format!(r#"{{"twofold": "{h}", "ContentLength": "x"}}"#)).is_err()
        );
        assert_eq!(from_json(&head).unwrap(), test_header(3));
    }
}
