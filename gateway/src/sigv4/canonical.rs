//! The canonical request and the string to sign, byte for byte as AWS defines them for S3.
//! Public so that the AWS test-suite vectors (which use a service other than `s3`) can be
//! run through exactly the code the verifier and the signer use.

use super::AuthError;
use super::key::{SHA256_LEN_BYTES, hex32, sha256};

/// The algorithm token of SigV4 with HMAC-SHA256.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// The last element of every credential scope.
pub const SCOPE_TERMINATOR: &str = "aws4_request";

/// RFC 3986 unreserved characters: the only bytes SigV4 leaves unencoded.
fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~')
}

/// Appends `bytes` URI-encoded as SigV4 wants: unreserved bytes as they are, `/` as it is
/// when `keep_slash`, everything else as `%XX` with upper-case hex.
pub(crate) fn uri_encode_into(out: &mut Vec<u8>, bytes: &[u8], keep_slash: bool) {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    for &b in bytes {
        if is_unreserved(b) || (keep_slash && b == b'/') {
            out.push(b);
        } else {
            out.extend_from_slice(&[
                b'%',
                DIGITS[usize::from(b >> 4)],
                DIGITS[usize::from(b & 0x0f)],
            ]);
        }
    }
}

/// Decodes `%XX` escapes (and `+` as a space when `plus_is_space`); `None` when a `%` is not
/// followed by two hex digits.
pub(crate) fn percent_decode(raw: &[u8], plus_is_space: bool) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while let Some(&b) = raw.get(i) {
        match b {
            b'%' => {
                let hi = hex_digit(*raw.get(i + 1)?)?;
                let lo = hex_digit(*raw.get(i + 2)?)?;
                out.push((hi << 4) | lo);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    Some(out)
}

fn hex_digit(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// The canonical form of a path: every `%XX` decoded, then every byte but the unreserved ones
/// and `/` encoded again. No dot-segment removal, no merging of slashes, no double encoding
/// (S3's rules). `None` when the path has a malformed `%` escape.
///
/// This is what S3 servers compare against: a client that sent `/test$file.text` and signed
/// `/test%24file.text` (the S3 documentation's PUT example) is accepted, and a request the
/// gateway sends with a path in this form is read the same way by every server.
pub fn normalize_path(raw: &str) -> Option<String> {
    let decoded = percent_decode(raw.as_bytes(), false)?;
    let mut out = Vec::with_capacity(decoded.len() + 8);
    uri_encode_into(&mut out, &decoded, true);
    // Only unreserved bytes, `/` and `%XX` remain: always ASCII.
    String::from_utf8(out).ok()
}

/// Decoded query parameters, in the order sent.
pub type QueryParams = Vec<(Vec<u8>, Vec<u8>)>;

/// A query string split into its parameters, each name and value percent-decoded (`+` is a
/// space, as in HTML forms and as S3 reads it). Empty parameters (`a=1&&b=2`) are skipped;
/// a parameter without `=` has an empty value.
pub fn parse_query(raw: &str) -> Result<QueryParams, AuthError> {
    let mut out = Vec::new();
    for part in raw.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = part.split_once('=').unwrap_or((part, ""));
        let name = percent_decode(name.as_bytes(), true);
        let value = percent_decode(value.as_bytes(), true);
        match (name, value) {
            (Some(n), Some(v)) => out.push((n, v)),
            _ => {
                return Err(AuthError::InvalidRequest(
                    "the query string has a malformed percent-escape".into(),
                ));
            }
        }
    }
    Ok(out)
}

/// The canonical query string of decoded parameters: each name and value URI-encoded (with
/// `/` encoded), sorted by encoded name then encoded value, joined as `n=v&n=v`. Parameters
/// for which `skip` answers true (the presigned `X-Amz-Signature`) are left out.
pub fn canonical_query<K: AsRef<[u8]>, V: AsRef<[u8]>>(
    params: &[(K, V)],
    skip: impl Fn(&[u8]) -> bool,
) -> Vec<u8> {
    let mut encoded: Vec<(Vec<u8>, Vec<u8>)> = params
        .iter()
        .filter(|(k, _)| !skip(k.as_ref()))
        .map(|(k, v)| {
            let mut name = Vec::with_capacity(k.as_ref().len());
            uri_encode_into(&mut name, k.as_ref(), false);
            let mut value = Vec::with_capacity(v.as_ref().len());
            uri_encode_into(&mut value, v.as_ref(), false);
            (name, value)
        })
        .collect();
    encoded.sort();
    let mut out = Vec::new();
    for (i, (name, value)) in encoded.iter().enumerate() {
        if i > 0 {
            out.push(b'&');
        }
        out.extend_from_slice(name);
        out.push(b'=');
        out.extend_from_slice(value);
    }
    out
}

/// Appends a header value in canonical form: leading and trailing spaces and tabs removed,
/// each inner run of them replaced by one space.
fn push_trimmed(out: &mut Vec<u8>, value: &[u8]) {
    let mut pending_space = false;
    let mut started = false;
    for &b in value {
        if b == b' ' || b == b'\t' {
            pending_space = started;
        } else {
            if pending_space {
                out.push(b' ');
                pending_space = false;
            }
            out.push(b);
            started = true;
        }
    }
}

/// Which signed header the request does not carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingHeader(pub String);

/// Builds the canonical request:
///
/// ```text
/// <method>\n<canonical URI>\n<canonical query>\n
/// <name>:<values>\n ... (one line per signed header, in the order of `signed_headers`)
/// \n<signed headers joined by ';'>\n<payload hash or literal>
/// ```
///
/// `signed_headers` are lower-case names; every header of that name (any case) in `headers`
/// contributes its value, trimmed, in order, joined by `,`.
pub fn canonical_request<N: AsRef<str>, V: AsRef<[u8]>>(
    method: &str,
    canonical_uri: &[u8],
    canonical_query: &[u8],
    headers: &[(N, V)],
    signed_headers: &[&str],
    payload: &[u8],
) -> Result<Vec<u8>, MissingHeader> {
    let mut out = Vec::with_capacity(256 + canonical_uri.len() + canonical_query.len());
    out.extend_from_slice(method.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(canonical_uri);
    out.push(b'\n');
    out.extend_from_slice(canonical_query);
    out.push(b'\n');
    for name in signed_headers {
        out.extend_from_slice(name.as_bytes());
        out.push(b':');
        let mut found = false;
        for (_, value) in headers
            .iter()
            .filter(|(n, _)| n.as_ref().eq_ignore_ascii_case(name))
        {
            if found {
                out.push(b',');
            }
            push_trimmed(&mut out, value.as_ref());
            found = true;
        }
        if !found {
            return Err(MissingHeader((*name).to_owned()));
        }
        out.push(b'\n');
    }
    out.push(b'\n');
    for (i, name) in signed_headers.iter().enumerate() {
        if i > 0 {
            out.push(b';');
        }
        out.extend_from_slice(name.as_bytes());
    }
    out.push(b'\n');
    out.extend_from_slice(payload);
    Ok(out)
}

/// The credential scope `YYYYMMDD/region/service/aws4_request`.
pub fn scope(date: &str, region: &str, service: &str) -> String {
    format!("{date}/{region}/{service}/{SCOPE_TERMINATOR}")
}

/// The string to sign:
/// `AWS4-HMAC-SHA256\n<timestamp>\n<scope>\n<hex(sha256(canonical request))>`.
pub fn string_to_sign(timestamp: &str, scope: &str, canonical_request: &[u8]) -> Vec<u8> {
    let hash: [u8; SHA256_LEN_BYTES] = sha256(canonical_request);
    let mut out = Vec::with_capacity(ALGORITHM.len() + timestamp.len() + scope.len() + 67);
    out.extend_from_slice(ALGORITHM.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(timestamp.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(scope.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(&hex32(&hash));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_values_are_trimmed_and_collapsed() {
        let mut out = Vec::new();
        push_trimmed(&mut out, b"  a   b \t c  ");
        assert_eq!(out, b"a b c");
        let mut out = Vec::new();
        push_trimmed(&mut out, b" \t ");
        assert_eq!(out, b"");
    }

    #[test]
    fn query_is_decoded_sorted_and_reencoded() {
        let q = parse_query("b=2&a=%7e&a=1&c&&d=x+y&e=%2F").unwrap();
        let c = canonical_query(&q, |_| false);
        assert_eq!(c, b"a=1&a=~&b=2&c=&d=x%20y&e=%2F");
        assert!(parse_query("a=%zz").is_err());
        assert!(parse_query("a=%4").is_err());
    }

    #[test]
    fn path_normalization() {
        assert_eq!(
            normalize_path("/test$file.text").as_deref(),
            Some("/test%24file.text")
        );
        assert_eq!(normalize_path("/a%2fb%7E").as_deref(), Some("/a/b~"));
        assert_eq!(normalize_path("/a//b/../c").as_deref(), Some("/a//b/../c"));
        assert_eq!(normalize_path("/%E1%88%B4").as_deref(), Some("/%E1%88%B4"));
        assert_eq!(normalize_path("/a%"), None);
    }
}
