//! Signing of the requests the gateway sends to the backend: header authentication
//! ([`sign`]) and presigned URLs ([`presign`]).

use super::canonical::{self, ALGORITHM};
use super::key::SigningKey;
use super::time::{format_amz_date, unix_secs};
use super::{
    AuthError, ChunkSigner, EXPIRES_TOO_LONG, PRESIGNED_EXPIRES_SECS_MAX, PayloadMode, SERVICE,
    Secret,
};
use std::time::SystemTime;

/// Headers never signed even when passed in: hop-by-hop fields a proxy may change, and the
/// ones the signer writes itself.
const UNSIGNABLE: &[&str] = &[
    "authorization",
    "connection",
    "expect",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "user-agent",
    "x-amzn-trace-id",
    "host",
    "x-amz-date",
    "x-amz-content-sha256",
];

/// The query of a request to sign.
#[derive(Debug, Clone, Copy)]
pub enum Query<'a> {
    /// No query.
    None,
    /// The raw query (after `?`), percent-encoded as it will be sent.
    Raw(&'a str),
    /// Decoded name/value pairs; send them encoded as [`canonical::canonical_query`] does.
    Pairs(&'a [(&'a str, &'a str)]),
}

/// A request the gateway is about to send.
#[derive(Debug, Clone, Copy)]
pub struct SigningInput<'a, N, V> {
    /// The method, e.g. `PUT`.
    pub method: &'a str,
    /// The `Host` header that will be sent (`host[:port]`).
    pub host: &'a str,
    /// The path as it will be sent. Send it in [`canonical::normalize_path`] form: that is the
    /// form signed, and every S3 server then reads the path the same way.
    pub path: &'a str,
    /// The query.
    pub query: Query<'a>,
    /// Further headers to sign (any case; repeated names are joined in order). Hop-by-hop
    /// fields, `user-agent`, `expect` and the three the signer writes are skipped.
    pub headers: &'a [(N, V)],
    /// The `x-amz-content-sha256` to send.
    pub payload: PayloadMode,
}

/// The headers to add to a signed request.
#[derive(Debug, Clone)]
pub struct SigningOutput {
    /// `Authorization`.
    pub authorization: String,
    /// `x-amz-date`.
    pub x_amz_date: String,
    /// `x-amz-content-sha256`.
    pub x_amz_content_sha256: String,
    /// The request signature (the seed of a streaming signed body).
    pub signature: String,
    /// For the streaming signed payload modes: the chain that signs the body's chunks.
    pub chunk_signer: Option<ChunkSigner>,
}

impl SigningOutput {
    /// The three headers, as (name, value).
    pub fn headers(&self) -> [(&'static str, &str); 3] {
        [
            ("authorization", &self.authorization),
            ("x-amz-date", &self.x_amz_date),
            ("x-amz-content-sha256", &self.x_amz_content_sha256),
        ]
    }
}

fn canonical_query_of(query: Query<'_>) -> Result<Vec<u8>, AuthError> {
    Ok(match query {
        Query::None => Vec::new(),
        Query::Raw(raw) => canonical::canonical_query(&canonical::parse_query(raw)?, |_| false),
        Query::Pairs(pairs) => canonical::canonical_query(pairs, |_| false),
    })
}

fn canonical_path(path: &str) -> Result<String, AuthError> {
    if !path.starts_with('/') {
        return Err(AuthError::InvalidRequest(
            "the path must start with '/'".into(),
        ));
    }
    canonical::normalize_path(path)
        .ok_or_else(|| AuthError::InvalidRequest("the path has a malformed percent-escape".into()))
}

/// The signable headers of `input` plus `extra`, lower-cased, sorted by name (stable, so
/// repeated names keep their order).
fn signable_headers<'a, N: AsRef<str>, V: AsRef<[u8]>>(
    headers: &'a [(N, V)],
    extra: &[(&'a str, &'a [u8])],
) -> Vec<(String, &'a [u8])> {
    let mut all: Vec<(String, &[u8])> = headers
        .iter()
        .map(|(n, v)| (n.as_ref().to_ascii_lowercase(), v.as_ref()))
        .filter(|(n, _)| {
            !UNSIGNABLE.contains(&n.as_str()) && !n.starts_with("proxy-") && !n.is_empty()
        })
        .chain(extra.iter().map(|(n, v)| ((*n).to_owned(), *v)))
        .collect();
    all.sort_by(|a, b| a.0.cmp(&b.0));
    all
}

/// The distinct names of sorted headers.
fn distinct_names<'h>(headers: &'h [(String, &[u8])]) -> Vec<&'h str> {
    let mut names: Vec<&str> = Vec::with_capacity(headers.len());
    for (n, _) in headers {
        if names.last() != Some(&n.as_str()) {
            names.push(n);
        }
    }
    names
}

/// Signs a request with the `Authorization` header.
///
/// Returns the headers to add (`Authorization`, `x-amz-date`, `x-amz-content-sha256`); the
/// request must be sent with exactly the method, host, path, query and signed headers given
/// here. For a streaming signed payload the result also carries the [`ChunkSigner`] that signs
/// the body.
pub fn sign<N: AsRef<str>, V: AsRef<[u8]>>(
    input: &SigningInput<'_, N, V>,
    access_key_id: &str,
    secret: &Secret,
    region: &str,
    now: SystemTime,
) -> Result<SigningOutput, AuthError> {
    let timestamp = format_amz_date(unix_secs(now));
    let date = &timestamp[..8];
    let payload = input.payload.header_value();
    let extra: [(&str, &[u8]); 3] = [
        ("host", input.host.as_bytes()),
        ("x-amz-content-sha256", payload.as_bytes()),
        ("x-amz-date", timestamp.as_bytes()),
    ];
    let headers = signable_headers(input.headers, &extra);
    let names = distinct_names(&headers);
    let canonical_request = canonical::canonical_request(
        input.method,
        canonical_path(input.path)?.as_bytes(),
        &canonical_query_of(input.query)?,
        &headers,
        &names,
        payload.as_bytes(),
    )
    .map_err(|_| AuthError::InvalidRequest("a header to sign is missing".into()))?;
    let scope = canonical::scope(date, region, SERVICE);
    let string_to_sign = canonical::string_to_sign(&timestamp, &scope, &canonical_request);
    let key = SigningKey::derive(secret, date, region, SERVICE);
    let signature = key.sign(&string_to_sign);
    let authorization = format!(
        "{ALGORITHM} Credential={access_key_id}/{scope}, SignedHeaders={}, Signature={signature}",
        names.join(";")
    );
    let chunk_signer = if input.payload.is_chunk_signed() {
        Some(ChunkSigner::new(key, &timestamp, &scope, &signature)?)
    } else {
        None
    };
    Ok(SigningOutput {
        authorization,
        x_amz_date: timestamp.clone(),
        x_amz_content_sha256: payload.into_owned(),
        signature,
        chunk_signer,
    })
}

/// Presigns a request: returns the complete query string to send (the given query, then the
/// `X-Amz-*` parameters, `X-Amz-Signature` last), valid for `expires_secs` from `now`. The
/// payload is `UNSIGNED-PAYLOAD`; `host` and the given headers are signed.
pub fn presign<N: AsRef<str>, V: AsRef<[u8]>>(
    input: &SigningInput<'_, N, V>,
    access_key_id: &str,
    secret: &Secret,
    region: &str,
    now: SystemTime,
    expires_secs: u64,
) -> Result<String, AuthError> {
    if expires_secs > PRESIGNED_EXPIRES_SECS_MAX {
        return Err(AuthError::AuthorizationQueryParametersError(
            EXPIRES_TOO_LONG.into(),
        ));
    }
    let timestamp = format_amz_date(unix_secs(now));
    let date = &timestamp[..8];
    let scope = canonical::scope(date, region, SERVICE);
    let headers = signable_headers(input.headers, &[("host", input.host.as_bytes())]);
    let names = distinct_names(&headers);
    let credential = format!("{access_key_id}/{scope}");
    let expires = expires_secs.to_string();
    let signed_headers = names.join(";");

    let mut params: Vec<(Vec<u8>, Vec<u8>)> = match input.query {
        Query::None => Vec::new(),
        Query::Raw(raw) => canonical::parse_query(raw)?,
        Query::Pairs(pairs) => pairs
            .iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
            .collect(),
    };
    let given = canonical::canonical_query(&params, |_| false);
    let added: [(&str, &str); 5] = [
        ("X-Amz-Algorithm", ALGORITHM),
        ("X-Amz-Credential", &credential),
        ("X-Amz-Date", &timestamp),
        ("X-Amz-Expires", &expires),
        ("X-Amz-SignedHeaders", &signed_headers),
    ];
    params.extend(
        added
            .iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec())),
    );
    let canonical_query = canonical::canonical_query(&params, |_| false);
    let canonical_request = canonical::canonical_request(
        input.method,
        canonical_path(input.path)?.as_bytes(),
        &canonical_query,
        &headers,
        &names,
        super::UNSIGNED_PAYLOAD.as_bytes(),
    )
    .map_err(|_| AuthError::InvalidRequest("a header to sign is missing".into()))?;
    let string_to_sign = canonical::string_to_sign(&timestamp, &scope, &canonical_request);
    let signature = SigningKey::derive(secret, date, region, SERVICE).sign(&string_to_sign);

    let mut out = given;
    for (k, v) in added {
        if !out.is_empty() {
            out.push(b'&');
        }
        out.extend_from_slice(k.as_bytes());
        out.push(b'=');
        canonical::uri_encode_into(&mut out, v.as_bytes(), false);
    }
    out.extend_from_slice(b"&X-Amz-Signature=");
    out.extend_from_slice(signature.as_bytes());
    // Only unreserved bytes, '=', '&' and '%XX' are written.
    String::from_utf8(out).map_err(|_| AuthError::InvalidRequest("the query is not ASCII".into()))
}
