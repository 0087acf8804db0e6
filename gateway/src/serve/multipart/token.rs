//! The upload ids Twofold hands out: the backend's upload id and the upload's envelope
//! header, authenticated under the gateways' upload-id key, and the listings that show
//! them.

use crate::envelope::header::{FORMAT_VERSION, Header};
use crate::envelope::objmeta;
use crate::keys::UploadIdKey;
use crate::s3::{S3Error, xml};
use crate::serve::part_checksum::Declared;
use crate::serve::{Failure, Request};
use aws_lc_rs::{constant_time, hmac};
use base64::Engine;

/// Prefix of the upload ids Twofold hands out.
pub(super) const TOKEN_PREFIX: &str = "tf3.";
/// Prefix of the upload ids of uploads whose parts carry no salts: still listed and
/// aborted, no longer written to or completed.
const UNSALTED_TOKEN_PREFIX: &str = "tf2.";
pub(super) const B64: base64::engine::GeneralPurpose =
    base64::engine::general_purpose::URL_SAFE_NO_PAD;
/// Bytes of an upload id's MAC (HMAC-SHA256, truncated).
pub(super) const TOKEN_MAC_LEN_BYTES: usize = 16;
/// What an upload id's MAC is computed over, before the id's own text.
const TOKEN_MAC_CONTEXT: &[u8] = b"twofold/v1 upload id\0";

/// The MAC of an upload id whose text before the MAC is `signed`.
fn token_mac(key: &UploadIdKey, signed: &str) -> [u8; TOKEN_MAC_LEN_BYTES] {
    let key = hmac::Key::new(hmac::HMAC_SHA256, key.bytes());
    let mut ctx = hmac::Context::with_key(&key);
    ctx.update(TOKEN_MAC_CONTEXT);
    ctx.update(signed.as_bytes());
    let tag = ctx.sign();
    let mut out = [0u8; TOKEN_MAC_LEN_BYTES];
    out.copy_from_slice(&tag.as_ref()[..TOKEN_MAC_LEN_BYTES]);
    out
}

/// The upload id CreateMultipartUpload hands out:
/// `tf3.` ‖ base64url(backend id) ‖ `.` ‖ header ‖ `.` ‖ declared checksum (may be empty)
/// ‖ `.` ‖ base64url(MAC over all that precedes it). No field contains a `.`.
pub(super) fn token(
    key: &UploadIdKey,
    backend_id: &str,
    header: &Header,
    declared: Option<Declared>,
) -> String {
    let signed = format!(
        "{TOKEN_PREFIX}{}.{}.{}",
        B64.encode(backend_id.as_bytes()),
        objmeta::encode(header),
        declared.map(|d| d.encode()).unwrap_or_default()
    );
    let mac = B64.encode(token_mac(key, &signed));
    format!("{signed}.{mac}")
}

/// What an upload id carries: the backend's upload id, and for Twofold ids the header
/// and the checksum the client declared, with the MAC that vouches for them.
pub(super) struct Upload {
    pub(super) backend_id: String,
    pub(super) header: Option<Header>,
    pub(super) declared: Option<Declared>,
    /// The id's text before its MAC, and the MAC (ids with a header only).
    signed: Option<(String, Vec<u8>)>,
}

impl Upload {
    /// What checks this id ([`TokenProof::verify`]), taken out of it.
    pub(super) fn take_proof(&mut self) -> TokenProof {
        TokenProof {
            signed: self.signed.take(),
            has_header: self.header.is_some(),
        }
    }
}

/// The MAC of an upload id and what it covers.
pub(super) struct TokenProof {
    signed: Option<(String, Vec<u8>)>,
    has_header: bool,
}

impl TokenProof {
    /// Checks the MAC of an id with a header; an id without one carries no keys and
    /// passes. Constant time; any mismatch is `NoSuchUpload` (the id is not one the
    /// gateways issued), found before anything of the header is used.
    pub(super) fn verify(&self, key: &UploadIdKey) -> Result<(), S3Error> {
        match &self.signed {
            None if !self.has_header => Ok(()),
            None => Err(S3Error::no_such_upload()),
            Some((signed, mac)) => {
                constant_time::verify_slices_are_equal(&token_mac(key, signed), mac)
                    .map_err(|_| S3Error::no_such_upload())
            }
        }
    }
}

/// Parses an upload id and checks its MAC under the gateways' upload-id key (made from
/// both custodians the first time on a core: a custodian that is down is 503).
pub(super) async fn verified_upload(ctx: &Request<'_>, id: &str) -> Result<Upload, Failure> {
    let mut upload = parse_token(id)?;
    let proof = upload.take_proof();
    if proof.has_header {
        let key = ctx.core.keyring.upload_id_key().await?;
        proof.verify(&key)?;
    }
    Ok(upload)
}

/// The upload id ListMultipartUploads shows for the backend's upload `backend_id`: the
/// backend cannot give the upload's header back (S3 has no call that returns an upload's
/// metadata), so this form carries none. It lists and aborts the upload; UploadPart and
/// Complete need the id CreateMultipartUpload returned.
pub(super) fn listed_token(backend_id: &str) -> String {
    format!("{TOKEN_PREFIX}{}", B64.encode(backend_id.as_bytes()))
}

/// Reads an upload id: one [`token`] made (checked later, by [`Upload::verify`]), one
/// [`listed_token`] made, or any other string, taken as the backend's own id.
pub(super) fn parse_token(id: &str) -> Result<Upload, S3Error> {
    let bare = |backend_id: String| Upload {
        backend_id,
        header: None,
        declared: None,
        signed: None,
    };
    let bad = || S3Error::no_such_upload();
    let decode_id =
        |b: &str| String::from_utf8(B64.decode(b).map_err(|_| bad())?).map_err(|_| bad());
    if let Some(rest) = id.strip_prefix(UNSALTED_TOKEN_PREFIX) {
        // Its listed form still names the backend's upload, to list and abort it.
        return match rest.split_once('.') {
            None => Ok(bare(decode_id(rest)?)),
            Some(_) => Err(bad().with_message(
                "This upload's parts are sealed without salts, which Twofold no longer \
                 writes or completes: abort it and upload again",
            )),
        };
    }
    let Some(rest) = id.strip_prefix(TOKEN_PREFIX) else {
        return Ok(bare(id.to_owned()));
    };
    let fields: Vec<&str> = rest.split('.').collect();
    match fields.as_slice() {
        // A listed id: the backend's id alone.
        [backend] => Ok(bare(decode_id(backend)?)),
        [backend, header, declared, mac] => {
            let mac = B64.decode(mac).map_err(|_| bad())?;
            if mac.len() != TOKEN_MAC_LEN_BYTES {
                return Err(bad());
            }
            let declared = match *declared {
                "" => None,
                d => Some(Declared::decode(d).ok_or_else(bad)?),
            };
            let header = objmeta::decode(header).map_err(|_| bad())?;
            // Only format version 2 uploads, whose parts carry salts, are handed out.
            if !header.multipart || header.version() < FORMAT_VERSION {
                return Err(bad());
            }
            let signed = id[..id.len() - fields[3].len() - 1].to_owned();
            Ok(Upload {
                backend_id: decode_id(backend)?,
                header: Some(header),
                declared,
                signed: Some((signed, mac)),
            })
        }
        _ => Err(bad()),
    }
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
    use super::{listed_uploads, parse_token, replace_element, token};
    use crate::envelope::header::test_header;
    use crate::keys::UploadIdKey;
    use crate::s3::checksum::ChecksumAlgorithm;
    use crate::s3::xml;
    use crate::serve::part_checksum::Declared;

    fn key(seed: u8) -> UploadIdKey {
        UploadIdKey::from_shares(&[seed; 40], &[2; 40]).unwrap()
    }

    #[test]
    fn upload_ids_round_trip_and_verify_under_their_key_only() {
        let header = test_header(5);
        let declared = Declared::from_request(Some("CRC32"), Some("FULL_OBJECT"))
            .unwrap()
            .unwrap();
        for d in [None, Some(declared)] {
            let id = token(&key(1), "backend.id~2", &header, d);
            assert!(id.starts_with("tf3."), "{id}");
            let mut u = parse_token(&id).unwrap();
            assert_eq!(u.backend_id, "backend.id~2");
            assert_eq!(u.header.as_ref(), Some(&header));
            assert_eq!(u.declared.map(|d| d.algorithm), d.map(|d| d.algorithm));
            let proof = u.take_proof();
            proof.verify(&key(1)).unwrap();
            assert_eq!(proof.verify(&key(3)).unwrap_err().code, "NoSuchUpload");
        }
        assert_eq!(ChecksumAlgorithm::Crc32, declared.algorithm);
    }

    #[test]
    fn altered_upload_ids_are_refused() {
        let header = test_header(5);
        let id = token(&key(1), "one", &header, None);
        let fields: Vec<&str> = id.split('.').collect();
        let other = token(&key(1), "two", &header, None);
        let other_fields: Vec<&str> = other.split('.').collect();
        // Another upload's backend id under this one's header and MAC (the swap that
        // would reuse this upload's part keys for other bytes).
        let swapped = format!(
            "tf3.{}.{}.{}.{}",
            other_fields[1], fields[2], fields[3], fields[4]
        );
        // A declared checksum added, a MAC cut, a field dropped, a MAC of the right length
        // but wrong.
        let declared = format!("tf3.{}.{}.CRC32-F.{}", fields[1], fields[2], fields[4]);
        let cut = id[..id.len() - 2].to_owned();
        let dropped = format!("tf3.{}.{}.{}", fields[1], fields[2], fields[4]);
        let zero = format!("tf3.{}.{}..AAAAAAAAAAAAAAAAAAAAAA", fields[1], fields[2]);
        for bad in [swapped, declared, cut, dropped, zero] {
            match parse_token(&bad) {
                Err(e) => assert_eq!(e.code, "NoSuchUpload", "{bad}"),
                Ok(mut u) => assert_eq!(
                    u.take_proof().verify(&key(1)).unwrap_err().code,
                    "NoSuchUpload",
                    "{bad}"
                ),
            }
        }
        // The earlier unauthenticated form with a header is no Twofold id any more: taken
        // as a backend id, it carries no keys.
        let old = format!("tf1.{}.{}", fields[1], fields[2]);
        let u = parse_token(&old).unwrap();
        assert!(u.header.is_none() && u.backend_id == old);
        // An upload whose parts carry no salts is refused with the reason; its listed
        // form still names the backend's upload.
        let unsalted = format!("tf2.{}", &id[4..]);
        let Err(e) = parse_token(&unsalted) else {
            panic!("an unsalted upload id was taken");
        };
        assert_eq!(e.code, "NoSuchUpload");
        assert!(e.message.contains("abort it"), "{}", e.message);
        let listed = parse_token(&format!("tf2.{}", fields[1])).unwrap();
        assert_eq!(
            (listed.backend_id.as_str(), listed.header.is_none()),
            ("one", true)
        );
        // A version 1 header is not one an upload id carries.
        let v1 = token(
            &key(1),
            "one",
            &crate::envelope::header::test_header_v1(5),
            None,
        );
        assert!(parse_token(&v1).is_err_and(|e| e.code == "NoSuchUpload"));
    }

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
