//! CompleteMultipartUpload: the parts checked against the listing, the object's size and
//! checksum recorded.

use super::exchange::{names, reply, reply_with};
use super::keepalive::{Answer, conclude, keep_alive};
use super::token::{Upload, replace_element, verified_upload};
use crate::envelope::checksum_record::StoredChecksum;
use crate::envelope::header::{FORMAT_VERSION, Header};
use crate::envelope::layout::{Layout, SegmentSize, plain_len, salted_plain_len};
use crate::envelope::objmeta;
use crate::envelope::{DataKeys, ObjectName};
use crate::envelope::{checksum_record, record};
use crate::http::ResponseHead;
use crate::s3::checksum::Checksum;
use crate::s3::{S3Code, S3Error, xml};
use crate::serve::io::Conn;
use crate::serve::part_checksum::{
    CompletedPart, Declared, PartTagger, completed_parts, object_checksum,
};
use crate::serve::passthrough::read_body;
use crate::serve::respond::{KMS_KEY_ID_HEADER, forward_error, key_id_of};
use crate::serve::{Failure, Outcome, Request, backend_path, encode};
use std::ops::ControlFlow;

/// The CompleteMultipartUpload document the backend gets: the parts' numbers and the
/// backend's own ETags. The client's `<Checksum...>` elements are left out (checksums of
/// plaintext parts, which the backend's ciphertext parts were uploaded without; a backend
/// that checks them would refuse the completion), and so are the tags in its ETags.
pub(super) fn backend_document(parts: &[crate::serve::part_checksum::CompletedPart]) -> String {
    let backend_etag = crate::serve::part_checksum::backend_etag;
    xml::complete_multipart_upload(
        parts
            .iter()
            .map(|p| (p.number, format!("\"{}\"", backend_etag(&p.etag)))),
    )
}

/// A `<Part>` of a ListParts result.
pub(super) struct ListedPart {
    pub(super) number: u32,
    pub(super) size: Option<u64>,
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
    let request = CompleteRequest::read(ctx, conn).await?;
    // The upload's keys, opened only when something is to be checked or sealed with them
    // (a Complete of an aligned upload without a checksum needs no custodian).
    let mut keys = match &request.header {
        Some(h) if request.declared.is_some() || h.version() >= FORMAT_VERSION => {
            Some(upload_keys(ctx, h, name).await?)
        }
        _ => None,
    };
    let digests = part_digests(&request, keys.as_ref())?;
    let path = backend_path(Some(name.bucket), Some(name.key));
    let upload_q = format!("uploadId={}", encode(&request.backend_id, false));
    let seg = request.segment_size(ctx);
    let listing = request.listing(name, &path, &upload_q);
    let sizes = match stored_sizes(ctx, conn, &listing).await? {
        ControlFlow::Continue(sizes) => sizes,
        ControlFlow::Break(outcome) => return Ok(outcome),
    };
    let salted = request.salted();
    let plain_sizes = plain_sizes(&request.parts, &sizes, seg, salted)?;
    if keys.is_none()
        && let Some(h) = &request.header
        && record::needs_record(&plain_sizes, seg)
    {
        keys = Some(upload_keys(ctx, h, name).await?);
    }
    let object_checksum = checked_object_checksum(
        request.declared,
        digests.as_deref(),
        &plain_sizes,
        request.claim.as_deref(),
    )?;
    // Everything that goes into the object's metadata is sealed now, so that nothing is
    // completed if it cannot be.
    let numbers = request.parts.iter().map(|p| p.number).collect();
    let layout = Layout::multipart(plain_sizes, seg)
        .with_numbers(numbers)
        .with_salts(salted);
    let sealed = Sealed::new(
        request.header.as_ref(),
        keys.as_ref(),
        object_checksum.as_ref(),
        &layout,
    )?;
    drop(keys);
    let (resp, body) = backend_complete(ctx, &path, &upload_q, &request.parts).await?;
    if resp.status != 200 {
        return forward_error(conn, &resp, &body, ctx.rid).await;
    }
    let Some(header) = &request.header else {
        return reply(conn, &resp, &body, ctx.rid, true).await;
    };
    if String::from_utf8_lossy(&body).contains("<Error>") {
        // Completed with an error body (S3 may answer 200 and fail later): nothing to
        // rewrite.
        return reply(conn, &resp, &body, ctx.rid, false).await;
    }
    let object = CompletedObject {
        name,
        path: &path,
        header,
        layout: &layout,
        checksum: object_checksum.as_ref(),
    };
    record_and_answer(ctx, conn, &object, sealed, (resp, body)).await
}

/// Records what was sealed in the completed object ([`record_in_object`]) and answers
/// with the result ([`finished`]), keeping the client's connection alive while that takes
/// long ([`keep_alive`]).
async fn record_and_answer(
    ctx: &Request<'_>,
    conn: &mut Conn,
    object: &CompletedObject<'_>,
    sealed: Sealed,
    (resp, body): (ResponseHead, Vec<u8>),
) -> Result<Outcome, Failure> {
    let completed_version = resp.header("x-amz-version-id").map(<[u8]>::to_vec);
    let work = async {
        let recorded = record_in_object(ctx, object, sealed, (resp, body)).await?;
        finished(ctx, object, completed_version, recorded).await
    };
    match keep_alive(ctx, (conn, key_id_of(ctx, object.header)), work).await {
        Answer::Now(result) => {
            let (resp, body) = result?;
            let key = key_header(ctx, object.header);
            reply_with(conn, &resp, &body, ctx.rid, true, key).await
        }
        Answer::Committed(result) => Ok(conclude(ctx, conn, result).await),
    }
}

/// The header that names the key of an object of `header`, where its KEKs are a key's.
fn key_header(ctx: &Request<'_>, header: &Header) -> Vec<(&'static str, Vec<u8>)> {
    key_id_of(ctx, header)
        .map(|id| (KMS_KEY_ID_HEADER, id.as_bytes().to_vec()))
        .into_iter()
        .chain(crate::serve::respond::encryption_echo(ctx))
        .collect()
}

/// What a CompleteMultipartUpload request gives: the upload id's contents, the parts of
/// the client's document, and the object checksum the client claims (in the header of the
/// declared algorithm), if it does.
struct CompleteRequest {
    backend_id: String,
    header: Option<Header>,
    declared: Option<Declared>,
    parts: Vec<CompletedPart>,
    claim: Option<String>,
}

impl CompleteRequest {
    /// Parses the upload id and reads the client's document; its parts must be numbered
    /// 1, 2, 3... ([`check_numbering`]).
    async fn read(ctx: &Request<'_>, conn: &mut Conn) -> Result<Self, Failure> {
        let id = ctx.query.get("uploadId").unwrap_or("");
        let Upload {
            backend_id,
            header,
            declared,
            ..
        } = verified_upload(ctx, id).await.map_err(Failure::closing)?;
        let request = read_body(ctx, conn).await?;
        let text = String::from_utf8_lossy(&request).into_owned();
        let parts = completed_parts(&text, declared.map(|d| d.algorithm))?;
        let gaps_allowed = header
            .as_ref()
            .is_some_and(|h| h.version() >= FORMAT_VERSION);
        check_numbering(&parts, gaps_allowed)?;
        let claim = declared
            .and_then(|d| ctx.head.header_str(d.algorithm.header_name()))
            .map(str::to_owned);
        Ok(CompleteRequest {
            backend_id,
            header,
            declared,
            parts,
            claim,
        })
    }

    /// Where the upload's parts are listed: at `path`, with the query `upload_q`.
    fn listing<'a>(
        &'a self,
        name: ObjectName<'a>,
        path: &'a str,
        upload_q: &'a str,
    ) -> PartListing<'a> {
        PartListing {
            name,
            path,
            upload_q,
            header: self.header.as_ref(),
        }
    }

    /// The segment size of the upload: its header's, or the gateway's for an upload id
    /// without one.
    fn segment_size(&self, ctx: &Request<'_>) -> SegmentSize {
        self.header
            .as_ref()
            .map_or(ctx.core.keyring.settings().segment_size, |h| h.segment_size)
    }

    /// Whether each part begins with its own salt: every part of a format version 2
    /// upload.
    fn salted(&self) -> bool {
        self.header
            .as_ref()
            .is_some_and(|h| h.version() >= FORMAT_VERSION)
    }
}

/// The parts of a Complete document must be there, in ascending order of their numbers;
/// gaps (1, 3) only where the format can record them (`gaps_allowed`: version 2, whose
/// layout record holds the numbers).
fn check_numbering(parts: &[CompletedPart], gaps_allowed: bool) -> Result<(), S3Error> {
    if parts.is_empty() {
        return Err(S3Error::malformed_xml());
    }
    if parts.windows(2).any(|w| w[0].number >= w[1].number) {
        return Err(S3Error::new(
            400,
            S3Code::InvalidPartOrder,
            "The list of parts was not in ascending order. Parts must be ordered by part number.",
        ));
    }
    let gaps = parts
        .iter()
        .enumerate()
        .any(|(i, p)| p.number as usize != i + 1);
    if gaps && !gaps_allowed {
        return Err(S3Error::new(
            400,
            S3Code::InvalidPart,
            "This upload was started in format version 1, which needs its parts numbered 1, 2, 3... without gaps",
        ));
    }
    Ok(())
}

/// The parts' checksums, each vouched for by its ETag ([`vouched_digests`]), for an
/// upload that declared a checksum (and whose `keys` are therefore open).
fn part_digests(
    request: &CompleteRequest,
    keys: Option<&DataKeys>,
) -> Result<Option<Vec<Checksum>>, Failure> {
    let (Some(d), Some(h), Some(k)) = (request.declared, &request.header, keys) else {
        return Ok(None);
    };
    let tagger = PartTagger::new(h, k).map_err(|_| Failure::keep(S3Error::internal_error()))?;
    Ok(Some(vouched_digests(&request.parts, d, &tagger)?))
}

/// Where the parts of an upload are listed: the object, its backend path, the query
/// naming the backend's upload, and the upload's header (to recognise a Complete sent
/// again after it succeeded).
struct PartListing<'a> {
    name: ObjectName<'a>,
    path: &'a str,
    upload_q: &'a str,
    header: Option<&'a Header>,
}

/// The stored sizes of the upload's parts, as (part number, size), from the backend's
/// ListParts, page by page. A listing the backend refuses has its error relayed; an upload
/// the backend no longer knows because this Complete already succeeded (its answer was
/// lost) is answered as the first time, as S3 and Ceph do. Either way the request is then
/// done (`Break`).
async fn stored_sizes(
    ctx: &Request<'_>,
    conn: &mut Conn,
    listing: &PartListing<'_>,
) -> Result<ControlFlow<Outcome, Vec<(u32, u64)>>, Failure> {
    let mut sizes = Vec::new();
    let mut marker = 0u32;
    loop {
        let q = format!("{}&part-number-marker={marker}", listing.upload_q);
        let (resp, body) = ctx
            .core
            .backend
            .simple("GET", listing.path, Some(&q), Vec::new(), Vec::new())
            .await?;
        if resp.status == 404
            && let Some(h) = listing.header
            && let Some((head, result)) =
                completed_earlier(ctx, listing.name, listing.path, h).await?
        {
            return reply_with(conn, &head, &result, ctx.rid, true, key_header(ctx, h))
                .await
                .map(ControlFlow::Break);
        }
        if resp.status != 200 {
            return forward_error(conn, &resp, &body, ctx.rid)
                .await
                .map(ControlFlow::Break);
        }
        let page = SizesPage::parse(&String::from_utf8_lossy(&body));
        let next = page.next_marker(marker);
        sizes.extend(page.sizes);
        match next {
            Some(n) => marker = n,
            None => break,
        }
    }
    Ok(ControlFlow::Continue(sizes))
}

/// One page of a ListParts result: the parts that have a size, as (part number, size),
/// and whether more pages follow.
struct SizesPage {
    sizes: Vec<(u32, u64)>,
    truncated: bool,
}

impl SizesPage {
    /// The page a ListParts result `text` gives.
    fn parse(text: &str) -> Self {
        SizesPage {
            sizes: listed_parts(text)
                .into_iter()
                .filter_map(|p| Some((p.number, p.size?)))
                .collect(),
            truncated: xml::value(text, "IsTruncated").is_some_and(|v| v.trim() == "true"),
        }
    }

    /// The part-number marker of the next page, after the page listed from `marker`:
    /// `None` when the listing is complete, or when the page would not move it forward.
    fn next_marker(&self, marker: u32) -> Option<u32> {
        match (self.truncated, self.sizes.last().map(|p| p.0)) {
            (true, Some(n)) if n > marker => Some(n),
            _ => None,
        }
    }
}

/// The plaintext size of each part of the document, from the stored sizes the backend
/// listed (`stored`, as (part number, size)) and the upload's segment size. A part not
/// uploaded, one whose size no sealing gives (not uploaded through Twofold), or an empty
/// part other than the last is `InvalidPart` or `EntityTooSmall`. The parts of a `salted`
/// upload each begin with their salt.
fn plain_sizes(
    parts: &[CompletedPart],
    stored: &[(u32, u64)],
    seg: SegmentSize,
    salted: bool,
) -> Result<Vec<u64>, S3Error> {
    let mut plain_sizes = Vec::with_capacity(parts.len());
    for (i, part) in parts.iter().enumerate() {
        let n = part.number;
        let size = stored
            .iter()
            .find(|(p, _)| *p == n)
            .map(|(_, s)| *s)
            .ok_or_else(|| {
                S3Error::new(
                    400,
                    S3Code::InvalidPart,
                    format!("Part {n} was not uploaded"),
                )
            })?;
        let plain = match salted {
            true => salted_plain_len(size, seg),
            false => plain_len(size, seg),
        };
        let plain = plain.map_err(|_| {
            S3Error::new(
                400,
                S3Code::InvalidPart,
                format!("Part {n} was not uploaded through Twofold"),
            )
        })?;
        if i + 1 < parts.len() && plain == 0 {
            return Err(S3Error::new(
                400,
                S3Code::EntityTooSmall,
                format!("Part {n} is empty; only the last part may be"),
            ));
        }
        plain_sizes.push(plain);
    }
    Ok(plain_sizes)
}

/// The object's checksum, for an upload that declared one (`declared`, with the parts'
/// vouched `digests` and plaintext `sizes`), checked against the one the client sent for
/// it (`claim`), if it did: another is `BadDigest`.
fn checked_object_checksum(
    declared: Option<Declared>,
    digests: Option<&[Checksum]>,
    sizes: &[u64],
    claim: Option<&str>,
) -> Result<Option<StoredChecksum>, S3Error> {
    let (Some(d), Some(digests)) = (declared, digests) else {
        return Ok(None);
    };
    let c = object_checksum(d, digests, sizes).ok_or_else(S3Error::internal_error)?;
    if let Some(claim) = claim
        && claim.trim() != c.value()
        && claim.trim() != c.digest.to_base64()
    {
        return Err(S3Error::bad_digest().with_message(format!(
            "The {} checksum of the object is {}, not {}",
            d.algorithm,
            c.value(),
            claim.trim()
        )));
    }
    Ok(Some(c))
}

/// What is sealed into the object's metadata before the backend completes it: its
/// checksum (as metadata headers) and its layout record.
#[derive(Default)]
struct Sealed {
    metadata: Vec<(String, Vec<u8>)>,
    record: Option<Vec<u8>>,
}

impl Sealed {
    /// Seals the object's `checksum` ([`sealed_checksum`]) and its layout record
    /// ([`sealed_record`]) with the upload's keys; with no keys open (or no header),
    /// nothing is sealed.
    fn new(
        header: Option<&Header>,
        keys: Option<&DataKeys>,
        checksum: Option<&StoredChecksum>,
        layout: &Layout,
    ) -> Result<Self, Failure> {
        let (Some(h), Some(k)) = (header, keys) else {
            return Ok(Sealed::default());
        };
        Ok(Sealed {
            metadata: sealed_checksum(h, k, checksum)?,
            record: sealed_record(h, k, layout)?,
        })
    }
}

/// The object's checksum, if it has one, sealed as the metadata it is stored in.
fn sealed_checksum(
    header: &Header,
    keys: &DataKeys,
    checksum: Option<&StoredChecksum>,
) -> Result<Vec<(String, Vec<u8>)>, Failure> {
    let Some(c) = checksum else {
        return Ok(Vec::new());
    };
    let sealed = checksum_record::seal_for(header, keys, c)
        .map_err(|_| Failure::keep(S3Error::internal_error()))?;
    Ok(vec![(
        crate::serve::object::CHECKSUM_METADATA.into(),
        sealed.into_bytes(),
    )])
}

/// The sealed layout record of the object: every one of format version 2, and in version
/// 1 those whose parts are not whole numbers of segments (all but the last); `None` for one
/// that needs none. A layout that no record can hold, or whose record would take too much
/// metadata, is `InvalidPart`.
fn sealed_record(
    header: &Header,
    keys: &DataKeys,
    layout: &Layout,
) -> Result<Option<Vec<u8>>, Failure> {
    let plain_sizes = layout.parts();
    if header.version() < FORMAT_VERSION
        && !record::needs_record(plain_sizes, layout.segment_size())
    {
        return Ok(None);
    }
    record::encode_layout(layout).map_err(|e| {
        Failure::keep(S3Error::new(
            400,
            S3Code::InvalidPart,
            format!("Twofold cannot record this layout: {e}"),
        ))
    })?;
    let sealed = record::seal_layout(header, keys, layout)
        .map_err(|_| Failure::keep(S3Error::internal_error()))?;
    check_record_len(sealed.len())?;
    Ok(Some(sealed))
}

/// A sealed layout record of `len` bytes must fit the metadata value it is stored in
/// (base64: four characters for every three bytes).
fn check_record_len(len: usize) -> Result<(), S3Error> {
    if len.div_ceil(3) * 4 > crate::serve::unaligned::LAYOUT_VALUE_LEN_MAX {
        return Err(S3Error::new(
            400,
            S3Code::InvalidPart,
            "Twofold cannot record this layout: the part sizes take too much metadata",
        ));
    }
    Ok(())
}

/// Lets the backend complete the upload named by `upload_q` from `parts`
/// ([`backend_document`]); returns the backend's answer.
async fn backend_complete(
    ctx: &Request<'_>,
    path: &str,
    upload_q: &str,
    parts: &[CompletedPart],
) -> Result<(ResponseHead, Vec<u8>), Failure> {
    ctx.core
        .backend
        .complete_multipart(path, upload_q, backend_document(parts))
        .await
        .map_err(Failure::from)
}

/// The object the backend completed from a Twofold upload: its names and path, the
/// upload's header, its layout, and its checksum if it has one.
struct CompletedObject<'a> {
    name: ObjectName<'a>,
    path: &'a str,
    header: &'a Header,
    layout: &'a Layout,
    checksum: Option<&'a StoredChecksum>,
}

/// How the completed object is rewritten to record what was sealed for it.
#[derive(Debug, PartialEq)]
enum Rewrite {
    /// With its layout record (and any other sealed metadata): parts are regrouped where
    /// they are unaligned, kept where they are aligned; the object is removed if this
    /// fails.
    Layout(Vec<u8>),
    /// With its checksum only (format version 1): its parts are kept, and the object too
    /// if this fails.
    KeepingParts,
    /// Not at all: nothing was sealed for it.
    Nothing,
}

impl Rewrite {
    /// The rewrite that records `sealed`.
    fn of(sealed: &mut Sealed) -> Self {
        match sealed.record.take() {
            Some(record) => Rewrite::Layout(record),
            None if !sealed.metadata.is_empty() => Rewrite::KeepingParts,
            None => Rewrite::Nothing,
        }
    }
}

/// Records what was sealed for the object by rewriting it ([`Rewrite`]), and returns the
/// answer to give: the rewrite's, or the backend's Complete `answer` when there was
/// nothing to rewrite, and whether the object was rewritten. A version 1 checksum that
/// cannot be recorded leaves the object as completed, answered with `answer`.
async fn record_in_object(
    ctx: &Request<'_>,
    object: &CompletedObject<'_>,
    mut sealed: Sealed,
    answer: (ResponseHead, Vec<u8>),
) -> Result<((ResponseHead, Vec<u8>), bool), Failure> {
    let (path, parts) = (object.path, object.layout);
    match Rewrite::of(&mut sealed) {
        Rewrite::Layout(record) => {
            let mut metadata = sealed.metadata;
            if object.header.customer_key() {
                // Listings cannot open the record without the client's key.
                metadata.push(crate::serve::unaligned::size_hint(parts));
            }
            let done =
                crate::serve::unaligned::rewrite(ctx, object.name, path, &record, parts, metadata)
                    .await?;
            Ok((done, true))
        }
        Rewrite::KeepingParts => {
            match crate::serve::unaligned::rewrite_keeping_parts(ctx, path, parts, sealed.metadata)
                .await
            {
                Ok(done) => Ok((done, true)),
                Err(e) => {
                    // The object is complete and verified; only its checksum is missing,
                    // as on any object uploaded without one.
                    tracing::warn!(
                        resource = %format_args!("/{}/{}", object.name.bucket, object.name.key),
                        reason = %e.error,
                        "object completed, but its checksum could not be recorded with it"
                    );
                    Ok((answer, false))
                }
            }
        }
        Rewrite::Nothing => Ok((answer, false)),
    }
}

/// The answer to the Complete, once the object is final: the version the backend
/// completed is forgotten if a rewrite replaced it, and the result shows the object's
/// checksum (where it was recorded) and an ETag.
async fn finished(
    ctx: &Request<'_>,
    object: &CompletedObject<'_>,
    completed_version: Option<Vec<u8>>,
    (answer, rewritten): ((ResponseHead, Vec<u8>), bool),
) -> Result<(ResponseHead, Vec<u8>), Failure> {
    let (resp, body) = answer;
    if rewritten && let Some(v) = &completed_version {
        crate::serve::object::forget_version(
            ctx,
            object.path,
            Some(v),
            resp.header("x-amz-version-id"),
        )
        .await;
    }
    let body = match (object.checksum, rewritten) {
        (Some(c), true) => with_checksum(&body, c),
        _ => body,
    };
    let body = with_stored_etag(ctx, object.path, body).await?;
    Ok((resp, body))
}

/// The result of a CompleteMultipartUpload whose upload the backend no longer knows, if
/// the object at `path` is the one that upload made (its stored header is the upload's:
/// the header carries the upload's own random id and keys, so no other object has it),
/// and was completed whole: in format version 2, with its layout record. An object that
/// the backend completed and the gateway did not finish (a gateway stopped between the
/// two) has none: that upload is not answered as completed, and the client uploads
/// again.
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
    let recorded = head
        .header(crate::serve::unaligned::LAYOUT_HTTP_HEADER)
        .is_some();
    if header.version() >= FORMAT_VERSION && !recorded {
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
    let customer = crate::serve::respond::request_sse_c(ctx, crate::s3::sse_c::Role::Object)?;
    ctx.core
        .keyring
        .open_with(header, name, customer.as_ref().map(|c| &c.key))
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
) -> Result<Vec<crate::s3::checksum::Checksum>, S3Error> {
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
            crate::s3::checksum::Checksum::from_base64(alg, claim)
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

#[cfg(test)]
mod complete_step_tests {
    use super::{
        Rewrite, Sealed, SizesPage, check_numbering, check_record_len, checked_object_checksum,
        plain_sizes,
    };
    use crate::envelope::layout::{SegmentSize, stored_len};
    use crate::s3::checksum::{ChecksumAlgorithm, checksum};
    use crate::serve::part_checksum::{CompletedPart, Declared};
    use crate::serve::unaligned::LAYOUT_VALUE_LEN_MAX;

    fn parts(numbers: &[u32]) -> Vec<CompletedPart> {
        numbers
            .iter()
            .map(|&number| CompletedPart {
                number,
                etag: String::new(),
                claim: None,
            })
            .collect()
    }

    #[test]
    fn parts_are_ascending_and_without_gaps_in_version_1() {
        for gaps_allowed in [false, true] {
            assert!(check_numbering(&parts(&[1, 2, 3]), gaps_allowed).is_ok());
            assert_eq!(
                check_numbering(&[], gaps_allowed).unwrap_err().code,
                "MalformedXML"
            );
            for bad in [&[1, 1][..], &[2, 1], &[1, 3, 2]] {
                let e = check_numbering(&parts(bad), gaps_allowed).unwrap_err();
                assert_eq!(e.code, "InvalidPartOrder", "{bad:?}");
            }
        }
        for gapped in [&[2][..], &[1, 3], &[5, 9, 10000]] {
            assert!(check_numbering(&parts(gapped), true).is_ok());
            let e = check_numbering(&parts(gapped), false).unwrap_err();
            assert_eq!(e.code, "InvalidPart", "{gapped:?}");
        }
    }

    #[test]
    fn a_listing_page_gives_sizes_and_the_next_marker() {
        let page = SizesPage::parse(
            "<ListPartsResult><IsTruncated>true</IsTruncated>\
             <Part><PartNumber>1</PartNumber><Size>10</Size></Part>\
             <Part><PartNumber>2</PartNumber><Size>20</Size></Part>\
             <Part><PartNumber>3</PartNumber></Part></ListPartsResult>",
        );
        assert_eq!(page.sizes, vec![(1, 10), (2, 20)]);
        assert_eq!(page.next_marker(0), Some(2));
        // A page that does not move the marker forward ends the listing.
        assert_eq!(page.next_marker(2), None);
        let last = SizesPage::parse(
            "<ListPartsResult><IsTruncated>false</IsTruncated>\
             <Part><PartNumber>4</PartNumber><Size>1</Size></Part></ListPartsResult>",
        );
        assert!(!last.truncated);
        assert_eq!(last.next_marker(0), None);
        let empty = SizesPage::parse("<ListPartsResult><IsTruncated>true</IsTruncated>");
        assert_eq!(empty.next_marker(0), None);
    }

    #[test]
    fn plain_sizes_come_from_the_stored_sizes() {
        let seg = SegmentSize::DEFAULT;
        let full = seg.bytes();
        // Each salted part is its salt and its segments.
        let stored = |plain| 16 + stored_len(plain, seg);
        let sizes = |stored_sizes: &[(u32, u64)], salted| {
            plain_sizes(&parts(&[1, 2]), stored_sizes, seg, salted)
        };
        assert_eq!(
            sizes(&[(2, stored(5)), (1, stored(full))], true).unwrap(),
            vec![full, 5]
        );
        // The last part may be empty; no other may.
        assert_eq!(
            sizes(&[(1, stored(7)), (2, stored(0))], true).unwrap(),
            vec![7, 0]
        );
        let code = |stored_sizes: &[(u32, u64)]| sizes(stored_sizes, true).unwrap_err().code;
        assert_eq!(code(&[(1, stored(0)), (2, stored(7))]), "EntityTooSmall");
        assert_eq!(code(&[(1, stored(7))]), "InvalidPart");
        assert_eq!(code(&[(1, 1), (2, stored(7))]), "InvalidPart");
        // Too short for a salt and a segment.
        assert_eq!(code(&[(1, 47), (2, stored(7))]), "InvalidPart");
        let unsalted = |plain| stored_len(plain, seg);
        assert_eq!(
            sizes(&[(1, unsalted(full)), (2, unsalted(3))], false).unwrap(),
            vec![full, 3]
        );
    }

    #[test]
    fn the_object_checksum_must_match_the_clients_claim() {
        let declared = Some(Declared {
            algorithm: ChecksumAlgorithm::Crc32,
            full_object: false,
        });
        let digests = [checksum(ChecksumAlgorithm::Crc32, b"part")];
        let sizes = [4];
        let check = |claim| checked_object_checksum(declared, Some(&digests[..]), &sizes, claim);
        let c = check(None).unwrap().unwrap();
        let value = c.value();
        assert_eq!(check(Some(&value)).unwrap(), Some(c));
        let padded = format!(" {} ", c.digest.to_base64());
        assert_eq!(check(Some(&padded)).unwrap(), Some(c));
        assert_eq!(check(Some("AAAAAA==")).unwrap_err().code, "BadDigest");
        // No declared checksum, or no digests: no object checksum, whatever is claimed.
        assert_eq!(
            checked_object_checksum(None, Some(&digests[..]), &sizes, Some("x")).unwrap(),
            None
        );
        assert_eq!(
            checked_object_checksum(declared, None, &sizes, Some("x")).unwrap(),
            None
        );
    }

    #[test]
    fn a_layout_record_must_fit_its_metadata_value() {
        let fits = LAYOUT_VALUE_LEN_MAX / 4 * 3;
        assert!(check_record_len(fits).is_ok());
        assert_eq!(check_record_len(fits + 1).unwrap_err().code, "InvalidPart");
    }

    #[test]
    fn the_rewrite_follows_what_was_sealed() {
        let mut with_record = Sealed {
            metadata: vec![("m".into(), b"v".to_vec())],
            record: Some(b"r".to_vec()),
        };
        assert_eq!(
            Rewrite::of(&mut with_record),
            Rewrite::Layout(b"r".to_vec())
        );
        assert_eq!(with_record.record, None);
        assert_eq!(with_record.metadata.len(), 1);
        let mut checksum_only = Sealed {
            metadata: vec![("m".into(), b"v".to_vec())],
            record: None,
        };
        assert_eq!(Rewrite::of(&mut checksum_only), Rewrite::KeepingParts);
        assert_eq!(Rewrite::of(&mut Sealed::default()), Rewrite::Nothing);
    }
}
