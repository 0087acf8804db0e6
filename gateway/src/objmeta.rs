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

/// The metadata JSON the CLI writes, in the shape of `aws s3api head-object` output.
pub fn to_json(header: &Header) -> String {
    let mut meta = serde_json::Map::new();
    meta.insert(METADATA_NAME.into(), encode(header).into());
    let mut top = serde_json::Map::new();
    top.insert("Metadata".into(), serde_json::Value::Object(meta));
    let mut s = serde_json::Value::Object(top).to_string();
    s.push('\n');
    s
}

/// Finds the header in metadata JSON of either accepted shape.
pub fn from_json(text: &str) -> Result<Header, MetaError> {
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
    let value = map
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(METADATA_NAME) || k.eq_ignore_ascii_case(HTTP_HEADER))
        .map(|(_, v)| v)
        .ok_or(MetaError::Missing)?;
    decode(value.as_str().ok_or(MetaError::Encoding)?)
}
