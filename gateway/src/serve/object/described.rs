//! An object's describing metadata: the client's user metadata (`x-amz-meta-*`) and the
//! headers of [`meta_record::SEALED_HEADERS`]. Objects of format version 2 keep them only
//! in their sealed metadata record (`docs/format.md`, *Metadata record*), which every
//! new object gets (empty when the client sent none), so the backend never reads them;
//! here they are taken from a request and sealed, and opened again into a backend answer
//! before it is turned into the client's. Objects of version 1 keep them in the clear, as
//! they were written.

use crate::envelope::DataKeys;
use crate::envelope::header::{FORMAT_VERSION, Header};
use crate::envelope::meta_record::{self, Entries, MetaRecordError, USER_METADATA_PREFIX};
use crate::http::ResponseHead;
use crate::s3::S3Error;
use crate::serve::error::report_integrity_failure;
use crate::serve::{Failure, Request};

/// User metadata that holds the sealed metadata record, base64url without padding.
pub(crate) const META_RECORD_METADATA: &str = meta_record::HTTP_HEADER;
/// S3's limit on an object's user metadata: the bytes of every name (without the
/// `x-amz-meta-` prefix) and value together.
pub const USER_METADATA_BYTES_MAX: usize = 2048;
/// The Content-Type S3 gives an object stored without one.
const CONTENT_TYPE_DEFAULT: &[u8] = b"binary/octet-stream";
/// GetObject's query parameters that set a response header, and the header each sets.
/// The backend applies them to its answer, which then stands.
const RESPONSE_OVERRIDES: &[(&str, &str)] = &[
    ("response-content-type", "content-type"),
    ("response-content-language", "content-language"),
    ("response-cache-control", "cache-control"),
    ("response-content-disposition", "content-disposition"),
    ("response-content-encoding", "content-encoding"),
];

/// The entries to seal from a request's headers (PutObject, CreateMultipartUpload,
/// CopyObject with REPLACE), in the order sent; a header sent twice is joined with `, `.
/// `aws-chunked`, which names the request's framing rather than the object's encoding, is
/// left out of Content-Encoding. User metadata over S3's 2 KiB is `MetadataTooLarge`.
pub(crate) fn request_entries(headers: &[(String, Vec<u8>)]) -> Result<Entries, S3Error> {
    let mut entries: Entries = Vec::new();
    for (name, value) in headers {
        if !meta_record::is_sealed(name) {
            continue;
        }
        let value = match name.as_str() {
            "content-encoding" => without_aws_chunked(value),
            _ => value.clone(),
        };
        if name == "content-encoding" && value.is_empty() {
            continue;
        }
        match entries.iter_mut().find(|(n, _)| n == name) {
            Some((_, v)) => {
                v.extend_from_slice(b", ");
                v.extend_from_slice(&value);
            }
            None => entries.push((name.clone(), value)),
        }
    }
    let user_bytes: usize = entries
        .iter()
        .filter_map(|(n, v)| Some(n.strip_prefix(USER_METADATA_PREFIX)?.len() + v.len()))
        .sum();
    if user_bytes > USER_METADATA_BYTES_MAX {
        return Err(S3Error::metadata_too_large());
    }
    Ok(entries)
}

fn without_aws_chunked(value: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(value);
    let kept: Vec<&str> = text
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty() && !t.eq_ignore_ascii_case("aws-chunked"))
        .collect();
    kept.join(", ").into_bytes()
}

/// The metadata entry that records `entries` for the object of `header` and `keys`.
pub(crate) fn sealed_entry(
    header: &Header,
    keys: &DataKeys,
    entries: &[(String, Vec<u8>)],
) -> Result<(String, Vec<u8>), Failure> {
    match meta_record::seal(header, keys, entries) {
        Ok(Ok(value)) => Ok((META_RECORD_METADATA.to_owned(), value.into_bytes())),
        Ok(Err(MetaRecordError::TooLarge)) => Err(Failure::keep(S3Error::metadata_too_large())),
        Ok(Err(e)) => Err(Failure::keep(S3Error::invalid_argument(e.to_string()))),
        Err(_) => Err(Failure::keep(S3Error::internal_error())),
    }
}

/// The entries of an object's metadata record, from the backend answer `meta` about it.
/// A version 2 object without its record, or whose record does not open, failed its
/// integrity check (counted and logged), and nothing of it is served.
pub(crate) fn opened_entries(
    ctx: &Request<'_>,
    header: &Header,
    keys: &DataKeys,
    meta: &ResponseHead,
) -> Result<Entries, Failure> {
    let opened = match meta.header_str(META_RECORD_METADATA) {
        Some(value) => meta_record::open(header, keys, value),
        None => Err(MetaRecordError::Malformed),
    };
    opened.map_err(|e| {
        report_integrity_failure(ctx, "metadata_record", &e);
        Failure::integrity(format!("The stored object failed its integrity check: {e}"))
    })
}

/// Replaces, in the backend's answer `meta` about a version 2 object, the describing
/// headers by those of its metadata record, so that the client gets what it stored and
/// nothing the backend added. A response override of the request (`response-*`), which
/// the backend applied, stands. Version 1 objects are left as they are.
pub(crate) fn reveal(
    ctx: &Request<'_>,
    header: &Header,
    keys: &DataKeys,
    meta: &mut ResponseHead,
) -> Result<(), Failure> {
    if header.version() < FORMAT_VERSION {
        return Ok(());
    }
    let entries = opened_entries(ctx, header, keys, meta)?;
    let overridden = |name: &str| {
        RESPONSE_OVERRIDES
            .iter()
            .any(|(q, n)| *n == name && ctx.query.get(q).is_some())
    };
    meta.headers.retain(|(n, _)| {
        (overridden(n) || !meta_record::is_sealed(n)) && n != META_RECORD_METADATA
    });
    for (n, v) in entries {
        if !overridden(&n) {
            meta.push_header(&n, v);
        }
    }
    if meta.header("content-type").is_none() {
        meta.push_header("content-type", CONTENT_TYPE_DEFAULT.to_vec());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&str, &str)]) -> Vec<(String, Vec<u8>)> {
        pairs
            .iter()
            .map(|(n, v)| ((*n).to_owned(), v.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn request_entries_take_the_describing_headers_and_user_metadata_only() {
        let got = request_entries(&h(&[
            ("content-type", "text/csv"),
            ("x-amz-meta-a", "1"),
            ("expires", "Thu, 01 Dec 2094 16:00:00 GMT"),
            ("content-encoding", "aws-chunked"),
            ("x-amz-meta-a", "2"),
            ("x-amz-storage-class", "STANDARD"),
            ("authorization", "secret"),
        ]))
        .unwrap();
        assert_eq!(
            got,
            h(&[("content-type", "text/csv"), ("x-amz-meta-a", "1, 2")])
        );
        let gz = request_entries(&h(&[("content-encoding", "aws-chunked,gzip")])).unwrap();
        assert_eq!(gz, h(&[("content-encoding", "gzip")]));
    }

    #[test]
    fn user_metadata_over_two_kib_is_refused_as_s3_does() {
        let fits = "x".repeat(USER_METADATA_BYTES_MAX - 1);
        assert!(request_entries(&h(&[("x-amz-meta-a", &fits)])).is_ok());
        let e = request_entries(&h(&[("x-amz-meta-ab", &fits)])).unwrap_err();
        assert_eq!(e.status, 400);
        // Sealed headers other than user metadata do not count.
        let long_type = "t".repeat(4000);
        assert!(request_entries(&h(&[("content-type", &long_type)])).is_ok());
    }
}
