//! Verification of a client request: header authentication and presigned URLs.

use super::canonical::{self, ALGORITHM, SCOPE_TERMINATOR};
use super::key::{SigningKey, ct_eq};
use super::time::{parse_amz_date, parse_http_date, system_time, unix_secs};
use super::{
    AuthError, AuthMethod, CLOCK_SKEW_SECS_MAX, ChunkSigner, EXPIRES_TOO_LONG, Mismatch,
    PRESIGNED_EXPIRES_SECS_MAX, PRESIGNED_EXPIRES_SECS_MIN, PayloadMode, RequestParts, SERVICE,
    Secret, UNSIGNED_PAYLOAD, Verified,
};
use crate::http::trim_ows;
use std::borrow::Cow;
use std::time::SystemTime;

/// Longest `Authorization` header value accepted.
const AUTHORIZATION_BYTES_MAX: usize = 8 * 1024;
/// Most signed headers accepted.
const SIGNED_HEADERS_COUNT_MAX: usize = 128;

const X_AMZ_ALGORITHM: &[u8] = b"X-Amz-Algorithm";
const X_AMZ_CREDENTIAL: &[u8] = b"X-Amz-Credential";
const X_AMZ_DATE: &[u8] = b"X-Amz-Date";
const X_AMZ_EXPIRES: &[u8] = b"X-Amz-Expires";
const X_AMZ_SIGNED_HEADERS: &[u8] = b"X-Amz-SignedHeaders";
const X_AMZ_SIGNATURE: &[u8] = b"X-Amz-Signature";
const X_AMZ_CONTENT_SHA256: &[u8] = b"X-Amz-Content-Sha256";

const NOT_SUPPORTED: &str =
    "The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256.";
const NEEDS_DATE: &str = "AWS authentication requires a valid Date or x-amz-date header";
const UNSIGNED_HEADERS: &str = "There were headers present in the request which were not signed";
const PRESIGN_PARAMS: &str = "Query-string authentication version 4 requires the X-Amz-Algorithm, \
     X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires \
     parameters.";

/// Which error variant a scope or parameter problem becomes.
#[derive(Clone, Copy)]
enum Via {
    Header,
    Query,
}

impl Via {
    fn malformed(self, msg: impl Into<Cow<'static, str>>) -> AuthError {
        match self {
            Self::Header => AuthError::AuthorizationHeaderMalformed(msg.into()),
            Self::Query => AuthError::AuthorizationQueryParametersError(msg.into()),
        }
    }
}

/// `AKID/YYYYMMDD/region/service/aws4_request`.
struct Credential<'a> {
    access_key_id: &'a str,
    date: &'a str,
    region: &'a str,
    service: &'a str,
}

fn parse_credential(value: &str, via: Via) -> Result<Credential<'_>, AuthError> {
    let mut parts = value.split('/');
    let (Some(akid), Some(date), Some(region), Some(service), Some(term), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(via.malformed(
            "the Credential is mal-formed; expecting \
             \"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request\"",
        ));
    };
    if akid.is_empty()
        || date.len() != 8
        || !date.bytes().all(|b| b.is_ascii_digit())
        || region.is_empty()
        || service.is_empty()
    {
        return Err(via.malformed(
            "the Credential is mal-formed; expecting \
             \"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request\"",
        ));
    }
    if term != SCOPE_TERMINATOR {
        return Err(via.malformed(format!(
            "incorrect terminal \"{term}\"; this endpoint uses \"aws4_request\""
        )));
    }
    Ok(Credential {
        access_key_id: akid,
        date,
        region,
        service,
    })
}

/// A signed-header list: lower-case token names, `;`-separated, no repeats.
fn parse_signed_headers(value: &str, via: Via) -> Result<Vec<&str>, AuthError> {
    let names: Vec<&str> = value.split(';').collect();
    let valid_char = |b: u8| {
        b.is_ascii_lowercase()
            || b.is_ascii_digit()
            || matches!(
                b,
                b'-' | b'_'
                    | b'!'
                    | b'#'
                    | b'$'
                    | b'%'
                    | b'&'
                    | b'\''
                    | b'*'
                    | b'+'
                    | b'.'
                    | b'^'
                    | b'`'
                    | b'|'
                    | b'~'
            )
    };
    if names.len() > SIGNED_HEADERS_COUNT_MAX
        || names
            .iter()
            .any(|n| n.is_empty() || !n.bytes().all(valid_char))
    {
        return Err(via.malformed("the SignedHeaders list is malformed"));
    }
    for (i, name) in names.iter().enumerate() {
        if names[..i].contains(name) {
            return Err(via.malformed("the SignedHeaders list repeats a header"));
        }
    }
    Ok(names)
}

/// The parsed `Authorization` header.
struct AuthorizationHeader<'a> {
    credential: Credential<'a>,
    signed_headers: Vec<&'a str>,
    signature: &'a str,
}

fn parse_authorization(value: &[u8]) -> Result<AuthorizationHeader<'_>, AuthError> {
    if value.len() > AUTHORIZATION_BYTES_MAX {
        return Err(AuthError::AuthorizationHeaderMalformed(
            "the Authorization header is too long".into(),
        ));
    }
    let value = std::str::from_utf8(value).map_err(|_| {
        AuthError::AuthorizationHeaderMalformed("the Authorization header is not ASCII".into())
    })?;
    let value = value.trim_matches([' ', '\t']);
    let (algorithm, rest) = value.split_once([' ', '\t']).unwrap_or((value, ""));
    if algorithm != ALGORITHM {
        return Err(AuthError::InvalidRequest(NOT_SUPPORTED.into()));
    }
    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for component in rest.split(',') {
        let component = component.trim_matches([' ', '\t']);
        if component.is_empty() {
            continue;
        }
        let (k, v) = component.split_once('=').ok_or_else(|| {
            AuthError::AuthorizationHeaderMalformed(
                format!("the Authorization component \"{component}\" is malformed").into(),
            )
        })?;
        let slot = match k {
            "Credential" => &mut credential,
            "SignedHeaders" => &mut signed_headers,
            "Signature" => &mut signature,
            _ => {
                return Err(AuthError::AuthorizationHeaderMalformed(
                    format!("unknown Authorization component \"{k}\"").into(),
                ));
            }
        };
        if slot.replace(v).is_some() {
            return Err(AuthError::AuthorizationHeaderMalformed(
                format!("the Authorization component \"{k}\" is repeated").into(),
            ));
        }
    }
    let credential = credential.ok_or(AuthError::IncompleteSignature(
        "Authorization header requires 'Credential' parameter",
    ))?;
    let signed_headers = signed_headers.ok_or(AuthError::IncompleteSignature(
        "Authorization header requires 'SignedHeaders' parameter",
    ))?;
    let signature = signature
        .filter(|s| !s.is_empty())
        .ok_or(AuthError::IncompleteSignature(
            "Authorization header requires 'Signature' parameter",
        ))?;
    Ok(AuthorizationHeader {
        credential: parse_credential(credential, Via::Header)?,
        signed_headers: parse_signed_headers(signed_headers, Via::Header)?,
        signature,
    })
}

/// Every value of header `name` (any case).
fn header_values<'h, N: AsRef<str>, V: AsRef<[u8]>>(
    headers: &'h [(N, V)],
    name: &'h str,
) -> impl Iterator<Item = &'h [u8]> + 'h {
    headers
        .iter()
        .filter(move |(n, _)| n.as_ref().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_ref())
}

/// The only value of header `name`; `Ok(None)` when absent, an error when repeated.
fn single_header<'h, N: AsRef<str>, V: AsRef<[u8]>>(
    headers: &'h [(N, V)],
    name: &'static str,
) -> Result<Option<&'h [u8]>, AuthError> {
    let mut values = header_values(headers, name);
    let first = values.next();
    if values.next().is_some() {
        return Err(AuthError::InvalidRequest(
            format!("the {name} header is repeated").into(),
        ));
    }
    Ok(first.map(trim_ows))
}

/// The only value of query parameter `name`.
fn single_param<'q>(
    params: &'q [(Vec<u8>, Vec<u8>)],
    name: &[u8],
) -> Result<Option<&'q [u8]>, AuthError> {
    let mut values = params.iter().filter(|(k, _)| k == name);
    let first = values.next();
    if values.next().is_some() {
        return Err(AuthError::AuthorizationQueryParametersError(
            format!(
                "the {} parameter is repeated",
                String::from_utf8_lossy(name)
            )
            .into(),
        ));
    }
    Ok(first.map(|(_, v)| v.as_slice()))
}

/// Rejects requests that carry `x-amz-*` headers the signature does not cover, and requests
/// that do not sign `host`.
fn check_coverage<N: AsRef<str>, V: AsRef<[u8]>>(
    headers: &[(N, V)],
    signed: &[&str],
    via: Via,
) -> Result<(), AuthError> {
    if !signed.contains(&"host") {
        return Err(via.malformed("'Host' must be a 'SignedHeader' in the AWS Authorization"));
    }
    let unsigned = headers.iter().any(|(n, _)| {
        let n = n.as_ref();
        n.len() > 6
            && n.as_bytes()[..6].eq_ignore_ascii_case(b"x-amz-")
            && !signed.iter().any(|s| s.eq_ignore_ascii_case(n))
    });
    if unsigned {
        return Err(AuthError::AccessDenied(UNSIGNED_HEADERS));
    }
    Ok(())
}

/// The scope's date, region and service against the request.
fn check_scope(
    credential: &Credential<'_>,
    timestamp: &str,
    regions: &[&str],
    via: Via,
) -> Result<(), AuthError> {
    if timestamp.get(..8) != Some(credential.date) {
        return Err(via.malformed("Invalid credential date. Date is not the same as X-Amz-Date."));
    }
    if !regions.contains(&credential.region) {
        return Err(via.malformed(format!(
            "the region '{}' is wrong; expecting '{}'",
            credential.region,
            regions.first().copied().unwrap_or("")
        )));
    }
    if credential.service != SERVICE {
        return Err(via.malformed(format!(
            "the service '{}' is wrong; expecting 's3'",
            credential.service
        )));
    }
    Ok(())
}

/// Splits an origin-form request-target into path and query.
fn split_target(target: &str) -> Result<(&str, &str), AuthError> {
    if !target.starts_with('/') || target.contains('#') {
        return Err(AuthError::InvalidRequest(
            "the request-target is not in origin form".into(),
        ));
    }
    Ok(target.split_once('?').unwrap_or((target, "")))
}

/// Everything needed to compute and compare one request signature.
struct Check<'a, N, V> {
    method: &'a str,
    path: &'a str,
    canonical_query: &'a [u8],
    headers: &'a [(N, V)],
    signed_headers: &'a [&'a str],
    payload: &'a [u8],
    timestamp: &'a str,
    scope: &'a str,
    key: &'a SigningKey,
    claimed: &'a str,
}

impl<N: AsRef<str>, V: AsRef<[u8]>> Check<'_, N, V> {
    /// Computes the signature for the path as sent, then (when that differs) for the
    /// normalised path; the first that matches wins.
    fn run(&self) -> Result<(), AuthError> {
        let mut last = None;
        let normalized = canonical::normalize_path(self.path);
        let candidates =
            std::iter::once(self.path).chain(normalized.as_deref().filter(|n| *n != self.path));
        for uri in candidates {
            let canonical_request = canonical::canonical_request(
                self.method,
                uri.as_bytes(),
                self.canonical_query,
                self.headers,
                self.signed_headers,
                self.payload,
            )
            .map_err(|missing| {
                AuthError::AccessDenied(if missing.0 == "host" {
                    "the request has no Host header"
                } else {
                    "a header named in SignedHeaders is not in the request"
                })
            })?;
            let string_to_sign =
                canonical::string_to_sign(self.timestamp, self.scope, &canonical_request);
            let expected = self.key.sign(&string_to_sign);
            if ct_eq(expected.as_bytes(), self.claimed.as_bytes()) {
                return Ok(());
            }
            last.get_or_insert(Mismatch {
                canonical_request: String::from_utf8_lossy(&canonical_request).into_owned(),
                string_to_sign: String::from_utf8_lossy(&string_to_sign).into_owned(),
            });
        }
        Err(AuthError::SignatureDoesNotMatch {
            detail: last.map(Box::new),
        })
    }
}

/// `x-amz-decoded-content-length`, when present.
fn decoded_content_length<N: AsRef<str>, V: AsRef<[u8]>>(
    headers: &[(N, V)],
) -> Result<Option<u64>, AuthError> {
    let Some(v) = single_header(headers, "x-amz-decoded-content-length")? else {
        return Ok(None);
    };
    let parsed = std::str::from_utf8(v)
        .ok()
        .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|s| s.parse::<u64>().ok());
    parsed.map(Some).ok_or_else(|| {
        AuthError::InvalidRequest("x-amz-decoded-content-length is not a number".into())
    })
}

/// Checks the SigV4 signature of a client request.
///
/// `regions` are the regions accepted in the credential scope; `lookup` gives the secret of
/// an access key id. On success the result says who signed, and how the body must be read
/// and checked.
pub fn verify<N: AsRef<str>, V: AsRef<[u8]>>(
    request: &RequestParts<'_, N, V>,
    now: SystemTime,
    regions: &[&str],
    lookup: &dyn Fn(&str) -> Option<Secret>,
) -> Result<Verified, AuthError> {
    let (path, raw_query) = split_target(request.target)?;
    let params = canonical::parse_query(raw_query)?;
    let mut authorizations = header_values(request.headers, "authorization");
    let authorization = authorizations.next();
    let repeated = authorizations.next().is_some();
    let presigned = params
        .iter()
        .any(|(k, _)| k == X_AMZ_ALGORITHM || k == X_AMZ_SIGNATURE || k == X_AMZ_CREDENTIAL);
    match (authorization, presigned) {
        (Some(_), true) => Err(AuthError::InvalidRequest(
            "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter or the \
             Authorization header should be specified"
                .into(),
        )),
        (Some(_), false) if repeated => Err(AuthError::InvalidRequest(
            "the Authorization header is repeated".into(),
        )),
        (Some(value), false) => verify_header(request, path, &params, value, now, regions, lookup),
        (None, true) => verify_presigned(request, path, &params, now, regions, lookup),
        (None, false) => Err(AuthError::AccessDenied(
            "anonymous requests are not accepted",
        )),
    }
}

fn verify_header<N: AsRef<str>, V: AsRef<[u8]>>(
    request: &RequestParts<'_, N, V>,
    path: &str,
    params: &[(Vec<u8>, Vec<u8>)],
    authorization: &[u8],
    now: SystemTime,
    regions: &[&str],
    lookup: &dyn Fn(&str) -> Option<Secret>,
) -> Result<Verified, AuthError> {
    let auth = parse_authorization(authorization)?;
    let headers = request.headers;

    // The request time: x-amz-date, else Date.
    let (timestamp, request_secs) = match single_header(headers, "x-amz-date")? {
        Some(v) => {
            let secs = parse_amz_date(v).ok_or(AuthError::AccessDenied(NEEDS_DATE))?;
            // parse_amz_date accepts only ASCII digits, 'T' and 'Z'.
            (String::from_utf8_lossy(v).into_owned(), secs)
        }
        None => {
            let v = single_header(headers, "date")?.ok_or(AuthError::AccessDenied(NEEDS_DATE))?;
            let secs = parse_http_date(v).ok_or(AuthError::AccessDenied(NEEDS_DATE))?;
            (super::time::format_amz_date(secs), secs)
        }
    };
    check_skew(request_secs, now)?;
    check_scope(&auth.credential, &timestamp, regions, Via::Header)?;
    check_coverage(headers, &auth.signed_headers, Via::Header)?;

    let content_sha256 = single_header(headers, "x-amz-content-sha256")?.ok_or_else(|| {
        AuthError::InvalidRequest(
            "Missing required header for this request: x-amz-content-sha256".into(),
        )
    })?;
    let payload = PayloadMode::parse(content_sha256)?;
    let decoded_content_length = decoded_content_length(headers)?;

    let secret = lookup(auth.credential.access_key_id).ok_or(AuthError::InvalidAccessKeyId)?;
    let key = SigningKey::derive(
        &secret,
        auth.credential.date,
        auth.credential.region,
        SERVICE,
    );
    let scope = canonical::scope(auth.credential.date, auth.credential.region, SERVICE);
    let canonical_query = canonical::canonical_query(params, |_| false);
    Check {
        method: request.method,
        path,
        canonical_query: &canonical_query,
        headers,
        signed_headers: &auth.signed_headers,
        payload: content_sha256,
        timestamp: &timestamp,
        scope: &scope,
        key: &key,
        claimed: auth.signature,
    }
    .run()?;

    let chunk_signer = if payload.is_chunk_signed() {
        Some(ChunkSigner::new(key, &timestamp, &scope, auth.signature)?)
    } else {
        None
    };
    Ok(Verified {
        access_key_id: auth.credential.access_key_id.to_owned(),
        method: AuthMethod::Header,
        region: auth.credential.region.to_owned(),
        request_time: system_time(request_secs),
        signed_headers: auth
            .signed_headers
            .iter()
            .map(|s| (*s).to_owned())
            .collect(),
        payload,
        decoded_content_length,
        chunk_signer,
    })
}

fn check_skew(request_secs: u64, now: SystemTime) -> Result<(), AuthError> {
    let now_secs = unix_secs(now);
    if request_secs.abs_diff(now_secs) > CLOCK_SKEW_SECS_MAX {
        return Err(AuthError::RequestTimeTooSkewed {
            request_time: system_time(request_secs),
            server_time: now,
        });
    }
    Ok(())
}

fn utf8_param<'q>(v: &'q [u8], what: &'static str) -> Result<&'q str, AuthError> {
    std::str::from_utf8(v).map_err(|_| {
        AuthError::AuthorizationQueryParametersError(format!("{what} is not UTF-8").into())
    })
}

/// `X-Amz-Expires` in seconds, refused as S3 refuses it: not a number, negative, or more
/// than [`PRESIGNED_EXPIRES_SECS_MAX`] (`AuthorizationQueryParametersError`). Zero passes
/// here: it is a URL that has expired, which the caller answers as one.
fn parse_expires(raw: &[u8]) -> Result<u64, AuthError> {
    let refuse =
        |message: &'static str| AuthError::AuthorizationQueryParametersError(message.into());
    let (negative, digits) = match raw.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, raw),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err(refuse("X-Amz-Expires should be a number"));
    }
    if negative && digits.iter().any(|&d| d != b'0') {
        return Err(refuse("X-Amz-Expires must be non-negative"));
    }
    // Digits only; a number too large for u64 is more than a week too.
    let secs = std::str::from_utf8(digits)
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(u64::MAX);
    if secs > PRESIGNED_EXPIRES_SECS_MAX {
        return Err(refuse(EXPIRES_TOO_LONG));
    }
    Ok(secs)
}

fn verify_presigned<N: AsRef<str>, V: AsRef<[u8]>>(
    request: &RequestParts<'_, N, V>,
    path: &str,
    params: &[(Vec<u8>, Vec<u8>)],
    now: SystemTime,
    regions: &[&str],
    lookup: &dyn Fn(&str) -> Option<Secret>,
) -> Result<Verified, AuthError> {
    let missing = || AuthError::AuthorizationQueryParametersError(PRESIGN_PARAMS.into());
    let algorithm = single_param(params, X_AMZ_ALGORITHM)?.ok_or_else(missing)?;
    let credential = single_param(params, X_AMZ_CREDENTIAL)?.ok_or_else(missing)?;
    let date = single_param(params, X_AMZ_DATE)?.ok_or_else(missing)?;
    let expires = single_param(params, X_AMZ_EXPIRES)?.ok_or_else(missing)?;
    let signed_headers = single_param(params, X_AMZ_SIGNED_HEADERS)?.ok_or_else(missing)?;
    let signature = single_param(params, X_AMZ_SIGNATURE)?.ok_or_else(missing)?;
    let content_sha256 = single_param(params, X_AMZ_CONTENT_SHA256)?;

    if algorithm != ALGORITHM.as_bytes() {
        return Err(AuthError::AuthorizationQueryParametersError(
            "X-Amz-Algorithm only supports \"AWS4-HMAC-SHA256\"".into(),
        ));
    }
    let credential = parse_credential(utf8_param(credential, "X-Amz-Credential")?, Via::Query)?;
    let request_secs = parse_amz_date(date).ok_or_else(|| {
        AuthError::AuthorizationQueryParametersError(
            "X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"".into(),
        )
    })?;
    let timestamp = utf8_param(date, "X-Amz-Date")?;
    let expires_secs = parse_expires(expires)?;
    let signed_headers = parse_signed_headers(
        utf8_param(signed_headers, "X-Amz-SignedHeaders")?,
        Via::Query,
    )?;
    let signature = utf8_param(signature, "X-Amz-Signature")?;

    let now_secs = unix_secs(now);
    if request_secs > now_secs.saturating_add(CLOCK_SKEW_SECS_MAX) {
        return Err(AuthError::RequestTimeTooSkewed {
            request_time: system_time(request_secs),
            server_time: now,
        });
    }
    let expires_at = request_secs.saturating_add(expires_secs);
    if expires_secs < PRESIGNED_EXPIRES_SECS_MIN || now_secs > expires_at {
        return Err(AuthError::AccessDenied("Request has expired"));
    }
    check_scope(&credential, timestamp, regions, Via::Query)?;
    check_coverage(request.headers, &signed_headers, Via::Query)?;

    // The payload line: X-Amz-Content-Sha256 parameter, else a (signed) header, else
    // UNSIGNED-PAYLOAD.
    let payload_line: &[u8] = match content_sha256 {
        Some(v) => v,
        None => single_header(request.headers, "x-amz-content-sha256")?
            .unwrap_or(UNSIGNED_PAYLOAD.as_bytes()),
    };
    let payload = PayloadMode::parse(payload_line)?;
    if payload.is_chunk_signed() {
        return Err(AuthError::InvalidRequest(
            "presigned URLs cannot carry a streaming signed payload".into(),
        ));
    }
    let decoded_content_length = decoded_content_length(request.headers)?;

    let secret = lookup(credential.access_key_id).ok_or(AuthError::InvalidAccessKeyId)?;
    let key = SigningKey::derive(&secret, credential.date, credential.region, SERVICE);
    let scope = canonical::scope(credential.date, credential.region, SERVICE);
    let canonical_query = canonical::canonical_query(params, |k| k == X_AMZ_SIGNATURE);
    Check {
        method: request.method,
        path,
        canonical_query: &canonical_query,
        headers: request.headers,
        signed_headers: &signed_headers,
        payload: payload_line,
        timestamp,
        scope: &scope,
        key: &key,
        claimed: signature,
    }
    .run()?;

    Ok(Verified {
        access_key_id: credential.access_key_id.to_owned(),
        method: AuthMethod::Presigned {
            expires_at: system_time(expires_at),
        },
        region: credential.region.to_owned(),
        request_time: system_time(request_secs),
        signed_headers: signed_headers.iter().map(|s| (*s).to_owned()).collect(),
        payload,
        decoded_content_length,
        chunk_signer: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorization_parses_with_and_without_spaces() {
        for value in [
            &b"AWS4-HMAC-SHA256 Credential=AK/20130524/us-east-1/s3/aws4_request,SignedHeaders=host;x-amz-date,Signature=abc"[..],
            b"AWS4-HMAC-SHA256  Credential=AK/20130524/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-date,  Signature=abc ",
        ] {
            let a = parse_authorization(value).unwrap();
            assert_eq!(a.credential.access_key_id, "AK");
            assert_eq!(a.credential.region, "us-east-1");
            assert_eq!(a.signed_headers, ["host", "x-amz-date"]);
            assert_eq!(a.signature, "abc");
        }
    }

    #[test]
    fn expires_is_seconds_up_to_a_week() {
        for (raw, secs) in [
            ("0", 0),
            ("1", 1),
            ("3600", 3600),
            ("604800", 604_800),
            ("-0", 0),
        ] {
            assert_eq!(parse_expires(raw.as_bytes()).unwrap(), secs, "{raw}");
        }
    }

    #[test]
    fn expires_refusals_are_those_of_s3() {
        let cases: &[(&str, &str)] = &[
            ("", "X-Amz-Expires should be a number"),
            ("abc", "X-Amz-Expires should be a number"),
            ("1.5", "X-Amz-Expires should be a number"),
            ("+5", "X-Amz-Expires should be a number"),
            ("-", "X-Amz-Expires should be a number"),
            ("-1", "X-Amz-Expires must be non-negative"),
            ("-604801", "X-Amz-Expires must be non-negative"),
            ("604801", EXPIRES_TOO_LONG),
            ("99999999999999999999999", EXPIRES_TOO_LONG),
        ];
        for (raw, message) in cases {
            let err = parse_expires(raw.as_bytes()).unwrap_err();
            assert_eq!(
                err,
                AuthError::AuthorizationQueryParametersError((*message).into()),
                "{raw}"
            );
            assert_eq!(err.http_status(), 400);
        }
    }

    #[test]
    fn authorization_errors() {
        let cases: &[(&[u8], &str)] = &[
            (b"AWS AK:sig", "InvalidRequest"),
            (b"AWS4-ECDSA-P256-SHA256 Credential=x", "InvalidRequest"),
            (b"AWS4-HMAC-SHA256 SignedHeaders=host, Signature=ab", "IncompleteSignature"),
            (b"AWS4-HMAC-SHA256 Credential=AK/20130524/us-east-1/s3/aws4_request, Signature=ab", "IncompleteSignature"),
            (b"AWS4-HMAC-SHA256 Credential=AK/20130524/us-east-1/s3/aws4_request, SignedHeaders=host", "IncompleteSignature"),
            (b"AWS4-HMAC-SHA256 Credential=AK/2013/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=ab", "AuthorizationHeaderMalformed"),
            (b"AWS4-HMAC-SHA256 Credential=AK/20130524/us-east-1/s3/aws5_request, SignedHeaders=host, Signature=ab", "AuthorizationHeaderMalformed"),
            (b"AWS4-HMAC-SHA256 Credential=AK/20130524/us-east-1/s3/aws4_request, SignedHeaders=Host, Signature=ab", "AuthorizationHeaderMalformed"),
            (b"AWS4-HMAC-SHA256 Credential=AK/20130524/us-east-1/s3/aws4_request, SignedHeaders=host;;a, Signature=ab", "AuthorizationHeaderMalformed"),
            (b"AWS4-HMAC-SHA256 Credential=AK/20130524/us-east-1/s3/aws4_request, SignedHeaders=host;host, Signature=ab", "AuthorizationHeaderMalformed"),
            (b"AWS4-HMAC-SHA256 Credential=AK/20130524/us-east-1/s3/aws4_request, Credential=AK/20130524/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=ab", "AuthorizationHeaderMalformed"),
            (b"AWS4-HMAC-SHA256 Credential=AK/20130524/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=ab, Foo=bar", "AuthorizationHeaderMalformed"),
            (b"AWS4-HMAC-SHA256 \xff", "AuthorizationHeaderMalformed"),
        ];
        for (value, code) in cases {
            let err = parse_authorization(value).err().unwrap();
            assert_eq!(err.s3_code(), *code, "{}", String::from_utf8_lossy(value));
        }
    }
}
