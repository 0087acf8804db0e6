//! The upload ids Twofold hands out: the backend's upload id and the upload's envelope
//! header, and the listings that show them.

use crate::envelope::header::Header;
use crate::envelope::objmeta;
use crate::s3::{S3Error, xml};
use crate::serve::part_checksum::Declared;
use base64::Engine;

/// Prefix of the upload ids Twofold hands out.
pub(super) const TOKEN_PREFIX: &str = "tf1.";
pub(super) const B64: base64::engine::GeneralPurpose =
    base64::engine::general_purpose::URL_SAFE_NO_PAD;

pub(super) fn token(backend_id: &str, header: &Header, declared: Option<Declared>) -> String {
    let mut t = format!(
        "{TOKEN_PREFIX}{}.{}",
        B64.encode(backend_id.as_bytes()),
        objmeta::encode(header)
    );
    if let Some(d) = declared {
        t.push('.');
        t.push_str(&d.encode());
    }
    t
}

/// What an upload id carries: the backend's upload id, and for Twofold ids the header
/// and the checksum the client declared.
pub(super) struct Upload {
    pub(super) backend_id: String,
    pub(super) header: Option<Header>,
    pub(super) declared: Option<Declared>,
}

/// The upload id ListMultipartUploads shows for the backend's upload `backend_id`: the
/// backend cannot give the upload's header back (S3 has no call that returns an upload's
/// metadata), so this form carries none. It lists and aborts the upload; UploadPart and
/// Complete need the id CreateMultipartUpload returned.
pub(super) fn listed_token(backend_id: &str) -> String {
    format!("{TOKEN_PREFIX}{}", B64.encode(backend_id.as_bytes()))
}

pub(super) fn parse_token(id: &str) -> Result<Upload, S3Error> {
    let Some(rest) = id.strip_prefix(TOKEN_PREFIX) else {
        return Ok(Upload {
            backend_id: id.to_owned(),
            header: None,
            declared: None,
        });
    };
    let bad = || S3Error::no_such_upload();
    let Some((backend, rest)) = rest.split_once('.') else {
        // A listed id (`listed_token`): the backend's id alone.
        let backend = B64.decode(rest).map_err(|_| bad())?;
        return Ok(Upload {
            backend_id: String::from_utf8(backend).map_err(|_| bad())?,
            header: None,
            declared: None,
        });
    };
    let (header, declared) = match rest.split_once('.') {
        Some((h, d)) => (h, Some(Declared::decode(d).ok_or_else(bad)?)),
        None => (rest, None),
    };
    let backend = String::from_utf8(B64.decode(backend).map_err(|_| bad())?).map_err(|_| bad())?;
    let header = objmeta::decode(header).map_err(|_| bad())?;
    if !header.multipart {
        return Err(bad());
    }
    Ok(Upload {
        backend_id: backend,
        header: Some(header),
        declared,
    })
}

pub(super) fn replace_upload_id(xml: &[u8], token: &str) -> Vec<u8> {
    replace_element(&String::from_utf8_lossy(xml), "UploadId", token).into_bytes()
}

/// A ListMultipartUploads result with every upload id (and upload-id marker) in the
/// form [`listed_token`] gives.
pub(super) fn listed_uploads(xml: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(xml);
    let mut out = String::with_capacity(text.len() + 256);
    let mut rest = text.as_ref();
    let tags = ["UploadId", "NextUploadIdMarker", "UploadIdMarker"];
    loop {
        let next = tags
            .iter()
            .filter_map(|t| rest.find(&format!("<{t}>")).map(|i| (i, *t)))
            .min();
        let Some((i, tag)) = next else { break };
        let from = i + tag.len() + 2;
        let close = format!("</{tag}>");
        let Some(len) = rest[from..].find(&close) else {
            break;
        };
        let raw = xml::unescape(&rest[from..from + len]);
        out.push_str(&rest[..from]);
        if !raw.is_empty() {
            out.push_str(&crate::s3::xml::escape(&listed_token(&raw)));
        }
        rest = &rest[from + len..];
    }
    out.push_str(rest);
    out.into_bytes()
}

/// `xml` with the text of its first `<tag>` element replaced by `value` (escaped).
pub(super) fn replace_element(xml: &str, tag: &str, value: &str) -> String {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    match (xml.find(&open), xml.find(&close)) {
        (Some(a), Some(b)) if a < b => format!(
            "{}{}{}",
            &xml[..a + open.len()],
            crate::s3::xml::escape(value),
            &xml[b..]
        ),
        _ => xml.to_owned(),
    }
}

#[cfg(test)]
mod upload_id_tests {
    use super::{listed_uploads, parse_token, replace_element};
    use crate::s3::xml;

    #[test]
    fn listed_upload_ids_come_back_as_the_backends_and_carry_no_header() {
        let xml = b"<ListMultipartUploadsResult><UploadIdMarker></UploadIdMarker>\
            <NextUploadIdMarker>2~b</NextUploadIdMarker><Upload><Key>k</Key>\
            <UploadId>2~a&amp;b</UploadId></Upload></ListMultipartUploadsResult>";
        let out = String::from_utf8(listed_uploads(xml)).unwrap();
        let ids = xml::elements(&out, "UploadId").0;
        assert_eq!(ids.len(), 1);
        let u = parse_token(&xml::unescape(ids[0])).unwrap();
        assert_eq!((u.backend_id.as_str(), u.header.is_none()), ("2~a&b", true));
        let next = xml::value(&out, "NextUploadIdMarker").unwrap();
        assert_eq!(parse_token(next).unwrap().backend_id, "2~b");
        assert!(out.contains("<UploadIdMarker></UploadIdMarker>"));
    }

    #[test]
    fn an_empty_complete_etag_is_found_and_replaced() {
        let xml = "<R><Bucket>b</Bucket><ETag></ETag></R>";
        assert_eq!(
            replace_element(xml, "ETag", "\"abc-2\""),
            "<R><Bucket>b</Bucket><ETag>&quot;abc-2&quot;</ETag></R>"
        );
        assert_eq!(replace_element("<R/>", "ETag", "x"), "<R/>");
    }
}
