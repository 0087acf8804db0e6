//! Checksums of multipart uploads (docs/gateway.md, *Multipart checksums*).
//!
//! A client that declares a checksum algorithm at CreateMultipartUpload gets, as S3 gives
//! it, a checksum of each part from UploadPart and UploadPartCopy, and at
//! CompleteMultipartUpload a checksum of the object: `COMPOSITE` (the checksum of the parts'
//! digests, printed `-N`) or `FULL_OBJECT` (the CRC of the whole plaintext, made from the
//! parts' CRCs). The gateway keeps no state between those requests, and the backend holds
//! ciphertext parts uploaded without checksums, so the digest of each part travels to
//! Complete with the client: the part's ETag carries a tag, an HMAC under a key derived
//! from the upload's data keys over the part number, the algorithm, the digest and the
//! backend's ETag of the part. At Complete the client's claimed digest for each part must
//! carry a valid tag; a digest nobody can forge is then what the object's checksum is made
//! from.

use crate::envelope::aead::Layer;
use crate::envelope::{DataKeys, header::Header, kdf};
use crate::s3::checksum::{Checksum, ChecksumAlgorithm};
use crate::s3::{S3Error, xml};
use aws_lc_rs::{constant_time, hmac};
use base64::Engine;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;
/// Bytes of the HMAC kept in a tag.
const TAG_LEN_BYTES: usize = 16;
/// Characters of a tag in an ETag (base64url of [`TAG_LEN_BYTES`]).
const TAG_LEN_CHARS: usize = 22;
/// What separates the backend's ETag from the tag in the ETag the client gets.
const SEPARATOR: char = '~';

/// The checksum a client declared for an upload at CreateMultipartUpload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Declared {
    /// `x-amz-checksum-algorithm`.
    pub algorithm: ChecksumAlgorithm,
    /// `x-amz-checksum-type: FULL_OBJECT` (else `COMPOSITE`).
    pub full_object: bool,
}

impl Declared {
    /// From CreateMultipartUpload's headers: `None` when no algorithm is named. S3's rules:
    /// a type needs an algorithm; `FULL_OBJECT` only with a CRC; CRC64NVME only as
    /// `FULL_OBJECT`, its default (`COMPOSITE` is the others').
    pub fn from_request(
        algorithm: Option<&str>,
        kind: Option<&str>,
    ) -> Result<Option<Self>, S3Error> {
        let kind = kind.map(str::trim).map(str::to_ascii_uppercase);
        let Some(name) = algorithm else {
            return match kind {
                None => Ok(None),
                Some(_) => Err(S3Error::invalid_request(
                    "x-amz-checksum-type needs x-amz-checksum-algorithm",
                )),
            };
        };
        let algorithm = ChecksumAlgorithm::from_name(name.as_bytes()).ok_or_else(|| {
            S3Error::invalid_request(format!("unknown x-amz-checksum-algorithm {name:?}"))
        })?;
        let full_object = match kind.as_deref() {
            None => algorithm == ChecksumAlgorithm::Crc64Nvme,
            Some("FULL_OBJECT") => true,
            Some("COMPOSITE") => false,
            Some(other) => {
                return Err(S3Error::invalid_request(format!(
                    "unknown x-amz-checksum-type {other:?}"
                )));
            }
        };
        if full_object && !algorithm.combines() {
            return Err(S3Error::invalid_request(format!(
                "The FULL_OBJECT checksum type cannot be used with the {algorithm} algorithm"
            )));
        }
        if !full_object && algorithm == ChecksumAlgorithm::Crc64Nvme {
            return Err(S3Error::invalid_request(
                "The COMPOSITE checksum type cannot be used with the CRC64NVME algorithm",
            ));
        }
        Ok(Some(Self {
            algorithm,
            full_object,
        }))
    }

    /// `x-amz-checksum-type` as S3 prints it.
    pub fn type_name(self) -> &'static str {
        if self.full_object {
            "FULL_OBJECT"
        } else {
            "COMPOSITE"
        }
    }

    /// The form carried in the upload id: `CRC32-C`, `CRC64NVME-F`.
    pub fn encode(self) -> String {
        let k = if self.full_object { 'F' } else { 'C' };
        format!("{}-{k}", self.algorithm.name())
    }

    /// Reads [`Declared::encode`]'s form; `None` if it is not one.
    pub fn decode(s: &str) -> Option<Self> {
        let (name, k) = s.rsplit_once('-')?;
        let algorithm = ChecksumAlgorithm::from_name(name.as_bytes())?;
        let full_object = match k {
            "F" => true,
            "C" => false,
            _ => return None,
        };
        Some(Self {
            algorithm,
            full_object,
        })
    }
}

/// The key that tags an upload's part checksums.
pub struct PartTagger {
    key: hmac::Key,
}

impl PartTagger {
    /// Derived from the upload's outer data key and its upload id.
    pub fn new(header: &Header, keys: &DataKeys) -> Result<Self, kdf::KdfFailure> {
        let mut info = b"twofold/v1 part checksum".to_vec();
        info.extend_from_slice(&header.upload_id);
        let k = kdf::derive_key(Layer::Outer, keys.key(Layer::Outer), &info)?;
        Ok(Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, k.as_ref()),
        })
    }

    fn tag(
        &self,
        number: u32,
        digest: &Checksum,
        algorithm: ChecksumAlgorithm,
        etag: &str,
    ) -> [u8; TAG_LEN_BYTES] {
        let mut ctx = hmac::Context::with_key(&self.key);
        ctx.update(&number.to_be_bytes());
        ctx.update(algorithm.name().as_bytes());
        ctx.update(&[0]);
        ctx.update(digest.as_bytes());
        ctx.update(backend_etag(etag).as_bytes());
        let mut out = [0u8; TAG_LEN_BYTES];
        out.copy_from_slice(&ctx.sign().as_ref()[..TAG_LEN_BYTES]);
        out
    }

    /// The ETag the client gets for part `number`, stored by the backend as `etag`,
    /// whose plaintext has `digest`: the backend's ETag with the tag in it.
    pub fn client_etag(
        &self,
        number: u32,
        algorithm: ChecksumAlgorithm,
        digest: &Checksum,
        etag: &str,
    ) -> String {
        let inner = backend_etag(etag);
        let tag = B64.encode(self.tag(number, digest, algorithm, inner));
        format!("\"{inner}{SEPARATOR}{tag}\"")
    }

    /// Whether the client's ETag of part `number` vouches for `digest`.
    pub fn vouches(
        &self,
        number: u32,
        algorithm: ChecksumAlgorithm,
        digest: &Checksum,
        client_etag: &str,
    ) -> bool {
        let Some((inner, tag)) = split(client_etag) else {
            return false;
        };
        let mut got = [0u8; TAG_LEN_BYTES + 2];
        match B64.decode_slice(tag.as_bytes(), &mut got) {
            Ok(TAG_LEN_BYTES) => constant_time::verify_slices_are_equal(
                &got[..TAG_LEN_BYTES],
                &self.tag(number, digest, algorithm, inner),
            )
            .is_ok(),
            _ => false,
        }
    }
}

/// A client ETag with a tag, split into the backend's ETag (unquoted) and the tag.
fn split(client_etag: &str) -> Option<(&str, &str)> {
    let (inner, tag) = client_etag
        .trim()
        .trim_matches('"')
        .rsplit_once(SEPARATOR)?;
    (tag.len() == TAG_LEN_CHARS).then_some((inner, tag))
}

/// The backend's ETag of a part, unquoted, from the ETag a client sends (with or without
/// a tag).
pub fn backend_etag(client_etag: &str) -> &str {
    match split(client_etag) {
        Some((inner, _)) => inner,
        None => client_etag.trim().trim_matches('"'),
    }
}

/// One `<Part>` of a CompleteMultipartUpload document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompletedPart {
    /// `<PartNumber>`.
    pub number: u32,
    /// `<ETag>`, unescaped, in the backend's form ([`crate::s3::etag::to_backend`] of what
    /// the client sent).
    pub etag: String,
    /// The client's `<Checksum...>` of the declared algorithm, if it sent one.
    pub claim: Option<String>,
}

/// Every `<Part>` of a CompleteMultipartUpload document, in order, with its claimed
/// checksum of `algorithm`. A part without a number is malformed.
pub fn completed_parts(
    xml: &str,
    algorithm: Option<ChecksumAlgorithm>,
) -> Result<Vec<CompletedPart>, S3Error> {
    let (parts, complete) = xml::elements(xml, "Part");
    if !complete {
        return Err(S3Error::malformed_xml());
    }
    let mut out = Vec::new();
    for part in parts {
        let number = xml::value(part, "PartNumber")
            .and_then(|v| v.trim().parse::<u32>().ok())
            .ok_or_else(S3Error::malformed_xml)?;
        out.push(CompletedPart {
            number,
            etag: xml::value(part, "ETag")
                .map(|e| crate::s3::etag::to_backend(xml::unescape(e).trim()).into_owned())
                .unwrap_or_default(),
            claim: algorithm
                .and_then(|a| xml::value(part, a.xml_name()))
                .map(|v| v.trim().to_owned()),
        });
    }
    Ok(out)
}

/// The object's checksum from the parts' digests (each vouched for) and plaintext sizes.
pub fn object_checksum(
    declared: Declared,
    digests: &[Checksum],
    sizes: &[u64],
) -> Option<crate::envelope::checksum_record::StoredChecksum> {
    use crate::envelope::checksum_record::StoredChecksum;
    let algorithm = declared.algorithm;
    if declared.full_object {
        let mut it = digests.iter().zip(sizes);
        let (first, _) = it.next()?;
        let mut acc = *first;
        for (d, len) in it {
            acc = crate::s3::checksum::combine(algorithm, &acc, d, *len)?;
        }
        Some(StoredChecksum::full_object(algorithm, acc))
    } else {
        Some(StoredChecksum {
            algorithm,
            digest: crate::s3::checksum::composite(algorithm, digests),
            parts: u16::try_from(digests.len()).ok(),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::envelope::header::test_header as header;
    use crate::s3::checksum::checksum;

    #[test]
    fn a_tag_vouches_only_for_its_part_digest_and_etag() {
        let keys = DataKeys::from_bytes([5; 32], [6; 32]);
        let t = PartTagger::new(&header(1), &keys).unwrap();
        let a = ChecksumAlgorithm::Crc32;
        let d = checksum(a, b"part");
        let etag = t.client_etag(3, a, &d, "\"0123abcd\"");
        assert!(
            etag.starts_with("\"0123abcd~") && etag.ends_with('"'),
            "{etag}"
        );
        assert_eq!(backend_etag(&etag), "0123abcd");
        assert_eq!(backend_etag("\"0123abcd\""), "0123abcd");
        assert!(t.vouches(3, a, &d, &etag));
        // Another part number, digest, algorithm, backend ETag, upload or key: no.
        assert!(!t.vouches(4, a, &d, &etag));
        assert!(!t.vouches(3, a, &checksum(a, b"other"), &etag));
        assert!(!t.vouches(3, ChecksumAlgorithm::Crc32c, &d, &etag));
        assert!(!t.vouches(3, a, &d, &etag.replace("0123abcd", "0123abce")));
        let other_upload = PartTagger::new(&header(2), &keys).unwrap();
        assert!(!other_upload.vouches(3, a, &d, &etag));
        let other_keys =
            PartTagger::new(&header(1), &DataKeys::from_bytes([5; 32], [7; 32])).unwrap();
        assert!(!other_keys.vouches(3, a, &d, &etag));
        assert!(!t.vouches(3, a, &d, "\"0123abcd\""));
    }

    #[test]
    fn declarations_follow_s3s_rules() {
        let d = |a, k| Declared::from_request(a, k);
        assert_eq!(d(None, None).unwrap(), None);
        assert!(d(None, Some("COMPOSITE")).is_err());
        let crc32 = d(Some("crc32"), None).unwrap().unwrap();
        assert!(!crc32.full_object);
        assert!(d(Some("CRC64NVME"), None).unwrap().unwrap().full_object);
        assert!(d(Some("CRC64NVME"), Some("COMPOSITE")).is_err());
        assert!(d(Some("SHA256"), Some("FULL_OBJECT")).is_err());
        assert!(
            d(Some("CRC32C"), Some("full_object"))
                .unwrap()
                .unwrap()
                .full_object
        );
        assert!(d(Some("MD5"), None).is_err());
        for a in ChecksumAlgorithm::ALL {
            for full_object in [false, true] {
                let x = Declared {
                    algorithm: a,
                    full_object,
                };
                assert_eq!(Declared::decode(&x.encode()), Some(x));
            }
        }
        assert_eq!(Declared::decode("CRC32"), None);
        assert_eq!(Declared::decode("CRC32-X"), None);
    }

    #[test]
    fn complete_documents_are_read_part_by_part() {
        let xml = "<CompleteMultipartUpload><Part><ETag>&quot;a~x&quot;</ETag>\
            <ChecksumCRC32>AAAAAA==</ChecksumCRC32><PartNumber>1</PartNumber></Part>\
            <Part><PartNumber>2</PartNumber><ETag>\"b\"</ETag></Part></CompleteMultipartUpload>";
        let parts = completed_parts(xml, Some(ChecksumAlgorithm::Crc32)).unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].etag, "\"a~x\"");
        assert_eq!(parts[0].claim.as_deref(), Some("AAAAAA=="));
        assert_eq!((parts[1].number, parts[1].claim.as_deref()), (2, None));
        assert!(completed_parts("<Part><ETag>x</ETag></Part>", None).is_err());
    }

    #[test]
    fn object_checksums_of_both_types() {
        let data = b"the first part, then the second";
        let (x, y) = data.split_at(9);
        let a = ChecksumAlgorithm::Crc32c;
        let digests = [checksum(a, x), checksum(a, y)];
        let sizes = [x.len() as u64, y.len() as u64];
        let full = Declared {
            algorithm: a,
            full_object: true,
        };
        let got = object_checksum(full, &digests, &sizes).unwrap();
        assert_eq!((got.digest, got.parts), (checksum(a, data), None));
        let composite = Declared {
            full_object: false,
            ..full
        };
        let got = object_checksum(composite, &digests, &sizes).unwrap();
        assert_eq!(got.parts, Some(2));
        assert_eq!(got.digest, crate::s3::checksum::composite(a, &digests));
    }
}
