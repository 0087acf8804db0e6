//! Which bucket and key a request names: virtual-hosted-style (`bucket.s3.example.com/key`)
//! or path-style (`s3.example.com/bucket/key`), decided from the Host header and the configured
//! base domains.
//!
//! - Host equal to a base domain, or matching none (an IP address, an unknown name, no Host
//!   at all): path-style; the first path segment is the bucket. CNAME-style hosting (the whole
//!   Host is the bucket) is not supported.
//! - Host `<bucket>.<base domain>`: virtual-hosted-style; the whole path is the key. The longest
//!   matching base domain wins, so `s3.example.com` and `example.com` can both be configured.
//! - Host is compared without its port, case-insensitively, trailing dot ignored.
//!
//! Bucket and key are percent-decoded strictly (a `%` must start two hex digits, the result
//! must be UTF-8), `+` stays a plus, and nothing else is normalised: `a//b` and a trailing `/`
//! are part of the key, as in S3. Keys a backend could resolve into another bucket (a `.` or
//! `..` segment, a leading `/`; see [`super::segments`]) are refused, not normalised, and so is
//! such a key in `x-amz-copy-source` ([`parse_copy_source`]).

use super::S3Error;
use super::segments::check_key;

/// Longest object key, in bytes of UTF-8 after percent-decoding (S3's limit).
pub const KEY_BYTES_MAX: usize = 1024;
/// Shortest bucket name.
pub const BUCKET_NAME_BYTES_MIN: usize = 3;
/// Longest bucket name.
pub const BUCKET_NAME_BYTES_MAX: usize = 63;

/// How the bucket was named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// `/bucket/key`.
    Path,
    /// `bucket.<base domain>` in Host, `/key` in the path.
    VirtualHosted,
}

/// The bucket and key a request addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    /// How they were named.
    pub style: Style,
    /// The bucket; `None` for service-level requests (ListBuckets).
    pub bucket: Option<String>,
    /// The key, decoded; `None` for bucket-level requests. Never empty.
    pub key: Option<String>,
}

impl Address {
    /// `/bucket`, `/bucket/key` or `/`: the `Resource` of an error document.
    pub fn resource(&self) -> String {
        match (&self.bucket, &self.key) {
            (Some(b), Some(k)) => format!("/{b}/{k}"),
            (Some(b), None) => format!("/{b}"),
            _ => "/".to_owned(),
        }
    }
}

/// Why a request's address was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    /// The bucket name breaks S3's naming rules.
    #[error("invalid bucket name: {0:?}")]
    InvalidBucketName(String),
    /// The key is longer than [`KEY_BYTES_MAX`].
    #[error("the key is {len_bytes} bytes long; the limit is {KEY_BYTES_MAX}")]
    KeyTooLong {
        /// Its decoded length.
        len_bytes: usize,
    },
    /// A `%` not followed by two hex digits, or bytes that decode to something not UTF-8.
    #[error("bad percent-encoding in the request target")]
    BadEncoding,
    /// A key (or key prefix) with a `.` or `..` segment or a leading `/` or `\\`.
    #[error("object keys with . or .. segments, or beginning with / or \\, are not supported")]
    DotSegment,
    /// `x-amz-copy-source` is not `[/]bucket/key[?versionId=id]`, percent-encoded.
    #[error("x-amz-copy-source must be BUCKET/KEY, percent-encoded")]
    BadCopySource,
    /// A DeleteObjects body that cannot be read safely (see [`super::delete_objects`]).
    #[error("the DeleteObjects document could not be read")]
    MalformedDelete,
    /// More query parameters than allowed.
    #[error("more than {limit} query parameters")]
    TooManyQueryParams {
        /// The limit that was exceeded.
        limit: usize,
    },
}

impl From<AddressError> for S3Error {
    fn from(e: AddressError) -> Self {
        match &e {
            AddressError::InvalidBucketName(name) => {
                S3Error::invalid_bucket_name().with_resource(format!("/{name}"))
            }
            AddressError::KeyTooLong { .. } => S3Error::key_too_long(),
            AddressError::BadEncoding => S3Error::invalid_uri(),
            AddressError::TooManyQueryParams { .. }
            | AddressError::DotSegment
            | AddressError::BadCopySource => S3Error::invalid_argument(e.to_string()),
            AddressError::MalformedDelete => S3Error::malformed_xml(),
        }
    }
}

/// Resolves the bucket and key of a request.
///
/// `host` is the Host header (`head.header_str("host")`; `None` when absent or not UTF-8),
/// `target` the raw request target (its query, if any, is ignored), `base_domains` the
/// gateway's configured endpoint names without port (`["s3.example.com", "localhost"]`).
pub fn resolve<S: AsRef<str>>(
    host: Option<&str>,
    target: &str,
    base_domains: &[S],
) -> Result<Address, AddressError> {
    let path = target.split_once('?').map_or(target, |(p, _)| p);
    if path == "*" {
        return Ok(Address {
            style: Style::Path,
            bucket: None,
            key: None,
        });
    }
    let path = path.strip_prefix('/').unwrap_or(path);
    if let Some(bucket) = host.and_then(|h| virtual_host_bucket(h, base_domains)) {
        validate_bucket_name(&bucket)?;
        return Ok(Address {
            style: Style::VirtualHosted,
            bucket: Some(bucket),
            key: decode_key(path)?,
        });
    }
    if path.is_empty() {
        return Ok(Address {
            style: Style::Path,
            bucket: None,
            key: None,
        });
    }
    let (bucket, key) = path.split_once('/').unwrap_or((path, ""));
    let bucket = percent_decode(bucket)?;
    validate_bucket_name(&bucket)?;
    Ok(Address {
        style: Style::Path,
        bucket: Some(bucket),
        key: decode_key(key)?,
    })
}

/// The bucket named by `host` under the longest matching base domain, or `None` for
/// path-style (host equal to the longest match, or matching none).
fn virtual_host_bucket<S: AsRef<str>>(host: &str, base_domains: &[S]) -> Option<String> {
    let host = normalise_host(host);
    let mut best: Option<(usize, Option<&str>)> = None;
    for base in base_domains {
        let base = normalise_host(base.as_ref());
        if base.is_empty() || host.len() < base.len() {
            continue;
        }
        // `split_at_checked`: a Host with non-ASCII characters may not split at this byte.
        let Some((prefix, suffix)) = host.split_at_checked(host.len() - base.len()) else {
            continue;
        };
        if !suffix.eq_ignore_ascii_case(base) {
            continue;
        }
        let candidate = if prefix.is_empty() {
            None
        } else if let Some(bucket) = prefix.strip_suffix('.') {
            Some(bucket)
        } else {
            // `xs3.example.com` is not under `s3.example.com`.
            continue;
        };
        if best.is_none_or(|(len, _)| base.len() > len) {
            best = Some((base.len(), candidate));
        }
    }
    best.and_then(|(_, bucket)| bucket)
        .map(str::to_ascii_lowercase)
}

/// The host without port and trailing dot. An IPv6 literal keeps its brackets.
fn normalise_host(host: &str) -> &str {
    let host = host.trim();
    let host = if host.starts_with('[') {
        host.find(']').map_or(host, |end| &host[..=end])
    } else {
        match host.rsplit_once(':') {
            Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
            _ => host,
        }
    };
    host.strip_suffix('.').unwrap_or(host)
}

fn decode_key(raw: &str) -> Result<Option<String>, AddressError> {
    if raw.is_empty() {
        return Ok(None);
    }
    let key = percent_decode(raw)?;
    check_key_length(&key)?;
    check_key(&key)?;
    Ok(Some(key))
}

fn check_key_length(key: &str) -> Result<(), AddressError> {
    if key.len() > KEY_BYTES_MAX {
        return Err(AddressError::KeyTooLong {
            len_bytes: key.len(),
        });
    }
    Ok(())
}

/// The object `x-amz-copy-source` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopySource {
    /// The source bucket.
    pub bucket: String,
    /// The source key, decoded.
    pub key: String,
    /// `?versionId=`, as given.
    pub version_id: Option<String>,
}

/// Parses `x-amz-copy-source`: `bucket/key` or `/bucket/key`, percent-encoded, with an
/// optional `?versionId=`. The bucket must be a valid name and the key pass the same checks
/// as a request's own key.
pub fn parse_copy_source(v: &str) -> Result<CopySource, AddressError> {
    let (path, version_id) = match v.split_once("?versionId=") {
        Some((p, ver)) => (p, Some(ver.to_owned())),
        None => (v, None),
    };
    let decoded =
        percent_decode(path.trim_start_matches('/')).map_err(|_| AddressError::BadCopySource)?;
    let (bucket, key) = decoded
        .split_once('/')
        .filter(|(_, k)| !k.is_empty())
        .ok_or(AddressError::BadCopySource)?;
    validate_bucket_name(bucket).map_err(|_| AddressError::BadCopySource)?;
    check_key_length(key)?;
    check_key(key)?;
    let (bucket, key) = (bucket.to_owned(), key.to_owned());
    Ok(CopySource {
        bucket,
        key,
        version_id,
    })
}

/// Decodes `%XX` escapes strictly; every other byte, `+` included, is itself.
pub fn percent_decode(raw: &str) -> Result<String, AddressError> {
    decode(raw, false)
}

/// Decodes strictly; with `plus_is_space`, `+` becomes a space (query strings).
pub(crate) fn decode(raw: &str, plus_is_space: bool) -> Result<String, AddressError> {
    let plain = !raw.contains('%') && (!plus_is_space || !raw.contains('+'));
    if plain {
        return Ok(raw.to_owned());
    }
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hi = bytes.get(i + 1).and_then(|&b| hex(b));
                let lo = bytes.get(i + 2).and_then(|&b| hex(b));
                let (Some(hi), Some(lo)) = (hi, lo) else {
                    return Err(AddressError::BadEncoding);
                };
                out.push(hi << 4 | lo);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| AddressError::BadEncoding)
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// S3's bucket naming rules for general purpose buckets: 3 to 63 characters of lower-case
/// letters, digits, dots and hyphens; beginning and ending with a letter or digit; no two
/// adjacent dots; not shaped like an IPv4 address.
///
/// AWS's reserved prefixes and suffixes (`xn--`, `sthree-`, `-s3alias`, `--ol-s3`, ...) are
/// rules for *creating* buckets on AWS, left to the backend to enforce, so a bucket that exists
/// on another backend stays reachable.
pub fn validate_bucket_name(name: &str) -> Result<(), AddressError> {
    let invalid = || AddressError::InvalidBucketName(name.to_owned());
    let b = name.as_bytes();
    if !(BUCKET_NAME_BYTES_MIN..=BUCKET_NAME_BYTES_MAX).contains(&b.len()) {
        return Err(invalid());
    }
    if !b
        .iter()
        .all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'.' || c == b'-')
    {
        return Err(invalid());
    }
    let alnum = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    if !b.first().is_some_and(alnum) || !b.last().is_some_and(alnum) {
        return Err(invalid());
    }
    if name.contains("..") {
        return Err(invalid());
    }
    let parts: Vec<&str> = name.split('.').collect();
    if parts.len() == 4
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|c| c.is_ascii_digit()))
    {
        return Err(invalid());
    }
    Ok(())
}
