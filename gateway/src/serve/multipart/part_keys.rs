//! The keys a part is sealed with, set up in the same way by UploadPart and UploadPartCopy:
//! the part number and upload id of the request, then the part's cipher, ETag tagger and
//! checksum hasher, derived from the upload's data keys (which are dropped at once).

use super::token::{TokenProof, Upload, parse_token};
use crate::envelope::header::Header;
use crate::envelope::plan::PART_NUMBER_MAX;
use crate::envelope::{ObjectName, PartSalt, SegmentCipher, fresh_part_salt};
use crate::s3::S3Error;
use crate::s3::checksum::Hasher;
use crate::serve::part_checksum::{Declared, PartTagger};
use crate::serve::{Failure, Request};

/// The part number a `partNumber` query value gives: an integer from 1 to
/// [`PART_NUMBER_MAX`], as in S3.
fn parse_part_number(value: Option<&str>) -> Result<u32, S3Error> {
    value
        .and_then(|v| v.parse::<u32>().ok())
        .filter(|n| (1..=PART_NUMBER_MAX).contains(n))
        .ok_or_else(|| {
            S3Error::invalid_argument(format!(
                "Part number must be an integer between 1 and {PART_NUMBER_MAX}, inclusive"
            ))
        })
}

/// The part a request writes: its number and what its upload id carries. Only an upload
/// id CreateMultipartUpload returned carries the upload's header and so its keys.
pub(super) struct PartTarget {
    pub(super) number: u32,
    pub(super) backend_id: String,
    pub(super) header: Header,
    pub(super) declared: Option<Declared>,
    /// The id's MAC, checked before the header is used.
    proof: TokenProof,
}

impl PartTarget {
    /// The part number and upload id of the request. Until the request's body is read, a
    /// failure needs no explicit close: the connection's state (a body not read to its
    /// end) closes it.
    pub(super) fn from_request(ctx: &Request<'_>) -> Result<Self, Failure> {
        let number = parse_part_number(ctx.query.get("partNumber"))?;
        let mut upload = parse_token(ctx.query.get("uploadId").unwrap_or(""))?;
        let proof = upload.take_proof();
        Ok(Self::new(number, upload, proof)?)
    }

    /// Part `number` of `upload`; an upload id without a header (the form
    /// ListMultipartUploads shows) is `NoSuchUpload`, with a hint at the right id.
    fn new(number: u32, upload: Upload, proof: TokenProof) -> Result<Self, S3Error> {
        let Upload {
            backend_id,
            header,
            declared,
            ..
        } = upload;
        let header = header.ok_or_else(|| {
            S3Error::no_such_upload().with_message(
                "This upload id has no Twofold keys: use the upload id CreateMultipartUpload \
                 returned",
            )
        })?;
        Ok(PartTarget {
            number,
            backend_id,
            header,
            declared,
            proof,
        })
    }

    /// Opens the upload's data keys and derives what the part is sealed with; the data
    /// keys themselves are dropped before this returns. Errors as [`Failure::upload_keys`]
    /// gives them: a header that does not open is `NoSuchUpload`, a custodian outage 503.
    pub(super) async fn open(
        self,
        ctx: &Request<'_>,
        name: ObjectName<'_>,
    ) -> Result<PartSealing, Failure> {
        // The id must be one the gateways issued before its header is used at all.
        let key = ctx.core.keyring.upload_id_key().await?;
        self.proof.verify(&key)?;
        let customer = crate::serve::respond::request_sse_c(ctx, crate::s3::sse_c::Role::Object)?;
        let keys = ctx
            .core
            .keyring
            .open_with(&self.header, name, customer.as_ref().map(|c| &c.key))
            .await
            .map_err(Failure::upload_keys)?;
        let internal = |_| Failure::keep(S3Error::internal_error());
        // Every upload of a part has its own salt, so its own keys and nonces.
        let salt = fresh_part_salt().map_err(internal)?;
        let cipher =
            SegmentCipher::new_salted(&self.header, &keys, self.number, &salt).map_err(internal)?;
        // The part's checksum, for an upload that declared one: vouched for in its ETag.
        let tagger = self
            .declared
            .map(|_| PartTagger::new(&self.header, &keys))
            .transpose()
            .map_err(|_| Failure::keep(S3Error::internal_error()))?;
        let hasher = self.declared.map(|d| Hasher::new(d.algorithm));
        drop(keys);
        Ok(PartSealing {
            number: self.number,
            backend_id: self.backend_id,
            header: self.header,
            declared: self.declared,
            salt,
            cipher,
            tagger,
            hasher,
        })
    }
}

/// What a part is sealed with: its target, its salt (the first bytes of the stored part)
/// and cipher, and for an upload that declared a
/// checksum the tagger of its ETag and a hasher for the checksum (for a part whose
/// checksum the gateway computes itself, as UploadPartCopy does).
pub(super) struct PartSealing {
    pub(super) number: u32,
    pub(super) backend_id: String,
    pub(super) header: Header,
    pub(super) declared: Option<Declared>,
    pub(super) salt: PartSalt,
    pub(super) cipher: SegmentCipher,
    pub(super) tagger: Option<PartTagger>,
    pub(super) hasher: Option<Hasher>,
}

#[cfg(test)]
mod tests {
    use super::{PART_NUMBER_MAX, PartTarget, parse_part_number};

    #[test]
    fn part_numbers_run_from_one_to_the_maximum() {
        assert_eq!(parse_part_number(Some("1")).unwrap(), 1);
        assert_eq!(
            parse_part_number(Some(&PART_NUMBER_MAX.to_string())).unwrap(),
            PART_NUMBER_MAX
        );
        let e = parse_part_number(Some("0")).unwrap_err();
        assert_eq!(
            e.message,
            "Part number must be an integer between 1 and 10000, inclusive"
        );
        for bad in [
            None,
            Some("0"),
            Some("-1"),
            Some("x"),
            Some(""),
            Some("10001"),
        ] {
            assert_eq!(
                parse_part_number(bad).unwrap_err().code,
                "InvalidArgument",
                "{bad:?}"
            );
        }
    }

    #[test]
    fn an_upload_id_without_keys_is_no_such_upload_with_a_hint() {
        let mut upload = super::parse_token("tf3.Yg").unwrap();
        assert_eq!(upload.backend_id, "b");
        let proof = upload.take_proof();
        let Err(e) = PartTarget::new(1, upload, proof) else {
            panic!("an upload id without a header was taken");
        };
        assert_eq!(e.code, "NoSuchUpload");
        assert!(e.message.contains("CreateMultipartUpload"), "{}", e.message);
    }
}
