//! UploadPart.

use super::exchange::names;
use super::part_keys::{PartSealing, PartTarget};
use crate::envelope::PartSalt;
use crate::envelope::layout::salted_stored_len;
use crate::http::ResponseHead;
use crate::s3::S3Error;
use crate::s3::checksum::{Checksum, ChecksumAlgorithm};
use crate::serve::body::{ClientBody, ClientChecksum};
use crate::serve::io::Conn;
use crate::serve::object::seal_upload;
use crate::serve::part_checksum::{Declared, PartTagger};
use crate::serve::respond::{forward_error, key_id_of};
use crate::serve::{Failure, Outcome, Request, backend_path, encode, write_response};
use std::ops::ControlFlow;

/// UploadPart: seals the part with the keys the upload id carries.
pub(crate) async fn upload_part(ctx: &Request<'_>, conn: &mut Conn) -> Result<Outcome, Failure> {
    let name = names(ctx)?;
    let sealing = PartTarget::from_request(ctx)?.open(ctx, name).await?;
    let mut body = part_body(ctx, sealing.declared)?;
    continue_if_expected(ctx, conn).await?;
    let path = backend_path(Some(name.bucket), Some(name.key));
    let sealed = match store_part(ctx, conn, &mut body, &sealing, &path).await? {
        ControlFlow::Continue(sealed) => sealed,
        ControlFlow::Break(outcome) => return Ok(outcome),
    };
    let etag = client_etag(
        sealing.number,
        sealing.tagger.as_ref(),
        sealed.etag,
        sealed.checksum.as_ref(),
    )?;
    let key_id = key_id_of(ctx, &sealing.header);
    answer(ctx, conn, (etag, key_id), sealed.checksum).await
}

/// The request's body, checked before anything is read from it: no larger than a
/// PutObject may be, and carrying the upload's declared checksum if it has one.
fn part_body(ctx: &Request<'_>, declared: Option<Declared>) -> Result<ClientBody, Failure> {
    let body = ClientBody::new(ctx.head, ctx.verified)?;
    if body.len() > crate::serve::object::PUT_OBJECT_BYTES_MAX {
        return Err(Failure::keep(S3Error::entity_too_large()));
    }
    require_declared_checksum(
        declared,
        |a| ctx.head.header(a.header_name()).is_some(),
        body.trailer_checksum_algorithm(),
    )?;
    Ok(body)
}

/// As in S3, an upload that declared a checksum takes only parts that carry one of its
/// algorithm, as a header (`in_header` says whether the request has that algorithm's
/// header) or as a trailer (`trailer`): it is checked, and vouched for in the ETag.
fn require_declared_checksum(
    declared: Option<Declared>,
    in_header: impl Fn(ChecksumAlgorithm) -> bool,
    trailer: Option<ChecksumAlgorithm>,
) -> Result<(), S3Error> {
    match declared {
        Some(d) if !in_header(d.algorithm) && trailer != Some(d.algorithm) => {
            Err(S3Error::invalid_request(format!(
                "This upload was created with the {0} checksum: each part needs its {0} \
                 checksum ({1})",
                d.algorithm,
                d.algorithm.header_name()
            )))
        }
        _ => Ok(()),
    }
}

/// Answers `100 Continue` to a client that waits for it before sending the body.
async fn continue_if_expected(ctx: &Request<'_>, conn: &mut Conn) -> Result<(), Failure> {
    if ctx.head.expects_continue() {
        let (res, _) = conn
            .write_all(b"HTTP/1.1 100 Continue\r\n\r\n".to_vec())
            .await;
        res.map_err(|_| Failure::close(S3Error::incomplete_body()))?;
    }
    Ok(())
}

/// A part sealed and stored: the backend's ETag of it and the client's checksum of its
/// plaintext, if the client sent one.
struct SealedPart {
    etag: Option<Vec<u8>>,
    checksum: Option<ClientChecksum>,
}

/// Seals the body as part `sealing.number` and stores it at `path`: the part's salt, then
/// its segments. The salt is fresh for this upload of the part, so a part sent again (a
/// retry, the same bytes or others, or two at once) is sealed under other keys and simply
/// replaces the stored one, as in S3. A backend that refuses the part has its error
/// relayed, and the request is then done (`Break`).
async fn store_part(
    ctx: &Request<'_>,
    conn: &mut Conn,
    body: &mut ClientBody,
    sealing: &PartSealing,
    path: &str,
) -> Result<ControlFlow<Outcome, SealedPart>, Failure> {
    let number = sealing.number;
    let stored = salted_stored_len(body.len(), sealing.header.segment_size);
    let query = format!(
        "partNumber={number}&uploadId={}",
        encode(&sealing.backend_id, false)
    );
    let mut ex = ctx
        .core
        .backend
        .send_head("PUT", path, Some(&query), Vec::new(), Some(stored))
        .await?;
    write_salt(&mut ex, &sealing.salt).await?;
    let (resp, resp_body, checksum) = seal_upload(ctx, conn, body, &sealing.cipher, ex).await?;
    if resp.status != 200 {
        return forward_error(conn, &resp, &resp_body, ctx.rid)
            .await
            .map(ControlFlow::Break);
    }
    Ok(ControlFlow::Continue(SealedPart {
        etag: resp.header("etag").map(<[u8]>::to_vec),
        checksum,
    }))
}

/// Sends a part's salt, the first bytes of its stored body, to the backend's UploadPart.
pub(super) async fn write_salt(
    ex: &mut crate::serve::backend::Exchange,
    salt: &PartSalt,
) -> Result<(), Failure> {
    let (res, _) = ex.conn.write_all(salt.to_vec()).await;
    res.map_err(|e| Failure::from(crate::serve::backend::BackendError::from(e)))
}

/// The ETag the client gets for part `number`: the backend's `etag`, with the tag that
/// vouches for the part's checksum when the upload declared one (`tagger`) and the
/// client sent it (`checksum`).
fn client_etag(
    number: u32,
    tagger: Option<&PartTagger>,
    etag: Option<Vec<u8>>,
    checksum: Option<&ClientChecksum>,
) -> Result<Option<Vec<u8>>, Failure> {
    let (Some(e), Some(t), Some(c)) = (&etag, tagger, checksum) else {
        return Ok(etag);
    };
    let digest = Checksum::from_base64(c.algorithm, &c.value)
        .ok_or_else(|| Failure::keep(S3Error::internal_error()))?;
    Ok(Some(
        t.client_etag(number, c.algorithm, &digest, &String::from_utf8_lossy(e))
            .into_bytes(),
    ))
}

/// Writes UploadPart's answer: the part's ETag, the upload's key and the checksum, no
/// body.
async fn answer(
    ctx: &Request<'_>,
    conn: &mut Conn,
    (etag, key_id): (Option<Vec<u8>>, Option<&str>),
    checksum: Option<ClientChecksum>,
) -> Result<Outcome, Failure> {
    let mut out = ResponseHead::new(200);
    if let Some(v) = etag {
        out.push_header("etag", crate::s3::etag::header_to_client(&v));
    }
    crate::serve::respond::push_sse_for(ctx, &mut out, key_id);
    if let Some(c) = checksum {
        out.push_header(c.algorithm.header_name(), c.value.into_bytes());
    }
    out.push_header("x-amz-request-id", ctx.rid.as_bytes().to_vec());
    out.push_header("content-length", b"0".to_vec());
    write_response(conn, &out, &[])
        .await
        .map_err(|_| Failure::close(S3Error::internal_error()))?;
    Ok(Outcome::KeepAlive)
}

#[cfg(test)]
mod tests {
    use super::{client_etag, require_declared_checksum};
    use crate::envelope::DataKeys;
    use crate::envelope::header::test_header;
    use crate::s3::checksum::{ChecksumAlgorithm, checksum};
    use crate::serve::body::ClientChecksum;
    use crate::serve::part_checksum::{Declared, PartTagger};

    #[test]
    fn a_declared_checksum_must_come_with_each_part() {
        let crc32 = ChecksumAlgorithm::Crc32;
        let declared = Some(Declared {
            algorithm: crc32,
            full_object: false,
        });
        let none = |_| false;
        let header = |a| a == crc32;
        assert!(require_declared_checksum(None, none, None).is_ok());
        assert!(require_declared_checksum(declared, header, None).is_ok());
        assert!(require_declared_checksum(declared, none, Some(crc32)).is_ok());
        for trailer in [None, Some(ChecksumAlgorithm::Crc32c)] {
            let e = require_declared_checksum(declared, none, trailer).unwrap_err();
            assert_eq!(e.code, "InvalidRequest");
        }
        let other = |a| a == ChecksumAlgorithm::Sha256;
        assert!(require_declared_checksum(declared, other, None).is_err());
    }

    #[test]
    fn the_etag_is_tagged_only_with_a_tagger_and_a_checksum() {
        let keys = DataKeys::from_bytes([5; 32], [6; 32]);
        let tagger = PartTagger::new(&test_header(1), &keys).unwrap();
        let a = ChecksumAlgorithm::Crc32;
        let digest = checksum(a, b"part");
        let c = ClientChecksum {
            algorithm: a,
            value: digest.to_base64(),
        };
        let etag = || Some(b"\"0123abcd\"".to_vec());
        let tagged = client_etag(3, Some(&tagger), etag(), Some(&c))
            .unwrap()
            .unwrap();
        let tagged = String::from_utf8(tagged).unwrap();
        assert_eq!(tagged, tagger.client_etag(3, a, &digest, "\"0123abcd\""));
        assert!(tagger.vouches(3, a, &digest, &tagged));
        assert_eq!(client_etag(3, None, etag(), Some(&c)).unwrap(), etag());
        assert_eq!(client_etag(3, Some(&tagger), etag(), None).unwrap(), etag());
        assert_eq!(client_etag(3, Some(&tagger), None, Some(&c)).unwrap(), None);
    }
}
