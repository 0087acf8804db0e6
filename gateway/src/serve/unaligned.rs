//! Multipart objects and their layout records (`docs/format.md`, *Layout record*;
//! `docs/gateway.md`, *The rewrite at Complete*): the server-side rewrite at
//! CompleteMultipartUpload that adds the record (and, for unaligned parts, the marker
//! padding); the opening and checking of the record for reads (which the read plans then
//! follow); and the sizes of multipart objects in listings.

use super::{Failure, Request, encode};
use crate::envelope::header::Header;
use crate::envelope::layout::{Layout, plain_len};
use crate::envelope::record;
use crate::envelope::{DataKeys, ObjectName};
use crate::http::ResponseHead;
use crate::s3::headers::DESCRIBING;
use crate::s3::{S3Error, xml};
use base64::Engine;

/// User metadata that holds the sealed layout record, base64url without padding.
pub const LAYOUT_HTTP_HEADER: &str = "x-amz-meta-twofold-layout";
/// Metadata of a multipart object bound to a customer-provided key (SSE-C): its plaintext
/// size in the clear, for listings, which cannot open its layout record without the
/// client's key. Not authenticated: reads go by the sealed layout record.
pub const SIZE_HINT_HTTP_HEADER: &str = "x-amz-meta-twofold-size";
use crate::s3::part_copy::COPY_PART_BYTES_MAX;
/// S3's smallest part but the last: an object stored in fewer bytes cannot be copied as a
/// part followed by its padding part, so its rewrite uploads its stored bytes and the
/// padding as one part instead (at most this much ciphertext passes through the gateway).
const PART_BYTES_MIN: u64 = 5 * 1024 * 1024;
/// Most server-side part copies of one rewrite in flight at once (each holds a backend
/// connection; S3 copies parts of one upload in parallel).
const REWRITE_COPIES_IN_FLIGHT: usize = 8;
/// Most backend HEADs of one listing page in flight at once (each holds a backend
/// connection).
const LISTING_HEADS_IN_FLIGHT: usize = 8;
/// Most sizes of marked objects remembered per core for listings.
const LISTED_SIZE_CACHE_ENTRIES: usize = 4096;
/// Longest accepted layout metadata value, in characters.
pub(crate) const LAYOUT_VALUE_LEN_MAX: usize = 1024;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

fn integrity(msg: impl std::fmt::Display) -> Failure {
    Failure::keep(S3Error::internal(msg))
}

/// The layout of a multipart object that must have a layout record
/// ([`record::required`]: every one of format version 2, the marked ones of version 1),
/// from that record, authenticated under the object's keys and checked against the stored
/// length. Any failure is an integrity error (counted and logged): the object is not
/// served.
pub(crate) fn layout_of(
    ctx: &Request<'_>,
    keys: &DataKeys,
    header: &Header,
    resp: &ResponseHead,
    stored: u64,
) -> Result<Layout, Failure> {
    let opened = match resp.header_str(LAYOUT_HTTP_HEADER) {
        None => Err("the object has no layout record, and must have one".to_owned()),
        Some(v) if v.len() > LAYOUT_VALUE_LEN_MAX => {
            Err("the object's layout record is too long".to_owned())
        }
        Some(v) => match B64.decode(v.trim()) {
            Ok(sealed) => record::open(header, keys, &sealed, stored).map_err(|e| e.to_string()),
            Err(_) => Err("the object's layout record is not base64url".to_owned()),
        },
    };
    opened.map_err(|e| {
        super::error::report_integrity_failure(ctx, "layout_record", &e);
        integrity(format!("The stored object failed its integrity check: {e}"))
    })
}

/// Plaintext sizes of the objects of a listing whose size its stored length does not give
/// (marked objects, and every multipart object, which must be checked against its layout
/// record), by the byte offset of their `<Size>` digits in `xml`: one backend HEAD per
/// such object not in the per-core cache, at most [`LISTING_HEADS_IN_FLIGHT`] at once.
pub(crate) async fn listed_sizes(
    ctx: &Request<'_>,
    xml: &[u8],
) -> Result<std::collections::HashMap<usize, u64>, Failure> {
    let mut out = std::collections::HashMap::new();
    let Some(bucket) = ctx.address.bucket.as_deref() else {
        return Ok(out);
    };
    let mut unknown = Vec::new();
    for (entry, cache_key) in listed_entries(ctx, bucket, xml) {
        match ctx.core.layout_sizes.borrow().get(&cache_key) {
            Some(size) => {
                out.insert(entry.digits_at, *size);
            }
            None => unknown.push((entry, cache_key)),
        }
    }
    let heads = unknown
        .iter()
        .map(|(e, _)| head_size(ctx, bucket, &e.key, e.version.as_deref()))
        .collect();
    let sizes = super::backend::in_flight(heads, LISTING_HEADS_IN_FLIGHT).await;
    for ((entry, cache_key), size) in unknown.into_iter().zip(sizes) {
        let Some(size) = size? else {
            continue;
        };
        let mut cache = ctx.core.layout_sizes.borrow_mut();
        if cache.len() >= LISTED_SIZE_CACHE_ENTRIES {
            cache.clear();
        }
        cache.insert(cache_key, size);
        out.insert(entry.digits_at, size);
    }
    Ok(out)
}

/// The objects of a listing whose size needs their record (marked, or listed as
/// multipart), each with the key its size is remembered under per core: (bucket, key and
/// version, ETag).
fn listed_entries(
    ctx: &Request<'_>,
    bucket: &str,
    xml: &[u8],
) -> Vec<(ListedEntry, (String, String, String))> {
    let seg = ctx.core.keyring.settings().segment_size;
    let url_keys = ctx.query.get("encoding-type") == Some("url");
    let text = String::from_utf8_lossy(xml);
    let mut found = Vec::new();
    for tag in ["Contents", "Version"] {
        let open = format!("<{tag}>");
        let close = format!("</{tag}>");
        let mut at = 0usize;
        while let Some(a) = text[at..].find(&open) {
            let start = at + a;
            let Some(b) = text[start..].find(&close) else {
                break;
            };
            at = start + b;
            let Some(entry) = ListedEntry::parse(&text[start..at], start, url_keys) else {
                continue;
            };
            if !record::is_marked(entry.stored, seg) && !entry.etag.contains('-') {
                continue;
            }
            let version = entry.version.as_deref().unwrap_or("");
            let cache_key = (
                bucket.to_owned(),
                format!("{}\u{0}{version}", entry.key),
                entry.etag.clone(),
            );
            found.push((entry, cache_key));
        }
    }
    found
}

/// One object of a listing, as far as its size needs.
struct ListedEntry {
    /// Byte offset of its `<Size>` digits in the whole listing.
    digits_at: usize,
    stored: u64,
    key: String,
    etag: String,
    version: Option<String>,
}

impl ListedEntry {
    /// The entry whose XML is `entry`, which starts at byte `start` of the listing; keys
    /// are percent-decoded where the listing is URL-encoded (`url_keys`).
    fn parse(entry: &str, start: usize, url_keys: bool) -> Option<Self> {
        let size_at = entry.find("<Size>")? + "<Size>".len();
        let stored = entry[size_at..]
            .split('<')
            .next()
            .and_then(|d| d.trim().parse::<u64>().ok())?;
        let key = xml::value(entry, "Key").map(|k| {
            let k = xml::unescape(k);
            if url_keys { percent_decode(&k) } else { k }
        })?;
        Some(ListedEntry {
            digits_at: start + size_at,
            stored,
            key,
            etag: xml::value(entry, "ETag")
                .map(xml::unescape)
                .unwrap_or_default(),
            version: xml::value(entry, "VersionId")
                .map(xml::unescape)
                .filter(|v| v != "null"),
        })
    }
}

/// The plaintext size of a multipart object from a backend HEAD, checked against its
/// layout record where it must have one. An object whose record is missing or does not
/// match (an integrity failure, counted) is listed with its stored length, never with a
/// size computed from what is left of it; `None` when the object is not a Twofold
/// multipart object or its keys do not open now (the listing then keeps the size it
/// computes from the stored length).
async fn head_size(
    ctx: &Request<'_>,
    bucket: &str,
    key: &str,
    version: Option<&str>,
) -> Result<Option<u64>, Failure> {
    let path = super::backend_path(Some(bucket), Some(key));
    let query = version.map(|v| format!("versionId={}", encode(v, false)));
    let (resp, _) = ctx
        .core
        .backend
        .simple("HEAD", &path, query.as_deref(), Vec::new(), Vec::new())
        .await?;
    if resp.status != 200 {
        return Ok(None);
    }
    let stored = resp.content_length().ok().flatten().unwrap_or(0);
    let Some(header) = resp
        .header_str(crate::envelope::objmeta::HTTP_HEADER)
        .and_then(|v| crate::envelope::objmeta::decode(v).ok())
    else {
        return Ok(None);
    };
    if header.customer_key() {
        // Bound to the client's key: the layout record stays closed to listings.
        return Ok(resp
            .header_str(SIZE_HINT_HTTP_HEADER)
            .and_then(|v| v.trim().parse().ok())
            .or_else(|| plain_len(stored, header.segment_size).ok()));
    }
    if !record::required(&header, stored) {
        // A multipart object of format version 1 without a record: its stored length
        // gives its size (remembered, so that the next listing needs no HEAD).
        return Ok(plain_len(stored, header.segment_size).ok());
    }
    let Ok(keys) = ctx
        .core
        .keyring
        .open(&header, ObjectName { bucket, key })
        .await
    else {
        // No keys now (a custodian away): the listing keeps the stored size.
        return Ok(None);
    };
    Ok(Some(
        layout_of(ctx, &keys, &header, &resp, stored).map_or(stored, |l| l.plain_len()),
    ))
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && bytes[i + 1].is_ascii_hexdigit()
            && bytes[i + 2].is_ascii_hexdigit()
        {
            let hex = |b: u8| (b as char).to_digit(16).unwrap_or(0) as u8;
            out.push(hex(bytes[i + 1]) * 16 + hex(bytes[i + 2]));
            i += 3;
        } else if bytes[i] == b'+' {
            out.push(b' ');
            i += 1;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Byte ranges (inclusive) of the backend UploadPartCopy calls that copy an object of
/// `stored` bytes: as few as possible, each at most 5 GiB.
pub(crate) fn copy_ranges(stored: u64) -> Vec<(u64, u64)> {
    crate::s3::part_copy::copy_ranges(stored, COPY_PART_BYTES_MAX)
}

/// The size-hint metadata entry ([`SIZE_HINT_HTTP_HEADER`]) of an object laid out as
/// `layout`.
pub(crate) fn size_hint(layout: &Layout) -> (String, Vec<u8>) {
    (
        SIZE_HINT_HTTP_HEADER.into(),
        layout.plain_len().to_string().into_bytes(),
    )
}

/// CompleteMultipartUpload of an upload whose object needs a layout record (every upload
/// of format version 2, the unaligned ones of version 1), after the backend completed it
/// as the client asked: rewrites the object onto itself with a backend multipart copy
/// whose metadata adds the sealed layout record (and `metadata`: the sealed checksum).
/// An unaligned object is copied in ranges of at most 5 GiB with the marker padding as
/// the last part; an aligned one part by part, so that it keeps its part count. On any
/// failure the copy is aborted and the completed object, which has no record, deleted;
/// the client gets an error. Returns the final Complete response.
pub(crate) async fn rewrite(
    ctx: &Request<'_>,
    name: ObjectName<'_>,
    path: &str,
    sealed_record: &[u8],
    layout: &Layout,
    mut metadata: Vec<(String, Vec<u8>)>,
) -> Result<(ResponseHead, Vec<u8>), Failure> {
    metadata.push((
        LAYOUT_HTTP_HEADER.into(),
        B64.encode(sealed_record).into_bytes(),
    ));
    let keep_parts = !record::padded(layout);
    let result = rewrite_steps(ctx, path, layout, metadata, keep_parts).await;
    if result.is_err() {
        tracing::error!(
            resource = %format_args!("/{}/{}", name.bucket, name.key),
            "the layout rewrite at Complete failed; the completed object, without its record, is removed"
        );
        let _ = ctx
            .core
            .backend
            .simple("DELETE", path, None, Vec::new(), Vec::new())
            .await;
    }
    result
}

/// CompleteMultipartUpload of an aligned upload of format version 1 whose object needs
/// metadata it could not have at CreateMultipartUpload (its checksum): the same rewrite
/// with `metadata` added, copying each part as it is, so that the object keeps its part
/// count (the `-N` of its ETag, which readers of aligned objects use) and stays unmarked.
/// A failure aborts the copy and leaves the completed object as it is, without the
/// metadata.
pub(crate) async fn rewrite_keeping_parts(
    ctx: &Request<'_>,
    path: &str,
    layout: &Layout,
    metadata: Vec<(String, Vec<u8>)>,
) -> Result<(ResponseHead, Vec<u8>), Failure> {
    rewrite_steps(ctx, path, layout, metadata, true).await
}

/// The rewrite: HEAD, a new upload with the object's metadata plus `metadata`, the copy
/// parts (each of `parts` as it is when `keep_parts`, else ranges of at most 5 GiB and
/// the marker padding), Complete.
async fn rewrite_steps(
    ctx: &Request<'_>,
    path: &str,
    layout: &Layout,
    metadata: Vec<(String, Vec<u8>)>,
    keep_parts: bool,
) -> Result<(ResponseHead, Vec<u8>), Failure> {
    let backend = &ctx.core.backend;
    let (src, _) = backend
        .simple("HEAD", path, None, Vec::new(), Vec::new())
        .await?;
    let parts_stored = layout.stored_len();
    let stored = src.content_length().ok().flatten().unwrap_or(0);
    if src.status != 200 || stored != parts_stored {
        return Err(Failure::keep(S3Error::internal_error().with_detail(
            "The completed object changed before its layout could be recorded",
        )));
    }
    let etag = src.header("etag").map(<[u8]>::to_vec).unwrap_or_default();
    let headers = rewrite_headers(ctx, path, &src, metadata, keep_parts).await?;
    let upload = create_rewrite(ctx, path, headers).await?;
    let upload_q = format!("uploadId={}", encode(&upload, false));
    let (ranges, pad) = rewrite_ranges(layout, stored, keep_parts);
    let done = match copy_parts(ctx, path, &upload_q, &etag, ranges, pad).await {
        Ok(etags) => complete_rewrite(ctx, path, &upload_q, &etags).await,
        Err(e) => Err(e),
    };
    if done.is_err() {
        let _ = backend
            .simple("DELETE", path, Some(&upload_q), Vec::new(), Vec::new())
            .await;
    }
    done
}

/// The headers of the rewrite's upload: the object's metadata (from its HEAD `src`), plus
/// `metadata`, plus its tags, which the copy would not keep (S3's copy takes its tags from
/// its Create). An aligned object (`keep_parts`) is left as it is if they cannot be read;
/// an unaligned one must be rewritten, and goes on without them.
async fn rewrite_headers(
    ctx: &Request<'_>,
    path: &str,
    src: &ResponseHead,
    metadata: Vec<(String, Vec<u8>)>,
    keep_parts: bool,
) -> Result<Vec<(String, Vec<u8>)>, Failure> {
    let mut headers: Vec<(String, Vec<u8>)> = Vec::new();
    for (n, v) in &src.headers {
        let replaced = metadata.iter().any(|(m, _)| m == n);
        if (n.starts_with("x-amz-meta-") && !replaced)
            || DESCRIBING.contains(&n.as_str())
            || n == "x-amz-storage-class"
        {
            headers.push((n.clone(), v.clone()));
        }
    }
    headers.extend(metadata);
    let tagged = src
        .header_str("x-amz-tagging-count")
        .and_then(|v| v.trim().parse::<u32>().ok())
        .is_some_and(|n| n > 0);
    if !tagged {
        return Ok(headers);
    }
    match object_tagging(ctx, path, None).await {
        Ok(tags) => headers.push(("x-amz-tagging".into(), tags.into_bytes())),
        Err(reason) if keep_parts => {
            return Err(Failure::keep(S3Error::bad_gateway().with_detail(format!(
                "The object's tags could not be read for the rewrite: {reason}"
            ))));
        }
        Err(reason) => tracing::warn!(
            path,
            reason = %reason,
            "the layout rewrite could not read the object's tags; the rewritten object has none"
        ),
    }
    Ok(headers)
}

/// Starts the rewrite's backend multipart upload; returns its upload id.
async fn create_rewrite(
    ctx: &Request<'_>,
    path: &str,
    headers: Vec<(String, Vec<u8>)>,
) -> Result<String, Failure> {
    let (resp, body) = ctx
        .core
        .backend
        .simple("POST", path, Some("uploads="), headers, Vec::new())
        .await?;
    let text = String::from_utf8_lossy(&body);
    match (resp.status, xml::value(&text, "UploadId")) {
        (200, Some(id)) => Ok(xml::unescape(id)),
        _ => Err(Failure::keep(S3Error::bad_gateway().with_detail(format!(
            "Storage backend refused the layout rewrite ({})",
            resp.status
        )))),
    }
}

/// The stored byte ranges (inclusive) the rewrite copies, and the marker padding it adds
/// as its last part: each part as it is (`keep_parts`, no padding), or ranges of at most
/// 5 GiB ([`copy_ranges`]) and the padding.
fn rewrite_ranges(
    layout: &Layout,
    stored: u64,
    keep_parts: bool,
) -> (Vec<(u64, u64)>, Option<u64>) {
    if !keep_parts {
        let pad = record::padding_len(stored, layout.segment_size());
        return (copy_ranges(stored), Some(pad));
    }
    let mut first = 0;
    let ranges = layout
        .parts()
        .iter()
        .map(|p| {
            let len = layout.part_stored_len(*p);
            let r = (first, first + len - 1);
            first += len;
            r
        })
        .collect();
    (ranges, None)
}

/// The CompleteMultipartUpload body for parts with these ETags, numbered from 1.
fn complete_xml(etags: &[String]) -> String {
    xml::complete_multipart_upload((1..).zip(etags))
}

/// Completes the rewrite's upload; an answer that is not a success (S3 may answer an
/// error document with 200) is the backend's refusal.
async fn complete_rewrite(
    ctx: &Request<'_>,
    path: &str,
    upload_q: &str,
    etags: &[String],
) -> Result<(ResponseHead, Vec<u8>), Failure> {
    let (resp, body) = ctx
        .core
        .backend
        .complete_multipart(path, upload_q, complete_xml(etags))
        .await?;
    if resp.status == 200 && !String::from_utf8_lossy(&body).contains("<Error>") {
        Ok((resp, body))
    } else {
        Err(Failure::keep(S3Error::bad_gateway().with_detail(
            "Storage backend refused to complete the layout rewrite",
        )))
    }
}

/// The tags of the object at `path` (of its version `version`, `versionId=...`, when
/// given): GetObjectTagging, as an `x-amz-tagging` header value.
pub(crate) async fn object_tagging(
    ctx: &Request<'_>,
    path: &str,
    version: Option<&str>,
) -> Result<String, String> {
    let query = match version {
        Some(v) => format!("tagging=&{v}"),
        None => "tagging=".to_owned(),
    };
    let (resp, body) = ctx
        .core
        .backend
        .simple("GET", path, Some(&query), Vec::new(), Vec::new())
        .await
        .map_err(|e| e.to_string())?;
    if resp.status != 200 {
        return Err(format!("the backend answered {}", resp.status));
    }
    Ok(tagging_header(&String::from_utf8_lossy(&body)))
}

/// A GetObjectTagging result's `<TagSet>` as an `x-amz-tagging` value (`k1=v1&k2=v2`,
/// each key and value percent-encoded).
fn tagging_header(xml: &str) -> String {
    let pairs: Vec<String> = xml::elements(xml, "Tag")
        .0
        .into_iter()
        .filter_map(|tag| {
            let k = xml::value(tag, "Key")?;
            let v = xml::value(tag, "Value").unwrap_or("");
            Some(format!(
                "{}={}",
                encode(&xml::unescape(k), false),
                encode(&xml::unescape(v), false)
            ))
        })
        .collect();
    pairs.join("&")
}

/// The copy parts (`ranges` of the object, inclusive) and the padding part (`pad` random
/// bytes, if any) of the rewrite; their ETags in part order.
async fn copy_parts(
    ctx: &Request<'_>,
    path: &str,
    upload_q: &str,
    etag: &[u8],
    ranges: Vec<(u64, u64)>,
    pad: Option<u64>,
) -> Result<Vec<String>, Failure> {
    let backend = &ctx.core.backend;
    if let (Some(pad_len), [(0, last)]) = (pad, ranges.as_slice())
        && last + 1 < PART_BYTES_MIN
    {
        return small_rewrite(ctx, (path, upload_q), etag, last + 1, pad_len).await;
    }
    let copies: Vec<_> = ranges
        .into_iter()
        .enumerate()
        .map(|(i, (first, last))| async move {
            let q = format!("partNumber={}&{upload_q}", i + 1);
            let mut headers = vec![
                ("x-amz-copy-source".to_owned(), path.as_bytes().to_vec()),
                (
                    "x-amz-copy-source-range".to_owned(),
                    format!("bytes={first}-{last}").into_bytes(),
                ),
            ];
            if !etag.is_empty() {
                headers.push(("x-amz-copy-source-if-match".into(), etag.to_vec()));
            }
            let (resp, body) = backend
                .simple("PUT", path, Some(&q), headers, Vec::new())
                .await?;
            let text = String::from_utf8_lossy(&body);
            match (resp.status, xml::value(&text, "ETag")) {
                (200, Some(e)) => Ok(xml::unescape(e)),
                _ => Err(refused("part copy", resp.status)),
            }
        })
        .collect();
    let mut etags = Vec::new();
    for copied in super::backend::in_flight(copies, REWRITE_COPIES_IN_FLIGHT).await {
        etags.push(copied?);
    }
    let Some(pad_len) = pad else {
        return Ok(etags);
    };
    let mut pad = Vec::new();
    push_padding(&mut pad, pad_len)?;
    let q = format!("partNumber={}&{upload_q}", etags.len() + 1);
    let (resp, _) = backend
        .simple("PUT", path, Some(&q), Vec::new(), pad)
        .await?;
    match (resp.status, resp.header_str("etag")) {
        (200, Some(e)) => etags.push(e.to_owned()),
        _ => return Err(refused("padding part", resp.status)),
    }
    Ok(etags)
}

/// The backend's refusal of a step of the rewrite.
fn refused(what: &str, status: u16) -> Failure {
    Failure::keep(S3Error::bad_gateway().with_detail(format!(
        "Storage backend refused the layout rewrite's {what} ({status})"
    )))
}

/// Appends `len` bytes of padding: random bytes, so that it repeats nothing a client wrote.
fn push_padding(out: &mut Vec<u8>, len: u64) -> Result<(), Failure> {
    let start = out.len();
    out.resize(start + len as usize, 0);
    for chunk in out[start..].chunks_mut(32) {
        let r: [u8; 32] = crate::envelope::random_bytes(crate::envelope::aead::Layer::Outer)
            .map_err(|_| Failure::keep(S3Error::internal_error()))?;
        chunk.copy_from_slice(&r[..chunk.len()]);
    }
    Ok(())
}

/// The rewrite of an object stored in fewer than [`PART_BYTES_MIN`] bytes: its stored
/// bytes (`stored` of them, still the object of `etag`) and `pad_len` bytes of padding,
/// uploaded as the one part of the upload `upload_q`; its ETag.
async fn small_rewrite(
    ctx: &Request<'_>,
    (path, upload_q): (&str, &str),
    etag: &[u8],
    stored: u64,
    pad_len: u64,
) -> Result<Vec<String>, Failure> {
    let backend = &ctx.core.backend;
    let mut headers = vec![(
        "range".to_owned(),
        format!("bytes=0-{}", stored - 1).into_bytes(),
    )];
    if !etag.is_empty() {
        headers.push(("if-match".into(), etag.to_vec()));
    }
    let (resp, mut body) = backend
        .simple("GET", path, None, headers, Vec::new())
        .await?;
    if !matches!(resp.status, 200 | 206) || body.len() as u64 != stored {
        return Err(refused("read of the completed object", resp.status));
    }
    push_padding(&mut body, pad_len)?;
    let q = format!("partNumber=1&{upload_q}");
    let (resp, _) = backend
        .simple("PUT", path, Some(&q), Vec::new(), body)
        .await?;
    match (resp.status, resp.header_str("etag")) {
        (200, Some(e)) => Ok(vec![e.to_owned()]),
        _ => Err(refused("part", resp.status)),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::envelope::layout::{SegmentSize, stored_len};

    #[test]
    fn tags_become_an_x_amz_tagging_value() {
        let xml = "<?xml version=\"1.0\"?><Tagging><TagSet>\
            <Tag><Key>project</Key><Value>blue sky</Value></Tag>\
            <Tag><Key>a&amp;b</Key><Value>c=d/e</Value></Tag>\
            <Tag><Key>empty</Key><Value></Value></Tag></TagSet></Tagging>";
        assert_eq!(
            tagging_header(xml),
            "project=blue%20sky&a%26b=c%3Dd%2Fe&empty="
        );
        assert_eq!(tagging_header("<Tagging><TagSet></TagSet></Tagging>"), "");
    }

    #[test]
    fn rewrite_ranges_keep_parts_or_cut_and_pad() {
        let seg = SegmentSize::from_log2(12).unwrap();
        let parts = [seg.bytes(), 5, 0];
        let layout = Layout::multipart(parts.to_vec(), seg).with_salts(true);
        let lens: Vec<u64> = parts.iter().map(|p| 16 + stored_len(*p, seg)).collect();
        let stored: u64 = lens.iter().sum();
        let (ranges, pad) = rewrite_ranges(&layout, stored, true);
        assert_eq!(pad, None);
        assert_eq!(
            ranges,
            vec![
                (0, lens[0] - 1),
                (lens[0], lens[0] + lens[1] - 1),
                (lens[0] + lens[1], stored - 1)
            ]
        );
        let (ranges, pad) = rewrite_ranges(&layout, stored, false);
        assert_eq!(ranges, vec![(0, stored - 1)]);
        assert_eq!(pad, Some(record::padding_len(stored, seg)));
    }

    #[test]
    fn complete_xml_numbers_the_parts_and_escapes_etags() {
        assert_eq!(
            complete_xml(&["\"a\"".into(), "b&c".into()]),
            "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>&quot;a&quot;</ETag></Part>\
             <Part><PartNumber>2</PartNumber><ETag>b&amp;c</ETag></Part></CompleteMultipartUpload>"
        );
    }
}
