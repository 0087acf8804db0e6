//! CompleteMultipartUpload: the parts checked against the listing, the object's size and
//! checksum recorded.

use super::exchange::{names, reply};
use super::token::{Upload, parse_token, replace_element};
use crate::envelope::ObjectName;
use crate::envelope::header::Header;
use crate::envelope::layout::plain_len;
use crate::envelope::{checksum_record, record};
use crate::http::ResponseHead;
use crate::objmeta;
use crate::s3::{S3Code, S3Error, xml};
use crate::serve::io::Conn;
use crate::serve::part_checksum::{Declared, PartTagger};
use crate::serve::passthrough::read_body;
use crate::serve::respond::forward_error;
use crate::serve::{Failure, Outcome, Request, backend_path, encode};

/// A part the backend already holds for an upload.
pub(super) struct StoredPart {
    pub(super) etag: String,
    pub(super) size: u64,
}

impl StoredPart {
    /// Part `number` is being sent again, and seals to `stored` bytes whose MD5 is `md5`.
    /// Its keys and nonces are those the stored part was sealed with, so anything but the
    /// same ciphertext would give the backend two messages under one nonce (the XOR of
    /// the plaintexts, and the means to forge tags): the gateway sent nothing, and only
    /// the same part (a retry) is answered, with the stored part's ETag. The ETag of a
    /// part is the MD5 of its bytes on S3 and most backends; where it is not (SSE-KMS
    /// buckets), a retry is refused as well.
    pub(super) fn check_same(
        &self,
        number: u32,
        stored: u64,
        md5: &[u8; 16],
    ) -> Result<(), Failure> {
        let hex: String = md5.iter().map(|b| format!("{b:02x}")).collect();
        if self.size == stored && self.etag.trim_matches('"').eq_ignore_ascii_case(&hex) {
            return Ok(());
        }
        Err(Failure::keep(S3Error::new(
            400,
            S3Code::InvalidRequest,
            format!(
                "Part {number} of this upload already holds other data, and Twofold cannot \
                 replace a part: it would seal two different parts under the same keys. \
                 Abort the upload and start a new one"
            ),
        )))
    }
}

/// The backend's part `number` of upload `backend_id`, if it has one (ListParts from
/// that part on).
pub(super) async fn stored_part(
    ctx: &Request<'_>,
    path: &str,
    backend_id: &str,
    number: u32,
) -> Result<Option<StoredPart>, Failure> {
    let q = format!(
        "uploadId={}&max-parts=1&part-number-marker={}",
        encode(backend_id, false),
        number - 1
    );
    let (resp, body) = ctx
        .core
        .backend
        .simple("GET", path, Some(&q), Vec::new(), Vec::new())
        .await?;
    match resp.status {
        200 => {}
        404 => return Err(Failure::close(S3Error::no_such_upload())),
        _ => {
            return Err(Failure::close(S3Error::bad_gateway().with_detail(format!(
                "Storage backend refused to list the upload's parts ({})",
                resp.status
            ))));
        }
    }
    Ok(listed_parts(&String::from_utf8_lossy(&body))
        .into_iter()
        .find(|p| p.number == number)
        .map(|p| StoredPart {
            etag: p.etag,
            size: p.size.unwrap_or(0),
        }))
}

/// The CompleteMultipartUpload document the backend gets: the parts' numbers and the
/// backend's own ETags. The client's `<Checksum...>` elements are left out (checksums of
/// plaintext parts, which the backend's ciphertext parts were uploaded without; a backend
/// that checks them would refuse the completion), and so are the tags in its ETags.
pub(super) fn backend_document(parts: &[crate::serve::part_checksum::CompletedPart]) -> String {
    let mut xml = String::from("<CompleteMultipartUpload>");
    for p in parts {
        xml.push_str(&format!(
            "<Part><PartNumber>{}</PartNumber><ETag>&quot;{}&quot;</ETag></Part>",
            p.number,
            crate::s3::xml::escape(crate::serve::part_checksum::backend_etag(&p.etag))
        ));
    }
    xml.push_str("</CompleteMultipartUpload>");
    xml
}

/// A `<Part>` of a ListParts result.
pub(super) struct ListedPart {
    pub(super) number: u32,
    pub(super) size: Option<u64>,
    pub(super) etag: String,
}

/// Every `<Part>` of a ListParts result that has a part number, in order.
pub(super) fn listed_parts(xml: &str) -> Vec<ListedPart> {
    xml::elements(xml, "Part")
        .0
        .into_iter()
        .filter_map(|part| {
            Some(ListedPart {
                number: xml::value(part, "PartNumber")?.trim().parse().ok()?,
                size: xml::value(part, "Size").and_then(|s| s.trim().parse().ok()),
                etag: xml::value(part, "ETag")
                    .map(xml::unescape)
                    .unwrap_or_default(),
            })
        })
        .collect()
}

/// CompleteMultipartUpload: checks that the parts form a layout the envelope can read
/// (numbered 1..N without gaps, every part but the last a whole number of segments) and,
/// for an upload that declared a checksum, that each part's claimed checksum is the one
/// its ETag vouches for; then lets the backend complete. The object's checksum, and the
/// layout record of an unaligned object, are recorded by a rewrite of the object.
pub(crate) async fn complete(ctx: &Request<'_>, conn: &mut Conn) -> Result<Outcome, Failure> {
    let name = names(ctx)?;
    let id = ctx.query.get("uploadId").unwrap_or("");
    let Upload {
        backend_id,
        header,
        declared,
    } = parse_token(id).map_err(Failure::close)?;
    let request = read_body(ctx, conn).await?;
    let text = String::from_utf8_lossy(&request).into_owned();
    let parts = crate::serve::part_checksum::completed_parts(&text, declared.map(|d| d.algorithm))?;
    if parts.is_empty() {
        return Err(Failure::keep(S3Error::malformed_xml()));
    }
    if parts
        .iter()
        .enumerate()
        .any(|(i, p)| p.number as usize != i + 1)
    {
        return Err(Failure::keep(S3Error::new(
            400,
            S3Code::InvalidPart,
            "Twofold needs the parts of an upload numbered 1, 2, 3... without gaps",
        )));
    }
    // The upload's keys, opened only when something is to be checked or sealed with them
    // (a Complete of an aligned upload without a checksum needs no custodian).
    let mut keys = match (&header, declared) {
        (Some(h), Some(_)) => Some(upload_keys(ctx, h, name).await?),
        _ => None,
    };
    // The parts' checksums, each vouched for by its ETag.
    let digests = match (declared, &header, &keys) {
        (Some(d), Some(h), Some(k)) => {
            let tagger =
                PartTagger::new(h, k).map_err(|_| Failure::keep(S3Error::internal_error()))?;
            Some(vouched_digests(&parts, d, &tagger)?)
        }
        _ => None,
    };
    let path = backend_path(Some(name.bucket), Some(name.key));
    let upload_q = format!("uploadId={}", encode(&backend_id, false));
    // The sizes of the parts, from the backend.
    let seg = header
        .as_ref()
        .map_or(ctx.core.keyring.settings().segment_size, |h| h.segment_size);
    let mut sizes = Vec::new();
    let mut marker = 0u32;
    loop {
        let q = format!("{upload_q}&part-number-marker={marker}");
        let (resp, body) = ctx
            .core
            .backend
            .simple("GET", &path, Some(&q), Vec::new(), Vec::new())
            .await?;
        if resp.status == 404
            && let Some(h) = &header
            && let Some((head, result)) = completed_earlier(ctx, name, &path, h).await?
        {
            // A Complete sent again after it succeeded (its answer was lost): S3 and Ceph
            // answer it as the first time.
            return reply(conn, &head, &result, ctx.rid, true).await;
        }
        if resp.status != 200 {
            return forward_error(conn, &resp, &body, ctx.rid).await;
        }
        let text = String::from_utf8_lossy(&body);
        let page: Vec<(u32, u64)> = listed_parts(&text)
            .into_iter()
            .filter_map(|p| Some((p.number, p.size?)))
            .collect();
        let truncated = xml::value(&text, "IsTruncated").is_some_and(|v| v.trim() == "true");
        let next = page.last().map(|p| p.0);
        sizes.extend(page);
        match (truncated, next) {
            (true, Some(n)) if n > marker => marker = n,
            _ => break,
        }
    }
    let mut plain_sizes = Vec::with_capacity(parts.len());
    for (i, part) in parts.iter().enumerate() {
        let n = part.number;
        let stored = sizes
            .iter()
            .find(|(p, _)| *p == n)
            .map(|(_, s)| *s)
            .ok_or_else(|| {
                Failure::keep(S3Error::new(
                    400,
                    S3Code::InvalidPart,
                    format!("Part {n} was not uploaded"),
                ))
            })?;
        let plain = plain_len(stored, seg).map_err(|_| {
            Failure::keep(S3Error::new(
                400,
                S3Code::InvalidPart,
                format!("Part {n} was not uploaded through Twofold"),
            ))
        })?;
        if i + 1 < parts.len() && plain == 0 {
            return Err(Failure::keep(S3Error::new(
                400,
                S3Code::EntityTooSmall,
                format!("Part {n} is empty; only the last part may be"),
            )));
        }
        plain_sizes.push(plain);
    }
    if keys.is_none()
        && let Some(h) = &header
        && record::needs_record(&plain_sizes, seg)
    {
        keys = Some(upload_keys(ctx, h, name).await?);
    }
    // The object's checksum, checked against the one the client sent for it, if it did.
    let object_checksum = match (declared, &digests) {
        (Some(d), Some(digests)) => {
            let c = crate::serve::part_checksum::object_checksum(d, digests, &plain_sizes)
                .ok_or_else(|| Failure::keep(S3Error::internal_error()))?;
            if let Some(claim) = ctx.head.header_str(d.algorithm.header_name())
                && claim.trim() != c.value()
                && claim.trim() != c.digest.to_base64()
            {
                return Err(Failure::keep(S3Error::bad_digest().with_message(format!(
                    "The {} checksum of the object is {}, not {}",
                    d.algorithm,
                    c.value(),
                    claim.trim()
                ))));
            }
            Some(c)
        }
        _ => None,
    };
    // Everything that goes into the object's metadata is sealed now, so that nothing is
    // completed if it cannot be.
    let mut metadata = Vec::new();
    if let (Some(c), Some(h), Some(k)) = (&object_checksum, &header, &keys) {
        let cipher =
            checksum_record::cipher(h, k).map_err(|_| Failure::keep(S3Error::internal_error()))?;
        let sealed = checksum_record::seal(&cipher, c)
            .map_err(|_| Failure::keep(S3Error::internal_error()))?;
        metadata.push((
            crate::serve::object::CHECKSUM_METADATA.into(),
            sealed.into_bytes(),
        ));
    }
    // Parts that are not whole numbers of segments (all but the last): the object gets a
    // layout record.
    let sealed_record = match (&header, &keys) {
        (Some(h), Some(k)) if record::needs_record(&plain_sizes, seg) => {
            record::encode(&plain_sizes).map_err(|e| {
                Failure::keep(S3Error::new(
                    400,
                    S3Code::InvalidPart,
                    format!("Twofold cannot record this layout: {e}"),
                ))
            })?;
            let sealed = record::seal(h, k, &plain_sizes)
                .map_err(|_| Failure::keep(S3Error::internal_error()))?;
            if sealed.len().div_ceil(3) * 4 > crate::serve::unaligned::LAYOUT_VALUE_LEN_MAX {
                return Err(Failure::keep(S3Error::new(
                    400,
                    S3Code::InvalidPart,
                    "Twofold cannot record this layout: the part sizes take too much metadata",
                )));
            }
            Some(sealed)
        }
        _ => None,
    };
    drop(keys);
    let (resp, body) = ctx
        .core
        .backend
        .simple(
            "POST",
            &path,
            Some(&upload_q),
            vec![("content-type".into(), b"application/xml".to_vec())],
            backend_document(&parts).into_bytes(),
        )
        .await?;
    if resp.status != 200 {
        return forward_error(conn, &resp, &body, ctx.rid).await;
    }
    let Some(h) = &header else {
        return reply(conn, &resp, &body, ctx.rid, true).await;
    };
    if String::from_utf8_lossy(&body).contains("<Error>") {
        // Completed with an error body (S3 may answer 200 and fail later): nothing to
        // rewrite.
        return reply(conn, &resp, &body, ctx.rid, false).await;
    }
    let completed_version = resp.header("x-amz-version-id").map(<[u8]>::to_vec);
    let (resp, body) = match sealed_record {
        Some(sealed) => {
            crate::serve::unaligned::rewrite(ctx, name, &path, h, &sealed, &plain_sizes, metadata)
                .await?
        }
        None if !metadata.is_empty() => {
            match crate::serve::unaligned::rewrite_keeping_parts(
                ctx,
                &path,
                h,
                &plain_sizes,
                metadata,
            )
            .await
            {
                Ok(done) => done,
                Err(e) => {
                    // The object is complete and verified; only its checksum is missing,
                    // as on any object uploaded without one.
                    tracing::warn!(
                        resource = %format_args!("/{}/{}", name.bucket, name.key),
                        reason = %e.error,
                        "object completed, but its checksum could not be recorded with it"
                    );
                    return reply(conn, &resp, &body, ctx.rid, true).await;
                }
            }
        }
        None => (resp, body),
    };
    if let Some(v) = &completed_version {
        crate::serve::object::forget_version(ctx, &path, Some(v), resp.header("x-amz-version-id"))
            .await;
    }
    let body = match &object_checksum {
        Some(c) => with_checksum(&body, c),
        None => body,
    };
    let body = with_stored_etag(ctx, &path, body).await?;
    reply(conn, &resp, &body, ctx.rid, true).await
}

/// The result of a CompleteMultipartUpload whose upload the backend no longer knows, if
/// the object at `path` is the one that upload made (its stored header is the upload's:
/// the header carries the upload's own random id and keys, so no other object has it).
pub(super) async fn completed_earlier(
    ctx: &Request<'_>,
    name: ObjectName<'_>,
    path: &str,
    header: &Header,
) -> Result<Option<(ResponseHead, Vec<u8>)>, Failure> {
    let (head, _) = ctx
        .core
        .backend
        .simple("HEAD", path, None, Vec::new(), Vec::new())
        .await?;
    let stored = head
        .header_str(objmeta::HTTP_HEADER)
        .and_then(|v| objmeta::decode(v).ok());
    if head.status != 200 || stored.as_ref() != Some(header) {
        return Ok(None);
    }
    let etag = head.header_str("etag").unwrap_or("\"\"");
    let result = complete_result(name, etag);
    let mut out = ResponseHead::new(200);
    out.push_header("content-type", b"application/xml".to_vec());
    if let Some(v) = head.header("x-amz-version-id") {
        out.push_header("x-amz-version-id", v.to_vec());
    }
    Ok(Some((out, result.into_bytes())))
}

/// A CompleteMultipartUploadResult document for the object `name` with (backend) `etag`.
pub(super) fn complete_result(name: ObjectName<'_>, etag: &str) -> String {
    use crate::s3::xml::escape;
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<CompleteMultipartUploadResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Location>/{b}/{k}</Location><Bucket>{b}</Bucket><Key>{k}</Key><ETag>{e}</ETag></CompleteMultipartUploadResult>",
        b = escape(name.bucket),
        k = escape(name.key),
        e = escape(etag)
    )
}

/// A Complete result whose `<ETag>` the backend left empty (Ceph 16 does) gets the ETag a
/// HEAD of the object gives; any other result is returned as it is.
pub(super) async fn with_stored_etag(
    ctx: &Request<'_>,
    path: &str,
    body: Vec<u8>,
) -> Result<Vec<u8>, Failure> {
    let text = String::from_utf8_lossy(&body);
    let empty =
        xml::value(&text, "ETag").is_some_and(|e| matches!(xml::unescape(e).trim(), "" | "\"\""));
    if !empty {
        return Ok(body);
    }
    let (head, _) = ctx
        .core
        .backend
        .simple("HEAD", path, None, Vec::new(), Vec::new())
        .await?;
    match head.header_str("etag") {
        Some(etag) if head.status == 200 => Ok(replace_element(&text, "ETag", etag).into_bytes()),
        _ => Ok(body),
    }
}

/// The data keys of the upload whose header is `header`.
pub(super) async fn upload_keys(
    ctx: &Request<'_>,
    header: &Header,
    name: ObjectName<'_>,
) -> Result<crate::envelope::DataKeys, Failure> {
    ctx.core
        .keyring
        .open(header, name)
        .await
        .map_err(Failure::from)
}

/// The digests of the parts' checksums the client claims in its CompleteMultipartUpload
/// document, each vouched for by the part's ETag (as UploadPart or UploadPartCopy gave
/// it). A missing claim is S3's `InvalidRequest`; one the ETag does not vouch for is
/// `InvalidPart`.
pub(super) fn vouched_digests(
    parts: &[crate::serve::part_checksum::CompletedPart],
    declared: Declared,
    tagger: &PartTagger,
) -> Result<Vec<crate::checksum::Checksum>, S3Error> {
    let alg = declared.algorithm;
    parts
        .iter()
        .map(|p| {
            let claim = p.claim.as_deref().ok_or_else(|| {
                S3Error::invalid_request(format!(
                    "The upload was created using a {alg} checksum. The complete request must \
                     include the checksum for each part. It was missing for part {} in the \
                     request.",
                    p.number
                ))
            })?;
            crate::checksum::Checksum::from_base64(alg, claim)
                .filter(|d| tagger.vouches(p.number, alg, d, &p.etag))
                .ok_or_else(|| {
                    S3Error::new(
                        400,
                        S3Code::InvalidPart,
                        format!(
                            "Part {}: its {alg} checksum or its ETag is not what UploadPart \
                             returned for it",
                            p.number
                        ),
                    )
                })
        })
        .collect()
}

/// A CompleteMultipartUpload result with the object's checksum in it, as S3 gives it.
pub(super) fn with_checksum(
    body: &[u8],
    c: &crate::envelope::checksum_record::StoredChecksum,
) -> Vec<u8> {
    let text = String::from_utf8_lossy(body);
    let close = "</CompleteMultipartUploadResult>";
    let Some(at) = text.rfind(close) else {
        return body.to_vec();
    };
    let tag = c.algorithm.xml_name();
    format!(
        "{}<{tag}>{}</{tag}><ChecksumType>{}</ChecksumType>{}",
        &text[..at],
        c.value(),
        c.type_name(),
        &text[at..]
    )
    .into_bytes()
}

#[cfg(test)]
mod stored_part_tests {
    use super::StoredPart;

    #[test]
    fn only_the_stored_bytes_may_be_sent_again() {
        let md5 = [0xab_u8; 16];
        let hex = "ab".repeat(16);
        let part = |etag: &str, size| StoredPart {
            etag: etag.to_owned(),
            size,
        };
        // A retry: the ETag is the MD5 of the same sealed bytes (quoted, any case).
        assert!(
            part(&format!("\"{hex}\""), 100)
                .check_same(1, 100, &md5)
                .is_ok()
        );
        assert!(
            part(&hex.to_uppercase(), 100)
                .check_same(1, 100, &md5)
                .is_ok()
        );
        // Other bytes, another length, or an ETag that is no MD5 (or none): refused.
        let refused = |p: StoredPart, stored| {
            let f = p.check_same(7, stored, &md5).unwrap_err();
            assert_eq!(f.error.code, "InvalidRequest");
            assert!(!f.close);
        };
        refused(part(&format!("\"{}\"", "cd".repeat(16)), 100), 100);
        refused(part(&format!("\"{hex}\""), 100), 101);
        refused(part("\"ab-2\"", 100), 100);
        refused(part("", 100), 100);
    }
}

#[cfg(test)]
mod complete_document_tests {
    use super::backend_document;
    use crate::serve::part_checksum::completed_parts;

    #[test]
    fn the_backend_gets_numbers_and_its_own_etags_only() {
        let xml = "<CompleteMultipartUpload><Part><ETag>&quot;a~AAAAAAAAAAAAAAAAAAAAAA&quot;</ETag>\
            <ChecksumCRC32>AAAAAA==</ChecksumCRC32><PartNumber>1</PartNumber></Part>\
            <Part><ChecksumSHA256>x/y=</ChecksumSHA256><ETag>\"b\"</ETag>\
            <PartNumber>2</PartNumber></Part></CompleteMultipartUpload>";
        let parts = completed_parts(xml, None).unwrap();
        assert_eq!(
            backend_document(&parts),
            "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>&quot;a&quot;</ETag></Part>\
             <Part><PartNumber>2</PartNumber><ETag>&quot;b&quot;</ETag></Part></CompleteMultipartUpload>"
        );
    }
}
