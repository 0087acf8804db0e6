//! Bucket default encryption as the gateway answers it (GetBucketEncryption,
//! PutBucketEncryption, DeleteBucketEncryption), from its configuration: every object is
//! sealed with DSSE, under the bucket's default key (`[[bucket]] default_key_id`, else
//! `[envelope] default_key_id`) unless its request names another. The setting lives in
//! the configuration, the same on every appliance, and nothing is kept in the backend.

use super::named::NamedKeys;
use crate::s3::{S3Code, S3Error, xml};

/// The `ServerSideEncryptionConfiguration` GetBucketEncryption answers for a bucket whose
/// default key is `key_id`.
pub fn configuration_xml(key_id: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <ServerSideEncryptionConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
         <Rule><ApplyServerSideEncryptionByDefault><SSEAlgorithm>aws:kms:dsse</SSEAlgorithm>\
         <KMSMasterKeyID>{}</KMSMasterKeyID></ApplyServerSideEncryptionByDefault>\
         <BucketKeyEnabled>false</BucketKeyEnabled></Rule></ServerSideEncryptionConfiguration>",
        xml::escape(key_id)
    )
}

/// What a PutBucketEncryption document asks for: its algorithm and, if any, its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requested {
    /// `SSEAlgorithm`.
    pub algorithm: String,
    /// `KMSMasterKeyID`.
    pub key_id: Option<String>,
}

/// Reads a PutBucketEncryption document: one rule with its default encryption.
pub fn parse(document: &str) -> Result<Requested, S3Error> {
    let rules = xml::elements(document, "Rule").0;
    let [rule] = rules.as_slice() else {
        return Err(S3Error::malformed_xml());
    };
    let by_default = xml::value(rule, "ApplyServerSideEncryptionByDefault")
        .ok_or_else(S3Error::malformed_xml)?;
    let algorithm = xml::value(by_default, "SSEAlgorithm")
        .map(|a| xml::unescape(a.trim()))
        .ok_or_else(S3Error::malformed_xml)?;
    let key_id = xml::value(by_default, "KMSMasterKeyID")
        .map(|k| xml::unescape(k.trim()))
        .filter(|k| !k.is_empty());
    Ok(Requested { algorithm, key_id })
}

/// Whether a PutBucketEncryption of `bucket` asks for what the gateway already enforces
/// there (the same key; DSSE, SSE-KMS or SSE-S3, all honoured with DSSE): then it is
/// answered as done, changing nothing. Anything else is refused, saying where the
/// setting lives.
pub fn check_put(keys: &NamedKeys, bucket: &str, req: &Requested) -> Result<(), S3Error> {
    if !matches!(
        req.algorithm.as_str(),
        "aws:kms:dsse" | "aws:kms" | "AES256"
    ) {
        return Err(S3Error::invalid_argument(format!(
            "SSEAlgorithm {:?} is not supported; Twofold seals every object with aws:kms:dsse",
            req.algorithm
        )));
    }
    let current = keys.default_for(bucket);
    let asked = match &req.key_id {
        None => keys.default_choice(),
        Some(id) => keys.resolve(id).ok_or_else(|| {
            S3Error::new(
                400,
                S3Code::KmsNotFound,
                format!("Key '{id}' does not exist"),
            )
        })?,
    };
    if asked.id != current.id {
        return Err(S3Error::invalid_request(format!(
            "The default key of this bucket is {:?}, set in the gateway's configuration \
             ([[bucket]] default_key_id); change it there",
            current.id
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::named::{DEFAULT_KEY_ID, NamedKey};

    fn keys() -> NamedKeys {
        let mut k = NamedKeys::only_default("i", "o");
        k.keys.push(NamedKey {
            id: "alias/finance".into(),
            aliases: vec!["arn:aws:kms:us-east-1:1:alias/finance".into()],
            inner_kek: "fi".into(),
            outer_kek: "fo".into(),
            destroyed: false,
        });
        k.bucket_defaults
            .push(("ledger".into(), "alias/finance".into()));
        k
    }

    fn doc(algorithm: &str, key: Option<&str>) -> String {
        let key = key.map_or(String::new(), |k| {
            format!("<KMSMasterKeyID>{k}</KMSMasterKeyID>")
        });
        format!(
            "<ServerSideEncryptionConfiguration><Rule><ApplyServerSideEncryptionByDefault>\
             <SSEAlgorithm>{algorithm}</SSEAlgorithm>{key}</ApplyServerSideEncryptionByDefault>\
             </Rule></ServerSideEncryptionConfiguration>"
        )
    }

    #[test]
    fn the_answer_names_dsse_and_the_key() {
        let x = configuration_xml("alias/a&b");
        assert!(
            x.contains("<SSEAlgorithm>aws:kms:dsse</SSEAlgorithm>"),
            "{x}"
        );
        assert!(
            x.contains("<KMSMasterKeyID>alias/a&amp;b</KMSMasterKeyID>"),
            "{x}"
        );
        let back = parse(&x).unwrap();
        assert_eq!(back.key_id.as_deref(), Some("alias/a&b"));
    }

    #[test]
    fn a_put_of_what_is_enforced_is_done_and_anything_else_refused() {
        let k = keys();
        let put =
            |bucket, algorithm, key| check_put(&k, bucket, &parse(&doc(algorithm, key)).unwrap());
        for algorithm in ["aws:kms:dsse", "aws:kms"] {
            assert!(put("ledger", algorithm, Some("alias/finance")).is_ok());
            assert!(
                put(
                    "ledger",
                    algorithm,
                    Some("arn:aws:kms:us-east-1:1:alias/finance")
                )
                .is_ok()
            );
            assert!(put("other", algorithm, Some(DEFAULT_KEY_ID)).is_ok());
        }
        assert!(put("other", "AES256", None).is_ok());
        assert_eq!(
            put("ledger", "AES256", None).unwrap_err().code,
            "InvalidRequest"
        );
        assert_eq!(
            put("other", "aws:kms:dsse", Some("alias/finance"))
                .unwrap_err()
                .code,
            "InvalidRequest"
        );
        assert_eq!(
            put("other", "aws:kms", Some("alias/nope"))
                .unwrap_err()
                .code,
            "KMS.NotFoundException"
        );
        assert_eq!(
            put("other", "aws:fancy", None).unwrap_err().code,
            "InvalidArgument"
        );
        for bad in ["", "<ServerSideEncryptionConfiguration/>", "<Rule></Rule>"] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }
}
