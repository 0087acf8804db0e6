//! GetObjectAttributes.

use super::get::{passthrough_read, unencrypted_check};
use super::put::object_address;
use super::read::reveal_checksum;
use crate::envelope::ObjectName;
use crate::envelope::checksum_record::StoredChecksum;
use crate::envelope::layout::{Layout, SegmentSize, plain_len};
use crate::envelope::record;
use crate::http::ResponseHead;
use crate::s3::S3Error;
use crate::s3::headers::ATTRIBUTES_ANSWERED;
use crate::serve::io::Conn;
use crate::serve::respond::forward_error;
use crate::serve::{Failure, Outcome, Request, backend_path, backend_query, write_response};

/// Query parameters of GetObjectAttributes that are not passed on to the backend's HEAD.
const ATTRIBUTES_QUERY: &[&str] = &["attributes", "max-parts", "part-number-marker"];

/// GetObjectAttributes, answered from the backend's HEAD of the object (so it works on
/// backends without the operation): plaintext size, ETag, storage class, the client's
/// checksum, and the part count of multipart objects.
pub(crate) async fn attributes(ctx: &Request<'_>, conn: &mut Conn) -> Result<Outcome, Failure> {
    let (bucket, key) = object_address(ctx, "a bucket and a key are needed")?;
    let wanted = wanted_attributes(ctx.head.headers_all("x-amz-object-attributes"))
        .map_err(Failure::keep)?;
    let path = backend_path(Some(bucket), Some(key));
    let query = backend_query(ctx.query, ATTRIBUTES_QUERY);
    let (resp, body) = ctx
        .core
        .backend
        .simple("HEAD", &path, query.as_deref(), Vec::new(), Vec::new())
        .await?;
    if resp.status != 200 {
        return forward_error(conn, &resp, &body, ctx.rid).await;
    }
    let wants_checksum = wanted.iter().any(|w| w.eq_ignore_ascii_case("Checksum"));
    let (resp, sizes, checksum) =
        open_object(ctx, ObjectName { bucket, key }, resp, wants_checksum).await?;
    let etag = resp
        .header_str("etag")
        .unwrap_or("")
        .trim_matches('"')
        .to_owned();
    let found = Found {
        etag: &etag,
        checksum,
        parts: parts_count(sizes.layout_parts, &etag),
        storage_class: resp.header_str("x-amz-storage-class").unwrap_or("STANDARD"),
        size: sizes.size,
    };
    let xml = attributes_xml(&wanted, &found);
    let mut out = ResponseHead::new(200);
    for name in ATTRIBUTES_ANSWERED {
        if let Some(v) = resp.header(name) {
            out.push_header(name, v.to_vec());
        }
    }
    out.push_header("content-type", b"application/xml".to_vec());
    out.push_header("x-amz-request-id", ctx.rid.as_bytes().to_vec());
    out.push_header("content-length", xml.len().to_string().into_bytes());
    write_response(conn, &out, xml.as_bytes())
        .await
        .map_err(|_| Failure::close(S3Error::internal_error()))?;
    Ok(Outcome::KeepAlive)
}

/// The attribute names the client asked for, from every `x-amz-object-attributes` header
/// (each a comma-separated list). At least one is required.
fn wanted_attributes<'a>(values: impl Iterator<Item = &'a [u8]>) -> Result<Vec<String>, S3Error> {
    let wanted: Vec<String> = values
        .flat_map(|v| {
            String::from_utf8_lossy(v)
                .split(',')
                .map(|s| s.trim().to_owned())
                .collect::<Vec<_>>()
        })
        .filter(|s| !s.is_empty())
        .collect();
    if wanted.is_empty() {
        return Err(S3Error::invalid_argument(
            "x-amz-object-attributes must name at least one attribute",
        ));
    }
    Ok(wanted)
}

/// The plaintext sizes of an object, from its envelope header and layout record.
struct Sizes {
    /// The object's plaintext size.
    size: u64,
    /// The number of parts its layout record lists, for an object that has one.
    layout_parts: Option<usize>,
}

/// Opens the object's envelope header from its HEAD (refusing or logging an object not
/// written through Twofold), reveals the client's checksum when `wants_checksum`, and
/// works out its plaintext size. Returns the HEAD, the sizes and the checksum.
async fn open_object(
    ctx: &Request<'_>,
    name: ObjectName<'_>,
    resp: ResponseHead,
    wants_checksum: bool,
) -> Result<(ResponseHead, Sizes, Option<StoredChecksum>), Failure> {
    let stored = resp.content_length().ok().flatten().unwrap_or(0);
    let header = unencrypted_check(ctx, &resp)?;
    let Some(h) = header else {
        passthrough_read(ctx, "GetObjectAttributes");
        let sizes = Sizes {
            size: stored,
            layout_parts: None,
        };
        return Ok((resp, sizes, None));
    };
    let marked = record::required(&h, stored);
    // The keys only where a record must be opened: the checksum's, the layout's.
    let keys = match wants_checksum || marked {
        true => {
            let customer =
                crate::serve::respond::request_sse_c(ctx, crate::s3::sse_c::Role::Object)?;
            let customer = customer.as_ref().map(|c| &c.key);
            Some(ctx.core.keyring.open_with(&h, name, customer).await?)
        }
        false => None,
    };
    let checksum = match (&keys, wants_checksum) {
        (Some(keys), true) => reveal_checksum(ctx, &h, keys, &resp)?,
        _ => None,
    };
    let layout = match (&keys, marked) {
        (Some(keys), true) => Some(crate::serve::unaligned::layout_of(
            ctx, keys, &h, &resp, stored,
        )?),
        _ => None,
    };
    let size = sealed_size(h.segment_size, layout.as_ref(), stored)?;
    let layout_parts = layout.as_ref().map(|l| l.parts().len());
    Ok((resp, Sizes { size, layout_parts }, checksum))
}

/// The plaintext size of a sealed object: its layout record's when it has one, otherwise
/// the one its stored length gives.
fn sealed_size(seg: SegmentSize, layout: Option<&Layout>, stored: u64) -> Result<u64, Failure> {
    if let Some(layout) = layout {
        return Ok(layout.plain_len());
    }
    plain_len(stored, seg).map_err(|_| {
        Failure::keep(
            S3Error::internal_error()
                .with_detail("The stored object's length is not valid Twofold ciphertext"),
        )
    })
}

/// The part count of a multipart object: its layout record's, or the one its ETag's
/// `-N` suffix gives.
fn parts_count(layout_parts: Option<usize>, etag: &str) -> Option<u64> {
    if let Some(n) = layout_parts {
        return Some(n as u64);
    }
    let (_, parts) = etag.rsplit_once('-')?;
    parts.parse::<u32>().ok().map(u64::from)
}

/// What GetObjectAttributes can report of one object.
struct Found<'a> {
    /// The backend's ETag, unquoted.
    etag: &'a str,
    /// The client's checksum.
    checksum: Option<StoredChecksum>,
    /// The part count of a multipart object.
    parts: Option<u64>,
    /// The storage class.
    storage_class: &'a str,
    /// The plaintext size.
    size: u64,
}

/// The GetObjectAttributes result document: each attribute in `wanted` that is known.
fn attributes_xml(wanted: &[String], found: &Found<'_>) -> String {
    use crate::s3::xml::escape;
    let has = |name: &str| wanted.iter().any(|w| w.eq_ignore_ascii_case(name));
    let mut xml = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<GetObjectAttributesResponse xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">",
    );
    if has("ETag") {
        let client = crate::s3::etag::to_client(found.etag);
        xml.push_str(&format!("<ETag>{}</ETag>", escape(&client)));
    }
    if has("Checksum")
        && let Some(c) = found.checksum
    {
        let tag = c.algorithm.xml_name();
        xml.push_str(&format!(
            "<Checksum><{tag}>{}</{tag}><ChecksumType>{}</ChecksumType></Checksum>",
            escape(&c.value()),
            c.type_name()
        ));
    }
    if has("ObjectParts")
        && let Some(n) = found.parts
    {
        xml.push_str(&format!(
            "<ObjectParts><PartsCount>{n}</PartsCount></ObjectParts>"
        ));
    }
    if has("StorageClass") {
        let class = escape(found.storage_class);
        xml.push_str(&format!("<StorageClass>{class}</StorageClass>"));
    }
    if has("ObjectSize") {
        xml.push_str(&format!("<ObjectSize>{}</ObjectSize>", found.size));
    }
    xml.push_str("</GetObjectAttributesResponse>");
    xml
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wanted_attributes_are_read_from_every_header_and_one_is_required() {
        let values: [&[u8]; 2] = [b"ETag, ObjectSize", b" ,Checksum"];
        let wanted = wanted_attributes(values.into_iter()).unwrap();
        assert_eq!(wanted, ["ETag", "ObjectSize", "Checksum"]);
        let empty: [&[u8]; 1] = [b" , "];
        assert!(wanted_attributes(empty.into_iter()).is_err());
        assert!(wanted_attributes(std::iter::empty()).is_err());
    }

    #[test]
    fn the_part_count_comes_from_the_layout_or_the_etag() {
        assert_eq!(parts_count(Some(3), "abc-7"), Some(3));
        assert_eq!(parts_count(None, "abc-7"), Some(7));
        assert_eq!(parts_count(None, "abc"), None);
        assert_eq!(parts_count(None, "abc-x"), None);
    }

    #[test]
    fn a_sealed_size_is_the_plaintext_size() {
        let seg = SegmentSize::DEFAULT;
        assert_eq!(sealed_size(seg, None, 47).unwrap(), 15);
        assert!(sealed_size(seg, None, 7).is_err());
    }

    #[test]
    fn only_wanted_and_known_attributes_are_reported() {
        let found = Found {
            etag: "abc-2",
            checksum: None,
            parts: Some(2),
            storage_class: "STANDARD",
            size: 15,
        };
        let wanted = ["objectsize".to_owned(), "ObjectParts".to_owned()];
        let xml = attributes_xml(&wanted, &found);
        assert!(xml.contains("<ObjectSize>15</ObjectSize>"), "{xml}");
        assert!(xml.contains("<PartsCount>2</PartsCount>"), "{xml}");
        assert!(!xml.contains("<ETag>"), "{xml}");
        assert!(!xml.contains("<StorageClass>"), "{xml}");
        let checksum = attributes_xml(&["Checksum".to_owned()], &found);
        assert!(!checksum.contains("<Checksum>"), "{checksum}");
        assert!(checksum.ends_with("</GetObjectAttributesResponse>"));
    }
}
